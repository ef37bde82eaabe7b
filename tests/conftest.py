"""Shared fixtures and helpers: a small slice of real MNIST, tiny models, and how the CLI is called."""

from __future__ import annotations

import atexit
import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One folder per test run, made by its first process (pytest-xdist's controller, or the only one) and
# inherited by its workers and their subprocesses; removed when that process exits. It holds the lock of
# `timed` tests and the cache of --precision auto's timings and the judges' features, shared by the
# run's processes and kept out of the user's own cache.
if "CGAN_TEST_RUN_DIR" not in os.environ:
    os.environ["CGAN_TEST_RUN_DIR"] = tempfile.mkdtemp(prefix="cgan_tests_")
    atexit.register(shutil.rmtree, os.environ["CGAN_TEST_RUN_DIR"], ignore_errors=True)
RUN_DIR = Path(os.environ["CGAN_TEST_RUN_DIR"])
os.environ["CGAN_CACHE_DIR"] = str(RUN_DIR / "cache")
# TensorFlow loads in the processes that run tests, not in pytest-xdist's controller: the workers start
# about 4 s sooner. Fixtures and helpers below import it where they need it.
UNDER_XDIST = "PYTEST_XDIST_WORKER" in os.environ

from cgan.config import Config  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under pytest-xdist, a test marked `timed` runs alone: its figures must not share the 2 cores.

    Every test holds a shared lock on one file of the run from its setup to its teardown;
    a timed test takes the lock exclusively, so it waits for the other worker's test to end
    and holds the next one back until it is done.
    """
    if not UNDER_XDIST:
        return (yield)
    with open(RUN_DIR / "timed.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if item.get_closest_marker("timed") else fcntl.LOCK_SH)
        return (yield)


# The longest tests (1-2.5 minutes each) go first, so that the two workers share out the short
# ones around them and end together, instead of one worker finishing a long test alone.
LONGEST = ("test_notebook.py", "test_kills.py", "test_workers.py", "test_distribute.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in LONGEST)


def needs_system_package(present: bool, package: str, what: str):
    """Skip unless `present`, saying which Debian package to install (install.sh installs them all)."""
    return pytest.mark.skipif(not present, reason=f"{what} is not installed: apt-get install {package} "
                                                       "(or bash install.sh)")


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
needs_dot = needs_system_package(shutil.which("dot") is not None, "graphviz", "Graphviz's dot")
needs_fashion = needs_system_package(FASHION_DIR.is_dir(), "dataset-fashion-mnist", "Fashion-MNIST")


# Tiny networks: the tests check behaviour, not sample quality.
# The auxiliary head and feature matching where a test asks.
TINY = dict(latent_dim=8, g_width=8, d_width=8, batch_size=16, aux_weight=0.0, feature_matching=0.0)


def tiny_config(**overrides) -> Config:
    """A Config of tiny networks for a few float32 steps: 6 steps, a dump every 3."""
    return dataclasses.replace(Config(train_steps=6, save_interval=3, precision="float32", **TINY), **overrides)


def run_main(argv) -> int:
    """`cgan_mnist.main(argv)`, with argparse's own exit for malformed flags returned as its code."""
    import cgan_mnist

    try:
        return cgan_mnist.main(argv)
    except SystemExit as exc:
        return exc.code


def run_cli(*args, cwd):
    """`python cgan_mnist.py ARGS` as a user runs it, in `cwd`."""
    return subprocess.run([sys.executable, str(ROOT / "cgan_mnist.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def measured_statistics(run_dir) -> set[str]:
    """A run's checkpoint keys of the weight average's batch-norm statistics: those are measured afresh from
    samples before every use (grid, saved generator), so a checkpoint holds whichever grid last set them."""
    import cgan_mnist
    from cgan.config import from_run

    generator = cgan_mnist.config_generator(from_run(json.loads((Path(run_dir) / "run.json").read_text())["config"]))
    return {f"ema_generator/{i:04d}" for i, w in enumerate(generator.weights) if not w.trainable}


def assert_one_line_error(code, capsys, message) -> str:
    """A non-zero exit with exactly one line on stderr that contains `message`, and no traceback."""
    err = capsys.readouterr().err
    assert code != 0
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="session")
def mnist_small(tmp_path_factory) -> Path:
    """The first 512 training and 256 test digits of the real MNIST, as a Keras-layout .npz."""
    with np.load(ROOT / "data" / "mnist.npz") as d:
        arrays = {"x_train": d["x_train"][:512], "y_train": d["y_train"][:512],
                  "x_test": d["x_test"][:256], "y_test": d["y_test"][:256]}
    path = tmp_path_factory.mktemp("data") / "mnist_small.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def tiny_generator_file(tmp_path_factory) -> Path:
    """An untrained tiny generator saved as .h5, as training would save it."""
    import cgan_mnist
    from cgan.sampling import save_generator

    generator = cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"])
    return save_generator(generator, tmp_path_factory.mktemp("models") / "tiny.h5")


@pytest.fixture(scope="session")
def tiny_unconditional_generator_file(tmp_path_factory) -> Path:
    """An untrained tiny generator without labels, saved as .h5."""
    import cgan_mnist
    from cgan.sampling import save_generator

    generator = cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"], num_classes=None)
    return save_generator(generator, tmp_path_factory.mktemp("models") / "tiny_unconditional.h5")


@pytest.fixture(scope="session")
def tiny_discriminator_file(tmp_path_factory) -> Path:
    """A discriminator saved as .h5: loadable, but not a generator."""
    import cgan_mnist
    from cgan.sampling import save_generator

    discriminator = cgan_mnist.build_discriminator(width=TINY["d_width"])
    return save_generator(discriminator, tmp_path_factory.mktemp("models") / "discriminator.h5")
