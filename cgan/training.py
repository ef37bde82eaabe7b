"""Training runs: a run folder, `train` from scratch, `resume` from its newest checkpoint.

A run folder holds `run.json` (the Config and data settings: what `resume`
needs), `checkpoints/`, `samples/step_NNNNNN.png`, `losses.csv`,
`loss_curve.png`, `architecture/` and, at the end, the averaged generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from cgan import budget, checkpoints, conditions, diagrams, training_log
from cgan import distribute as distribution
from cgan.backend import keras, tf
from cgan.config import Config, compute_policy, data_of, from_run, training_batches
from cgan.errors import InputError, TrainingStopped, UserError
from cgan.files import check_folder, folder_lock, make_folder, remove_temporaries, write_text
from cgan.gan import ConditionalGAN, Networks, make_gan, steps_per_call
from cgan.images import tile, write_png
from cgan.precision import resolve
from cgan.sampling import class_count, generate, save_generator

RUN_FILE = "run.json"


class SampleGrid(keras.callbacks.Callback):
    """Every `interval` steps, draws one row per class (of `classes`, default all) from fixed noise with the
    averaged generator."""

    def __init__(self, gan: ConditionalGAN, out_dir: Path, *, interval: int, per_class: int = 10, seed: int = 0,
                 classes: list[int] | None = None):
        super().__init__()
        self.gan, self.out_dir, self.interval = gan, Path(out_dir), interval
        if class_count(gan.generator) is None:
            classes = None
        elif classes is None:
            classes = list(range(class_count(gan.generator)))
        self.rows = len(classes) if classes else 10  # an unconditional generator: a 10 x per_class grid of any images
        self.labels = np.repeat(classes, per_class) if classes else None
        self.count = self.rows * per_class
        self.seed = seed
        self.last: tuple[int, np.ndarray] | None = None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.gan.g_optimizer.iterations.numpy())
        if step % self.interval == 0 and self.gan.diverged_at is None:  # diverged weights draw a black grid
            self.dump(step)

    def grid(self, step: int) -> np.ndarray:
        """The fixed-noise grid at `step` (drawn once per step, shared with TensorBoard)."""
        if self.last is None or self.last[0] != step:
            # Statistics from 1,024 samples take a quarter of the time of 4,096 and look the same in a preview.
            images = generate(self.gan.averaged_generator(statistics_from=1024), self.labels, seed=self.seed,
                              count=self.count)
            self.last = (step, tile(images, self.rows))
        return self.last[1]

    def dump(self, step: int) -> Path:
        return write_png(self.out_dir / f"step_{step:06d}.png", self.grid(step))


def add_arguments(group) -> None:
    """The flags of a training run beside the Config's (`train`'s options), in the argparse group `group`."""
    group.add_argument("--data", metavar="PATH",
                       help="a Keras-layout .npz or a folder of the four IDX files (gzipped or raw) "
                            "(default: data/mnist.npz; Fashion-MNIST: /usr/share/datasets/fashion-mnist)")
    group.add_argument("--limit", type=int, metavar="N",
                       help="train on the first N images only, for quick runs (default: all)")
    group.add_argument("--model-name", default="cgan_mnist.h5", metavar="NAME",
                       help="file name of the saved generator inside --out-dir; .keras for the native format "
                            "(default: cgan_mnist.h5)")
    group.add_argument("--distribute", action="store_true",
                       help="train under tf.distribute.MirroredStrategy over the visible GPUs, or the CPU "
                            "devices where there are none; with TF_CONFIG, over its workers (every worker runs "
                            "the same command; the chief writes --out-dir); one step per compiled call")
    group.add_argument("--minutes", type=float, metavar="M",
                       help="train for about M minutes here: the step is timed on this machine and --train-steps "
                            "set to what fits, the learning-rate decay, weight average and dumps fitted to it; "
                            f"where under {budget.SHORT_RUN_STEPS:,} steps of the default batch would fit, "
                            f"batches of {budget.SHORT_RUN_BATCH} instead")
    group.add_argument("--tensorboard", metavar="DIR",
                       help="also log losses and sample grids for `tensorboard --logdir DIR` (default: off)")


def train(
    config: Config,
    *,
    networks: Networks,
    out_dir,
    data=None,
    model_name: str = "cgan_mnist.h5",
    limit: int | None = None,
    verbose: bool = True,
    callbacks=(),
    tensorboard=None,
    distribute: bool = False,
    minutes: float | None = None,
) -> Path | None:
    """Train a GAN from scratch; return the path of the saved (averaged) generator.

    Writes into `out_dir`: `samples/step_NNNNNN.png` (fixed noise, a row per class),
    `checkpoints/` and `losses.csv` every `config.save_interval` steps (`loss_curve.png`
    too, at most every 15 s), and at the end the generator as `model_name` (a path with a folder is
    used as is). `data` is a file or folder of the dataset `config` names; `limit` keeps only
    the first `limit` training images; `callbacks` are extra Keras callbacks;
    `tensorboard` is a log folder; `distribute` trains under a MirroredStrategy
    over the visible devices, or over the workers of TF_CONFIG (`cgan.distribute`: a worker
    other than the chief writes nothing of `out_dir` and returns None); `minutes` replaces
    `config.train_steps` by the steps that fit in that many minutes here (`cgan.budget`).
    Raises TrainingStopped on SIGINT/SIGTERM (after a checkpoint), on a NaN loss, or when a
    worker of the cluster is lost.
    """
    config.validate()
    budget.check_minutes(minutes)
    _check_tensorboard(tensorboard)
    if limit is not None and limit <= 0:
        raise UserError(f"--limit must be a positive integer, got {limit}")
    cluster = distribution.cluster() if distribute else None
    if cluster is not None:
        config = _same_on_every_worker(config, minutes, verbose)
    if cluster is not None and not cluster.is_chief:
        with worker_folder() as tmp:
            _train(config, networks, tmp, data, Path(model_name).name, limit, callbacks=callbacks, distributed=True,
                   verbose=False, announce=verbose, shown_dir=out_dir)
        _say_done(cluster, out_dir, verbose)
        return None
    return _train(config, networks, out_dir, data, model_name, limit, callbacks=callbacks, tensorboard=tensorboard,
                  distributed=distribute, minutes=minutes, verbose=verbose, announce=verbose)


def _train(config, networks, out_dir, data, model_name, limit, *, callbacks, distributed, verbose, announce,
           tensorboard=None, minutes=None, shown_dir=None) -> Path:
    out_dir = check_folder(out_dir)
    if checkpoints.list_checkpoints(out_dir) or (out_dir / RUN_FILE).exists():
        raise InputError(f"{out_dir} already holds a training run: continue it with --resume {out_dir}, "
                         "or pick another --out-dir")
    dataset = data_of(config)
    images, given = _training_data(config, dataset, data, limit, verbose)  # before anything is written
    strategy = _strategy(config, distributed, announce)
    make_folder(out_dir)  # before the precisions are timed: a folder that cannot be made stops the run here
    config = resolve(config, networks, verbose=verbose)  # the run records the precision it trains in
    if minutes is not None:  # and the steps it plans, timed on its own batches
        config = budget.plan(config, networks, dataset, minutes, verbose=verbose,
                             batches=lambda planned: training_batches(planned, images, given))
        if strategy is not None:  # the batch it chose must split over the replicas too
            distribution.check_batch(strategy, config.batch_size, config.minibatch_std)
    run = {"config": dataclasses.asdict(config), "data": None if data is None else str(Path(data).resolve()),
           "limit": limit, "model_name": str(model_name), "minutes": minutes}
    with folder_lock(out_dir):
        if checkpoints.list_checkpoints(out_dir) or (out_dir / RUN_FILE).exists():  # again, now that it is ours
            raise InputError(f"{out_dir} already holds a training run: continue it with --resume {out_dir}")
        remove_temporaries(out_dir)  # of this command killed before it wrote run.json
        write_text(out_dir / RUN_FILE, json.dumps(run, indent=2) + "\n")
        return _fit(config, networks, dataset, out_dir, images, given, run, start_step=0,
                    gan=make_gan(config, networks, strategy=strategy), verbose=verbose, callbacks=callbacks,
                    tensorboard=tensorboard, shown_dir=shown_dir)


def _training_data(config: Config, dataset, data, limit: int | None, verbose: bool) -> tuple[np.ndarray, dict]:
    """The run's training images (the first `limit`) and their conditions (`cgan.conditions.training_conditions`);
    bad data stops it here, before anything is written."""
    images, labels = dataset.load(data, "train")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    source = (data or dataset.default_path) if limit is None else None  # a part's measures are not kept beside it
    return images, conditions.training_conditions(conditions.kind_for(config), images, labels, source, verbose=verbose)


def _strategy(config: Config, distributed: bool, verbose: bool):
    """The run's distribution strategy (None without --distribute); UserError if the batch does not split over it."""
    if not distributed:
        return None
    strategy = distribution.strategy(verbose)
    distribution.check_batch(strategy, config.batch_size, config.minibatch_std)
    return strategy


