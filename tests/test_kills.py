"""Kill anywhere, lose nothing: a training run SIGKILLed at ten moments and resumed ends as an uninterrupted one.

Kills land in start-up (while TensorFlow loads), inside each kind of write (run.json,
a checkpoint, a grid, losses.csv, the loss curve, the generator; the process kills
itself there through `cgan.files.kill_point`), at a random moment once a resumed run has
logged a step (between or inside its steps and writes), and at a random time in a finished
run's resume. After every kill every file on disk must load; at the end the folder must
hold exactly the files of an uninterrupted run, with byte-identical weights, losses.csv
and grids.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, measured_statistics

from cgan.sampling import load_generator
from cgan.training_log import read_losses

pytestmark = pytest.mark.slow

STEPS, INTERVAL = 24, 4
# Without the R1 penalty: with it, 8 processes of 72 computed even the first step a little differently
# (R1 0.0256262 against 0.0255823), with one TensorFlow thread of each kind and with address randomization off too;
# without it 14 of 14 runs were byte-identical. That is TensorFlow's noise between processes, not resuming's.
# (what, when): a kill at start-up after a delay in seconds, inside the N-th write of a file, after a random delay,
# or a random delay after the run's losses.csv grew (the resumed run trains: the kill lands between or in its writes).
SCHEDULE = [
    ("startup", 0.3),
    ("write", "run.json:1"),
    ("write", "step_*.npz:1"),  # the first checkpoint
    ("write", "losses.csv:1"),  # the rows written before it
    ("write", "step_*.png:1"),  # its grid, after the checkpoint
    ("write", "loss_curve.png:1"),
    ("training", (0.0, 1.0)),
    ("write", "step_*.png:2"),  # a grid after a checkpoint the resumed run wrote
    ("write", "cgan_mnist.h5:1"),  # the generator, at the end
    ("random", (0.5, 3.0)),  # a finished run being resumed
]


def command(run_dir: Path, data: Path) -> list[str]:
    return [sys.executable, str(ROOT / "cgan_mnist.py"), "--data", str(data), "--train-steps", str(STEPS),
            "--save-interval", str(INTERVAL), "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
            "--batch-size", "16", "--precision", "float32", "--seed", "3", "--r1-weight", "0",
            "--out-dir", str(run_dir)]


def start(run_dir: Path, data: Path, kill_in: str | None = None) -> subprocess.Popen:
    """The training command, or --resume once the folder holds a run; `kill_in` arms the self-kill in a write."""
    argv = command(run_dir, data)
    if (run_dir / "run.json").is_file():
        argv = [sys.executable, str(ROOT / "cgan_mnist.py"), "--resume", str(run_dir)]
    env = {**os.environ, "CGAN_TEST_KILL_IN": kill_in or ""}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def csv_size(run_dir: Path) -> int:
    path = run_dir / "losses.csv"
    return path.stat().st_size if path.is_file() else 0


def everything_loads(run_dir: Path) -> None:
    """Every file in the folder is whole: what a kill left must still be readable."""
    for path in run_dir.rglob("*"):
        if not path.is_file() or (path.name.startswith(".") and ".tmp" in path.name):
            continue  # a temporary of the write that was cut: the next resume removes it
        if path.suffix == ".npz":
            with np.load(path) as data:
                assert int(data["step"]) > 0, path
        elif path.suffix == ".png":
            from PIL import Image

            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".h5":
            load_generator(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.name == "losses.csv":
            read_losses(run_dir)
        else:
            raise AssertionError(f"unexpected file {path}")


def files_of(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def same_checkpoint(ours: Path, theirs: Path) -> None:
    """Every array equal, but the weight average's batch-norm statistics (`measured_statistics`)."""
    measured = measured_statistics(ours.parents[1])
    with np.load(ours) as a, np.load(theirs) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if key not in measured:
                assert np.array_equal(a[key], b[key]), f"{ours.name}: {key} differs"


def test_a_run_killed_at_ten_moments_ends_as_an_uninterrupted_one(mnist_small, tmp_path):
    reference = tmp_path / "whole"
    done = subprocess.run(command(reference, mnist_small), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    run_dir, rng, kills, moments = tmp_path / "killed", random.Random(7), 0, []
    for what, when in SCHEDULE:
        process = start(run_dir, mnist_small, kill_in=when if what == "write" else None)
        if what == "startup":
            time.sleep(when)
        elif what == "random":
            time.sleep(rng.uniform(*when))
        elif what == "training":
            logged = csv_size(run_dir)
            while csv_size(run_dir) <= logged and process.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(*when))
        if what != "write":
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=300)
        if process.returncode == -signal.SIGKILL:
            kills += 1
            if what == "training":
                what = f"training (after step {read_losses(run_dir)['step'][-1]} was logged)"
            moments.append(f"{what} {when}" if what in ("startup", "write") else what)
        else:  # the run ended before the kill's moment came; start it again for the next one
            assert process.returncode == 0, process.stderr
        everything_loads(run_dir)
    finished = start(run_dir, mnist_small)
    _, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err
    print(f"survived {kills} SIGKILLs ({len(SCHEDULE)} scheduled: {', '.join(moments)}) and ended as the "
          f"uninterrupted run")
    assert kills >= len(SCHEDULE) - 2  # a random kill may come after its run ended

    ours, theirs = files_of(run_dir), files_of(reference)
    assert sorted(ours) == sorted(theirs)  # no temporaries, no missing grid, checkpoint or generator
    for name in theirs:
        if name.endswith((".csv", ".png", ".json")):
            assert ours[name] == theirs[name], f"{name} differs"
        elif name.endswith(".npz"):
            same_checkpoint(run_dir / name, reference / name)
    whole, resumed = load_generator(reference / "cgan_mnist.h5"), load_generator(run_dir / "cgan_mnist.h5")
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights()))
    rows = read_losses(run_dir)["step"].tolist()
    assert rows == list(range(1, STEPS + 1))  # every step once, in order
