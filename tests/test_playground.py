"""cgan/playground.py: the notebook widgets, driven through their callbacks as a browser would drive them."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets", reason="the playground needs ipywidgets (pip install ipywidgets)")

from PIL import Image  # noqa: E402

from cgan import morphs  # noqa: E402
from cgan.data import postprocess  # noqa: E402
from cgan.errors import UserError  # noqa: E402
from cgan.images import upscale  # noqa: E402
from cgan.playground import Playground  # noqa: E402
from cgan.sampling import generate, load_generator, noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pixels(png: bytes) -> np.ndarray:
    """What an Image widget shows: its PNG bytes decoded to uint8 (h, w)."""
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture(scope="module")
def generator(tiny_generator_file):
    return load_generator(tiny_generator_file)


@pytest.fixture(scope="module")
def unconditional(tiny_unconditional_generator_file):
    return load_generator(tiny_unconditional_generator_file)


def test_grid_follows_digits_count_and_seed(generator):
    pg = Playground(generator, digits=[3], count=4, seed=5, sliders=2)
    np.testing.assert_array_equal(pg.images(), generate(generator, [3, 3, 3, 3], seed=5))
    assert pixels(pg.grid_image.value).shape == (2 * 2 + 56, 4 * 58 + 2)  # one row of four, each 28x28 doubled
    first = pg.grid_image.value
    assert "--digits 3 --count 4 --seed 5" in pg.status.value

    pg.digit_buttons[7].value = True  # a second row; the 3s keep their noise, so their row is unchanged
    np.testing.assert_array_equal(pg.images(), generate(generator, [3, 3, 3, 3, 7, 7, 7, 7], seed=5))
    grid = pixels(pg.grid_image.value)
    assert grid.shape == (2 * 58 + 2, 4 * 58 + 2)
    np.testing.assert_array_equal(grid[:60], pixels(first))
    assert not np.array_equal(grid[60:116], grid[2:58])  # the 7s are not the 3s

    pg.count.value = 20  # past 16 a digit wraps: two rows of ten each
    assert pixels(pg.grid_image.value).shape == (4 * 58 + 2, 10 * 58 + 2)
    assert len(pg.images()) == 40

    pg.count.value = 4
    pg.seed.value = 6
    assert not np.array_equal(pixels(pg.grid_image.value), grid)
    pg.seed.value = 5
    np.testing.assert_array_equal(pixels(pg.grid_image.value), grid)  # the seed alone decides the picture


def test_new_noise_button_shows_a_seed_that_reproduces_the_picture(generator):
    pg = Playground(generator, digits=[1, 2], count=3, seed=0, sliders=0)
    before = pg.grid_image.value
    pg.new_noise_button.click()
    seed = pg.seed.value
    assert seed != 0 and f"seed <b>{seed}</b>" in pg.status.value
    after = pg.grid_image.value
    assert after != before
    np.testing.assert_array_equal(pg.images(), generate(generator, [1, 1, 1, 2, 2, 2], seed=seed))
    assert pg.new_noise() != seed  # another click, another seed
    pg.seed.value = seed
    assert pg.grid_image.value == after
    assert pg.latent == [] and pg.directions is None


def test_latent_sliders_move_every_sample_along_a_direction(generator, monkeypatch):
    pg = Playground(generator, digits=[0, 5], count=2, seed=3, sliders=3)
    assert len(pg.latent) == 3 and [s.description for s in pg.latent] == pg.directions.names
    assert all(s.min == -3 and s.max == 3 for s in pg.latent)
    base = pg.grid_image.value

    pg.latent[1].value = 2.0
    labels = np.array([0, 0, 5, 5], np.int32).reshape(-1, 1)
    moved = noise(generator, 4, 3) + 2.0 * pg.directions.vectors[1]
    expected = postprocess(generator({"noise": moved, "label": labels}, training=False))
    np.testing.assert_array_equal(pg.images(), expected)
    assert pg.grid_image.value != base
    assert "PC2 +2.0" in pg.status.value and "command line" not in pg.status.value

    pg.latent[0].value = -1.0
    draws = []
    original = pg.draw
    monkeypatch.setattr(pg, "draw", lambda: draws.append(1) or original())
    pg.reset_button.click()
    assert len(draws) == 1  # two sliders back to 0, one redraw
    assert all(s.value == 0 for s in pg.latent)
    assert pg.grid_image.value == base


def test_label_morph_and_latent_walk_animate(generator):
    pg = Playground(generator, digits=[2, 8], seed=4, sliders=2, frames=6, frame_scale=3)
    assert (pg.mode.value, pg.morph_from.value, pg.morph_to.value) == ("morph", 2, 8)
    frames = pg.morph_frames()
    np.testing.assert_array_equal(frames, morphs.interpolate(generator, 2, 8, frames=6, seed=4))
    assert not np.array_equal(frames[0], frames[-1])
    assert pixels(pg.strip.value).shape == (28 + 2, 6 * 29 + 1)

    pg.play.value = 3  # what the Play button does each tick
    assert pg.frame.value == 3
    np.testing.assert_array_equal(pixels(pg.morph_image.value), upscale(frames[3], 3))
    assert "frame 4/6" in pg.morph_status.value
    pg.frame.value = 5  # scrubbing
    np.testing.assert_array_equal(pixels(pg.morph_image.value), upscale(frames[5], 3))
    pg.fps.value = 20
    assert pg.play.interval == 50

    pg.latent[0].value = 1.5  # the sliders steer the animation's noise too
    assert not np.array_equal(pg.morph_frames(), frames)
    pg.latent[0].value = 0.0

    pg.mode.value = "walk"
    assert pg.morph_to.layout.display == "none" and pg.morph_from.description == "digit"
    walk = pg.morph_frames()
    np.testing.assert_array_equal(walk, morphs.walk(generator, 2, frames=6, seed=4))
    np.testing.assert_array_equal(pixels(pg.morph_image.value), upscale(walk[5], 3))
    assert "digit 2" in pg.morph_status.value and "seed 5" in pg.morph_status.value

    pg.frames.value = 3  # fewer frames: the animation stops at the new last one
    assert pg.play.max == pg.frame.max == 2 and pg.frame.value == 2
    assert len(pg.morph_frames()) == 3
    pg.seed.value = 9
    np.testing.assert_array_equal(pg.morph_frames(), morphs.walk(generator, 2, frames=3, seed=9))


def test_unconditional_generator_gets_a_count_and_a_walk(unconditional, tiny_unconditional_generator_file):
    pg = Playground(tiny_unconditional_generator_file, count=5, seed=2, sliders=2, frames=4)
    assert pg.digit_buttons == [] and pg.digits() == []
    assert [value for _, value in pg.mode.options] == ["walk"] and pg.morph_from.layout.display == "none"
    assert pg.count.description == "images"
    np.testing.assert_array_equal(pg.images(), generate(unconditional, count=5, seed=2))
    assert f"--generator={tiny_unconditional_generator_file} --count 5 --seed 2" in pg.status.value
    np.testing.assert_array_equal(pg.morph_frames(), morphs.walk(unconditional, None, frames=4, seed=2))
    before = pg.grid_image.value
    pg.latent[0].value = -2.0
    assert pg.grid_image.value != before
    pg.count.value = 40  # more than 16: as few rows as fit 16 a row, filled evenly (14, 14, 12)
    assert pixels(pg.grid_image.value).shape == (3 * 58 + 2, 14 * 58 + 2)


def test_no_digit_picked_draws_nothing_and_says_so(generator):
    pg = Playground(generator, digits=[4], count=2, sliders=0)
    pg.digit_buttons[4].value = False
    assert len(pg.images()) == 0
    assert "Pick at least one digit" in pg.status.value
    assert pixels(pg.grid_image.value).shape == (5, 5)
    assert len(pg.morph_frames()) == 24  # the animation has its own digits


def test_bad_settings_are_refused(generator, tmp_path):
    with pytest.raises(ValueError, match="count"):
        Playground(generator, count=65)
    with pytest.raises(ValueError, match="digits"):
        Playground(generator, digits=[10])
    with pytest.raises(ValueError, match="frames"):
        Playground(generator, frames=1)
    with pytest.raises(UserError, match="no such model file"):
        Playground(tmp_path / "missing.h5")


def test_shows_itself_in_a_notebook(generator):
    bundle = Playground(generator, sliders=1)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_only_the_playground_imports_ipywidgets():
    """`import cgan...` and the script work where ipywidgets is not installed."""
    for path in [ROOT / "cgan_mnist.py", *sorted((ROOT / "cgan").rglob("*.py"))]:
        if path.name == "playground.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            assert not any(n.split(".")[0] == "ipywidgets" or n == "cgan.playground" for n in names), \
                f"{path.relative_to(ROOT)} imports {names}"


def test_a_shape_generator_gets_sliders_for_its_attributes(tmp_path, mnist_small):
    """Unticked, the grid is what the command line draws; ticked, the value asked, as --thickness asks it."""
    import cgan_mnist
    from cgan import conditions
    from cgan.data import MNIST
    from cgan.sampling import save_generator

    shape_generator = cgan_mnist.build_generator(latent_dim=8, width=8, continuous=conditions.KINDS["shape"])
    images, labels = MNIST.load(mnist_small)
    given = conditions.training_conditions(conditions.KINDS["shape"], images, labels)
    conditions.set_statistics([shape_generator], given)
    path = save_generator(shape_generator, tmp_path / "shape.h5")
    pg = Playground(path, digits=[2, 5], count=3, seed=4, sliders=2)
    assert [slider.description for _, _, _, slider in pg.shape] == [
        "thickness (px)", "slant (deg)", "width (px)", "height (px)"]
    loaded = load_generator(path)
    np.testing.assert_array_equal(pg.images(), generate(loaded, [2, 2, 2, 5, 5, 5], seed=4))
    _, _, box, slider = pg.shape[0]
    with pg.hold():
        box.value, slider.value = True, 3.5
    np.testing.assert_array_equal(pg.images(), generate(loaded, [2, 2, 2, 5, 5, 5], seed=4,
                                                        attributes={"thickness": 3.5}))
    assert "--thickness 3.5 --seed 4" in pg.status.value
    _, scale, slant_box, slant = pg.shape[1]
    with pg.hold():
        slant_box.value, slant.value = True, 20.0  # degrees on the slider, radians to the generator
    assert pg.asked_shape()["slant"] == pytest.approx(np.radians(20))
    assert len(pg.morph_frames()) == pg.frames.value


def test_a_colour_generator_gets_two_colour_pickers_that_draw_what_the_command_line_draws():
    from cgan import colour

    pg = Playground(ROOT / "models" / "colour.h5", digits=[3], count=4, seed=2)
    assert [part for part, _, _ in pg.colours] == ["stroke", "background"] and pg.shape == []
    assert pg.asked_shape() == {}  # unticked: each image a pair drawn as training drew them
    stroke, ask = pg.colours[0][2], pg.colours[0][1]
    stroke.value, ask.value = "#e03c31", True
    asked = dict(zip(colour.ATTRIBUTES[:3], colour.parse("#e03c31", "")))
    assert pg.asked_shape() == asked
    assert np.array_equal(pg.images(), generate(load_generator(ROOT / "models" / "colour.h5"), [3] * 4, seed=2,
                                                attributes=asked))
    assert "--color '#e03c31' --seed 2" in pg.status.value
