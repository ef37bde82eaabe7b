"""Training throughput: this project's compiled step against the classic Keras way, same networks, same run.

    python benchmarks/train_speed.py            # about five minutes
    python benchmarks/train_speed.py --quick    # a few steps: this machine's pace, and what --precision auto takes

The classic way is the one of the well-known Keras GAN scripts, made correct for
Keras 3: a compiled discriminator, a stacked adversarial model compiled with the
discriminator frozen, `predict()` for the fakes and `train_on_batch` for both,
with `trainable` set before each model's first call so that both networks learn
(checked below). Both use the default Config's networks and batch size; the
classic way runs in float32, as those scripts do.

Prints the step's floating-point operations (cgan/flops.py) and their rate against this
machine's matmul pace measured in the same run, images per second of the project's bare step (`train_step` under `fit`),
of the whole training loop as `python cgan_mnist.py` runs it (per-step loss log,
progress, and a sample grid, checkpoint and loss curve every --save-interval
steps; not with --quick, whose few steps would time the dumps), of the classic
loop, their ratios, the project's step in the other precision (float32 / mixed
bfloat16, timed in the same rounds) and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cgan_mnist  # noqa: E402
from cgan.backend import keras  # noqa: E402
from cgan.config import PRECISIONS, Config, compute_policy  # noqa: E402
from cgan.data import MNIST, preprocess  # noqa: E402
from cgan.flops import config_step_flops, matmul_gflops  # noqa: E402
from cgan.gan import adam, steps_per_call  # noqa: E402
from cgan.precision import native_bfloat16, resolve  # noqa: E402


def project_runner(config: Config, images, labels):
    """A function running n steps of ConditionalGAN.train_step under fit, as training does, with no callbacks."""
    gan = cgan_mnist.make_gan(config)
    gan.set_steps_per_call(steps_per_call(config, 0))
    ds = MNIST.batches(images, labels, batch_size=config.batch_size, seed=0)

    def run(steps: int) -> None:
        gan.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)

    return run


class _StepClock(keras.callbacks.Callback):
    """Times the training steps after the first `warmup` ones."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.start, self.end, self.start_step, self.end_step = warmup, None, None, None, None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.g_optimizer.iterations.numpy())
        if self.start is None and step >= self.warmup:
            self.start, self.start_step = time.perf_counter(), step
        self.end, self.end_step = time.perf_counter(), step