def _same_on_every_worker(config: Config, minutes, verbose: bool) -> Config:
    """The settings of a worker of a cluster, which must build the same step as every other worker.

    Each worker would time its own machine: `--minutes` could plan other step counts and
    `--precision auto` another precision, and the workers' steps would then not match.
    """
    if minutes is not None:
        raise UserError("--minutes does not go with a TF_CONFIG cluster: each worker would plan its own steps; "
                        "give every worker the same --train-steps")
    if config.precision == "auto":
        if verbose:
            print("precision: float32 (auto, with several workers: each would time its own machine; give "
                  "--precision bfloat16 to every worker for mixed precision)", flush=True)
        config = dataclasses.replace(config, precision="float32")
    return config


@contextlib.contextmanager
def worker_folder():
    """A temporary folder for what a worker other than the chief writes, removed when it ends."""
    with tempfile.TemporaryDirectory(prefix="cgan-worker-") as tmp:
        yield Path(tmp)


def _say_done(cluster, run_dir, verbose: bool) -> None:
    if verbose:
        chief = cluster.name(*cluster.chief)
        print(f"{cluster.name()} done; {chief} wrote the run folder ({run_dir} on its machine)", flush=True)


def _check_tensorboard(log_dir) -> None:
    if log_dir and importlib.util.find_spec("tensorboard") is None:
        raise InputError("--tensorboard needs the tensorboard package: pip install -r requirements.txt")


