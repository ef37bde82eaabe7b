"""cgan/conditions.py and --condition shape: what a shape generator records, how sampling fills in what is not
asked, the measures cache beside the data, and the shape flags and --sweep as a user types them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, TINY, assert_one_line_error, run_main

import cgan_mnist
from cgan import conditions, evaluation, sample_command, shape
from cgan.data import MNIST
from cgan.errors import UserError
from cgan.sampling import generate, load_generator, save_generator


def shape_generator(**kwargs):
    return cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"],
                                      continuous=conditions.KINDS["shape"], **kwargs)


def test_fill_keeps_what_is_asked_and_takes_the_rest_from_the_nearest_real_digits():
    generator = shape_generator()
    # class c's real digits: thickness t in 1..5, slant 0.1 t, width 10 + c, height 20; one odd digit
    t = np.linspace(1, 5, 400)
    table = np.concatenate([np.stack([t, 0.1 * t, np.full_like(t, 10 + c), np.full_like(t, 20)], 1)
                            for c in range(10)])
    labels = np.repeat(np.arange(10), len(t))
    conditions.set_statistics([generator], {"label": labels, "shape": table}, seed=3)
    mean, sd, reference = conditions.statistics(generator)
    np.testing.assert_allclose(mean, table.mean(0), rtol=1e-5)
    np.testing.assert_allclose(sd[:3], table.std(0)[:3], rtol=1e-5)
    assert sd[3] > 0  # a constant attribute does not divide by zero
    assert reference.shape == (10, conditions.REFERENCE_ROWS, 4) and np.all(reference[7][:, 2] == 17)

    rng = np.random.default_rng(0)
    asked = conditions.fill(generator, [7] * 50, {"thickness": 4.0}, rng)
    assert np.all(asked[:, 0] == 4.0) and np.all(asked[:, 2] == 17)
    # the slant of real 7s of about that thickness: 0.4 (their 16 nearest lie within 0.04 px of thickness)
    assert np.all(np.abs(asked[:, 1] - 0.4) < 0.01)
    plain = conditions.fill(generator, [2] * 200, None, rng)  # nothing asked: real rows of the class
    assert {tuple(row) for row in plain} <= {tuple(row) for row in reference[2].astype(np.float32)}
    assert len({tuple(row) for row in plain}) > 50
    with pytest.raises(UserError, match="takes no colour"):
        conditions.fill(generator, [1], {"colour": 1.0}, rng)

    # the same seed, the same images; the attribute asked changes them
    a, b = (generate(generator, [3, 3], seed=5) for _ in range(2))
    assert np.array_equal(a, b)
    assert not np.array_equal(generate(generator, [3, 3], seed=5, attributes={"thickness": 5.0}), a)
    with pytest.raises(UserError, match="not trained with --condition shape"):
        generate(cgan_mnist.build_generator(latent_dim=8, width=8), [3], seed=0, attributes={"slant": 0.2})


def test_the_saved_generator_records_its_conditions(tmp_path):
    generator = shape_generator()
    table = np.random.default_rng(1).normal(size=(100, 4)) + [2.5, 0.1, 14, 20]
    conditions.set_statistics([generator], {"label": np.arange(100) % 10, "shape": table})
    loaded = load_generator(save_generator(generator, tmp_path / "shape.h5"))
    assert conditions.names(loaded) == shape.CONDITIONED and conditions.units(loaded) == ("px", "rad", "px", "px")
    for saved, kept in zip(conditions.statistics(generator), conditions.statistics(loaded)):
        np.testing.assert_array_equal(saved, kept)
    assert np.array_equal(generate(loaded, [4, 5], seed=2, attributes={"slant": 0.3}),
                          generate(generator, [4, 5], seed=2, attributes={"slant": 0.3}))
    assert conditions.names(cgan_mnist.build_generator(latent_dim=8, width=8)) == ()


def test_measures_are_taken_once_and_kept_beside_the_data(tmp_path, monkeypatch):
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images = data["x_train"][:60]
    source = tmp_path / "mine.npz"
    source.touch()
    calls = []
    measure = shape.measure
    monkeypatch.setattr(shape, "measure", lambda x: calls.append(len(x)) or measure(x))
    first = conditions.measures_of(images, source)
    assert calls == [60] and (tmp_path / "mine.shape.npz").is_file()
    again = conditions.measures_of(images, source)
    assert calls == [60] and np.array_equal(first, again)
    columns = [shape.ATTRIBUTES.index(name) for name in shape.CONDITIONED]
    np.testing.assert_allclose(first, measure(images)[:, columns], rtol=1e-6)
    other = images.copy()
    other[0, 10, 10] ^= 255  # other data, another digest: measured again, not read from the file
    conditions.measures_of(other, source)
    assert calls == [60, 60]


def test_the_shipped_measures_of_mnist_are_its_digits_measures():
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images = data["x_train"]
    rows = np.random.default_rng(0).choice(len(images), 24, replace=False)
    with np.load(ROOT / "data" / "mnist.shape.npz") as saved:
        table = saved["table"]
    assert table.shape == (60_000, 4)
    columns = [shape.ATTRIBUTES.index(name) for name in shape.CONDITIONED]
    np.testing.assert_allclose(table[rows], shape.measure(images[rows])[:, columns], rtol=1e-5)
    assert np.array_equal(conditions.measures_of(images, MNIST.default_path), table)  # and its digest matches


@pytest.fixture(scope="module")
def trained_shape_model(tmp_path_factory, mnist_small):
    run = tmp_path_factory.mktemp("shape_run")
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.items()]
    assert run_main(["--condition", "shape", "--train-steps", "2", "--save-interval", "1", "--precision", "float32",
                     "--data", str(mnist_small), "--out-dir", str(run), *flags]) == 0
    return run / "cgan_mnist.h5"


def test_a_shape_run_trains_and_samples_with_its_flags(trained_shape_model, tmp_path, capsys):
    generator = load_generator(trained_shape_model)
    assert conditions.names(generator) == shape.CONDITIONED
    assert conditions.statistics(generator)[0][3] > 15  # the mean height of real digits, recorded
    assert sample_command.sample_hint(trained_shape_model) == "--digit=6 --thickness 3.5 --slant 0.25"
    out = tmp_path / "out"
    assert run_main([f"--generator={trained_shape_model}", "--digit", "7", "--thickness", "4", "--slant", "0.25",
                     "--count", "5", "--seed", "1", "--out-dir", str(out), "--save-npz", str(out / "a.npz")]) == 0
    with np.load(out / "a.npz") as saved:
        assert saved["images"].shape == (5, 28, 28) and set(saved["labels"].tolist()) == {7}
    assert run_main([f"--generator={trained_shape_model}", "--digits", "1", "7", "--sweep", "thickness", "1.5", "5",
                     "--frames", "4", "--seed", "1", "--out-dir", str(out)]) == 0
    strip = out / "sweep-thickness1.5-5_digit17_f4_seed1.png"
    assert strip.is_file()
    capsys.readouterr()
    bad = [(["--sweep", "colour", "1", "2"], "'colour' is not an attribute"),
           (["--sweep", "slant", "a", "b"], "FROM and TO must be numbers"),
           (["--sweep", "slant", "0", "1", "--slant", "0.2"], "does not go with --slant"),
           (["--thickness", "nan"], "--thickness must be a number"),
           (["--thickness", "-2"], "--thickness is in pixels of a 28x28 image, above 0"),
           (["--slant", "2"], "--slant is an angle in radians"),
           (["--sweep", "width", "4", "40"], "--sweep width is in pixels"),
           (["--sweep", "slant", "0", "1", "--walk", "3"], "--sweep does not go with --walk")]
    for flags, message in bad:
        assert_one_line_error(run_main([f"--generator={trained_shape_model}", "--out-dir", str(out), *flags]),
                              capsys, message)


def test_a_shape_flag_on_a_generator_without_shape_gets_one_line(tiny_generator_file, tmp_path, capsys):
    out = ["--out-dir", str(tmp_path)]
    code = run_main([f"--generator={tiny_generator_file}", "--digit", "7", "--thickness", "4", *out])
    assert_one_line_error(code, capsys, "was not trained with --condition shape, so --thickness does not apply")
    code = run_main([f"--generator={tiny_generator_file}", "--sweep", "slant", "0", "1", *out])
    assert_one_line_error(code, capsys, "so --sweep does not apply")
    assert list(tmp_path.iterdir()) == []
    code = run_main(["--condition", "shape", "--unconditional", "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "does not go with --unconditional")


def test_the_control_section_reads_what_a_generator_draws(trained_shape_model, mnist_small):
    control = evaluation.control_section(load_generator(trained_shape_model), data=mnist_small, per_cell=3)
    assert control.attributes == shape.CONDITIONED
    figures = [*np.ravel(control.error_sds), *control.side_effect_sds, *control.real_side_effect_sds,
               *control.real_error_sds]
    assert all(np.isfinite(x) and x >= 0 for x in figures)
    # two steps of training draw nothing like the digits asked: far from the aims, and from the measure's own
    # noise (a real digit moved by a pixel)
    assert max(np.mean(errors) for errors in control.error_sds) > 0.25
    assert max(control.real_error_sds) < min(np.mean(errors) for errors in control.error_sds)
    text = evaluation.format_control(control)
    assert text.count("\n") == 2 + len(shape.CONDITIONED) and "thickness" in text
    assert control.ends_per_cell == 12 and "3 samples of each digit and value (12 at each end" in text


def test_a_shape_run_resumes_to_the_generator_an_uninterrupted_one_saves(trained_shape_model, tmp_path):
    """The attributes' statistics travel in the checkpoint: a run resumed from step 1 ends where the whole run did."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_shape_model.parent, run)
    (run / "cgan_mnist.h5").unlink()
    for late in sorted((run / "checkpoints").glob("step_*"))[1:]:
        late.unlink()
    resumed = load_generator(cgan_mnist.resume(run, verbose=False))
    whole = load_generator(trained_shape_model)
    for a, b in zip(conditions.statistics(resumed), conditions.statistics(whole)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(generate(resumed, [1, 7], seed=3, attributes={"slant": 0.3}),
                                  generate(whole, [1, 7], seed=3, attributes={"slant": 0.3}))
