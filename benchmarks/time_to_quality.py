"""How good does the generator get in N minutes of training on this machine?

    python benchmarks/time_to_quality.py --minutes 15

Runs `python cgan_mnist.py` from scratch with its default settings (the
learning-rate schedule included; any training flag of cgan_mnist.py may be
added to try others), stops it after --minutes of training, and at a few
points scores the averaged generator with the project's evaluator (1,000
samples per digit). Evaluation time is not counted as training time.
Prints a table of minutes, steps, training TFLOP (cgan/flops.py), accuracy, Frechet distance and diversity.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cgan_mnist  # noqa: E402
from cgan import evaluation  # noqa: E402
from cgan.backend import keras  # noqa: E402
from cgan.flops import config_step_flops  # noqa: E402


class TimedEvaluation(keras.callbacks.Callback):
    """Scores the averaged generator when training time passes each mark; stops after the last."""

    def __init__(self, evaluator: evaluation.Evaluator, marks_min: list[float], per_digit: int, real: evaluation.Scores,
                 step_flops: int):
        super().__init__()
        self.evaluator, self.marks, self.per_digit, self.real = evaluator, sorted(marks_min), per_digit, real
        self.step_flops = step_flops
        self.rows: list[dict] = []

    def on_train_begin(self, logs=None):
        self.start, self.paused = time.perf_counter(), 0.0

    def on_train_batch_end(self, batch, logs=None):
        trained = (time.perf_counter() - self.start - self.paused) / 60
        if self.marks and trained >= self.marks[0]:
            self.marks.pop(0)
            self.score(trained)
            if not self.marks:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.marks:  # the run reached its last step before the last mark
            self.marks.clear()
            self.score((time.perf_counter() - self.start - self.paused) / 60)

    def score(self, trained: float) -> None:
        t0 = time.perf_counter()
        step = int(self.model.g_optimizer.iterations.numpy())
        s = self.evaluator.score_generator(self.model.averaged_generator(), per_digit=self.per_digit)
        self.rows.append({"minutes": round(trained, 2), "steps": step, "tflop": step * self.step_flops / 1e12,
                          "accuracy": s.accuracy,
                          "worst_digit": min(s.per_digit_accuracy), "frechet_distance": s.frechet_distance,
                          "distances": s.distances, "recall": s.recall, "diversity": s.diversity,
                          "worse_distance_ratio": evaluation.worse_distance_ratio(s, self.real)})
        print(format_row(self.rows[-1]), flush=True)
        self.paused += time.perf_counter() - t0


HEADER = (f"{'minutes':>8}{'steps':>8}{'TFLOP':>8}{'accuracy':>10}{'worst':>8}{'FD conv':>9}{'FD resn':>9}"
          f"{'worse x real':>13}{'recall':>13}{'diversity':>10}")


def format_row(r: dict) -> str:
    recall = "/".join(f"{x:.3f}" for x in r["recall"].values())
    return (f"{r['minutes']:8.1f}{r['steps']:8d}{r['tflop']:8.1f}"
            f"{100 * r['accuracy']:9.2f}%{100 * r['worst_digit']:7.1f}%"
            f"{r['distances']['convnet']:9.3f}{r['distances']['resnet']:9.3f}{r['worse_distance_ratio']:12.2f}x"
            f"{recall:>13}{r['diversity']:10.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=15, help="training time budget in minutes (default: 15)")
    p.add_argument("--marks", type=float, nargs="*",
                   help="minutes at which to evaluate (default: 1, 2, 5, 10 and --minutes)")
    p.add_argument("--per-digit", type=int, default=1000, help="samples per digit at each evaluation (default: 1000)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    args, train_flags = p.parse_known_args(argv)
    marks = args.marks or [m for m in (1, 2, 5, 10) if m < args.minutes] + [args.minutes]
    # The script's own parser, so every training flag (and every default) means the same here.
    targs = cgan_mnist.build_parser().parse_args(train_flags)
    config = cgan_mnist.config_from_args(targs)
    evaluator = evaluation.Evaluator()
    real = evaluation.reference_scores(evaluator, per_digit=args.per_digit)  # as many real images as each evaluation
    timed = TimedEvaluation(evaluator, marks, args.per_digit, real, config_step_flops(config, cgan_mnist.NETWORKS))
    print(f"config: {config}")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cgan_mnist.train(config, out_dir=tmp, data=targs.data, verbose=False, callbacks=[timed])
    print(f"real training digits: accuracy {100 * real.accuracy:.2f}%, FD {real.distances['convnet']:.3f} / "
          f"{real.distances['resnet']:.3f}, recall {real.recall['convnet']:.3f} / {real.recall['resnet']:.3f}, "
          f"diversity {real.diversity:.3f}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": dataclasses.asdict(config), "rows": timed.rows,
                                               "real": dataclasses.asdict(real)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
