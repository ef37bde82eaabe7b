"""Train candidate recipes and score them with both judges, beside their training FLOPs.

    python benchmarks/recipe_search.py g48-d32="--g-width 48 --d-width 32" default="" --seeds 0 1

Each NAME="FLAGS" is trained with `python cgan_mnist.py FLAGS --seed S` into
OUT/NAME-sS/ (default OUT: runs/recipe_search), one run at a time, then scored
with `--evaluate --json` (1,000 samples per digit). A finished run is not trained
again and a killed one is resumed, so the search can be stopped and started. Prints
one row per run: steps, batch, training FLOPs (cgan/flops.py) and their share of the
former default run's (8,000 steps of batch 64, G 96 / D 48), minutes of training, and
both judges' figures over the real line's (for pairs: the number or side of 50 read
right, its worst class, the halves' distances and recall, and the share of pairs whose
halves are both read with confidence); writes them to OUT/recipe_search.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cgan_mnist  # noqa: E402
from cgan.config import Config, from_run  # noqa: E402
from cgan.files import folder_lock, write_text  # noqa: E402
from cgan.flops import config_step_flops  # noqa: E402

# The default run before issue #23, against which the search counts: 8,000 steps of batch 64, G 96 / D 48.
REFERENCE = Config(train_steps=8000, batch_size=64, g_width=96, d_width=48, aux_weight=0.0, latent_dim=64,
                   minibatch_std=0, r1_weight=0.0)


def run_flops(config: Config) -> float:
    return config_step_flops(config, cgan_mnist.NETWORKS) * config.train_steps


def train(flags: list[str], seed: int, run_dir: Path, log: Path) -> None:
    if (run_dir / "cgan_mnist.h5").is_file():
        return
    script = [sys.executable, str(ROOT / "cgan_mnist.py")]
    argv = ["--resume", str(run_dir)] if (run_dir / "run.json").is_file() else [*flags, "--seed", str(seed),
                                                                                "--out-dir", str(run_dir)]
    with log.open("a") as out:
        subprocess.run([*script, *argv], stdout=out, stderr=subprocess.STDOUT, check=True)


def minutes_of(log: Path) -> float | None:
    """The training minutes the run's log reports (the last run of it, if resumed: the sum of its parts)."""
    found = re.findall(r"trained \d+ steps in ([\d.]+) min", log.read_text())
    return sum(map(float, found)) if found else None


def score(run_dir: Path, out: Path) -> dict:
    if not out.is_file():
        found = subprocess.run([sys.executable, str(ROOT / "cgan_mnist.py"), "--evaluate", "--json",
                                f"--generator={run_dir / 'cgan_mnist.h5'}"], capture_output=True, text=True, check=True)
        write_text(out, found.stdout)
    return json.loads(out.read_text())


def row(name: str, seed: int, config: Config, minutes, scores: dict, default_flops: float) -> dict:
    g, real = scores["generator"], scores["real (train)"]
    pairs = "halves" in g  # pairs: the number (or side of 50) read right, and the halves' distances
    accuracy, worst = ((g["condition_met"], min(g["per_class_met"])) if pairs
                       else (g["accuracy"], min(g["per_digit_accuracy"])))
    confident = {"both_confident": g["both_confident"]} if pairs else {}
    g, real_images = (g["halves"], real["halves"]) if pairs else (g, real)
    return {"name": name, "seed": seed, "steps": config.train_steps, "batch": config.batch_size,
            "widths": [config.g_width, config.d_width], "extra_convs": [config.g_extra_convs, config.d_extra_convs],
            "tflop": run_flops(config) / 1e12, "of_default": run_flops(config) / default_flops, "minutes": minutes,
            "accuracy": accuracy, "worst": worst, **confident,
            "fd": g["distances"],
            "fd_x_real": {j: g["distances"][j] / real_images["distances"][j] for j in g["distances"]},
            "recall_x_real": {j: g["recall"][j] / real_images["recall"][j] for j in g["recall"]},
            "diversity": g["diversity"], "real": {"fd": real_images["distances"], "recall": real_images["recall"],
                                                   "accuracy": real["condition_met"] if pairs else real["accuracy"],
                                                   **({"both_confident": real["both_confident"]} if pairs else {})}}


HEADER = (f"{'recipe':<22}{'seed':>5}{'steps':>7}{'batch':>6}{'TFLOP':>7}{'x dflt':>7}{'min':>6}{'acc':>8}{'worst':>7}"
          f"{'FD conv x':>10}{'FD resn x':>10}{'recall x':>12}{'divers':>8}")


def format_row(r: dict) -> str:
    minutes = "-" if r["minutes"] is None else f"{r['minutes']:.1f}"
    fd, recall = r["fd_x_real"], r["recall_x_real"]
    return (f"{r['name']:<22}{r['seed']:>5}{r['steps']:>7}{r['batch']:>6}{r['tflop']:7.1f}{r['of_default']:7.2f}"
            f"{minutes:>6}{100 * r['accuracy']:7.2f}%{100 * r['worst']:6.1f}%{fd['convnet']:9.2f}x{fd['resnet']:9.2f}x"
            f"{recall['convnet']:6.3f}/{recall['resnet']:.3f}{r['diversity']:8.3f}"
            + (f"  both halves confident {100 * r['both_confident']:.2f}%" if "both_confident" in r else ""))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipes", nargs="+", metavar='NAME="FLAGS"', help="a name and the training flags of cgan_mnist.py")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of each recipe (default: 0)")
    p.add_argument("--out", default=str(ROOT / "runs" / "recipe_search"), help="where the runs go")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    default_flops = run_flops(REFERENCE)
    results_file = out / "recipe_search.json"
    print(HEADER, flush=True)
    for recipe in args.recipes:
        name, _, flag_text = recipe.partition("=")
        flags = shlex.split(flag_text)
        cgan_mnist.config_from_args(cgan_mnist.build_parser().parse_args(flags))  # bad flags stop it before training
        for seed in args.seeds:
            run_dir, key = out / f"{name}-s{seed}", f"{name}-s{seed}"
            train(flags, seed, run_dir, out / f"{key}.log")
            # What the run trained with, as it recorded it: the defaults may have changed since.
            config = from_run(json.loads((run_dir / "run.json").read_text())["config"])
            found = {**row(name, seed, config, minutes_of(out / f"{key}.log"), score(run_dir, out / f"{key}.json"),
                           default_flops), "flags": flag_text}
            with folder_lock(out, wait=True):  # another search may share the file: one read-and-write at a time
                rows = json.loads(results_file.read_text()) if results_file.is_file() else {}
                rows[key] = found
                write_text(results_file, json.dumps(rows, indent=2) + "\n")  # a kill mid-write keeps the old rows
            print(format_row(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
