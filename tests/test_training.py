"""cgan/training.py: real tiny runs write what they promise, refuse what they cannot, resume exactly, stop cleanly."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, tiny_config
from step_callbacks import PoisonWeights, StopAt

import cgan_mnist
from cgan import checkpoints
from cgan import config as config_module
from cgan.backend import keras
from cgan.config import Config
from cgan.errors import TrainingStopped, UserError
from cgan.sampling import generate, load_generator
from cgan.training import RUN_FILE


def test_tiny_training_run_writes_grids_and_a_loadable_generator(mnist_small, tmp_path, capsys):
    path = cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, verbose=True)
    assert path == tmp_path / "cgan_mnist.h5"
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert grids == ["step_000003.png", "step_000006.png"]
    from PIL import Image

    with Image.open(tmp_path / "samples" / "step_000006.png") as im:
        assert im.size == (10 * 58 + 2, 10 * 58 + 2)  # a row of 10 per digit
    generator = load_generator(path)
    assert generate(generator, range(10), seed=0).shape == (10, 28, 28)
    run = json.loads((tmp_path / RUN_FILE).read_text())
    assert Config(**run["config"]) == tiny_config() and run["data"] == str(mnist_small.resolve())
    out = capsys.readouterr().out
    assert "generator saved to" in out and "step 6/6" in out
    assert list(tmp_path.rglob(".*")) == []  # no temporary files left behind


@pytest.mark.slow
def test_fixed_noise_grids_are_comparable_across_steps(mnist_small, tmp_path):
    """The dump at a step depends only on the weights: the same run twice gives the same grid and generator."""
    a = cgan_mnist.train(tiny_config(train_steps=2), out_dir=tmp_path / "a", data=mnist_small, verbose=False)
    b = cgan_mnist.train(tiny_config(train_steps=2), out_dir=tmp_path / "b", data=mnist_small, verbose=False)
    grid = "samples/step_000002.png"
    assert (tmp_path / "a" / grid).read_bytes() == (tmp_path / "b" / grid).read_bytes()
    np.testing.assert_array_equal(generate(load_generator(a), range(10), seed=3),
                                  generate(load_generator(b), range(10), seed=3))
    for x, y in zip(load_generator(a).get_weights(), load_generator(b).get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)  # one seed, one machine, one precision: the same weights


@pytest.mark.parametrize("overrides, message", [
    ({"train_steps": 0}, "--train-steps"), ({"g_lr": -1.0}, "--g-lr"), ({"d_lr": float("nan")}, "--d-lr"),
    ({"g_extra_convs": -1}, "--g-extra-convs"), ({"d_extra_convs": -1}, "--d-extra-convs"),
    ({"beta_2": 1.0}, "--beta-2"), ({"final_lr_fraction": 2.0}, "--final-lr-fraction"),
    ({"precision": "float16"}, "--precision"),
])
def test_training_refuses_bad_settings_before_writing_anything(mnist_small, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        cgan_mnist.train(tiny_config(**overrides), out_dir=tmp_path / "run", data=mnist_small)
    assert not (tmp_path / "run").exists()


def test_training_refuses_less_data_than_a_batch(mnist_small, tmp_path):
    with pytest.raises(UserError, match="fewer than one batch"):
        cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, limit=3)
    with pytest.raises(UserError, match="--limit"):
        cgan_mnist.train(tiny_config(), out_dir=tmp_path / "b", data=mnist_small, limit=0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_small):
    """A finished tiny_config() run, trained once for the tests below; each works on its own copy."""
    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    cgan_mnist.train(tiny_config(), out_dir=run_dir, data=mnist_small, verbose=False)
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


@pytest.mark.slow
def test_new_run_refuses_a_folder_holding_a_run(tiny_run, mnist_small, tmp_path, capsys):
    run_dir = copy_of(tiny_run, tmp_path)
    before = (run_dir / "cgan_mnist.h5").read_bytes()
    code = cgan_mnist.main(["--out-dir", str(run_dir), "--data", str(mnist_small), "--train-steps", "3"])
    assert code == 1 and "--resume" in capsys.readouterr().err
    assert (run_dir / "cgan_mnist.h5").read_bytes() == before


def test_resume_of_a_folder_without_a_run(tmp_path, capsys):
    assert cgan_mnist.main(["--resume", str(tmp_path)]) == 1
    assert "not a training run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tiny_run, tmp_path, capsys):
    whole = load_generator(tiny_run / "cgan_mnist.h5")
    killed = tmp_path / "killed"  # what a kill after run.json and before the first checkpoint leaves
    killed.mkdir()
    run = json.loads((tiny_run / RUN_FILE).read_text())
    (killed / RUN_FILE).write_text(json.dumps(run))
    assert cgan_mnist.main(["--resume", str(killed)]) == 0
    assert "has no checkpoint yet: training it from the start" in capsys.readouterr().out
    resumed = load_generator(killed / run["model_name"])
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights()))


@pytest.mark.slow
@pytest.mark.parametrize("variant", [{}, {"loss": "wgan-gp", "critic_steps": 2}])
def test_resume_after_interruption_matches_an_uninterrupted_run(mnist_small, tmp_path, variant):
    config = tiny_config(train_steps=10, save_interval=4, **variant)
    whole = cgan_mnist.train(config, out_dir=tmp_path / "whole", data=mnist_small, verbose=False)

    with pytest.raises(TrainingStopped) as stopped:
        cgan_mnist.train(config, out_dir=tmp_path / "cut", data=mnist_small, verbose=False, callbacks=[StopAt(4)])
    assert stopped.value.exit_code == 128 + signal.SIGINT
    # Callbacks run every 2 steps; the signal arrives during step 4's, the call after it (steps 5
    # and 6) finishes, checkpoints and stops.
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path / "cut")] == ["step_000004.npz", "step_000006.npz"]
    assert not (tmp_path / "cut" / "cgan_mnist.h5").exists()

    resumed = cgan_mnist.resume(tmp_path / "cut", verbose=False)
    gan = cgan_mnist.make_gan(config)
    assert checkpoints.restore(gan, checkpoints.list_checkpoints(tmp_path / "cut")[-1]) == 10
    a, b = load_generator(whole), load_generator(resumed)
    # Same data order, same noise, same optimizer state: the same generator, up to float rounding.
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-5)
    np.testing.assert_array_equal(gan.ema_generator.get_weights()[0], b.get_weights()[0])
    with open(tmp_path / "cut" / "losses.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 11))  # every step logged once


@pytest.mark.slow
def test_resume_of_a_run_written_before_newer_fields_keeps_what_it_trained_with(mnist_small, tmp_path):
    # beta_2, the extra convolutions and more came after run.json did; an older run trained with 0.999, none,
    # and the other former values.
    config = tiny_config(train_steps=6, save_interval=2, **config_module.FORMER_DEFAULTS)
    with pytest.raises(TrainingStopped):
        cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, verbose=False, callbacks=[StopAt(2)])
    run_file = tmp_path / RUN_FILE
    run = json.loads(run_file.read_text())
    for field in config_module.FORMER_DEFAULTS:
        del run["config"][field]  # as run.json was before the field existed
    run_file.write_text(json.dumps(run))

    class Seen(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            gan = self.model
            self.betas = (gan.config.beta_2, float(gan.g_optimizer.beta_2), float(gan.d_optimizer.beta_2))
            self.convs = [sum(type(layer) is keras.layers.Conv2D for layer in m.layers)
                          for m in (self.model.generator, self.model.discriminator)]

    seen = Seen()
    cgan_mnist.resume(tmp_path, verbose=False, callbacks=[seen])  # the checkpoint fits only the old networks
    assert seen.betas == pytest.approx((0.999, 0.999, 0.999))
    assert seen.convs == [0, 2]  # no extra 3x3 convolutions, only D's two strided ones
    # Else this test would not tell the two apart.
    assert Config().beta_2 != 0.999 and Config().g_extra_convs != 0 and Config().d_extra_convs != 0


@pytest.mark.slow
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
    config = Config(**json.loads((run / RUN_FILE).read_text())["config"])
    step = checkpoints.restore(cgan_mnist.make_gan(config), latest)
    assert step >= 5 and latest.name == f"step_{step:06d}.npz"
    assert not [p for p in run.rglob(".*") if p.is_file()]  # no temporary files left


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.filterwarnings("error::RuntimeWarning")  # drawing NaN weights warns in the uint8 cast
def test_several_steps_per_call_still_log_and_guard_every_step(mnist_small, tmp_path):
    # Training runs up to 10 steps per compiled call; callbacks see every step through recent_steps().
    config = tiny_config(train_steps=20, save_interval=5)
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


@pytest.mark.slow
def test_a_resume_cleans_up_after_a_kill_and_refuses_a_second_process(tiny_run, tmp_path, capsys):
    from cgan.files import folder_lock

    run_dir = copy_of(tiny_run, tmp_path)
    reference = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    # What a kill in the last writes leaves: temporaries, no final grid, no generator, a checkpoint ahead of the curve.
    (run_dir / "checkpoints" / ".step_000006.npz.abcd.tmp.npz").write_bytes(b"half a checkpoint")
    (run_dir / ".cgan_mnist.h5.efgh.tmp.h5").write_bytes(b"half a generator")
    (run_dir / "samples" / "step_000006.png").unlink()
    (run_dir / "cgan_mnist.h5").unlink()
    (run_dir / "loss_curve.png").unlink()
    with folder_lock(run_dir):  # another process is training in it
        assert cgan_mnist.main(["--resume", str(run_dir)]) == 1
        assert "is in use by another training process" in capsys.readouterr().err
    assert cgan_mnist.main(["--resume", str(run_dir)]) == 0
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
             if p.is_file() and p.parent.name != "architecture"}  # diagrams: drawn by the (verbose) command only
    assert sorted(after) == sorted(reference)  # no temporaries; the grid, the curve and the generator are back
    assert after[Path("samples/step_000006.png")] == reference[Path("samples/step_000006.png")]
    assert after[Path("losses.csv")] == reference[Path("losses.csv")]
    resumed, whole = (load_generator(run_dir / "cgan_mnist.h5"), load_generator_bytes(reference, tmp_path))
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights()))
    capsys.readouterr()
    assert cgan_mnist.main(["--resume", str(run_dir)]) == 0  # a finished run is left as it is
    assert "finished at step 6; nothing to train" in capsys.readouterr().out
    assert {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
            if p.is_file() and p.parent.name != "architecture"} == after


def load_generator_bytes(files, tmp_path):
    path = tmp_path / "reference.h5"
    path.write_bytes(files[Path("cgan_mnist.h5")])
    return load_generator(path)
