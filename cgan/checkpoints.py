"""Resumable training: checkpoints of a ConditionalGAN, and stopping cleanly on Ctrl-C, SIGTERM or a NaN.

A checkpoint is one file, `RUN_DIR/checkpoints/step_NNNNNN.npz`, holding every
variable of the run (the generator, its weight average, the discriminator,
both optimizers' state and the noise seed generator's state) and the step.
The run's Config is in `RUN_DIR/run.json`; the data order is a function of
the step (see `cgan.data.shuffled_batches`), so together they restore a run
exactly. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import math
import re
import signal
from pathlib import Path

import numpy as np

from cgan.backend import keras
from cgan.files import atomic_path

KEEP = 2  # checkpoints kept on disk: the newest, and one before it in case the newest is bad
_NAME = re.compile(r"^step_(\d{6,})\.npz$")


def _groups(gan) -> dict[str, list]:
    """Every variable a run needs to continue, by group, in a fixed order."""
    for optimizer, model in ((gan.d_optimizer, gan.discriminator), (gan.g_optimizer, gan.generator)):
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    return {
        "generator": gan.generator.weights,
        "ema_generator": gan.ema_generator.weights,
        "discriminator": gan.discriminator.weights,
        "d_optimizer": gan.d_optimizer.variables,
        "g_optimizer": gan.g_optimizer.variables,
        "seed_generator": [gan.seed_generator.state],
    }


def save(gan, run_dir, step: int) -> Path:
    """Write the checkpoint of `gan` at `step`; keep only the newest KEEP checkpoints."""
    folder = Path(run_dir) / "checkpoints"
    arrays = {"step": np.asarray(step, np.int64)}
    for group, variables in _groups(gan).items():
        for i, v in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = keras.ops.convert_to_numpy(v)
    path = folder / f"step_{step:06d}.npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    for old in list_checkpoints(run_dir)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir) -> list[Path]:
    """The run's complete checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=step_of)


def step_of(path) -> int:
    """The step of a checkpoint file, from its name."""
    return int(_NAME.match(Path(path).name)[1])


def restore(gan, path) -> int:
    """Load checkpoint `path` into `gan` (built with the run's Config); return its step."""
    with np.load(path, allow_pickle=False) as data:
        for group, variables in _groups(gan).items():
            names = sorted(k for k in data.files if k.startswith(group + "/"))
            if len(names) != len(variables):
                raise ValueError(f"{path}: {group} has {len(names)} arrays, the model {len(variables)}")
            for name, v in zip(names, variables):
                if tuple(data[name].shape) != tuple(v.shape):
                    raise ValueError(f"{path}: {name} has shape {data[name].shape}, the model {tuple(v.shape)}")
                v.assign(data[name])
        return int(data["step"])


class Checkpointer(keras.callbacks.Callback):
    """Saves a checkpoint every `interval` steps, and stops the run cleanly when asked or when a loss is not finite.

    While it is active, SIGINT and SIGTERM only set `signal_received`: the step
    in progress (one compiled call of up to 10 steps) finishes, a checkpoint is written and `fit` returns. A loss
    that is NaN or infinite stops the run with the GAN's `diverged_at` set and no
    checkpoint written, so the last one on disk is the last good one.
    """

    def __init__(self, gan, run_dir, *, interval: int, before_save=()):
        super().__init__()
        self.gan, self.run_dir, self.interval = gan, Path(run_dir), interval
        self.before_save = list(before_save)  # records that must be on disk before a checkpoint claims their step
        self.signal_received: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.signal_received = signum

    def on_train_begin(self, logs=None):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_end(self, logs=None):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.gan.g_optimizer.iterations.numpy())
        for at, figures in self.gan.recent_steps():
            for name in ("d_loss", "g_loss"):
                if not math.isfinite(figures[name]):
                    # later callbacks record nothing from it on
                    self.gan.diverged_at = (at, f"{name} is {figures[name]}")
                    self.gan.stop_training = True
                    return
        if step % self.interval == 0 or self.signal_received is not None:
            for write in self.before_save:
                write()
            save(self.gan, self.run_dir, step)
        if self.signal_received is not None:
            self.gan.stop_training = True