def training_rate(config: Config, *, limit: int | None, warmup: int, steps: int) -> float:
    """Images per second of `cgan_mnist.train`, every callback of a real run included."""
    clock = _StepClock(warmup)
    config = dataclasses.replace(config, train_steps=warmup + steps)
    with tempfile.TemporaryDirectory() as tmp, open("/dev/null", "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet  # the run's progress lines
        try:
            cgan_mnist.train(config, out_dir=tmp, limit=limit, callbacks=[clock])
        finally:
            sys.stdout = stdout
    return (clock.end_step - clock.start_step) * config.batch_size / (clock.end - clock.start)


def classic_runner(config: Config, images, labels):
    """(run(n), learned()): n steps of the classic loop; whether each network's weights have moved."""
    keras.utils.set_random_seed(config.seed)
    config = dataclasses.replace(config, aux_weight=0.0, feature_matching=0.0)  # the classic loop has neither
    discriminator = cgan_mnist.config_discriminator(config, dtype="float32")  # D first, as training builds them
    generator = cgan_mnist.config_generator(config, dtype="float32")
    discriminator.compile(optimizer=adam(config, config.d_lr),
                          loss=keras.losses.BinaryCrossentropy(from_logits=True))
    discriminator.trainable = False
    adversarial = cgan_mnist.build_adversarial(generator, discriminator)
    adversarial.compile(optimizer=adam(config, config.g_lr),
                        loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(config.seed)
    b = config.batch_size
    x_all = preprocess(images)
    y_all = labels.reshape(-1, 1)
    ones, zeros = np.ones((b, 1), "float32"), np.zeros((b, 1), "float32")

    def step():
        pick = rng.integers(0, len(x_all), b)
        real, y = x_all[pick], y_all[pick]
        noise = rng.standard_normal((b, config.latent_dim)).astype("float32")
        fake = generator.predict({"noise": noise, "label": y}, verbose=0)
        discriminator.trainable = True  # Keras 3 reads this when the train function is first built
        discriminator.train_on_batch({"image": np.concatenate([real, fake]), "label": np.concatenate([y, y])},
                                     np.concatenate([ones, zeros]))
        discriminator.trainable = False
        noise = rng.standard_normal((b, config.latent_dim)).astype("float32")
        adversarial.train_on_batch({"noise": noise, "label": y}, ones)

    d0 = [w.numpy().copy() for w in discriminator.weights]
    g0 = [w.numpy().copy() for w in generator.trainable_weights]

    def run(steps: int) -> None:
        for _ in range(steps):
            step()

    def learned() -> dict:
        return {
            "discriminator": all(not np.array_equal(a, w.numpy()) for a, w in zip(d0, discriminator.weights)),
            "generator": all(not np.array_equal(a, w.numpy()) for a, w in zip(g0, generator.trainable_weights)),
        }

    return run, learned


def timed(run, steps: int, batch_size: int) -> float:
    """Images per second of run(steps)."""
    start = time.perf_counter()
    run(steps)
    return steps * batch_size / (time.perf_counter() - start)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Images per second: project step vs the classic Keras loop.")
    p.add_argument("--quick", action="store_true",
                   help="a few steps on 1,024 images: the step's pace here, not the whole loop's")
    p.add_argument("--steps", type=int, default=200, help="timed steps per method and round (default: 200)")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds (default: 5)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="the project step's precision (default: auto, what training picks here, with its line)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    config = resolve(Config(precision=args.precision), cgan_mnist.NETWORKS)
    images, labels = MNIST.load()
    if args.quick:
        images, labels = images[:1024], labels[:1024]
        warmup, steps, args.rounds = 4, 8, 2
        loop_steps = loop = None  # a few steps would time the dumps (every --save-interval steps), not the loop
    else:
        warmup, steps = 30, -(-args.steps // 10) * 10  # whole calls of 10 steps
        # The whole loop is timed over one --save-interval, so that one dump of each kind is in it.
        loop_steps = max(steps, config.save_interval)
        loop = training_rate(config, limit=len(images), warmup=warmup, steps=loop_steps)
    # The ways alternate in rounds, so a slow spell of the machine hits all; each figure is the
    # median over rounds and each ratio the median of the rounds' ratios. The third way is the
    # project's step in the other precision: what --precision auto gains or would lose here.
    policy = compute_policy(config.precision)
    step_flops = config_step_flops(config, cgan_mnist.NETWORKS)
    other = "bfloat16" if policy == "float32" else "float32"
    project, (classic_run, classic_learned) = (project_runner(config, images, labels),
                                               classic_runner(config, images, labels))
    runs = [project, classic_run]
    if other == "float32" or native_bfloat16() is not False:  # emulated bfloat16: 10x slower, not worth minutes
        runs.append(project_runner(dataclasses.replace(config, precision=other), images, labels))
    for run in runs:
        run(warmup)
    rounds = []
    for _ in range(args.rounds):
        rounds.append(tuple(timed(run, steps, config.batch_size) for run in runs))
    peak = matmul_gflops("bfloat16" if policy == "mixed_bfloat16" else "float32")  # the yardstick, in the same run
    ours, classic, other_rate = (float(np.median([r[i] for r in rounds])) if i < len(runs) else None for i in (0, 1, 2))
    speedup = float(np.median([r[0] / r[1] for r in rounds]))
    policy_gain = float(np.median([r[0] / r[2] for r in rounds])) if other_rate else None
    learned = classic_learned()
    b = config.batch_size
    result = {
        "batch_size": b,
        "widths": [config.g_width, config.d_width],
        "extra_convs": [config.g_extra_convs, config.d_extra_convs],
        "policy": policy,
        "steps": steps,
        "project_images_per_s": round(ours, 1),
        "project_ms_per_step": round(1000 * b / ours, 1),
        "step_gflop": round(step_flops / 1e9, 2),
        "project_gflop_per_s": round(step_flops * ours / b / 1e9, 1),
        "matmul_peak_gflop_per_s": round(peak, 1),
        "share_of_matmul_peak": round(step_flops * ours / b / 1e9 / peak, 3),
        "training_loop_images_per_s": loop and round(loop, 1),
        "training_loop_ms_per_step": loop and round(1000 * b / loop, 1),
        "classic_images_per_s": round(classic, 1),
        "classic_ms_per_step": round(1000 * b / classic, 1),
        "speedup": round(speedup, 2),
        "rounds_images_per_s": [[round(v) for v in r] for r in rounds],
        "training_loop_speedup": loop and round(loop / classic, 2),
        "other_precision": other,
        "other_precision_images_per_s": other_rate and round(other_rate, 1),
        "policy_speedup_over_other_precision": policy_gain and round(policy_gain, 2),
        "auto_picked_the_faster": None if policy_gain is None else policy_gain >= 1.0,
        "classic_networks_learned": learned,
        "peak_rss_mb": round(peak_rss_mb()),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"batch {b}, widths G {config.g_width} / D {config.d_width}, extra 3x3 convs G {config.g_extra_convs} / "
              f"D {config.d_extra_convs}; step and classic: median of {args.rounds} "
              f"alternating rounds of {steps} steps each"
              + ("" if loop is None else f"; whole loop: {loop_steps} steps"))
        print(f"rounds, images/s (project step, classic, project step in {other}):",
              ", ".join("(" + ", ".join(f"{v:.0f}" for v in r) + ")" for r in rounds))
        print(f"project step ({policy}, train_step under fit):        {ours:7.0f} images/s  "
              f"({result['project_ms_per_step']} ms/step)")
        print(f"a step is {result['step_gflop']} GFLOP (cgan/flops.py): {result['project_gflop_per_s']} GFLOP/s, "
              f"{100 * result['share_of_matmul_peak']:.0f}% of this machine's {policy.split('_')[-1]} matmul "
              f"({result['matmul_peak_gflop_per_s']} GFLOP/s, measured now)")
        if loop is not None:
            print(f"project training loop (all callbacks, dumps):       {loop:7.0f} images/s  "
                  f"({result['training_loop_ms_per_step']} ms/step)")
        print(f"classic Keras (float32, predict + train_on_batch):  {classic:7.0f} images/s  "
              f"({result['classic_ms_per_step']} ms/step)")
        print(f"speed-up over classic: step {result['speedup']}x" +
              ("" if loop is None else f", whole loop {result['training_loop_speedup']}x") +
              f"; classic loop trains both networks: {learned}")
        if other_rate is None:
            print(f"project step in {other}: not timed, this CPU has no bfloat16 instructions "
                  "(emulated, about 10x slower)")
        else:
            print(f"project step in {other:<8}, for reference:        {other_rate:7.0f} images/s  "
                  f"({1000 * b / other_rate:.1f} ms/step); "
                  f"{policy} is {result['policy_speedup_over_other_precision']}x as fast")
            print(f"--precision {args.precision} gave {config.precision}: "
                  f"{'the faster' if result['auto_picked_the_faster'] else 'NOT the faster'} of the two here")
        pace, which = ((result["project_ms_per_step"], "step's") if loop is None else
                       (result["training_loop_ms_per_step"], "whole loop's"))
        print(f"the default run's {config.train_steps:,} steps at the {which} pace: "
              f"{config.train_steps * pace / 60000:.1f} minutes of training here")
        print(f"peak resident memory: {result['peak_rss_mb']} MB "
              f"(under 2,048 MB: {'yes' if result['peak_rss_mb'] < 2048 else 'NO'})")
    return result


if __name__ == "__main__":
    main()
