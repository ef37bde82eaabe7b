"""cgan/shape.py: Morpho-MNIST's measures of drawn shapes whose thickness, slant, width and height are known."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from cgan import evaluation, shape
from cgan.sampling import generate, load_generator


def bar(width: float, height: float = 20, slant: float = 0.0, size: int = 28, supersample: int = 8) -> np.ndarray:
    """A white bar `width` pixels wide and `height` tall on black, centred, its top leaning right by `slant`
    radians; anti-aliased (each pixel the share of it inside the bar), as MNIST's strokes are."""
    fine = size * supersample
    rows, cols = (np.mgrid[:fine, :fine].astype(np.float64) + 0.5) / supersample
    centre = size / 2
    # each row's centre moves right as the row goes up: x = centre + tan(slant) * (centre - y)
    shifted = cols - (centre + np.tan(slant) * (centre - rows))
    inside = (np.abs(shifted) < width / 2) & (np.abs(rows - centre) < height / 2)
    cover = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return np.rint(255 * cover).astype(np.uint8)


def attributes(image) -> dict[str, float]:
    return dict(zip(shape.ATTRIBUTES, shape.measure_one(image)))


@pytest.mark.parametrize("width", [2, 3, 4, 6])
def test_an_upright_bar_measures_its_own_width_as_thickness_and_width(width):
    found = attributes(bar(width))
    assert found["thickness"] == pytest.approx(width, rel=0.15)
    assert found["width"] == pytest.approx(width, abs=0.5)
    assert found["height"] == pytest.approx(20, abs=0.5)
    assert found["slant"] == pytest.approx(0.0, abs=0.01)
    assert found["area"] == pytest.approx(width * 20, rel=0.05)
    assert found["length"] == pytest.approx(20 - width, abs=width / 2 + 1)  # the axis stops short of the ends


@pytest.mark.parametrize("angle", [-0.4, -0.2, 0.2, 0.4])
def test_a_sheared_bar_measures_its_slant_and_keeps_its_width(angle):
    found, upright = attributes(bar(4, slant=angle)), attributes(bar(4))
    assert found["slant"] == pytest.approx(angle, abs=0.03)  # positive: the top leans right
    assert found["width"] == pytest.approx(upright["width"], abs=0.6)  # de-slanted before it is measured
    assert found["height"] == pytest.approx(upright["height"], abs=0.5)
    assert found["thickness"] == pytest.approx(4 * np.cos(angle), rel=0.15)  # across the stroke, not along a row


def test_a_blank_image_has_no_shape_and_the_batch_map_keeps_the_order():
    assert np.isnan(shape.measure_one(np.zeros((28, 28), np.uint8))).all()
    images = np.stack([bar(w) for w in (2, 3, 4, 5, 6)] * 120 + [np.zeros((28, 28), np.uint8)])
    table = shape.measure(images, workers=2)
    assert table.shape == (601, len(shape.ATTRIBUTES))
    np.testing.assert_array_equal(table[:5], np.stack([shape.measure_one(image) for image in images[:5]]))
    np.testing.assert_array_equal(table[595:600], table[:5])
    assert np.isnan(table[-1]).all()


def test_real_digits_measure_as_the_paper_reports():
    """Morpho-MNIST reports MNIST's training digits at about 2.9 px thick with a slant near 0.1 rad."""
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images, labels = data["x_test"][:300], data["y_test"][:300]
    table = shape.measure(images, workers=1)
    thickness, slant = table[:, 0], table[:, 1]
    assert 2.0 < np.median(thickness) < 3.5
    assert 0.0 < np.median(slant) < 0.3  # most digits lean right
    ones, eights = table[labels == 1], table[labels == 8]
    assert np.median(ones[:, 2]) < np.median(eights[:, 2])  # a 1 is narrower than an 8


def test_compare_reports_a_known_shift_in_the_unit_in_real_spreads_and_as_a_distance():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4000, len(shape.ATTRIBUTES)))
    real_labels = rng.integers(0, 2, 4000)
    moved = real.copy()
    moved[:, 0] += 0.5 * (real_labels == 1)  # class 1 thicker by half a unit
    moved[5, :] = np.nan  # a blank image: left out
    result = shape.compare(moved, real_labels, real, real_labels, classes=2)
    assert result.rows == ("all", "0", "1")
    one = result.rows.index("1")
    assert result.shift[one][0] == pytest.approx(0.5, abs=1e-3)
    assert result.shift_sds[one][0] == pytest.approx(0.5 / real[real_labels == 1, 0].std(), abs=1e-3)
    assert result.wasserstein[one][0] == pytest.approx(0.5, abs=0.02)
    assert result.shift[result.rows.index("0")][0] == pytest.approx(0.0, abs=0.01)
    assert all(abs(x) < 0.01 for x in result.shift[one][1:])
    assert "thickness (px)" in shape.format_comparisons({"samples": result})


@pytest.mark.slow
def test_the_shipped_generator_draws_digits_of_real_shape_and_noise_does_not(tiny_generator_file):
    digits = np.repeat(np.arange(10), 100)
    shipped = evaluation.shape_section(generate(load_generator(ROOT / "cgan_mnist.h5"), digits, seed=0), digits,
                                       per_digit=100)
    overall = shipped["generator"].shift_sds[0]  # every digit together
    assert max(abs(x) for x in overall) < 0.25  # measured 0.03
    untrained = evaluation.shape_section(generate(load_generator(tiny_generator_file), digits, seed=0), digits,
                                         per_digit=100)["generator"]
    assert not all(abs(x) < 0.25 for x in untrained.shift_sds[0] if np.isfinite(x))


def test_the_command_measures_a_saved_npz_and_writes_its_table(tmp_path, capsys):
    images = np.stack([bar(w) for w in (2, 4, 6)] * 4)
    labels = np.array([1, 1, 7] * 4)
    np.savez(tmp_path / "samples.npz", images=images, labels=labels)  # the layout of --save-npz
    out = tmp_path / "shapes.npz"
    assert shape.main([str(tmp_path / "samples.npz"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "thickness (px)" in printed and printed.splitlines()[1].split()[:2] == ["all", "12"]
    with np.load(out) as saved:
        assert list(saved["names"]) == list(shape.ATTRIBUTES)
        np.testing.assert_array_equal(saved["labels"], labels)
        np.testing.assert_allclose(saved["attributes"][:3, 0], [2, 4, 6], rtol=0.15)


@pytest.mark.parametrize("make, argv, message", [
    (None, ["missing.npz"], "not a readable .npz"),
    (lambda p: np.savez(p, x=np.zeros(3)), ["bad.npz"], "no `images` array"),
    (lambda p: np.savez(p, images=np.zeros((2, 28, 28))), ["bad.npz"], "must be uint8"),
    (lambda p: np.savez(p, images=np.zeros((2, 28, 28), np.uint8), labels=[1]), ["bad.npz"], "1 labels for 2 images"),
    (None, ["--out", "table.csv", "--limit", "2"], "--out must name an .npz file"),
    (None, ["--limit", "0"], "--limit must be at least 1"),
])
def test_the_command_refuses_bad_input_in_one_line(tmp_path, capsys, monkeypatch, make, argv, message):
    monkeypatch.chdir(tmp_path)
    if make:
        make(tmp_path / "bad.npz")
    assert shape.main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "table.csv").exists()
