"""Does this tree behave exactly as an earlier commit? For refactors that must change nothing.

    python benchmarks/same_behaviour.py 2065fd3     # about two minutes

Runs the same commands with the code of REV (checked out into a temporary git
worktree) and with this working tree, one after the other on this machine,
and compares what they write byte for byte:

- sampling from the shipped `cgan_mnist.h5`: a digit, all digits, a morph and a
  walk with GIFs, each with `--save-npz`;
- a 60-step training run on 2,048 digits in float32 and in mixed bfloat16:
  `losses.csv`, the sample grids and the last checkpoint;
- `--evaluate` of the shipped model (its printed table).

Prints one line per compared output and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SAMPLING = {
    "digit6": ["--digit", "6"],
    "all": [],
    "morph": ["--interpolate", "3", "7", "--frames", "8", "--gif"],
    "walk": ["--walk", "5", "--frames", "8", "--gif"],
}
PRECISIONS = ("float32", "bfloat16")


def run_all(code: Path, out: Path) -> None:
    """Write every compared output of the code in `code` into `out`."""
    script = [sys.executable, str(code / "cgan_mnist.py")]

    def run(*args, log=None):
        result = subprocess.run([*script, *args], cwd=code, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{code}: {' '.join(args)} failed:\n{result.stderr}")
        if log:
            (out / log).write_text(result.stdout)

    for name, flags in SAMPLING.items():
        run("--generator=cgan_mnist.h5", "--seed", "7", "--out-dir", str(out / "samples"), *flags,
            "--save-npz", str(out / f"{name}.npz"))
    for precision in PRECISIONS:
        run("--train-steps", "60", "--save-interval", "20", "--limit", "2048", "--seed", "3", "--precision", precision,
            "--out-dir", str(out / f"run_{precision}"))
    run("--evaluate", "--generator=cgan_mnist.h5", log="evaluate.txt")


def npz_equal(a: Path, b: Path) -> bool:
    with np.load(a) as x, np.load(b) as y:
        return x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)


def compare(old: Path, new: Path) -> list[tuple[str, bool]]:
    """(output, identical) for every compared output."""
    rows = [(f"{name}.npz", npz_equal(old / f"{name}.npz", new / f"{name}.npz")) for name in SAMPLING]
    for picture in sorted((old / "samples").iterdir()):
        rows.append((f"samples/{picture.name}", filecmp.cmp(picture, new / "samples" / picture.name, shallow=False)))
    for precision in PRECISIONS:
        run = f"run_{precision}"
        rows.append((f"{run}/losses.csv",
                     filecmp.cmp(old / run / "losses.csv", new / run / "losses.csv", shallow=False)))
        for grid in sorted((old / run / "samples").iterdir()):
            rows.append((f"{run}/samples/{grid.name}",
                         filecmp.cmp(grid, new / run / "samples" / grid.name, shallow=False)))
        last = sorted((old / run / "checkpoints").iterdir())[-1].name
        rows.append((f"{run}/checkpoints/{last}",
                     npz_equal(old / run / "checkpoints" / last, new / run / "checkpoints" / last)))
    rows.append(("evaluate.txt", (old / "evaluate.txt").read_text() == (new / "evaluate.txt").read_text()))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rev", help="the commit to compare with, e.g. 2065fd3")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        worktree = tmp / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.rev],
                       check=True, capture_output=True)
        try:
            for code, out in ((worktree, tmp / "out_old"), (ROOT, tmp / "out_new")):
                out.mkdir()
                run_all(code, out)
            rows = compare(tmp / "out_old", tmp / "out_new")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
    for name, same in rows:
        print(f"{'identical' if same else 'DIFFERS  '}  {name}")
    differing = sum(not same for _, same in rows)
    print(f"{len(rows) - differing} of {len(rows)} outputs identical to {args.rev}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
