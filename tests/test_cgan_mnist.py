"""cgan_mnist.py: the networks it defines, its diagrams, and its command line as a user calls it."""

from __future__ import annotations

import functools
import runpy
import shutil
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, needs_dot, run_cli, run_main

import cgan_mnist
from cgan import images, precision, sample_command
from cgan.backend import keras

# --- the networks ---------------------------------------------------------


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
def test_extra_convolutions_are_extra_14x14_stages(extra_convs):
    g = cgan_mnist.build_generator(latent_dim=6, width=10, extra_convs=extra_convs)
    convs = [layer for layer in g.layers if type(layer) is keras.layers.Conv2D]
    assert len(convs) == extra_convs and all(c.filters == 10 for c in convs)
    # Each extra convolution has its own batch norm.
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in g.layers) == 2 + extra_convs
    d = cgan_mnist.build_discriminator(width=6, extra_convs=extra_convs)
    assert sum(type(layer) is keras.layers.Conv2D for layer in d.layers) == 2 + extra_convs


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (28, 56, 1)])
def test_a_top_width_draws_that_many_channels_at_the_image_size_before_the_image(image_shape):
    g = cgan_mnist.build_generator(latent_dim=6, width=10, extra_convs=0, top_width=7,
                                   num_classes=3, image_shape=image_shape)
    full_size = [layer for layer in g.layers if getattr(layer, "output", None) is not None
                 and tuple(layer.output.shape[1:3]) == image_shape[:2]]
    # the transposed convolution to 7 channels, its batch norm and ReLU, the 3x3 convolution to the image, tanh
    assert [type(layer).__name__ for layer in full_size] == ["Conv2DTranspose", "BatchNormalization", "ReLU", "Conv2D",
                                                             "Activation"]
    assert full_size[0].filters == 7 and full_size[3].filters == 1 and full_size[3].kernel_size == (3, 3)
    images = np.asarray(g({"noise": np.zeros((2, 6), "float32"), "label": np.array([[0], [2]], "int32")}))
    assert images.shape == (2, *image_shape) and np.abs(images).max() <= 1
    # and the config's --g-top-width reaches it; 0 keeps the one transposed convolution to the image
    assert [layer.filters for layer in cgan_mnist.config_generator(cgan_mnist.Config(g_width=10, g_top_width=7)).layers
            if isinstance(layer, keras.layers.Conv2DTranspose)] == [10, 7]
    assert [layer.filters for layer in cgan_mnist.config_generator(cgan_mnist.Config(g_width=10)).layers
            if isinstance(layer, keras.layers.Conv2DTranspose)] == [10, 1]


def test_unconditional_builders_have_no_label_input():
    g = cgan_mnist.build_generator(latent_dim=8, width=8, num_classes=None)
    d = cgan_mnist.build_discriminator(width=8, num_classes=None)
    assert set(g.input) == {"noise"} and set(d.input) == {"image"}
    assert not any("label" in layer.name or "projection" in layer.name for layer in g.layers + d.layers)
    adv = cgan_mnist.build_adversarial(g, d)
    assert set(adv.input) == {"noise"}
    assert np.asarray(adv({"noise": np.zeros((3, 8), "float32")})).shape == (3, 1)


def test_builders_make_two_digit_images_of_28x56():
    g = cgan_mnist.build_generator(latent_dim=8, width=8, num_classes=100, image_shape=(28, 56, 1))
    d = cgan_mnist.build_discriminator(width=8, num_classes=100, image_shape=(28, 56, 1))
    images = g({"noise": np.zeros((2, 8), "float32"), "label": np.array([[37], [99]], "int32")})
    assert tuple(images.shape) == (2, 28, 56, 1)
    assert tuple(d({"image": np.asarray(images), "label": np.array([[37], [99]], "int32")}).shape) == (2, 1)


def test_mixed_precision_networks_still_output_float32():
    g = cgan_mnist.build_generator(latent_dim=8, width=8, dtype="mixed_bfloat16")
    d = cgan_mnist.build_discriminator(width=8, dtype="mixed_bfloat16")
    out = g({"noise": np.zeros((2, 8), "float32"), "label": np.zeros((2, 1), "int32")})
    assert out.dtype == "float32"
    assert d({"image": np.asarray(out), "label": np.zeros((2, 1), "int32")}).dtype == "float32"


def test_networks_follow_the_config():
    config = cgan_mnist.Config(latent_dim=12, g_width=10, d_width=6, g_extra_convs=0, d_extra_convs=1)
    g, d = cgan_mnist.config_generator(config), cgan_mnist.config_discriminator(config)
    assert g.input["noise"].shape[-1] == 12
    assert {layer.filters for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)} == {10, 1}
    assert [layer.filters for layer in d.layers if isinstance(layer, keras.layers.Conv2D)] == [6, 12, 12]


# --- diagrams -------------------------------------------------------------


