"""Using a model and watching a run: several digits, morphs and walks, npz export, loss log, TensorBoard,
resume, SIGTERM and the divergence guard."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, TINY

import cgan_mnist
import checkpoints
import morphing
import training_log
from cgan_mnist import Config, TrainingStopped


def tiny_config(**overrides) -> Config:
    return dataclasses.replace(Config(train_steps=6, save_interval=3, precision="float32", **TINY), **overrides)


# --- sampling -------------------------------------------------------------


def test_several_digits_one_row_each(tiny_generator_file, tmp_path):
    assert cgan_mnist.main([f"--generator={tiny_generator_file}", "--digits", "0", "1", "2", "3", "--count", "16",
                            "--seed", "1", "--out-dir", str(tmp_path), "--save-npz", str(tmp_path / "x.npz")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "digits0123_n16_seed1.png") as im:
        assert im.size == (16 * 58 + 2, 4 * 58 + 2)  # 4 rows of 16 tiles
    with np.load(tmp_path / "x.npz") as data:
        assert data["images"].shape == (64, 28, 28) and data["images"].dtype == np.uint8
        assert data["labels"].tolist() == [0] * 16 + [1] * 16 + [2] * 16 + [3] * 16
        g = cgan_mnist.load_generator(tiny_generator_file)
        np.testing.assert_array_equal(data["images"], cgan_mnist.generate(g, data["labels"], seed=1))


def test_interpolation_keeps_noise_and_moves_label(tiny_generator_file):
    g = cgan_mnist.load_generator(tiny_generator_file)
    frames = morphing.interpolate(g, 3, 7, frames=5, seed=11)
    assert frames.shape == (5, 28, 28) and frames.dtype == np.uint8
    # The ends are exactly what generate() draws for digits 3 and 7 with the same noise.
    np.testing.assert_array_equal(frames[0], cgan_mnist.generate(g, [3], seed=11)[0])
    np.testing.assert_array_equal(frames[-1], cgan_mnist.generate(g, [7], seed=11)[0])
    np.testing.assert_array_equal(frames, morphing.interpolate(g, 3, 7, frames=5, seed=11))


def test_walk_keeps_digit_and_slerps_noise(tiny_generator_file):
    g = cgan_mnist.load_generator(tiny_generator_file)
    frames = morphing.walk(g, 5, frames=6, seed=2)
    assert frames.shape == (6, 28, 28)
    np.testing.assert_array_equal(frames[0], cgan_mnist.generate(g, [5], seed=2)[0])
    np.testing.assert_array_equal(frames[-1], cgan_mnist.generate(g, [5], seed=3)[0])
    z0, z1 = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = morphing.slerp(z0, z1, np.linspace(0, 1, 5))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(1, 2, 5), rtol=0.2)
    np.testing.assert_allclose(path[[0, -1]], [z0, z1], atol=1e-6)


@pytest.mark.parametrize("mode", [["--interpolate", "3", "7"], ["--walk", "5"]])
def test_gif_has_the_frames_asked_for(tiny_generator_file, tmp_path, mode):
    argv = [f"--generator={tiny_generator_file}", *mode, "--frames", "7", "--gif", "--seed", "4", "--out-dir", str(tmp_path)]
    assert cgan_mnist.main(argv) == 0
    gifs = list(tmp_path.glob("*.gif"))
    assert len(gifs) == 1 and len(list(tmp_path.glob("*.png"))) == 1
    from PIL import Image

    with Image.open(gifs[0]) as im:
        assert im.n_frames == 7 and im.size == (112, 112)
    first = gifs[0].read_bytes()
    gifs[0].unlink()
    assert cgan_mnist.main(argv) == 0
    assert gifs[0].read_bytes() == first  # same seed, same animation


@pytest.mark.parametrize("argv, message", [
    (["--gif", "--digit", "3"], "--gif needs"),
    (["--interpolate", "3", "12"], "not a digit"),
    (["--walk", "5", "--frames", "1"], "--frames must be"),
    (["--digit", "3", "--save-npz", "out.txt"], "--save-npz must name a .npz"),
    (["--digits"], "expected at least one argument"),
])
def test_bad_sampling_flags(tiny_generator_file, tmp_path, capsys, argv, message):
    try:
        code = cgan_mnist.main([f"--generator={tiny_generator_file}", "--out-dir", str(tmp_path / "out"), *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# --- watching a run -------------------------------------------------------


def test_loss_csv_curve_and_tensorboard(mnist_small, tmp_path):
    run, logs = tmp_path / "run", tmp_path / "tb"
    cgan_mnist.train(tiny_config(), out_dir=run, data=mnist_small, verbose=False, tensorboard=logs)
    with open(run / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == training_log.COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= float(r["d_acc_real"]) <= 1 and np.isfinite(float(r["g_loss"])) for r in rows)
    curve = run / "loss_curve.png"
    assert curve.stat().st_size > 5000
    curve.unlink()
    assert cgan_mnist.main(["--plot-losses", str(run)]) == 0 and curve.is_file()

    import tensorflow as tf

    tags = {}
    for event_file in logs.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    for name in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
        assert tags[name] == [1, 2, 3, 4, 5, 6]
    assert tags["fixed_noise_samples"] == [3, 6]


def test_plot_losses_of_a_folder_without_a_run(tmp_path, capsys):
    assert cgan_mnist.main(["--plot-losses", str(tmp_path)]) == 2
    assert "no readable losses.csv" in capsys.readouterr().err


def test_progress_is_plain_lines_when_not_a_terminal(mnist_small, tmp_path, capsys):
    cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, verbose=True)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("step ")]
    assert lines[-1].startswith("step 6/6") and "steps/s" in lines[-1] and "eta" in lines[-1]


# --- resume, signals, divergence --------------------------------------------


class StopAt(cgan_mnist.keras.callbacks.Callback):
    """Sends this process SIGINT at `step`, as Ctrl-C would."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.step:
            signal.raise_signal(signal.SIGINT)


