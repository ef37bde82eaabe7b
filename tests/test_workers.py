"""--distribute with TF_CONFIG: two worker processes on 127.0.0.1 stand in for two machines.

Each worker runs the command a user would run on each machine, with its own TF_CONFIG and
one thread, so that both fit on two cores. Their run, killed half way (worker 1 SIGKILLed) and
resumed by both, is compared with one process training the same global batch (`--distribute`
on this machine's single CPU device).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, measured_statistics

import cgan_mnist
from cgan import checkpoints
from cgan.config import from_run
from cgan.training_log import read_losses

# One xdist worker for the module: its fixture (two training runs) is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("workers")

STEPS = 20
# The default recipe (D's spread channel, R1, feature matching), in float64: two workers sum their
# gradients in another order than one process, and over its steps Adam's normalised steps and these
# terms magnify that rounding (float32: 6.8e-3 apart on an AVX2-only AMD EPYC, 6.0e-3 with feature
# matching on AVX-512). In float64 it stays far below anything a slip in what each worker computes
# would change (tests/replicas_check.py shows such slips at 5.5e-3 after 3 steps).
FLAGS = ["--distribute", "--limit", "512", "--batch-size", "16", "--g-width", "16", "--d-width", "16",
         "--latent-dim", "16", "--precision", "float64", "--save-interval", "10", "--train-steps", str(STEPS)]
TOLERANCE = 1e-9
# A worker killed mid-run is found by TensorFlow's health checks (cgan.distribute): 5 s apart, 2 tries.
LOST_WITHIN_S = 60


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(argv: list[str], tmp_dir, *, started=(0, 1), **environ) -> list[subprocess.Popen]:
    """The `started` workers of a fresh two-worker cluster on 127.0.0.1, each running `cgan_mnist.py argv`."""
    hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = []
    for index in started:
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": hosts},
                                                      "task": {"type": "worker", "index": index}}),
               "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TMPDIR": str(tmp_dir),
               "CUDA_VISIBLE_DEVICES": "", **environ}
        workers.append(subprocess.Popen([sys.executable, str(ROOT / "cgan_mnist.py"), *argv], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return workers


def finish(workers, timeout: float = 300) -> list[tuple[int, str, str]]:
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        results.append((worker.returncode, out, err))
    return results


def weights(path) -> list[np.ndarray]:
    return cgan_mnist.load_generator(path).get_weights()


def last_checkpoint(run_dir) -> dict[str, np.ndarray]:
    with np.load(checkpoints.list_checkpoints(run_dir)[-1]) as data:
        return {key: data[key].astype(np.float64) for key in data.files}


def largest_difference(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_small):
    """A two-worker run (both given the same --out-dir) whose worker 1 is SIGKILLed after the first checkpoint
    and which both workers then resume to the end; a one-process run of the same flags; and a worker whose peer
    never starts. The last two run while the chief waits for TensorFlow to notice the kill, ten idle seconds."""
    base = tmp_path_factory.mktemp("workers")
    flags = [*FLAGS, "--data", str(mnist_small)]
    killed_tmp, worker_tmp, alone_tmp = base / "killed-tmp", base / "worker-tmp", base / "alone-tmp"
    for folder in (killed_tmp, worker_tmp, alone_tmp):  # a SIGKILLed worker cannot clean up
        folder.mkdir()
    run_dir = base / "two"
    workers = start_workers([*flags, "--out-dir", str(run_dir)], killed_tmp)
    deadline = time.monotonic() + 300
    while not checkpoints.list_checkpoints(run_dir) and workers[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers[0].poll() is None, "the chief ended before its first checkpoint: nothing to kill mid-run"
    workers[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    one = subprocess.Popen([sys.executable, str(ROOT / "cgan_mnist.py"), *flags, "--out-dir", str(base / "one")],
                           cwd=ROOT, env={**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alone = start_workers([*flags, "--out-dir", str(base / "alone")], alone_tmp, started=(0,),
                          CGAN_JOIN_TIMEOUT_S="5")[0]
    chief = finish(workers[:1], timeout=LOST_WITHIN_S + 30)[0]
    stopped_after = time.monotonic() - killed_at
    workers[1].wait()
    alone_result = finish([alone], timeout=120)[0]
    alone_took = time.monotonic() - killed_at
    one_result = finish([one])[0]
    assert one_result[0] == 0, one_result[2][-2000:]
    killed_step = checkpoints.step_of(checkpoints.list_checkpoints(run_dir)[-1])
    resumed = finish(start_workers(["--distribute", "--resume", str(run_dir)], worker_tmp))
    return {"base": base, "two": run_dir, "one": base / "one", "worker_tmp": worker_tmp, "chief": chief,
            "stopped_after": stopped_after, "killed_step": killed_step, "workers": resumed, "alone": alone_result,
            "alone_took": alone_took}


@pytest.mark.slow
def test_a_killed_worker_stops_the_other_and_both_resume(runs):
    code, _, err = runs["chief"]
    assert runs["stopped_after"] < LOST_WITHIN_S
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("cgan_mnist.py: lost worker 1 (127.0.0.1:"), err[-3000:]
    assert f"--resume {runs['two']}" in last, err[-3000:]
    assert "Traceback" not in err
    assert 10 <= runs["killed_step"] < STEPS
    for code, _out, err in runs["workers"]:
        assert code == 0, err[-3000:]
    assert f"resuming {runs['two']} from step {runs['killed_step']}" in runs["workers"][0][1]


@pytest.mark.slow
def test_two_workers_train_the_generator_one_process_does(runs):
    """Though killed and resumed half way: the resumed steps, and the ones before the kill, as one process's."""
    for code, _out, err in runs["workers"]:
        assert code == 0, err[-3000:]
    # the last checkpoints hold every float64 weight of G, D, the average and both optimizers; not the
    # average's batch-norm statistics, measured afresh before every use: a resumed run's checkpoint can
    # hold another measurement's (as in test_kills.py)
    two, one = (last_checkpoint(runs[name]) for name in ("two", "one"))
    assert sorted(two) == sorted(one)
    for key in measured_statistics(runs["one"]):
        del two[key], one[key]
    start = cgan_mnist.make_gan(from_run(json.loads((runs["one"] / "run.json").read_text())["config"]))
    moved = largest_difference(start.ema_generator.get_weights(), weights(runs["one"] / "cgan_mnist.h5"))
    assert moved > 0.1  # the runs trained
    assert max(float(np.max(np.abs(two[k] - one[k]))) for k in one) < TOLERANCE
    # the saved generators are float32 copies of the average (what users sample, ONNX and the page run)
    saved = [weights(runs[name] / "cgan_mnist.h5") for name in ("two", "one")]
    assert all(w.dtype == np.float32 for w in saved[0]) and largest_difference(*saved) < 1e-6
    labels = list(range(10)) * 10
    drawn = [cgan_mnist.generate(cgan_mnist.load_generator(runs[name] / "cgan_mnist.h5"), labels, seed=0).astype(int)
             for name in ("two", "one")]
    assert np.abs(drawn[0] - drawn[1]).max() <= 1  # float32 copies of weights 1e-15 apart: a grey level at most
    steps = read_losses(runs["two"])["step"]
    assert list(steps) == list(range(1, STEPS + 1))  # each step once, though two processes trained it
    logged_two, logged_one = read_losses(runs["two"]), read_losses(runs["one"])
    np.testing.assert_allclose(logged_two["d_loss"], logged_one["d_loss"], rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_only_the_chief_writes_and_the_other_worker_says_where(runs):
    assert sorted(p.name for p in runs["two"].iterdir()) == sorted(p.name for p in runs["one"].iterdir())
    assert list(runs["worker_tmp"].iterdir()) == []  # the other resumed worker removed its temporary folder
    chief_out, worker_out = runs["workers"][0][1], runs["workers"][1][1]
    assert "generator saved to" in chief_out and "sample it:" in chief_out
    assert "done; worker 0 (127.0.0.1:" in worker_out and "sample it" not in worker_out


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_gives_up_in_time(runs):
    """TensorFlow would wait for ever, deaf to SIGTERM; the join timeout (here 5 s) ends it with one line."""
    code, _out, err = runs["alone"]
    assert runs["alone_took"] < 60 and code != 0
    lines = [line for line in err.splitlines() if line.startswith("cgan_mnist.py")]
    assert lines == ["cgan_mnist.py: not every worker of TF_CONFIG started within 5 s: start the same command on "
                     "each, with its own TF_CONFIG task"], err[-2000:]
    assert not (runs["base"] / "alone").exists()  # nothing was written before the wait