@needs_dot
def test_plot_architecture_writes_three_diagrams(tmp_path):
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


# --- sampling from the command line ---------------------------------------


def test_cli_same_seed_same_bytes(tiny_generator_file, tmp_path, monkeypatch):
    for out, clock in (("a", time.time()), ("b", time.time() + 3600)):  # an hour apart, as far as files can tell
        monkeypatch.setattr(time, "time", lambda clock=clock: clock)
        assert cgan_mnist.main([f"--generator={tiny_generator_file}", "--seed=3", "--count=5", "--out-dir",
                                str(tmp_path / out), "--save-npz", str(tmp_path / out / "x.npz")]) == 0
    for name in ("digits0-9_n5_seed3.png", "x.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_large_count_is_drawn_in_batches_and_the_picture_shows_the_first(tiny_generator_file, tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.setattr(sample_command, "PICTURE_LIMIT", 8)
    monkeypatch.setattr(sample_command, "generate_batches",
                        functools.partial(sample_command.generate_batches, batch_size=3))
    assert cgan_mnist.main([f"--generator={tiny_generator_file}", "--digits", "4", "7", "--count", "10", "--seed", "2",
                            "--out-dir", str(tmp_path), "--save-npz", str(tmp_path / "all.npz")]) == 0
    assert "the picture shows 8 of the 20 images" in capsys.readouterr().out
    g = cgan_mnist.load_generator(tiny_generator_file)
    every = cgan_mnist.generate(g, np.repeat([4, 7], 10), seed=2)
    with np.load(tmp_path / "all.npz") as data:
        drawn = data["images"]
    # Batches of 3 draw what one call draws: each image from its own noise. A batch's size may change how the
    # matmuls round (once in the suite here, a pixel one grey level off), while other noise changes whole images.
    assert np.abs(drawn.astype(int) - every).max() <= 1
    from PIL import Image

    with Image.open(tmp_path / "digits47_n10_seed2.png") as im:  # 2 rows of the first 4 of each digit
        np.testing.assert_array_equal(np.asarray(im), images.tile(drawn[[0, 1, 2, 3, 10, 11, 12, 13]], 2))


def test_several_digits_one_row_each_and_npz_export(tiny_generator_file, tmp_path):
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


@pytest.mark.parametrize("mode", [["--interpolate", "3", "7"], ["--walk", "5"]])
def test_gif_has_the_frames_asked_for(tiny_generator_file, tmp_path, mode):
    argv = [f"--generator={tiny_generator_file}", *mode, "--frames", "7", "--gif",
            "--seed", "4", "--out-dir", str(tmp_path)]
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
    (["--digit", "10"], "not a digit 0-9"),
    (["--digit", "-1"], "not a digit 0-9"),
    (["--digit", "seven"], "not a digit 0-9"),
    (["--count", "0"], "--count must be between"),
    (["--count", "1000000000"], "--count must be between"),
    (["--gif", "--digit", "3"], "--gif needs"),
    (["--interpolate", "3", "12"], "not a digit"),
    (["--walk", "5", "--frames", "1"], "--frames must be"),
    (["--digit", "3", "--save-npz", "out.txt"], "--save-npz must name a .npz"),
    (["--digits"], "expected at least one argument"),
])
def test_cli_bad_sampling_arguments(tiny_generator_file, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    code = run_main([f"--generator={tiny_generator_file}", "--out-dir", str(out), *argv])
    assert code == 2
    assert_one_line_error(code, capsys, message)
    assert not out.exists()


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


def test_an_unconditional_generator_draws_any_digits(tiny_unconditional_generator_file, tmp_path):
    g = f"--generator={tiny_unconditional_generator_file}"
    assert cgan_mnist.main([g, "--count", "64", "--seed", "2", "--out-dir", str(tmp_path),
                            "--save-npz", str(tmp_path / "any.npz")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "any_n64_seed2.png") as im:
        assert im.size == (8 * 58 + 2, 8 * 58 + 2)  # 8 x 8
    with np.load(tmp_path / "any.npz") as data:
        assert data["images"].shape == (64, 28, 28) and "labels" not in data.files
    assert cgan_mnist.main([g, "--walk", "--frames", "5", "--gif", "--seed", "2", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "walk_f5_seed2.gif").is_file()


@pytest.mark.parametrize("argv", [["--digit", "3"], ["--digits", "1", "2"], ["--interpolate", "3", "7"],
                                  ["--walk", "4"]])
def test_an_unconditional_generator_refuses_labels_in_one_line(tiny_unconditional_generator_file, tmp_path,
                                                               capsys, argv):
    code = run_main([f"--generator={tiny_unconditional_generator_file}", "--out-dir", str(tmp_path / "out"), *argv])
    err = assert_one_line_error(code, capsys, "has no labels")
    assert code == 2 and "--unconditional" in err
    assert not (tmp_path / "out").exists()


def test_a_conditional_generator_walks_a_digit(tiny_generator_file, tmp_path, capsys):
    code = run_main([f"--generator={tiny_generator_file}", "--walk", "--out-dir", str(tmp_path / "out")])
    assert_one_line_error(code, capsys, "--walk needs a digit N")
    assert not (tmp_path / "out").exists()


def test_evaluate_needs_a_generator(capsys):
    assert_one_line_error(run_main(["--evaluate"]), capsys, "--evaluate needs --generator")


@pytest.mark.parametrize("argv", [("--generator=nope.h5", "--digit=6"), ("--evaluate", "--generator=nope.h5"),
                                  ("--generator=nope.h5", "--interpolate", "3", "7")])
def test_errors_raised_anywhere_in_the_package_are_one_line(tmp_path, monkeypatch, capsys, argv):
    # Run as a script, cgan_mnist.py once let errors raised in its companion modules escape as a
    # traceback: their UserError was another class than __main__'s. runpy runs the file as `__main__`
    # beside the imported `cgan_mnist`, as `python cgan_mnist.py` does, without a process's 5 s of TensorFlow.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cgan_mnist.py", *argv])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "cgan_mnist.py"), run_name="__main__")
    assert exited.value.code == 1  # a file problem (2 is for usage errors)
    assert capsys.readouterr().err.strip() == "cgan_mnist.py: error: nope.h5: no such model file"
    assert list(tmp_path.iterdir()) == []


# --- the command line as a separate process ---------------------------------


@pytest.mark.slow
def test_cli_digit_writes_a_png_and_prints_its_path(tiny_generator_file, tmp_path):
    result = run_cli(f"--generator={tiny_generator_file}", "--digit=6", "--seed=7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    png = tmp_path / "samples" / "digit6_n16_seed7.png"
    assert png.is_file() and str(png.relative_to(tmp_path)) in result.stdout
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (4 * 58 + 2, 4 * 58 + 2)  # 4x4 tiles of 56 px with 2 px gaps


@pytest.mark.slow
@pytest.mark.parametrize("variant", [[], ["--loss", "wgan-gp"], ["--unconditional"]])  # pairs: test_datasets.py
def test_dry_run(mnist_small, capsys, monkeypatch, variant):
    # A WGAN-GP step takes 5 real batches of 64: more than the dry run's usual 256 images (and batch 128
    # would take more than the 512 of this small set). The plain
    # dry run says what --precision auto takes (on a CPU faked to have no bfloat16, so that nothing is
    # timed: test_precision.py times for real); the variants train in float32.
    if variant:
        variant = [*variant, "--precision", "float32"]
    else:
        monkeypatch.setattr(precision, "native_bfloat16", lambda *args, **kwargs: False)
        monkeypatch.setattr(precision, "_has_gpu", lambda: False)
    assert cgan_mnist.main(["--dry-run", "--data", str(mnist_small), "--g-width", "8", "--d-width", "8",
                            "--batch-size", "64", *variant]) == 0
    out = capsys.readouterr().out
    assert "dry run ok" in out
    assert ("--precision auto: float32 (this CPU has no bfloat16 instructions" in out) == ("--precision" not in variant)


def test_training_flags_fill_the_config():
    args = cgan_mnist.build_parser().parse_args(["--g-lr", "0.001", "--train-steps", "7", "--precision", "float32",
                                                 "--seed", "5"])
    config = cgan_mnist.config_from_args(args)
    assert (config.g_lr, config.train_steps, config.precision, config.seed) == (0.001, 7, "float32", 5)
    assert config.d_lr == cgan_mnist.Config().d_lr
    assert cgan_mnist.config_from_args(cgan_mnist.build_parser().parse_args([])) == cgan_mnist.Config()


@pytest.mark.parametrize("argv", [
    ["--generator=GEN", "--digit", "3", "--seed=-1"],
    ["--generator=GEN", "--digit", "3", "--seed", "4294967296"],
    ["--seed=-1", "--train-steps", "1", "--out-dir", "TMP/run"],
    ["--generator=GEN", "--digit", "3", "--out-dir", "FILE"],
    ["--generator=GEN", "--digit", "3", "--out-dir", "FILE/inside"],
    ["--generator=GEN", "--digit", "3", "--out-dir", "TMP/out", "--save-npz", "FILE/x.npz"],
    ["--generator=GEN", "--export-onnx", "FILE/x.onnx"],
    ["--train-steps", "1", "--out-dir", "FILE"],
    ["--train-steps", "1", "--out-dir", "FILE/inside"],
])
def test_bad_seeds_and_paths_in_the_way_get_one_line_and_touch_nothing(tiny_generator_file, tmp_path, capsys, argv):
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("kept")
    argv = [a.replace("GEN", str(tiny_generator_file)).replace("FILE", str(in_the_way)).replace("TMP", str(tmp_path))
            for a in argv]
    assert_one_line_error(run_main(argv), capsys, "")
    assert in_the_way.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]