def resume(run_dir, *, networks: Networks, verbose: bool = True, callbacks=(),
           tensorboard=None, distribute: bool = False) -> Path | None:
    """Continue the run in `run_dir` from its newest checkpoint to its configured last step.

    With `distribute` and TF_CONFIG, a worker other than the chief reads `run_dir` (the
    chief's folder, on a shared disk or copied) and writes nothing in it; it returns None.
    """
    run_dir = Path(run_dir)
    _check_tensorboard(tensorboard)
    try:
        run = json.loads((run_dir / RUN_FILE).read_text())
        config = from_run(run["config"])
    except (OSError, ValueError, TypeError, KeyError):
        raise InputError(f"{run_dir}: not a training run folder (no readable {RUN_FILE})") from None
    cluster = distribution.cluster() if distribute else None
    if cluster is not None:
        config = _same_on_every_worker(config, None, verbose)
    dataset = data_of(config)
    images, given = _training_data(config, dataset, run["data"], run["limit"], verbose)
    finished = _model_path(run, run_dir)
    if cluster is not None and not cluster.is_chief:
        with worker_folder() as tmp:
            _resume(config, networks, run_dir, {**run, "model_name": finished.name}, dataset, images, given,
                    finished=finished, out_dir=tmp, distributed=True, verbose=False, announce=verbose,
                    callbacks=callbacks, shown_dir=run_dir)
        _say_done(cluster, run_dir, verbose)
        return None
    with folder_lock(run_dir):
        remove_temporaries(run_dir)  # what a kill left half-written; the lock says no one else is writing
        config = resolve(config, networks, verbose=verbose)  # runs recorded before precision was resolved said "auto"
        return _resume(config, networks, run_dir, run, dataset, images, given, finished=finished, out_dir=run_dir,
                       distributed=distribute, verbose=verbose, announce=verbose, callbacks=callbacks,
                       tensorboard=tensorboard)


def _resume(config, networks, run_dir, run, dataset, images, given, *, finished, out_dir, distributed, verbose,
            announce, callbacks, tensorboard=None, shown_dir=None) -> Path:
    """Restore the newest checkpoint of `run_dir` and train on, writing into `out_dir`."""
    gan = make_gan(config, networks, strategy=_strategy(config, distributed, announce))
    found = checkpoints.list_checkpoints(run_dir)
    step = 0
    if found:
        try:
            step = checkpoints.restore(gan, found[-1])
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{found[-1]}: unreadable checkpoint ({exc})") from None
    if verbose:
        print(f"resuming {run_dir} from step {step} ({found[-1].name})" if found else
              f"{run_dir} has no checkpoint yet: training it from the start with its recorded settings", flush=True)
    if step >= config.train_steps and finished.is_file():
        if verbose:
            print(f"{run_dir} finished at step {step}; nothing to train", flush=True)
        return finished
    return _fit(config, networks, dataset, out_dir, images, given, run, start_step=step, gan=gan, verbose=verbose,
                callbacks=callbacks, tensorboard=tensorboard, shown_dir=shown_dir)


def _model_path(run: dict, run_dir: Path) -> Path:
    """Where the run saves its generator: `model_name` inside the run folder, or as given if it names a folder."""
    model_name = Path(run["model_name"])
    return model_name if model_name.parent != Path(".") else Path(run_dir) / model_name


