"""The family's variants side by side: each trained from scratch here with the same wall-clock budget, scored alike.

    python benchmarks/compare_variants.py                 # 10 minutes each, about 45 minutes in all
    python benchmarks/compare_variants.py --minutes 2     # a quicker look
    python benchmarks/compare_variants.py --quick         # a few steps each: checks that it runs

Variants: the hinge default, `--loss bce`, `--loss wgan-gp` (its own Adam settings and 5 critic
steps) and `--unconditional` (hinge, no labels). Each variant's step rate is measured first
(a few dozen steps), and its schedule is set to the number of steps that fits the budget,
so that its learning rate anneals by the end as the default run's does; the run then trains
with every callback of a real run (grids, checkpoints, losses). Each saved generator is scored
by the evaluator (1,000 samples per digit; class spread for the unconditional one). Writes
`results/compare_variants.txt` and `.json` and a 10x10 sample grid per variant into
`assets/variants/` (or under --out); a run of some `--variants` replaces their rows there and
keeps the others' (each row records the commit it was measured at).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import cgan_mnist  # noqa: E402
from cgan import config as config_module  # noqa: E402
from cgan import evaluation, images  # noqa: E402
from cgan.backend import keras  # noqa: E402
from cgan.config import Config, compute_policy  # noqa: E402
from cgan.data import MNIST  # noqa: E402
from cgan.precision import resolve  # noqa: E402
from cgan.sampling import class_count, generate, load_generator  # noqa: E402

VARIANTS = {
    "hinge": {},
    "bce": {"loss": "bce"},
    "wgan-gp": {"loss": "wgan-gp"},
    "unconditional": {"unconditional": True},
}


class TrainingClock(keras.callbacks.Callback):
    """Seconds spent in `fit`, and the steps done."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start
        self.steps = int(self.model.g_optimizer.iterations.numpy())


def steps_per_second(config, warmup: int, timed: int) -> float:
    """Generator steps per second of `config`'s training step, with no callbacks."""
    gan = cgan_mnist.make_gan(config)
    gan.set_steps_per_call(10 if timed % 10 == 0 and warmup % 10 == 0 else 1)
    x, y = MNIST.load()
    batches = MNIST.batches(x, y, batch_size=config.batch_size * config.critic_steps, seed=config.seed)
    gan.fit(batches, epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)
    start = time.perf_counter()
    gan.fit(batches, epochs=1, steps_per_epoch=timed, verbose=0, shuffle=False)
    return timed / (time.perf_counter() - start)


