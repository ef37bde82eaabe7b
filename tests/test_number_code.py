"""--number-code: a one-bit pairs generator that draws a number of the asked side from its noise and is conditioned
on it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY, assert_one_line_error, run_main, tiny_config
from step_callbacks import StopAt

import cgan_mnist
from cgan import morphs
from cgan.data import PAIRS_BELOW50, dataset_of
from cgan.errors import TrainingStopped
from cgan.layers import NumberCode, drawn_numbers, number_code
from cgan.sampling import class_count, generate, load_generator, noise, save_generator

MEMBERS = PAIRS_BELOW50.number_members().T  # (2, 100): class 1 holds 00-49, class 0 holds 50-99


def tiny_coded_generator():
    return cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"], num_classes=2,
                                      number_members=MEMBERS, image_shape=PAIRS_BELOW50.image_shape,
                                      name=PAIRS_BELOW50.generator_name)


def test_the_code_draws_each_of_a_class_numbers_equally_often_from_the_first_noise_number():
    code = NumberCode(MEMBERS)
    z = np.random.default_rng(0).standard_normal((40_000, 8)).astype(np.float32)
    for label, side in ((1, range(0, 50)), (0, range(50, 100))):
        weights = np.asarray(code(z, np.full((len(z), 1), label, np.int32)))
        assert weights.shape == (len(z), 100) and np.all(weights.sum(1) == 1) and set(np.unique(weights)) == {0, 1}
        counts = np.bincount(weights.argmax(1), minlength=100)
        assert counts[list(side)].min() > 0.8 * len(z) / 50 and counts.sum() == counts[list(side)].sum()
    # Only the first noise number picks the number, in order of its size: low noise, low rank.
    ranks = np.asarray(code(np.array([[-3.0, 5], [0.0, -5], [3.0, 0]], np.float32),
                            np.ones((3, 1), np.int32))).argmax(1)
    assert ranks.tolist() == [0, 25, 49]
    # Class weights (a morph) pass to each class's number.
    soft = np.asarray(code(z[:1], np.array([[0.25, 0.75]], np.float32)))
    hard = [np.asarray(code(z[:1], np.array([[c]], np.int32))) for c in (0, 1)]
    np.testing.assert_allclose(soft, 0.25 * hard[0] + 0.75 * hard[1])
    assert NumberCode.from_config(code.get_config()).members.tolist() == MEMBERS.tolist()


def test_the_classes_of_tensorflow_numbers_are_integers_that_pick_their_side():
    # TF's `<=` gives bools; the class must stay an integer, or the code reads it as class weights.
    from cgan.backend import tf

    numbers = tf.constant([[77], [12], [50], [49], [0], [99]])
    classes = PAIRS_BELOW50.label(numbers // 10, numbers % 10)
    assert classes.dtype.is_integer and classes.numpy().ravel().tolist() == [0, 1, 0, 1, 1, 0]
    z = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    drawn = np.asarray(NumberCode(MEMBERS)(z, classes)).argmax(1)
    assert np.all((drawn <= 49) == (classes.numpy().ravel() == 1))
    assert np.asarray(NumberCode(MEMBERS)(z, tf.cast(classes, tf.bool))).argmax(1).tolist() == drawn.tolist()


def test_a_coded_generator_saves_loads_samples_and_morphs_as_a_one_bit_generator(tmp_path):
    path = save_generator(tiny_coded_generator(), tmp_path / "coded.h5")
    g = load_generator(path)
    assert dataset_of(g) is PAIRS_BELOW50 and class_count(g) == 2 and isinstance(number_code(g), NumberCode)
    numbers = np.asarray(drawn_numbers(g, noise(g, 200, seed=1), np.ones((200, 1), np.int32))).ravel()
    assert numbers.min() >= 0 and numbers.max() <= 49 and len(set(numbers)) > 30
    frames = morphs.interpolate(g, 0, 1, frames=3, seed=4)
    np.testing.assert_array_equal(frames[[0, -1]], np.concatenate([generate(g, [0], seed=4), generate(g, [1], seed=4)]))


@pytest.mark.slow
def test_a_coded_generator_in_onnx_runtime_matches_keras(tmp_path):
    import onnxruntime

    g = load_generator(save_generator(tiny_coded_generator(), tmp_path / "coded.h5"))
    assert run_main([f"--generator={tmp_path / 'coded.h5'}", "--export-onnx", str(tmp_path / "coded.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "coded.onnx"), providers=["CPUExecutionProvider"])
    inputs = {"noise": noise(g, 64, seed=0), "label": (np.arange(64) % 2).astype(np.int32).reshape(-1, 1)}
    ours = session.run(None, inputs)[0]
    assert float(np.max(np.abs(ours - np.asarray(g(inputs, training=False))))) <= 1e-4


@pytest.mark.slow
def test_below50_with_the_number_code_trains_d_on_numbers_and_resumes(mnist_small, tmp_path):
    config = tiny_config(dataset="pairs", condition="below50", train_steps=4, save_interval=2, aux_weight=0.5,
                         number_code=True)
    with pytest.raises(TrainingStopped):
        cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, verbose=False, callbacks=[StopAt(2)])
    gan = cgan_mnist.make_gan(config)
    assert gan.discriminator.get_layer("class_projection").units == 100  # D is conditioned on numbers
    assert gan.discriminator.get_layer("classifier").units == 100
    # The fakes D sees are labelled with the numbers G drew, on the side asked for.
    z, asked = gan._noise(64), np.repeat([[0], [1]], 32, axis=0).astype(np.int32)
    numbers = np.asarray(gan._fake_conditions(z, {"label": asked})["label"]).ravel()
    assert np.all((numbers <= 49) == (asked.ravel() == 1))
    path = cgan_mnist.resume(tmp_path, verbose=False)
    generator = load_generator(path)
    assert dataset_of(generator) is PAIRS_BELOW50 and class_count(generator) == 2
    import csv

    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert 3 < float(rows[0]["d_class_loss"]) < 6.5  # D's classifier starts near guessing among 100 numbers: log 100


@pytest.mark.parametrize("argv, message", [
    (["--number-code"], "--number-code is for --dataset pairs --condition below50"),
    (["--dataset", "pairs", "--number-code"], "--number-code is for --dataset pairs --condition below50"),
    (["--dataset", "pairs", "--condition", "below50", "--number-code", "--aux-target", "number"],
     "--number-code does not go with --aux-target number"),
    (["--dataset", "pairs", "--condition", "below50", "--number-code", "--unconditional"],
     "--number-code does not go with --unconditional"),
])
def test_the_number_code_is_for_below50_pairs_only(argv, message, tmp_path, capsys):
    assert_one_line_error(run_main([*argv, "--out-dir", str(tmp_path / "run")]), capsys, message)
    assert list(tmp_path.iterdir()) == []
