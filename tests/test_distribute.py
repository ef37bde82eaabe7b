"""--distribute: training under tf.distribute.MirroredStrategy, checked on this CPU split into two logical devices."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, tiny_config

import cgan_mnist
from cgan import checkpoints

# Two replicas sum their gradients in another order than one device: float rounding, nothing more.
TOLERANCE = 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_two_replicas_train_the_weights_one_device_does(loss):
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "replicas_check.py"), loss, "3"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(figures["devices"]) == 2
    assert figures["weights_moved"] > 100 * TOLERANCE  # the runs did train: the check can tell them apart
    assert figures["max_weight_difference"] < TOLERANCE, figures
    two, one = figures["figures"]  # the logged figures are the global batch's, not one replica's
    assert set(two) == set(one) and all(two[k] == pytest.approx(one[k], rel=1e-3, abs=1e-4) for k in one), figures


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