def _fit(config, networks, dataset, out_dir, images, given, run, *, start_step, gan, verbose, callbacks,
         tensorboard, shown_dir=None) -> Path:
    """Train `gan` from `start_step` to the last step on `images` and their conditions `given`, writing into
    `out_dir`; `shown_dir` is the run folder messages name, if not `out_dir` (that of the chief, for a worker
    writing into a temporary folder)."""
    model_path = _model_path(run, out_dir)
    if start_step == 0:  # the data's statistics of any attributes (a checkpoint holds them from then on)
        conditions.set_statistics((gan.generator, gan.ema_generator, gan.discriminator), given, seed=config.seed)

    def batches():
        return training_batches(config, images, given, start_step=start_step)

    if gan.strategy is None:
        data = batches()
    else:  # each replica its rows of the global batch; a worker of a cluster builds only its own replicas'
        data = distribution.replica_batches(gan.strategy, batches, batch_size=config.batch_size,
                                            chunks=config.critic_steps)
    if verbose and start_step == 0:
        print(f"training {config.train_steps} steps on {len(images)} images, batch {config.batch_size}, "
              f"seed {config.seed}, {compute_policy(config.precision)} -> {out_dir}", flush=True)
    # drawn once, or after a kill
    if verbose and (start_step == 0 or not any((out_dir / "architecture").glob("*.png"))):
        diagrams.draw(networks.for_diagrams(config), out_dir / "architecture", quiet_failure=True)
    samples = SampleGrid(gan, out_dir / "samples", interval=config.save_interval, seed=config.seed,
                         classes=dataset.shown_classes())
    if start_step and start_step % config.save_interval == 0 or start_step == config.train_steps:
        if not (out_dir / "samples" / f"step_{start_step:06d}.png").is_file():
            samples.dump(start_step)  # a kill between the checkpoint and its grid: the grid is drawn now
    loss_log = training_log.LossLog(gan, out_dir, interval=config.save_interval, start_step=start_step)
    loss_log.draw_if_missing()
    guard = checkpoints.Checkpointer(gan, out_dir, interval=config.save_interval, before_save=[loss_log.write_rows])
    all_callbacks = [
        guard,  # first: a NaN step stops here, before anything else records it
        samples,
        loss_log,
        *callbacks,
    ]
    if tensorboard:
        all_callbacks.append(training_log.TensorBoardLog(gan, tensorboard, interval=config.save_interval,
                                                         grid_source=samples.grid))
    if verbose:
        all_callbacks.append(training_log.Progress(gan, config.train_steps, every=min(config.save_interval, 500)))
    remaining = config.train_steps - start_step
    # Under a distribution strategy, more than one step per call fails in Keras 3.15 (keras-team/keras#19246).
    gan.set_steps_per_call(1 if gan.strategy is not None else steps_per_call(config, start_step))
    start = time.perf_counter()
    if remaining > 0:
        try:
            gan.fit(data, epochs=1, steps_per_epoch=remaining, callbacks=all_callbacks, verbose=0, shuffle=False)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as exc:
            if not distribution.is_multi_worker(gan.strategy):
                raise
            last = checkpoints.list_checkpoints(out_dir) if shown_dir is None else None  # a worker's are not the run's
            raise distribution.lost_worker(exc, int(gan.g_optimizer.iterations.numpy()), shown_dir or out_dir,
                                           last) from None
    elapsed = time.perf_counter() - start
    step = int(gan.g_optimizer.iterations.numpy())
    if gan.diverged_at:
        at, what = gan.diverged_at
        last = checkpoints.list_checkpoints(out_dir)
        kept = f"last good checkpoint: {last[-1]}" if last else "no checkpoint was written before it"
        raise TrainingStopped(f"training diverged at step {at}: {what}; {kept} "
                              "(lower --g-lr/--d-lr and train again)", 1)
    if guard.signal_received is not None:
        raise TrainingStopped(f"stopped at step {step} by signal {guard.signal_received}; checkpoint written, "
                              f"continue with --resume {shown_dir or out_dir}", 128 + guard.signal_received)
    if step % config.save_interval:
        checkpoints.save(gan, out_dir, step)
        samples.dump(step)
    path = save_generator(_for_sampling(gan.averaged_generator(), config, networks), model_path)
    if verbose:
        done = step - start_step
        print(f"trained {done} steps in {elapsed / 60:.1f} min ({elapsed / max(done, 1) * 1000:.0f} ms/step)")
        print(f"generator saved to {path}")
    return path


def _for_sampling(generator, config, networks):
    """The generator users sample, in float32: a --precision float64 run (for checks) trains a float64 one,
    which ONNX Runtime and the page could not run."""
    if generator.outputs[0].dtype != "float64":
        return generator
    twin = networks.generator(config, dtype="float32")
    twin.set_weights([np.asarray(w, np.float32) for w in generator.get_weights()])
    return twin
