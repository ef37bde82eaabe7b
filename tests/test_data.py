"""cgan/data.py: the pixel range, reading MNIST from .npz and IDX files, refusing bad data, and the batches."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from conftest import assert_one_line_error, run_main

from cgan.data import MNIST, postprocess, preprocess, shuffled_batches


def test_preprocess_postprocess_round_trip():
    pixels = np.resize(np.arange(256, dtype=np.uint8), (2, 28, 28))
    scaled = preprocess(pixels)
    assert scaled.shape == (2, 28, 28, 1) and scaled.dtype == np.float32
    assert scaled.min() == -1 and scaled.max() == 1
    np.testing.assert_array_equal(postprocess(scaled), pixels)
    wide = np.resize(np.arange(256, dtype=np.uint8), (1, 28, 56))
    np.testing.assert_array_equal(postprocess(preprocess(wide)), wide)  # nothing assumes 28x28
    assert postprocess(np.array([[[[-3.0]], [[3.0]]]])).ravel().tolist() == [0, 255]  # clipped, not wrapped


def test_the_dataset_description_names_shape_and_classes():
    assert MNIST.image_shape == (28, 28, 1) and MNIST.num_classes == 10
    assert [MNIST.parse_class(t) for t in ("0", " 7", "9")] == [0, 7, 9]
    for bad in ("10", "-1", "seven", "1.5"):
        with pytest.raises(ValueError, match="is not a digit 0-9"):
            MNIST.parse_class(bad)


def test_load_npz_and_default():
    x, y = MNIST.load()  # data/mnist.npz, the project's own copy
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.shape == (60000,) and y.dtype == np.int32
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    xt, _ = MNIST.load(split="test")
    assert xt.shape == (10000, 28, 28)
    with pytest.raises(ValueError, match="split"):
        MNIST.load(split="validation")


def write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_folder(mnist_small, tmp_path, gz):
    x, y = MNIST.load(mnist_small)
    ext = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", x, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", y, gz)
    x2, y2 = MNIST.load(tmp_path)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_without_the_default_file_the_keras_download_is_the_fallback(monkeypatch, mnist_small):
    import dataclasses

    from cgan.backend import keras

    missing = dataclasses.replace(MNIST, default_path=mnist_small.parent / "absent.npz")
    with np.load(mnist_small) as d:
        arrays = ((d["x_train"], d["y_train"]), (d["x_test"], d["y_test"]))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: arrays)
    x, _ = missing.load(split="test")
    assert x.shape == (256, 28, 28)

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(Exception, match="could not download") as raised:
        missing.load()
    assert type(raised.value).__name__ == "InputError" and "--data" in str(raised.value)


def test_bad_data_gets_one_line_naming_the_path(tmp_path, capsys, mnist_small):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, x_train=np.zeros((10, 32, 32), np.uint8), y_train=np.zeros(10, np.uint8))
    bad_labels = tmp_path / "labels.npz"
    np.savez(bad_labels, x_train=np.zeros((10, 28, 28), np.uint8), y_train=np.full(10, 12, np.uint8))
    no_keys = tmp_path / "nokeys.npz"
    np.savez(no_keys, images=np.zeros((10, 28, 28), np.uint8))
    truncated_idx = tmp_path / "idx"
    truncated_idx.mkdir()
    x, y = MNIST.load(mnist_small)
    write_idx(truncated_idx / "train-images-idx3-ubyte", x, False)
    (truncated_idx / "train-images-idx3-ubyte").write_bytes(
        (truncated_idx / "train-images-idx3-ubyte").read_bytes()[:5000])
    write_idx(truncated_idx / "train-labels-idx1-ubyte", y, False)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = {tmp_path / "missing.npz": "no such file", corrupt: "not a readable .npz", wrong_shape: "(n, 28, 28)",
             bad_labels: "labels must be digits 0-9", no_keys: "missing x_train", truncated_idx: "header promises",
             empty_dir: "train-images-idx3-ubyte"}
    for path, message in cases.items():
        code = run_main(["--data", str(path), "--train-steps", "1", "--out-dir", str(tmp_path / "run")])
        err = assert_one_line_error(code, capsys, message)
        assert str(path) in err
    assert not (tmp_path / "run").exists()  # bad data is found before anything is written


def test_batches_run_without_the_tf_data_autotuner(mnist_small):
    # With the autotuner on, `fit` often waited at its end for the autotuner's next wake-up (its
    # period doubles from 10 ms to a minute): 39 s after a 1,000-step run. The wait comes and goes,
    # too irregularly for a timing test, so this checks the setting that removed it.
    images, labels = MNIST.load(mnist_small)
    dataset = MNIST.batches(images, labels, batch_size=16, seed=0)
    assert dataset.options().autotune.enabled is False
    first = next(iter(dataset))
    assert first[0].shape == (16, 28, 28, 1) and set(first[1]) == {"label"} and first[1]["label"].shape == (16, 1)


def test_the_batch_of_a_step_depends_only_on_seed_and_step(mnist_small):
    images, labels = MNIST.load(mnist_small)
    from_start = list(shuffled_batches(images, labels, batch_size=100, seed=4).take(12))
    from_step_7 = list(shuffled_batches(images, labels, batch_size=100, seed=4, start_step=7).take(5))
    for a, b in zip(from_start[7:], from_step_7):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1]["label"], b[1]["label"])
    # Within an epoch (512 images; batches 0-4 are its first 500) no image comes twice: a permutation, not a draw.
    real = {row.tobytes() for row in preprocess(images).reshape(512, -1)}
    seen = [row.tobytes() for batch in from_start[:5] for row in np.asarray(batch[0]).reshape(100, -1)]
    assert len(set(seen)) == 500 and set(seen) <= real
    other_seed = next(iter(shuffled_batches(images, labels, batch_size=100, seed=5)))
    assert not np.array_equal(other_seed[1]["label"], from_start[0][1]["label"])
    # Pixels arrive in the networks' range and match the images they came from.
    assert float(np.min(from_start[0][0])) >= -1 and float(np.max(from_start[0][0])) <= 1
