"""cgan_mnist.py: models, one real training step, a tiny real run, sampling, the CLI and its bad inputs."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, TINY

import cgan_mnist
from cgan_mnist import Config, UserError, keras, tf


def tiny_config(**overrides) -> Config:
    return dataclasses.replace(Config(train_steps=4, save_interval=2, precision="float32", **TINY), **overrides)


# --- models ---------------------------------------------------------------


def test_builders_have_named_inputs_and_documented_shapes():
    g = cgan_mnist.build_generator(latent_dim=8, width=8)
    d = cgan_mnist.build_discriminator(width=8)
    adv = cgan_mnist.build_adversarial(g, d)
    assert (g.name, d.name, adv.name) == ("generator", "discriminator", "adversarial")
    assert set(g.input) == {"noise", "label"} and set(d.input) == {"image", "label"}
    noise = np.random.default_rng(0).standard_normal((5, 8)).astype("float32")
    labels = np.arange(5).reshape(-1, 1)
    images = np.asarray(g({"noise": noise, "label": labels}))
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1  # tanh range, the one preprocess() produces
    assert np.asarray(d({"image": images, "label": labels})).shape == (5, 1)
    assert np.asarray(adv({"noise": noise, "label": labels})).shape == (5, 1)


@pytest.mark.parametrize("extra_convs", [0, 1, 2])
def test_generator_settings_read_back_what_the_generator_was_built_with(extra_convs):
    g = cgan_mnist.build_generator(latent_dim=6, width=10, extra_convs=extra_convs)
    assert cgan_mnist.generator_settings(g) == {"latent_dim": 6, "width": 10, "extra_convs": extra_convs}
    # Each extra convolution is one more 14x14 stage with its own batch norm.
    norms = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in g.layers)
    assert norms == 2 + extra_convs


def test_mixed_precision_generator_still_outputs_float32():
    g = cgan_mnist.build_generator(latent_dim=8, width=8, dtype="mixed_bfloat16")
    d = cgan_mnist.build_discriminator(width=8, dtype="mixed_bfloat16")
    out = g({"noise": np.zeros((2, 8), "float32"), "label": np.zeros((2, 1), "int32")})
    assert out.dtype == "float32"
    assert d({"image": np.asarray(out), "label": np.zeros((2, 1), "int32")}).dtype == "float32"


def test_label_changes_the_generated_image():
    g = cgan_mnist.build_generator(latent_dim=8, width=8)
    a = cgan_mnist.generate(g, [3], seed=1)
    b = cgan_mnist.generate(g, [7], seed=1)
    assert not np.array_equal(a, b)


def test_preprocess_postprocess_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)[:, :, :].repeat(1, 0)
    pixels = np.resize(pixels, (2, 28, 28))
    scaled = cgan_mnist.preprocess(pixels)
    assert scaled.shape == (2, 28, 28, 1) and scaled.min() == -1 and scaled.max() == 1
    np.testing.assert_array_equal(cgan_mnist.postprocess(scaled), pixels)


# --- training -------------------------------------------------------------


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_one_training_step_changes_both_networks(mnist_small, precision):
    config = tiny_config(precision=precision)
    gan = cgan_mnist.make_gan(config)
    images, labels = cgan_mnist.load_mnist(mnist_small)
    ds = cgan_mnist.make_dataset(images, labels, batch_size=config.batch_size, seed=0)
    before = {name: [w.numpy().copy() for w in m.trainable_weights]
              for name, m in (("g", gan.generator), ("d", gan.discriminator), ("ema", gan.ema_generator))}
    history = gan.fit(ds, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    for name, m in (("g", gan.generator), ("d", gan.discriminator), ("ema", gan.ema_generator)):
        # Every kernel moves. (A bias can sit still: under the hinge loss the gradient of the
        # discriminator's output bias is exactly zero while all logits are inside the margin.)
        kernels = [(a, w.numpy()) for a, w in zip(before[name], m.trainable_weights) if a.ndim >= 2]
        unchanged = sum(np.array_equal(a, b) for a, b in kernels)
        assert kernels and unchanged == 0, f"{name}: {unchanged} of {len(kernels)} kernels did not change"
    assert np.isfinite(history.history["d_loss"][0]) and np.isfinite(history.history["g_loss"][0])
    assert int(gan.d_optimizer.iterations.numpy()) == int(gan.g_optimizer.iterations.numpy()) == 1


def test_hinge_losses_give_the_generator_a_gradient_from_every_fake():
    real, fake = tf.constant([[2.0], [0.5]]), tf.constant([[-3.0], [0.5]])
    with tf.GradientTape() as tape:
        tape.watch(fake)
        d_loss, g_loss = cgan_mnist.hinge_losses(real, fake)
    assert float(d_loss) == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert float(g_loss) == pytest.approx(1.25)  # -mean(D(fake))
    # The fake that D has pushed past its margin (-3) still pulls on G.
    np.testing.assert_allclose(tape.gradient(g_loss, fake).numpy(), [[-0.5], [-0.5]])


def test_training_does_not_stall_when_the_discriminator_wins_early(mnist_small):
    # Wide networks on 512 digits: D separates real from fake within a few dozen steps. A generator
    # loss with a margin (the zero-sum -mean(relu(1 + D(G(z))))) then gives both networks exactly
    # zero gradient from there on: D's loss stuck at 0.0 and G's gradient norm 0.0 at step 60.
    # The default loss must keep G learning.
    config = cgan_mnist.Config(g_width=96, d_width=48, train_steps=60, precision="float32", seed=0)
    gan = cgan_mnist.make_gan(config)
    gan.set_steps_per_call(10)
    images, labels = cgan_mnist.load_mnist(mnist_small)
    gan.fit(cgan_mnist.make_dataset(images, labels, batch_size=config.batch_size, seed=0),
            epochs=1, steps_per_epoch=60, verbose=0, shuffle=False)
    assert any(figures["d_loss"] > 0 for _, figures in gan.recent_steps())
    noise = tf.random.normal((64, config.latent_dim), seed=1)
    digits = tf.constant(labels[:64].reshape(-1, 1).astype("int32"))
    with tf.GradientTape() as tape:
        fake = gan.generator({"noise": noise, "label": digits}, training=True)
        logits = gan.discriminator({"image": fake, "label": digits}, training=True)
        g_loss = gan.loss_fn(logits, logits)[1]
    assert float(tf.linalg.global_norm(tape.gradient(g_loss, gan.generator.trainable_weights))) > 0.1


def test_training_data_runs_without_the_tf_data_autotuner(mnist_small):
    # With the autotuner on, `fit` often waited at its end for the autotuner's next wake-up (its
    # period doubles from 10 ms to a minute): 39 s after a 1,000-step default run, 3 s after each
    # 200-step call of the speed benchmark. The wait comes and goes, too irregularly for a timing
    # test here, so this checks the setting that removed it.
    images, labels = cgan_mnist.load_mnist(mnist_small)
    dataset = cgan_mnist.make_dataset(images, labels, batch_size=16, seed=0)
    assert dataset.options().autotune.enabled is False
    first = next(iter(dataset))
    assert first[0].shape == (16, 28, 28, 1) and first[1].shape == (16, 1)


def test_tiny_training_run_writes_grids_and_a_loadable_generator(mnist_small, tmp_path, capsys):
    path = cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, verbose=True)
    assert path == tmp_path / "cgan_mnist.h5"
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert grids == ["step_000002.png", "step_000004.png"]
    from PIL import Image

    with Image.open(tmp_path / "samples" / "step_000004.png") as im:
        assert im.size[1] > im.size[0] / 2  # 10 rows of 10: about square
    generator = cgan_mnist.load_generator(path)
    assert cgan_mnist.generate(generator, range(10), seed=0).shape == (10, 28, 28)
    out = capsys.readouterr().out
    assert "generator saved to" in out and "step 4/4" in out
    assert list(tmp_path.glob(".*")) == []  # no temporary files left behind


def test_fixed_noise_grids_are_comparable_across_steps(mnist_small, tmp_path):
    """The dump at a step depends only on the weights: the same run twice gives the same grid."""
    a = cgan_mnist.train(tiny_config(train_steps=2), out_dir=tmp_path / "a", data=mnist_small, verbose=False)
    b = cgan_mnist.train(tiny_config(train_steps=2), out_dir=tmp_path / "b", data=mnist_small, verbose=False)
    ga, gb = cgan_mnist.load_generator(a), cgan_mnist.load_generator(b)
    np.testing.assert_array_equal(cgan_mnist.generate(ga, range(10), seed=3), cgan_mnist.generate(gb, range(10), seed=3))


def test_training_refuses_bad_settings(mnist_small, tmp_path):
    with pytest.raises(UserError, match="--train-steps"):
        cgan_mnist.train(tiny_config(train_steps=0), out_dir=tmp_path, data=mnist_small)
    with pytest.raises(UserError, match="--g-lr"):
        cgan_mnist.train(tiny_config(g_lr=-1.0), out_dir=tmp_path, data=mnist_small)
    with pytest.raises(UserError, match="--g-extra-convs"):
        cgan_mnist.train(tiny_config(g_extra_convs=-1), out_dir=tmp_path, data=mnist_small)
    with pytest.raises(UserError, match="--d-extra-convs"):
        cgan_mnist.train(tiny_config(d_extra_convs=-1), out_dir=tmp_path, data=mnist_small)
    with pytest.raises(UserError, match="--beta-2"):
        cgan_mnist.train(tiny_config(beta_2=1.0), out_dir=tmp_path, data=mnist_small)
    with pytest.raises(UserError, match="fewer than one batch"):
        cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, limit=3)


def test_batch_norm_statistics_in_chunks_match_one_training_pass_over_all_samples():
    generator = cgan_mnist.build_generator(latent_dim=8, width=8)
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 3
    # The definition: one training-mode pass over all 300 samples, each layer's moving statistics
    # replaced by that batch's (momentum 0).
    rng = np.random.default_rng(0)
    inputs = {"noise": rng.standard_normal((300, 8)).astype(np.float32),
              "label": (np.arange(300) % 10).astype(np.int32).reshape(-1, 1)}
    for layer in norms:
        layer.momentum = 0.0
    generator(inputs, training=True)
    expected = [(layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy()) for layer in norms]
    for layer in norms:
        layer.momentum = 0.99
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape))

    cgan_mnist.set_batch_norm_statistics(generator, seed=0, count=300, chunk=128)  # 128 + 128 + 44
    for layer, (mean, variance) in zip(norms, expected):
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-4, atol=1e-6)
    assert not np.allclose(expected[1][1], 1.0)  # the statistics were really set, not left at their start


# --- sampling -------------------------------------------------------------


def test_generate_contract_and_determinism(tiny_generator_file):
    g = cgan_mnist.load_generator(tiny_generator_file)
    digits = [0, 1, 2, 9, 9]
    a = cgan_mnist.generate(g, digits, seed=42)
    assert a.shape == (5, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, cgan_mnist.generate(g, digits, seed=42))
    assert not np.array_equal(a, cgan_mnist.generate(g, digits, seed=43))
    # An image depends on its position's noise, not on the batch it was drawn in.
    np.testing.assert_array_equal(cgan_mnist.generate(g, digits, seed=42, batch_size=2), a)
    with pytest.raises(UserError):
        cgan_mnist.generate(g, [10], seed=0)
    with pytest.raises(UserError):
        cgan_mnist.generate(g, [1.5], seed=0)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_save_load_round_trip_gives_identical_output(tmp_path, suffix):
    g = cgan_mnist.build_generator(latent_dim=8, width=8)
    path = cgan_mnist.save_generator(g, tmp_path / f"g{suffix}")
    loaded = cgan_mnist.load_generator(path)
    np.testing.assert_array_equal(cgan_mnist.generate(g, range(10), seed=5), cgan_mnist.generate(loaded, range(10), seed=5))


def test_shipped_model_loads_and_draws(tmp_path):
    g = cgan_mnist.load_generator(ROOT / "cgan_mnist.h5")
    images = cgan_mnist.generate(g, [6] * 4, seed=0)
    assert images.shape == (4, 28, 28)
    assert 20 < images.mean() < 120  # dark background, a bright stroke: not blank, not noise


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "cgan_mnist.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_digit_writes_a_png_and_prints_its_path(tiny_generator_file, tmp_path):
    result = run_cli(f"--generator={tiny_generator_file}", "--digit=6", "--seed=7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    png = tmp_path / "samples" / "digit6_n16_seed7.png"
    assert png.is_file() and str(png.relative_to(tmp_path)) in result.stdout
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (4 * 58 + 2, 4 * 58 + 2)  # 4x4 tiles of 56 px with 2 px gaps


def test_cli_same_seed_same_file_and_all_digits(tiny_generator_file, tmp_path):
    for out in ("a", "b"):
        assert cgan_mnist.main([f"--generator={tiny_generator_file}", "--seed=3", "--count=5", "--out-dir", str(tmp_path / out)]) == 0
    a, b = (tmp_path / d / "digits0-9_n5_seed3.png" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--digit", "10"], "not a digit 0-9"),
        (["--digit", "-1"], "not a digit 0-9"),
        (["--digit", "seven"], "not a digit 0-9"),
        (["--count", "0"], "--count must be between"),
        (["--count", "1000000000"], "--count must be between"),
    ],
)
def test_cli_bad_sampling_arguments(tiny_generator_file, tmp_path, capsys, argv, message):
    code = run_main([f"--generator={tiny_generator_file}", "--out-dir", str(tmp_path), *argv])
    assert_one_line_error(code, capsys, message)
    assert list(tmp_path.iterdir()) == []


def run_main(argv):
    try:
        return cgan_mnist.main(argv)
    except SystemExit as exc:  # argparse's own exit for malformed flags
        return exc.code


def assert_one_line_error(code, capsys, message):
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.fixture
def bad_model_files(tmp_path, tiny_generator_file, tiny_discriminator_file):
    text = tmp_path / "notes.h5"
    text.write_text("this is not a model\n")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(tiny_generator_file.read_bytes()[:3000])
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    return {"missing": tmp_path / "nope.h5", "text": text, "truncated": truncated, "empty": empty,
            "discriminator": tiny_discriminator_file}


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "empty", "discriminator"])
def test_cli_refuses_files_that_are_not_generators(bad_model_files, tmp_path, capsys, kind):
    out = tmp_path / "out"
    code = run_main([f"--generator={bad_model_files[kind]}", "--digit=3", "--out-dir", str(out)])
    assert_one_line_error(code, capsys, str(bad_model_files[kind]))
    assert not out.exists()


def test_cli_bad_input_as_a_subprocess_has_no_traceback(tmp_path):
    result = run_cli("--generator=nope.h5", "--digit=6", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "cgan_mnist.py: error: nope.h5: no such model file"


@pytest.mark.parametrize("argv", [("--evaluate", "--generator=nope.h5"), ("--generator=nope.h5", "--interpolate", "3", "7")])
def test_errors_raised_in_companion_modules_get_one_line_too(tmp_path, argv):
    # evaluation.py and morphing.py raise cgan_mnist.UserError; run as a script, cgan_mnist.py once
    # let those escape as a traceback (exit 1), since its own UserError was __main__'s.
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "cgan_mnist.py: error: nope.h5: no such model file"


# --- data -----------------------------------------------------------------


def test_load_mnist_npz_and_default():
    x, y = cgan_mnist.load_mnist()  # data/mnist.npz, the project's own copy
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.shape == (60000,)
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    xt, yt = cgan_mnist.load_mnist(split="test")
    assert xt.shape == (10000, 28, 28)


def write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_idx_folder(mnist_small, tmp_path, gz):
    x, y = cgan_mnist.load_mnist(mnist_small)
    ext = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", x, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", y, gz)
    x2, y2 = cgan_mnist.load_mnist(tmp_path)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_bad_data_gets_one_line_naming_the_path(tmp_path, capsys, mnist_small):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, x_train=np.zeros((10, 32, 32), np.uint8), y_train=np.zeros(10, np.uint8))
    no_keys = tmp_path / "nokeys.npz"
    np.savez(no_keys, images=np.zeros((10, 28, 28), np.uint8))
    truncated_idx = tmp_path / "idx"
    truncated_idx.mkdir()
    x, y = cgan_mnist.load_mnist(mnist_small)
    write_idx(truncated_idx / "train-images-idx3-ubyte", x, False)
    (truncated_idx / "train-images-idx3-ubyte").write_bytes((truncated_idx / "train-images-idx3-ubyte").read_bytes()[:5000])
    write_idx(truncated_idx / "train-labels-idx1-ubyte", y, False)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = {tmp_path / "missing.npz": "no such file", corrupt: "not a readable .npz", wrong_shape: "(n, 28, 28)",
             no_keys: "missing x_train", truncated_idx: "header promises", empty_dir: "train-images-idx3-ubyte"}
    for path, message in cases.items():
        code = run_main(["--data", str(path), "--train-steps", "1", "--out-dir", str(tmp_path / "run")])
        assert_one_line_error(code, capsys, message)
        assert str(path) in message or str(path) in str(path)
    assert not (tmp_path / "run" / "cgan_mnist.h5").exists()


# --- diagrams -------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (.ci/run installs it)")
def test_plot_architecture_writes_three_diagrams(tmp_path, capsys):
    assert cgan_mnist.main(["--plot-architecture", str(tmp_path)]) == 0
    from PIL import Image

    for name in ("generator", "discriminator", "adversarial"):
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size[0] > 100 and im.size[1] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adversarial.png", "discriminator.png", "generator.png"]


def test_plot_architecture_without_dot_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cgan_mnist.plot_architecture(tmp_path, quiet_failure=True) == []
    assert "apt-get install graphviz" in capsys.readouterr().out
    code = run_main(["--plot-architecture", str(tmp_path)])
    assert_one_line_error(code, capsys, "apt-get install graphviz")


def test_dry_run(mnist_small, capsys):
    assert cgan_mnist.main(["--dry-run", "--data", str(mnist_small), "--g-width", "8", "--d-width", "8"]) == 0
    assert "dry run ok" in capsys.readouterr().out