def test_resume_after_interruption_matches_an_uninterrupted_run(mnist_small, tmp_path):
    config = tiny_config(train_steps=10, save_interval=4)
    assert cgan_mnist.steps_per_call(config, 0) == 2  # callbacks run after steps 2, 4, 6, 8, 10
    whole = cgan_mnist.train(config, out_dir=tmp_path / "whole", data=mnist_small, verbose=False)

    with pytest.raises(TrainingStopped) as stopped:
        cgan_mnist.train(config, out_dir=tmp_path / "cut", data=mnist_small, verbose=False, callbacks=[StopAt(4)])
    assert stopped.value.exit_code == 128 + signal.SIGINT
    # The signal arrives during step 4's callbacks; the call after it (steps 5 and 6) finishes, checkpoints and stops.
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path / "cut")] == ["step_000004.npz", "step_000006.npz"]
    assert not (tmp_path / "cut" / "cgan_mnist.h5").exists()

    resumed = cgan_mnist.resume(tmp_path / "cut", verbose=False)
    gan = cgan_mnist.make_gan(config)
    assert checkpoints.restore(gan, checkpoints.list_checkpoints(tmp_path / "cut")[-1]) == 10
    a, b = cgan_mnist.load_generator(whole), cgan_mnist.load_generator(resumed)
    # Same data order, same noise, same optimizer state: the same generator, up to float rounding.
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-5)
    np.testing.assert_array_equal(gan.ema_generator.get_weights()[0], b.get_weights()[0])
    with open(tmp_path / "cut" / "losses.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 11))  # every step logged once


def test_resume_of_a_run_written_before_newer_fields_keeps_what_it_trained_with(mnist_small, tmp_path):
    # beta_2 and the extra convolutions came after run.json did; an older run trained with 0.999 and none.
    config = tiny_config(train_steps=6, save_interval=2, beta_2=0.999, g_extra_convs=0, d_extra_convs=0)
    with pytest.raises(TrainingStopped):
        cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, verbose=False, callbacks=[StopAt(2)])
    run_file = tmp_path / cgan_mnist.RUN_FILE
    run = json.loads(run_file.read_text())
    for field in cgan_mnist.FORMER_DEFAULTS:
        del run["config"][field]  # as run.json was before the field existed
    run_file.write_text(json.dumps(run))

    class Seen(cgan_mnist.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.betas = (self.model.config.beta_2, float(self.model.g_optimizer.beta_2), float(self.model.d_optimizer.beta_2))
            self.generator = cgan_mnist.generator_settings(self.model.generator)
            self.d_convs = sum(type(layer) is cgan_mnist.keras.layers.Conv2D for layer in self.model.discriminator.layers)

    seen = Seen()
    cgan_mnist.resume(tmp_path, verbose=False, callbacks=[seen])  # the checkpoint fits only the old networks
    assert seen.betas == pytest.approx((0.999, 0.999, 0.999))
    assert seen.generator["extra_convs"] == 0 and seen.d_convs == 2
    # Else this test would not tell the two apart.
    assert cgan_mnist.Config().beta_2 != 0.999
    assert cgan_mnist.Config().g_extra_convs != 0 and cgan_mnist.Config().d_extra_convs != 0


def test_new_run_refuses_a_folder_holding_a_run(mnist_small, tmp_path, capsys):
    cgan_mnist.train(tiny_config(train_steps=3), out_dir=tmp_path, data=mnist_small, verbose=False)
    before = (tmp_path / "cgan_mnist.h5").read_bytes()
    code = cgan_mnist.main(["--out-dir", str(tmp_path), "--data", str(mnist_small), "--train-steps", "3"])
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert (tmp_path / "cgan_mnist.h5").read_bytes() == before


def test_resume_of_a_folder_without_a_run(tmp_path, capsys):
    assert cgan_mnist.main(["--resume", str(tmp_path)]) == 2
    assert "not a training run folder" in capsys.readouterr().err


def test_sigterm_leaves_a_loadable_checkpoint(mnist_small, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cgan_mnist.py"), "--data", str(mnist_small), "--out-dir", str(run),
         "--train-steps", "100000", "--save-interval", "5", "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
         "--batch-size", "16", "--precision", "float32"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not checkpoints.list_checkpoints(run) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint written" in err and "Traceback" not in err
    latest = checkpoints.list_checkpoints(run)[-1]
    config = Config(**__import__("json").loads((run / "run.json").read_text())["config"])
    step = checkpoints.restore(cgan_mnist.make_gan(config), latest)
    assert step >= 5 and latest.name == f"step_{step:06d}.npz"
    assert not [p for p in run.rglob(".*") if p.is_file()]  # no temporary files left


class PoisonWeights(cgan_mnist.keras.callbacks.Callback):
    """Writes NaN into a discriminator weight after `step`, so the next step's loss is NaN."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.step:
            w = self.model.discriminator.trainable_weights[0]
            w.assign(np.full(w.shape, np.nan, "float32"))


def test_nan_loss_stops_training_and_keeps_the_good_checkpoint(mnist_small, tmp_path):
    config = tiny_config(train_steps=20, save_interval=3)
    with pytest.raises(TrainingStopped, match="diverged at step 5: d_loss is nan") as stopped:
        cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, verbose=False, callbacks=[PoisonWeights(4)])
    assert stopped.value.exit_code == 1 and "step_000003.npz" in str(stopped.value)
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == ["step_000003.npz"]
    gan = cgan_mnist.make_gan(config)
    checkpoints.restore(gan, checkpoints.list_checkpoints(tmp_path)[0])
    assert all(np.isfinite(w.numpy()).all() for w in gan.discriminator.weights)
    assert not (tmp_path / "cgan_mnist.h5").exists()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # drawing NaN weights warns in the uint8 cast
def test_several_steps_per_call_still_log_and_guard_every_step(mnist_small, tmp_path):
    # Training runs up to 10 steps per compiled call; callbacks see every step through recent_steps().
    config = tiny_config(train_steps=20, save_interval=5)
    assert cgan_mnist.steps_per_call(config, 0) == 5
    with pytest.raises(TrainingStopped, match="diverged at step 11: d_loss is nan"):
        cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, verbose=False, callbacks=[PoisonWeights(10)])
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == ["step_000005.npz", "step_000010.npz"]
    with open(tmp_path / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # The call of steps 11-15 diverged at its first step: nothing from it is logged or drawn.
    assert [int(r["step"]) for r in rows] == list(range(1, 11))
    d_losses = [float(r["d_loss"]) for r in rows]
    assert len(set(d_losses)) == 10 and all(np.isfinite(d_losses))  # each step's own figure, not the call's last
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000005.png", "step_000010.png"]
