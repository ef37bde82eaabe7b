"""--distribute: training under tf.distribute.MirroredStrategy, checked on this CPU split into two logical devices."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, tiny_config

import cgan_mnist
from cgan import checkpoints

# Two replicas sum their gradients in another order than one device. In float64 (replicas_check.py)
# that rounding stays near 1e-15 after 3 steps (measured 3.3e-15 with WGAN-GP, 6.2e-15 with the hinge
# loss, on Intel with AMX, 2026-12-06), while each deliberate slip moves a weight by 5.5e-3: the
# tolerance sits five orders of magnitude from either. In float32 the gradient penalty alone magnified
# the same rounding to 3.9e-3 (on that CPU and on an AVX2-only AMD EPYC): no tolerance told it from a slip.
TOLERANCE = 1e-9
SLIPPED = 1e-5  # a slip moves some weight by at least this much


CHECKS = {"hinge": "same-noise", "wgan-gp": "keras-split"}  # each loss, and the slip its run must catch


@pytest.fixture(scope="module")
def replica_figures() -> dict[str, dict]:
    """replicas_check.py's figures of each loss, from one process."""
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "replicas_check.py"), "3",
                             *(f"{loss}:{slip}" for loss, slip in CHECKS.items())], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {figures["loss"]: figures for figures in map(json.loads, result.stdout.strip().splitlines()[-len(CHECKS):])}


@pytest.mark.slow
@pytest.mark.xdist_group("replicas")  # one worker runs both, and the fixture's process once
@pytest.mark.parametrize("loss", CHECKS)
def test_two_replicas_train_the_weights_one_device_does_and_a_slip_does_not(loss, replica_figures):
    figures = replica_figures[loss]
    assert len(figures["devices"]) == 2
    assert figures["weights_moved"] > 100 * SLIPPED  # the runs did train
    assert figures["max_weight_difference"] < TOLERANCE, figures
    assert figures["slipped_difference"] > SLIPPED, figures  # the check tells a slip from rounding
    two, one = figures["figures"]  # the logged figures are the global batch's, not one replica's
    assert set(two) == set(one) and all(two[k] == pytest.approx(one[k], rel=1e-6, abs=1e-9) for k in one), figures


@pytest.mark.slow
def test_distribute_flag_trains_resumes_and_saves_the_same_files(mnist_small, tmp_path):
    run = tmp_path / "run"
    code = cgan_mnist.main(["--distribute", "--data", str(mnist_small), "--out-dir", str(run), "--train-steps", "4",
                            "--save-interval", "2", "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
                            "--batch-size", "16", "--precision", "float32"])
    assert code == 0
    assert [p.name for p in checkpoints.list_checkpoints(run)] == ["step_000002.npz", "step_000004.npz"]
    generator = cgan_mnist.load_generator(run / "cgan_mnist.h5")
    assert cgan_mnist.generate(generator, [1, 2], seed=0).shape == (2, 28, 28)
    gan = cgan_mnist.make_gan(tiny_config(train_steps=4, save_interval=2, aux_weight=cgan_mnist.Config.aux_weight))
    assert checkpoints.restore(gan, checkpoints.list_checkpoints(run)[-1]) == 4  # the same checkpoint layout
