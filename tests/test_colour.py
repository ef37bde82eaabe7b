"""--dataset colour and cgan/colour.py: painting digits, reading their colours back, the colour flags as a user
types them, RGB generators through training, sampling and --evaluate, and grey generators drawing as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, needs_dot, run_main
from test_export import onnx_and_keras

from cgan import colour, conditions
from cgan.backend import tf
from cgan.data import COLOUR, MNIST
from cgan.errors import UserError
from cgan.sampling import class_count, generate, load_generator

REFERENCE = ROOT / "tests" / "data" / "grey_samples.npz"  # the shipped grey models' samples, drawn before colour


def test_drawn_colours_contrast_and_are_a_function_of_seed_and_step():
    a, b = (colour.draw(tf.constant([step, 0], tf.int64), 4000).numpy() for step in (5, 5))
    c = colour.draw(tf.constant([6, 0], tf.int64), 4000).numpy()
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert a.min() >= 0 and a.max() <= 1
    contrast = np.abs(a[:, :3] @ colour.LUMA - a[:, 3:] @ colour.LUMA)
    assert np.mean(contrast >= colour.MIN_CONTRAST) > 0.99
    lighter_stroke = np.mean(a[:, :3] @ colour.LUMA > a[:, 3:] @ colour.LUMA)
    assert 0.4 < lighter_stroke < 0.6  # light on dark and dark on light alike


def test_painted_digits_read_back_their_colours_and_their_digit():
    images, _ = MNIST.load(split="test")
    images = images[:300]
    colours = colour.painted_table(len(images), seed=1)
    painted = colour.paint_numpy(images, colours)
    assert painted.shape == (300, 28, 28, 3) and painted.dtype == np.uint8
    errors = colour.errors(painted, colours)
    assert errors["stroke"] < 0.01 and errors["background"] < 0.003
    # whichever colour is the lighter, the luma read from background to stroke is the grey digit again
    grey = colour.readable(painted)
    assert grey.shape == images.shape and np.mean(np.abs(grey.astype(int) - images)) < 2
    # a digit painted in two colours of the same luma is unreadable, and reads as blank
    same = colour.paint_numpy(images[:2], np.array([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5]] * 2))
    assert colour.readable(same).max() == 0
    # a wrong colour is seen: asked red, painted blue
    blue = colour.paint_numpy(images[:5], np.array([[0, 0, 1, 0, 0, 0]] * 5))
    assert colour.errors(blue, np.array([[1, 0, 0, 0, 0, 0]] * 5))["stroke"] > 0.6


def test_colour_batches_are_painted_as_their_conditions_say():
    images, labels = MNIST.load(split="test")
    batches = iter(COLOUR.batches(images[:256], labels[:256], batch_size=32, seed=3))
    x, given = next(batches)
    assert x.shape == (32, 28, 28, 3) and set(given) == {"label", "colour"} and given["colour"].shape == (32, 6)
    pixels = np.clip(np.rint((x.numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
    errors = colour.errors(pixels, given["colour"].numpy())
    assert errors["stroke"] < 0.01 and errors["background"] < 0.003
    again = next(iter(COLOUR.batches(images[:256], labels[:256], batch_size=32, seed=3)))
    assert np.array_equal(again[0].numpy(), x.numpy())  # the same (seed, step), the same batch
    assert not np.array_equal(next(batches)[1]["colour"].numpy()[:4], given["colour"].numpy()[:4])


@pytest.mark.parametrize("text, rgb", [("crimson", (220, 20, 60)), ("#E03C31", (224, 60, 49)), ("#fff", (255,) * 3),
                                       (" Navy ", (0, 0, 128))])
def test_colours_are_css_names_or_hex(text, rgb):
    assert colour.hex_of(colour.parse(text, "--color")) == "#" + "".join(f"{c:02x}" for c in rgb)


@pytest.mark.parametrize("text", ["blurple", "#12345", "", "rgb(1,2,3)"])
def test_a_colour_that_is_none_gets_one_line(text):
    with pytest.raises(UserError, match="--background: .* is not a colour"):
        colour.parse(text, "--background")


@pytest.fixture(scope="module")
def colour_run(mnist_small, tmp_path_factory):
    """A tiny --dataset colour run, from the command line."""
    run = tmp_path_factory.mktemp("colour") / "run"
    code = run_main(["--dataset", "colour", "--data", str(mnist_small), "--out-dir", str(run), "--train-steps", "4",
                     "--save-interval", "2", "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
                     "--batch-size", "16", "--precision", "float32", "--seed", "2"])
    assert code == 0
    return run


@pytest.mark.slow
def test_a_colour_run_trains_samples_and_records_its_colours(colour_run, tmp_path, capsys):
    from PIL import Image

    path = colour_run / "cgan_mnist.h5"
    generator = load_generator(path)
    assert generator.name == COLOUR.generator_name and tuple(generator.output.shape[1:]) == (28, 28, 3)
    assert conditions.kind_of(generator).name == "colour" and conditions.names(generator) == colour.ATTRIBUTES
    _, _, reference = conditions.statistics(generator)  # drawn as training draws them, contrast and all
    contrast = np.abs(reference[..., :3] @ colour.LUMA - reference[..., 3:] @ colour.LUMA)
    assert np.mean(contrast >= colour.MIN_CONTRAST) > 0.99
    with Image.open(colour_run / "samples" / "step_000004.png") as grid:
        assert grid.mode == "RGB"

    out = tmp_path / "out"
    code = run_main([f"--generator={path}", "--digits", "3", "5", "--count", "3", "--color", "#e03c31",
                     "--background", "navy", "--seed", "1", "--out-dir", str(out), "--save-npz",
                     str(tmp_path / "s.npz")])
    assert code == 0
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["images"].shape == (6, 28, 28, 3) and saved["labels"].tolist() == [3, 3, 3, 5, 5, 5]
        asked = np.array([*colour.parse("#e03c31", ""), *colour.parse("navy", "")])
        drawn = generate(generator, [3, 3, 3, 5, 5, 5], seed=1, attributes=dict(zip(colour.ATTRIBUTES, asked)))
        assert np.array_equal(saved["images"], drawn)
    with Image.open(next(out.glob("*.png"))) as grid:
        assert grid.mode == "RGB"
    # unasked colours are drawn at random, with contrast; the same seed draws the same ones
    a, b = generate(generator, [1] * 4, seed=5), generate(generator, [1] * 4, seed=5)
    assert np.array_equal(a, b) and a.shape == (4, 28, 28, 3)
    for argv in (["--interpolate", "1", "7", "--background", "white"], ["--walk", "4", "--color", "gold"]):
        assert run_main([f"--generator={path}", *argv, "--frames", "3", "--out-dir", str(out)]) == 0

    capsys.readouterr()
    code = run_main([f"--generator={path}", "--evaluate", "--count", "10", "--json"])
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["dataset"] == "colour" and 0 <= figures["generator"]["accuracy"] <= 1
    assert figures["colours"]["real_stroke"] < 0.01 and figures["colours"]["stroke"] >= 0
    assert figures["real (train)"]["accuracy"] > 0.9  # real digits painted and read back: still digits


@pytest.mark.slow
def test_colour_flags_that_do_not_fit_get_one_line(colour_run, tmp_path, capsys):
    path = colour_run / "cgan_mnist.h5"
    out = ["--out-dir", str(tmp_path / "out")]
    code = run_main(["--generator=cgan_mnist.h5", "--digit", "1", "--color", "red", *out])
    assert_one_line_error(code, capsys, "was not trained with --dataset colour, so --color does not apply")
    code = run_main([f"--generator={path}", "--digit", "1", "--thickness", "3", *out])
    assert_one_line_error(code, capsys, "was not trained with --condition shape, so --thickness does not apply")
    code = run_main([f"--generator={path}", "--digit", "1", "--background", "blurple", *out])
    assert_one_line_error(code, capsys, "--background: 'blurple' is not a colour")
    code = run_main(["--dataset", "colour", "--condition", "shape", "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "--condition shape measures digits: it is for --dataset mnist")
    code = run_main(["--dataset", "colour", "--unconditional", "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "does not go with --unconditional")
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_the_shipped_grey_models_draw_what_they_drew_before_colour():
    """Samples of each shipped grey generator against those drawn with the code before RGB existed (seed 0, one
    of each class): the same bytes on the CPU that drew them; elsewhere float32 rounding may move a pixel by one
    level, no more."""
    with np.load(REFERENCE) as saved:
        for name in saved.files:
            generator = load_generator(ROOT / name.replace("__", "/"))
            drawn = generate(generator, np.arange(class_count(generator)), seed=0)
            before = saved[name]
            assert drawn.shape == before.shape and drawn.dtype == np.uint8, name
            moved = np.abs(drawn.astype(int) - before)
            assert moved.max() <= 1 and np.mean(moved > 0) < 0.001, (name, moved.max(), np.mean(moved > 0))


@pytest.mark.slow
def test_a_colour_generator_exports_to_onnx_and_its_diagrams_draw(colour_run, tmp_path):
    path = colour_run / "cgan_mnist.h5"
    assert run_main([f"--generator={path}", "--export-onnx", str(tmp_path / "c.onnx")]) == 0
    ours, keras_images = onnx_and_keras(load_generator(path), tmp_path / "c.onnx", count=6)
    assert ours.shape == (6, 28, 28, 3) and float(np.max(np.abs(ours - keras_images))) <= 1e-4


@needs_dot
def test_the_diagrams_show_the_rgb_networks(tmp_path, capsys):
    assert run_main(["--plot-architecture", str(tmp_path), "--dataset", "colour"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"generator_colour.png", "discriminator.png", "adversarial.png"}
