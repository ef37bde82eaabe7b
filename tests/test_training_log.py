"""cgan/training_log.py: the per-step CSV, the loss curve, TensorBoard and the progress lines."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import tiny_config

import cgan_mnist
from cgan import training_log


@pytest.mark.slow
def test_loss_csv_curve_and_tensorboard(mnist_small, tmp_path, monkeypatch):
    run, logs = tmp_path / "run", tmp_path / "tb"
    drawn = []  # the steps on disk at each drawing of the curve
    plot = training_log.plot_losses
    monkeypatch.setattr(training_log, "plot_losses",
                        lambda run_dir: drawn.append(len(training_log.read_losses(run_dir)["step"])) or plot(run_dir))
    cgan_mnist.train(tiny_config(), out_dir=run, data=mnist_small, verbose=False, tensorboard=logs)
    # at the first dump (step 3) and at the end; not at the dump of step 6, seconds after the last drawing
    assert drawn == [3, 6]
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == ("step", "d_loss", "g_loss", "d_acc_real", "d_acc_fake", "r1_penalty")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= float(r["d_acc_real"]) <= 1 and np.isfinite(float(r["g_loss"])) for r in rows)
    curve = run / "loss_curve.png"
    assert curve.stat().st_size > 5000
    curve.unlink()
    assert cgan_mnist.main(["--plot-losses", str(run)]) == 0 and curve.is_file()

    from cgan.backend import tf

    tags = {}
    for event_file in logs.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    for name in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "r1_penalty"):
        assert tags[name] == [1, 2, 3, 4, 5, 6]
    assert tags["fixed_noise_samples"] == [3, 6]


@pytest.mark.slow
def test_a_critic_run_logs_its_wasserstein_estimate_and_penalty(mnist_small, tmp_path):
    run, logs = tmp_path / "run", tmp_path / "tb"
    cgan_mnist.train(tiny_config(loss="wgan-gp", critic_steps=2, r1_weight=0.0), out_dir=run, data=mnist_small,
                     verbose=False, tensorboard=logs)
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == ("step", "d_loss", "g_loss", "wasserstein", "gradient_penalty")
    assert len(rows) == 6 and all(float(r["gradient_penalty"]) >= 0 for r in rows)
    data = training_log.read_losses(run)
    assert set(data) == {"step", "d_loss", "g_loss", "wasserstein", "gradient_penalty"}
    assert (run / "loss_curve.png").stat().st_size > 5000

    from cgan.backend import tf

    tags = {value.tag for event_file in logs.glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(event_file)) for value in event.summary.value}
    assert {"wasserstein", "gradient_penalty", "d_loss", "g_loss"} <= tags


def test_plot_losses_of_a_folder_without_a_run(tmp_path, capsys):
    assert cgan_mnist.main(["--plot-losses", str(tmp_path)]) == 1
    assert "no readable losses.csv" in capsys.readouterr().err
    (tmp_path / "losses.csv").write_text("step,loss\n1,2\n")
    assert cgan_mnist.main(["--plot-losses", str(tmp_path)]) == 1
    assert "no readable losses.csv" in capsys.readouterr().err


def test_read_losses_and_smoothing(tmp_path):
    (tmp_path / "losses.csv").write_text("step,d_loss,g_loss,d_acc_real,d_acc_fake\n1,2,3,0.5,0.25\n2,4,5,1,0\n")
    data = training_log.read_losses(tmp_path)
    assert data["step"].tolist() == [1, 2] and data["d_loss"].tolist() == [2.0, 4.0]
    np.testing.assert_allclose(training_log._smooth(np.array([0.0, 2, 4, 6]), 2), [0, 1, 3, 5])
    for torn in ("3", "3,6,7,0.5"):  # a kill mid-append cut the last line: it is left to the resume to write
        (tmp_path / "losses.csv").write_text("step,d_loss,g_loss,d_acc_real,d_acc_fake\n1,2,3,0.5,0.25\n" + torn)
        assert training_log.read_losses(tmp_path)["step"].tolist() == [1]


@pytest.mark.slow
def test_progress_is_plain_lines_when_not_a_terminal(mnist_small, tmp_path, capsys):
    cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, verbose=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert lines[-1].startswith("step 6/6") and "steps/s" in lines[-1] and "eta" in lines[-1]
