"""Beyond one digit: two-digit pairs (28x56) and Fashion-MNIST, from their descriptions to training, sampling and
scoring."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION_DIR, ROOT, TINY, assert_one_line_error, needs_fashion, run_main, tiny_config
from step_callbacks import StopAt

import cgan_mnist
from cgan.data import FASHION, MNIST, PAIRS_BELOW50, PAIRS_NUMBER, dataset_named, dataset_of
from cgan.errors import TrainingStopped, UserError
from cgan.sampling import load_generator, save_generator


def test_pair_labels_and_condition_bits_for_hand_checked_pairs():
    for left, right, number, below50 in [(4, 9, 49, 1), (5, 0, 50, 0), (0, 5, 5, 1), (9, 9, 99, 0), (0, 0, 0, 1),
                                         (3, 7, 37, 1), (7, 3, 73, 0)]:
        assert PAIRS_NUMBER.label(left, right) == number
        assert PAIRS_BELOW50.label(left, right) == below50
    assert PAIRS_NUMBER.class_names[5] == "05" and PAIRS_NUMBER.num_classes == 100
    assert [PAIRS_NUMBER.parse_class(t) for t in ("05", "5", "99", "00")] == [5, 5, 99, 0]
    assert PAIRS_BELOW50.class_names == ("50-99", "00-49")
    assert [PAIRS_BELOW50.parse_class(t) for t in ("1", "0", "00-49")] == [1, 0, 1]
    with pytest.raises(ValueError, match="100 is not a number 0-99"):
        PAIRS_NUMBER.parse_class("100")
    with pytest.raises(ValueError, match="2 is not a condition 0-1"):
        PAIRS_BELOW50.parse_class("2")


def test_pair_batches_are_a_function_of_seed_and_step_and_labelled_by_their_digits():
    # each image shows its class as grey
    digits = np.stack([np.full((28, 28), 10 * d, np.uint8) for d in range(10)] * 3)
    classes = np.tile(np.arange(10), 3).astype(np.int32)

    def batch(dataset, seed, step):
        images, given = next(iter(dataset.batches(digits, classes, batch_size=32, seed=seed, start_step=step)))
        return np.asarray(images), np.asarray(given["label"])

    images, labels = batch(PAIRS_NUMBER, 3, 7)
    assert images.shape == (32, 28, 56, 1) and labels.shape == (32, 1)
    pixels = np.rint((images[..., 0] + 1) * 127.5).astype(int)
    left, right = pixels[:, 0, 0] // 10, pixels[:, 0, 28] // 10
    assert np.array_equal(labels[:, 0], 10 * left + right)
    assert np.all(pixels[:, :, :28] == pixels[:, :1, :1]) and np.all(pixels[:, :, 28:] == pixels[:, :1, 28:29])
    again_images, again_labels = batch(PAIRS_NUMBER, 3, 7)
    assert np.array_equal(images, again_images) and np.array_equal(labels, again_labels)
    assert not np.array_equal(batch(PAIRS_NUMBER, 3, 8)[1], labels)
    assert not np.array_equal(batch(PAIRS_NUMBER, 4, 7)[1], labels)
    below_images, below_labels = batch(PAIRS_BELOW50, 3, 7)
    assert np.array_equal(below_images, images)  # the same pairs; only the label differs
    assert np.array_equal(below_labels[:, 0], (labels[:, 0] <= 49).astype(np.int32))
    # --aux-target number: the same pairs again, with their numbers, which map to the labels
    numbered = next(iter(PAIRS_BELOW50.batches(digits, classes, batch_size=32, seed=3, start_step=7, numbers=True)))
    assert np.array_equal(np.asarray(numbered[0]), images) and np.array_equal(np.asarray(numbered[1]["label"]), labels)
    members = PAIRS_BELOW50.number_members()
    assert members.shape == (100, 2) and np.all(members.sum(axis=1) == 1)
    assert np.array_equal(np.argmax(members, axis=1), (np.arange(100) <= 49).astype(int))
    assert np.array_equal(PAIRS_NUMBER.number_members(), np.eye(100))
    with pytest.raises(ValueError, match="show no number"):
        MNIST.batches(digits, classes, batch_size=4, seed=0, numbers=True)


def test_dataset_names_and_conditions():
    assert dataset_named("pairs", "below50") is PAIRS_BELOW50 and dataset_named("fashion") is FASHION
    with pytest.raises(UserError, match="--condition must be number or below50"):
        dataset_named("pairs", "odd")
    with pytest.raises(UserError, match="--dataset must be one of"):
        dataset_named("cifar")


@needs_fashion
def test_the_fashion_loader_reads_debians_files_and_names_its_classes():
    x, y = FASHION.load(split="test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [1000] * 10
    assert FASHION.load(FASHION_DIR, "train")[0].shape == (60000, 28, 28)
    assert [FASHION.parse_class(t) for t in ("shirt", "Shirt", "6", "ankle boot", "boot", "T-shirt/top", "tshirt")] == \
        [6, 6, 6, 9, 9, 0, 0]
    with pytest.raises(ValueError, match="'hat' is not a class 0-9 \\(or one of t-shirt/top, trouser"):
        FASHION.parse_class("hat")


@needs_fashion
def test_a_fashion_folder_with_a_missing_file_is_refused_in_one_line(tmp_path, capsys):
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(FASHION_DIR / name, tmp_path / name)
    with pytest.raises(UserError, match="expected train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz"):
        FASHION.load(tmp_path, "train")
    code = run_main(["--dataset", "fashion", "--data", str(tmp_path), "--train-steps", "1",
                     "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "the Fashion-MNIST IDX files")
    assert not (tmp_path / "run").exists()


def test_the_keras_fallback_says_so_when_offline(monkeypatch):
    from cgan.backend import keras

    monkeypatch.setattr(type(FASHION.default_path), "exists", lambda self: False)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError, match="keras.datasets.fashion_mnist could not download .* pass --data PATH"):
        FASHION.load()


@pytest.fixture(scope="module")
def fashion_small(tmp_path_factory) -> Path:
    """512 training and 256 test images of Fashion-MNIST as a folder of gzipped IDX files."""
    if not FASHION_DIR.is_dir():
        pytest.skip(needs_fashion.kwargs["reason"])
    folder = tmp_path_factory.mktemp("fashion")
    for split, prefix, count in (("train", "train", 512), ("test", "t10k", 256)):
        images, labels = FASHION.load(split=split)
        for kind, array in (("images-idx3", images[:count]), ("labels-idx1", labels[:count].astype(np.uint8))):
            header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
                f.write(header + array.tobytes())
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["pairs-number", "pairs-below50", "fashion"])
def test_a_few_real_steps_of_each_dataset_train_and_record_what_they_draw(dataset, mnist_small,
                                                                          fashion_small, tmp_path):
    name, _, condition = dataset.partition("-")
    # the one-bit pairs with WGAN-GP too: the gradient penalty on 28x56 images, five batches a step
    loss = {"loss": "wgan-gp", "critic_steps": 5} if condition == "below50" else {}
    config = tiny_config(dataset=name, condition=condition or "number", train_steps=3, save_interval=3, **loss)
    data = fashion_small if name == "fashion" else mnist_small
    expected = dataset_named(name, config.condition)
    path = cgan_mnist.train(config, out_dir=tmp_path, data=data, verbose=False)
    generator = load_generator(path)
    assert dataset_of(generator) is expected
    assert generator.output.shape[1:] == expected.image_shape
    untrained = cgan_mnist.config_generator(config)
    assert any(not np.allclose(a, b) for a, b in zip(generator.get_weights(), untrained.get_weights()))
    grid = tmp_path / "samples" / "step_000003.png"
    assert grid.is_file()
    from PIL import Image

    rows = len(expected.shown_classes())
    with Image.open(grid) as image:
        assert image.size == (10 * (2 * expected.image_shape[1] + 2) + 2, rows * (2 * expected.image_shape[0] + 2) + 2)


@pytest.mark.slow
def test_below50_with_the_classifier_on_numbers_trains_and_resumes(mnist_small, tmp_path):
    config = tiny_config(dataset="pairs", condition="below50", train_steps=4, save_interval=2, aux_weight=1.0,
                         aux_target="number")
    with pytest.raises(TrainingStopped):
        cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, verbose=False, callbacks=[StopAt(2)])
    gan = cgan_mnist.make_gan(config)
    assert gan.discriminator.get_layer("classifier").units == 100  # D reads numbers
    assert set(gan.generator.input) == {"noise", "label"} and gan.generator.input["label"].shape[-1] == 1
    path = cgan_mnist.resume(tmp_path, verbose=False)
    generator = load_generator(path)
    assert dataset_of(generator) is PAIRS_BELOW50  # a one-bit generator, as without the flag
    import csv

    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["d_class_loss"])) and np.isfinite(float(r["g_class_loss"])) for r in rows)
    # D starts near guessing among 100 numbers: log 100 = 4.6
    assert 3 < float(rows[0]["d_class_loss"]) < 6.5


@pytest.mark.parametrize("argv, message", [
    (["--aux-target", "number"], "--aux-target number needs --dataset pairs"),
    (["--dataset", "fashion", "--aux-target", "number"], "--aux-target number needs --dataset pairs"),
    (["--dataset", "pairs", "--condition", "below50", "--aux-target", "number", "--aux-weight", "0"],
     "--aux-target number needs an auxiliary classifier"),
    (["--aux-target", "digits"], "invalid choice"),
])
def test_a_classifier_on_numbers_is_for_pairs_with_a_classifier(argv, message, tmp_path, capsys):
    assert_one_line_error(run_main([*argv, "--out-dir", str(tmp_path / "run")]), capsys, message)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_pairs_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    files = {}
    for dataset in (PAIRS_NUMBER, PAIRS_BELOW50):
        generator = cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"],
                                               num_classes=dataset.num_classes, image_shape=dataset.image_shape,
                                               name=dataset.generator_name)
        files[dataset.condition] = save_generator(generator, folder / f"{dataset.key}.h5")
    return files


def test_a_pairs_generator_samples_numbers_and_records_its_condition(tiny_pairs_files, tmp_path, capsys):
    number = tiny_pairs_files["number"]
    assert dataset_of(load_generator(number)) is PAIRS_NUMBER
    assert run_main([f"--generator={number}", "--number", "05", "--count", "4", "--seed", "1",
                     "--out-dir", str(tmp_path), "--save-npz", str(tmp_path / "n.npz")]) == 0
    assert (tmp_path / "number05_n4_seed1.png").is_file()
    with np.load(tmp_path / "n.npz") as saved:
        assert saved["images"].shape == (4, 28, 56) and saved["labels"].tolist() == [5] * 4
    assert run_main([f"--generator={number}", "--interpolate", "12", "87", "--frames", "3", "--seed", "1",
                     "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "morph12-87_f3_seed1.png").is_file()
    below = tiny_pairs_files["below50"]
    assert run_main([f"--generator={below}", "--condition", "1", "--count", "2", "--seed", "1",
                     "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "condition00-49_n2_seed1.png").is_file()


@pytest.mark.parametrize("which, argv, message", [
    ("mnist", ["--number", "37"], "draws single digits (28x28), so --number does not apply: use --digit N"),
    ("mnist", ["--condition", "1"], "so --condition does not apply: use --digit N"),
    ("number", ["--digit", "3"], "draws two-digit numbers (28x56), so --digit does not apply: use --number NN"),
    ("number", ["--digits", "3", "4"], "so --digits does not apply: use --number NN"),
    ("number", ["--number", "123"], "--number: 123 is not a number 0-99 for this generator"),
    ("number", ["--condition", "1"], "so --condition does not apply: use --number NN"),
    ("below50", ["--number", "37"], "conditioned on whether they are at most 49, so --number does not apply: "
                                    "use --condition 1 (or 0)"),
    ("below50", ["--condition", "2"], "--condition: 2 is not a condition 0-1 for this generator"),
    ("below50", ["--interpolate", "0", "7"], "--interpolate: 7 is not a condition 0-1"),
])
def test_a_class_the_generator_was_not_trained_for_gets_one_line(tiny_pairs_files, tiny_generator_file, tmp_path,
                                                                 capsys, which, argv, message):
    path = tiny_generator_file if which == "mnist" else tiny_pairs_files[which]
    assert_one_line_error(run_main([f"--generator={path}", *argv, "--out-dir", str(tmp_path)]), capsys, message)
    assert list(tmp_path.iterdir()) == []


def test_condition_is_for_pairs_when_training(tmp_path, capsys):
    code = run_main(["--dataset", "fashion", "--condition", "below50", "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "--condition below50 is for --dataset pairs")
    code = run_main(["--dataset", "fashion", "--condition", "shape", "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "--condition shape measures digits: it is for --dataset mnist")
    code = run_main(["--dataset", "pairs", "--condition", "odd", "--out-dir", str(tmp_path / "run")])
    assert_one_line_error(code, capsys, "--condition must be number or below50")
    assert list(tmp_path.iterdir()) == []


def test_fashion_grids_name_their_rows(tmp_path):
    generator = cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"],
                                           name=FASHION.generator_name)
    path = save_generator(generator, tmp_path / "fashion.h5")
    assert run_main([f"--generator={path}", "--classes", "shirt", "ankle boot", "--count", "3", "--seed", "2",
                     "--out-dir", str(tmp_path)]) == 0
    from PIL import Image

    with Image.open(tmp_path / "classes_shirt_ankle-boot_n3_seed2.png") as image:
        grid_width = 3 * (2 * 28 + 2) + 2
        assert image.size[0] > grid_width  # a margin for the names
        margin = np.asarray(image)[:, : image.size[0] - grid_width]
        assert margin.min() < 128  # text drawn there


@pytest.mark.slow
@pytest.mark.parametrize("name, asked, least, confident", [
    ("pairs_number", [5, 37, 49, 50, 99, 0, 12, 86], 0.85, 0.85),  # 00-09 included
    ("pairs_below50", [1, 0], 0.95, 0.85),
])
def test_the_shipped_pairs_models_draw_what_is_asked_for(name, asked, least, confident):
    from cgan import evaluation
    from cgan.sampling import generate

    generator = load_generator(ROOT / "models" / f"{name}.h5")
    dataset = dataset_of(generator)
    assert dataset.key == name
    labels = np.repeat(asked, 40 // len(asked) * 2)
    scores = evaluation.score_pairs(evaluation.Evaluator(), dataset, generate(generator, labels, seed=3), labels)
    assert scores.condition_met >= least, scores.per_class_met
    assert scores.both_confident >= confident


@pytest.mark.slow
@needs_fashion
def test_the_shipped_fashion_model_draws_the_class_asked_for():
    from cgan import evaluation

    generator = load_generator(ROOT / "models" / "fashion.h5")
    assert dataset_of(generator) is FASHION
    evaluator = evaluation.Evaluator(dataset=FASHION, second=False)  # the convnet reads the classes
    scores = evaluator.score_generator(generator, per_digit=20, seed=3)
    assert scores.accuracy >= 0.85, scores.per_digit_accuracy


@pytest.mark.slow
def test_evaluate_scores_a_pairs_generator_and_the_shape_of_its_halves(capsys, mnist_small):
    """--evaluate of a pairs generator: the pair table, and Morpho-MNIST's measures of each half, per digit asked."""
    path = ROOT / "models" / "pairs_number.h5"
    assert cgan_mnist.main(["--evaluate", f"--generator={path}", "--count", "2", "--json",
                            "--data", str(mnist_small)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_class"] == 2 and out["generator"]["count"] == 200 and out["real (test)"]["count"] == 200
    assert out["generator"]["condition_met"] > 0.8
    halves = out["shape"]["generator"]
    assert halves["rows"] == ["all", *map(str, range(10))]  # each half's digit is known from the number asked
    assert max(abs(x) for x in halves["shift_sds"][0]) < 0.5  # the halves are shaped as real digits