def sample_grid(generator) -> np.ndarray:
    """A 10x10 grid: a row per digit, or 100 samples of any digit."""
    if class_count(generator) is None:
        return images.tile(generate(generator, count=100, seed=0), 10)
    return images.tile(generate(generator, np.repeat(np.arange(10), 10), seed=0), 10)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="training budget of each variant (default: 10)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                   help="which variants (default: all)")
    p.add_argument("--per-digit", type=int, default=1000, help="samples per digit to score (default: 1000)")
    p.add_argument("--quick", action="store_true", help="a few steps each, to check that it runs")
    p.add_argument("--out", metavar="DIR",
                   help="write the table and grids here instead of results/ and assets/variants/")
    p.add_argument("--keep-models", metavar="DIR", help="also keep each variant's generator as DIR/<variant>.h5")
    args = p.parse_args(argv)
    results_dir = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    grids_dir = Path(args.out) if args.out else ROOT / "assets" / "variants"
    evaluator = evaluation.Evaluator()
    per_digit = 2 if args.quick else args.per_digit
    real = evaluation.reference_scores(evaluator, per_digit=per_digit)  # as many real images as each variant draws
    rows = {}
    for name in args.variants:
        config = config_module.for_loss(**VARIANTS[name])
        if args.quick:  # 4 steps of small networks in float32, untimed: it checks that the benchmark runs
            config = dataclasses.replace(config, train_steps=4, save_interval=2, precision="float32", g_width=16,
                                         d_width=16, batch_size=16)
            rate, steps = None, 4
            print(f"{name}: {steps} steps (quick check)", flush=True)
        else:
            rate = steps_per_second(config, 20, 50)
            steps = max(50, int(rate * args.minutes * 60 * 0.97) // 50 * 50)  # dumps and checkpoints take ~3%
            config = dataclasses.replace(config, train_steps=steps, save_interval=steps // 5)
            print(f"{name}: {rate:.2f} generator steps/s measured -> {steps} steps", flush=True)
        clock = TrainingClock()
        with tempfile.TemporaryDirectory() as tmp:
            path = cgan_mnist.train(config, out_dir=tmp, verbose=False, callbacks=[clock])
            generator = load_generator(path)
            s = evaluator.score_generator(generator, per_digit=per_digit)
            images.write_png(grids_dir / f"{name}.png", sample_grid(generator))
            if args.keep_models:
                Path(args.keep_models).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, Path(args.keep_models) / f"{name}.h5")
        rows[name] = {
            "commit": _head_commit(), "config": dataclasses.asdict(config),
            "measured_steps_per_s": rate, "steps": clock.steps,
            "minutes": clock.seconds / 60, "ms_per_generator_step": 1000 * clock.seconds / clock.steps,
            **dataclasses.asdict(s), "worse_distance_ratio": evaluation.worse_distance_ratio(s, real),
        }
        print(format_row(name, rows[name]), flush=True)
    saved = results_dir / "compare_variants.json"
    if not args.quick and not args.out and saved.is_file() and set(args.variants) != set(VARIANTS):
        # A re-run of some variants replaces their rows and keeps the others'.
        earlier = json.loads(saved.read_text())
        if earlier.get("minutes_budget") == args.minutes:
            rows = {name: rows.get(name, earlier["variants"].get(name)) for name in VARIANTS
                    if name in rows or name in earlier["variants"]}
    policy = compute_policy(resolve(Config(precision="float32" if args.quick else "auto"), cgan_mnist.NETWORKS,
                                    verbose=False).precision)
    result = {"minutes_budget": args.minutes, "policy": policy, "variants": rows,
              "real": dataclasses.asdict(real),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    table = "\n".join([HEADER, *(format_row(n, r) for n, r in rows.items()),
                       format_row("real digits", {**dataclasses.asdict(real), "steps": 0, "minutes": 0,
                                                  "ms_per_generator_step": 0})])
    print(table)
    if not args.quick or args.out:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / "compare_variants.txt").write_text(table + "\n")
        (results_dir / "compare_variants.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _head_commit() -> str:
    import subprocess

    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


HEADER = (f"{'variant':<14}{'steps':>7}{'minutes':>8}{'ms/G step':>10}{'accuracy':>9}{'worst':>7}{'FD conv':>9}"
          f"{'FD resn':>9}{'worse x real':>13}{'diversity':>10}{'most':>7}{'least':>7}{'KL':>7}")


def format_row(name: str, r: dict) -> str:
    accuracy = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
    worst = "-" if r["per_digit_accuracy"] is None else f"{100 * min(r['per_digit_accuracy']):.1f}%"
    # Rows kept from runs before the second judge have no resnet distance.
    second = f"{r['distances']['resnet']:.3f}" if "resnet" in r.get("distances", {}) else "-"
    ratio = f"{r['worse_distance_ratio']:.2f}x" if "worse_distance_ratio" in r else "-"
    return (f"{name:<14}{r['steps']:>7}{r['minutes']:8.1f}{r['ms_per_generator_step']:10.0f}{accuracy:>9}{worst:>7}"
            f"{r['frechet_distance']:9.3f}{second:>9}{ratio:>13}{r['diversity']:10.3f}"
            f"{100 * max(r['class_shares']):6.1f}%{100 * min(r['class_shares']):6.1f}%{r['kl_to_uniform']:7.3f}")


if __name__ == "__main__":
    main()
