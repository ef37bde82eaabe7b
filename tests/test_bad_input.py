"""The bad-input battery: every case gets one line naming the problem, exit status 2 for a usage
error (a flag's value, flags that do not go together) or 1 for the rest (files and folders), no
traceback, and leaves what was on disk exactly as it was.

Each case runs `cgan_mnist.main` in this process against a folder of good and bad files (`disk`),
which is compared byte for byte before and after.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, assert_one_line_error, run_main, tiny_config

import cgan_mnist
from cgan import files
from cgan.backend import keras
from cgan.sampling import save_generator

USAGE, INPUT = 2, 1
NOT_WRITABLE = "/sys/cgan-out"  # refused even to root, which ignores file permissions


def _lambda_generator() -> keras.Model:
    """A generator-shaped model with a Lambda layer whose code would leave a mark if it ran."""
    noise = keras.Input((TINY["latent_dim"],), name="noise")
    label = keras.Input((1,), dtype="int32", name="label")
    x = keras.layers.Dense(28 * 28)(noise)
    x = keras.layers.Lambda(lambda t: t + float(os.system("touch LAMBDA_RAN") * 0))(x)  # noqa: S605
    image = keras.layers.Reshape((28, 28, 1), name="image")(keras.layers.Activation("tanh")(x))
    return keras.Model({"noise": noise, "label": label}, image, name="generator")


def _idx(path: Path, magic: int, shape: tuple[int, ...], body: bytes) -> None:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    with gzip.open(path, "wb") as f:
        f.write(header + body)


@pytest.fixture(scope="module")
def disk(tmp_path_factory, mnist_small, tiny_generator_file, tiny_discriminator_file) -> Path:
    """A folder of everything the cases point at; the cases must leave it as it is."""
    d = tmp_path_factory.mktemp("disk")
    (d / "models").mkdir()
    (d / "models" / "g.h5").write_bytes(tiny_generator_file.read_bytes())
    (d / "models" / "d.h5").write_bytes(tiny_discriminator_file.read_bytes())
    (d / "models" / "text.h5").write_text("not a model\n")
    (d / "models" / "truncated.h5").write_bytes(tiny_generator_file.read_bytes()[:4000])
    (d / "models" / "empty.keras").write_bytes(b"")
    wide = cgan_mnist.build_generator(latent_dim=8, width=8, image_shape=(32, 32, 1))
    save_generator(wide, d / "models" / "32x32.h5")
    cwd = Path.cwd()
    try:  # building the model runs the Lambda's code once, here; loading it must never run it again
        os.chdir(d / "models")
        lam = _lambda_generator()
        lam.save(d / "models" / "lambda.keras")
        lam.save(d / "models" / "lambda.h5")
        (d / "models" / "LAMBDA_RAN").unlink()
    finally:
        os.chdir(cwd)

    data = d / "data"
    data.mkdir()
    (data / "empty.npz").write_bytes(b"")
    with np.load(mnist_small) as m:
        x, y = m["x_train"], m["y_train"]
    np.savez(data / "wrong_keys.npz", images=x, labels=y)
    np.savez(data / "wrong_shape.npz", x_train=x[:, :20, :20], y_train=y, x_test=x[:, :20, :20], y_test=y)
    np.savez(data / "wrong_dtype.npz", x_train=x.astype(np.float32), y_train=y, x_test=x.astype(np.float32), y_test=y)
    np.savez(data / "bad_labels.npz", x_train=x, y_train=y + 10, x_test=x, y_test=y + 10)
    (data / "text.npz").write_text("x_train,y_train\n")
    bad_magic, truncated = data / "bad_magic", data / "truncated"
    for folder in (bad_magic, truncated):
        folder.mkdir()
        for split, n in (("train", 60), ("t10k", 10)):
            _idx(folder / f"{split}-images-idx3-ubyte.gz", 2051, (n, 28, 28), bytes(n * 784))
            _idx(folder / f"{split}-labels-idx1-ubyte.gz", 2049, (n,), bytes(n))
    _idx(bad_magic / "train-images-idx3-ubyte.gz", 0x0D03, (60, 28, 28), bytes(60 * 4 * 784))  # float32 IDX
    whole = (truncated / "train-images-idx3-ubyte.gz").read_bytes()
    (truncated / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    (d / "missing_files").mkdir()
    _idx(d / "missing_files" / "train-images-idx3-ubyte.gz", 2051, (1, 28, 28), bytes(784))

    (d / "a_file").write_text("a file, not a folder\n")
    (d / "folder.npz").mkdir()
    run = d / "run"  # a finished tiny training run, for --resume cases
    cgan_mnist.train(tiny_config(train_steps=2, save_interval=1), out_dir=run, data=mnist_small, verbose=False)
    (d / "not_a_run").mkdir()
    (d / "not_a_run" / "notes.txt").write_text("hello\n")
    return d


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


G = "--generator={disk}/models/g.h5"
TRAIN = ["--train-steps", "2", "--out-dir", "{disk}/new_run"]  # a training command, refused before it starts

# (id, argv, exit status, what the line must say). "{disk}" stands for the disk folder.
CASES = [
    # training flags: wrong type, zero, negative, absurd
    ("train-steps-type", ["--train-steps", "ten", "--out-dir", "{disk}/new_run"], USAGE, "invalid int value"),
    ("train-steps-zero", ["--train-steps", "0", "--out-dir", "{disk}/new_run"], USAGE, "--train-steps must be"),
    ("train-steps-negative", ["--train-steps", "-5", "--out-dir", "{disk}/new_run"], USAGE, "--train-steps must be"),
    ("train-steps-absurd", ["--train-steps", "10000000000", "--out-dir", "{disk}/new_run"], USAGE,
     "--train-steps must be"),
    ("batch-size-zero", [*TRAIN, "--batch-size", "0"], USAGE, "--batch-size must be"),
    ("batch-size-absurd", [*TRAIN, "--batch-size", "1000000"], USAGE, "--batch-size must be"),
    ("latent-dim-negative", [*TRAIN, "--latent-dim", "-3"], USAGE, "--latent-dim must be"),
    ("latent-dim-absurd", [*TRAIN, "--latent-dim", "100000000"], USAGE, "--latent-dim must be"),
    ("g-width-type", [*TRAIN, "--g-width", "1.5"], USAGE, "invalid int value"),
    ("d-width-absurd", [*TRAIN, "--d-width", "50000"], USAGE, "--d-width must be"),
    ("extra-convs-negative", [*TRAIN, "--g-extra-convs", "-1"], USAGE, "--g-extra-convs must be"),
    ("top-width-negative", [*TRAIN, "--g-top-width", "-1"], USAGE, "--g-top-width must be"),
    ("lr-zero", [*TRAIN, "--g-lr", "0"], USAGE, "--g-lr must be"),
    ("lr-negative", [*TRAIN, "--d-lr", "-0.001"], USAGE, "--d-lr must be"),
    ("lr-nan", [*TRAIN, "--g-lr", "nan"], USAGE, "--g-lr must be"),
    ("lr-absurd", [*TRAIN, "--d-lr", "1e9"], USAGE, "--d-lr must be"),
    ("ema-warmup-one", [*TRAIN, "--ema-warmup", "1"], USAGE, "--ema-warmup must be above 1"),
    ("augment-above-one", [*TRAIN, "--augment", "1.5"], USAGE, "--augment is a share of the images, in [0, 1]"),
    ("augment-nan", [*TRAIN, "--augment", "nan"], USAGE, "--augment is a share of the images, in [0, 1]"),
    ("ema-decay-above-one", [*TRAIN, "--ema-decay", "1.5"], USAGE, "--ema-decay must be"),
    ("beta-inf", [*TRAIN, "--beta-2", "inf"], USAGE, "--beta-2 must be"),
    ("save-interval-zero", [*TRAIN, "--save-interval", "0"], USAGE, "--save-interval must be"),
    ("critic-steps-absurd", [*TRAIN, "--critic-steps", "100000"], USAGE, "--critic-steps must be"),
    ("gp-weight-negative", [*TRAIN, "--gp-weight", "-1"], USAGE, "--gp-weight must be"),
    ("aux-weight-nan", [*TRAIN, "--aux-weight", "nan"], USAGE, "--aux-weight must be"),
    ("aux-weight-unconditional", [*TRAIN, "--aux-weight", "1", "--unconditional"], USAGE,
     "does not go with --unconditional"),
    ("class-norm-unconditional", [*TRAIN, "--g-class-norm", "--unconditional"], USAGE, "--g-class-norm needs labels"),
    ("twin-without-classifier", [*TRAIN, "--twin-classifier", "--aux-weight", "0"], USAGE, "give --aux-weight above 0"),
    ("twin-number-target", [*TRAIN, "--dataset", "pairs", "--aux-target", "number", "--twin-classifier"], USAGE,
     "does not go with --aux-target number"),
    ("mode-seeking-negative", [*TRAIN, "--mode-seeking", "-1"], USAGE, "--mode-seeking must be"),
    ("feature-matching-negative", [*TRAIN, "--feature-matching", "-1"], USAGE, "--feature-matching must be"),
    ("loss-unknown", [*TRAIN, "--loss", "l2"], USAGE, "invalid choice"),
    ("precision-unknown", [*TRAIN, "--precision", "float16"], USAGE, "invalid choice"),
    ("limit-zero", [*TRAIN, "--limit", "0"], USAGE, "--limit must be"),
    ("dataset-unknown", [*TRAIN, "--dataset", "cifar"], USAGE, "invalid choice"),
    # sampling flags
    ("seed-negative", [G, "--digit", "3", "--seed", "-1"], USAGE, "--seed must be between"),
    ("seed-absurd", [G, "--digit", "3", "--seed", "99999999999"], USAGE, "--seed must be between"),
    ("count-zero", [G, "--digit", "3", "--count", "0"], USAGE, "--count must be between"),
    ("count-absurd", [G, "--count", "1000000000"], USAGE, "--count must be between"),
    ("digit-out-of-range", [G, "--digit", "10"], USAGE, "not a digit 0-9"),
    ("digit-word", [G, "--digit", "seven"], USAGE, "not a digit 0-9"),
    ("frames-one", [G, "--walk", "5", "--frames", "1"], USAGE, "--frames must be"),
    ("port-absurd", [G, "--serve", "--port", "70000"], USAGE, "--port must be between"),
    # unknown and contradictory flags
    ("unknown-flag", ["--digti", "3"], USAGE, "unrecognized arguments"),
    ("generator-with-training-flag", [G, "--digit", "3", "--train-steps", "100"], USAGE, "--train-steps"),
    ("generator-with-resume", [G, "--resume", "{disk}/run"], USAGE, "--resume"),
    ("digit-without-generator", ["--digit", "3", "--out-dir", "{disk}/new_run"], USAGE, "--digit"),
    ("resume-other-latent-dim", ["--resume", "{disk}/run", "--latent-dim", "32"], USAGE, "--latent-dim"),
    ("resume-with-dataset", ["--resume", "{disk}/run", "--dataset", "fashion"], USAGE, "--dataset"),
    ("gif-without-morph", [G, "--digit", "3", "--gif"], USAGE, "--gif needs"),
    ("condition-without-pairs", ["--condition", "below50", "--out-dir", "{disk}/new_run"], USAGE,
     "--condition below50 is for --dataset pairs"),
    # data
    ("data-missing", [*TRAIN, "--data", "{disk}/data/nope.npz"], INPUT, "no such file or folder"),
    ("data-empty-file", [*TRAIN, "--data", "{disk}/data/empty.npz"], INPUT, "not a readable .npz"),
    ("data-text-file", [*TRAIN, "--data", "{disk}/data/text.npz"], INPUT, "not a readable .npz"),
    ("data-wrong-keys", [*TRAIN, "--data", "{disk}/data/wrong_keys.npz"], INPUT, "expected arrays x_train, y_train"),
    ("data-wrong-shape", [*TRAIN, "--data", "{disk}/data/wrong_shape.npz"], INPUT, "expected uint8 images of shape"),
    ("data-wrong-dtype", [*TRAIN, "--data", "{disk}/data/wrong_dtype.npz"], INPUT, "expected uint8 images"),
    ("data-labels-outside", [*TRAIN, "--data", "{disk}/data/bad_labels.npz"], INPUT, "labels must be"),
    ("idx-bad-magic", [*TRAIN, "--data", "{disk}/data/bad_magic"], INPUT, "bad magic number"),
    ("idx-truncated-gzip", [*TRAIN, "--data", "{disk}/data/truncated"], INPUT, "could not read the IDX files"),
    ("idx-missing-files", [*TRAIN, "--data", "{disk}/missing_files"], INPUT, "expected train-labels-idx1-ubyte"),
    ("fashion-data-missing", [*TRAIN, "--dataset", "fashion", "--data", "{disk}/data/nope"], INPUT, "no such file"),
    # model files
    ("model-missing", ["--generator={disk}/models/nope.h5", "--digit", "3"], INPUT, "no such model file"),
    ("model-text", ["--generator={disk}/models/text.h5", "--digit", "3"], INPUT, "not a loadable Keras model"),
    ("model-truncated", ["--generator={disk}/models/truncated.h5", "--digit", "3"], INPUT,
     "not a loadable Keras model"),
    ("model-empty", ["--generator={disk}/models/empty.keras", "--digit", "3"], INPUT, "not a loadable Keras model"),
    ("model-discriminator", ["--generator={disk}/models/d.h5", "--digit", "3"], INPUT, "not a generator"),
    ("model-other-image-shape", ["--generator={disk}/models/32x32.h5", "--digit", "3"], INPUT, "32x32"),
    ("evaluate-other-image-shape", ["--evaluate", "--generator={disk}/models/32x32.h5"], INPUT, "32x32"),
    ("model-lambda-keras", ["--generator={disk}/models/lambda.keras", "--digit", "3"], INPUT,
     "not a loadable Keras model"),
    ("model-lambda-h5", ["--generator={disk}/models/lambda.h5", "--digit", "3"], INPUT, "not a loadable Keras model"),
    ("evaluate-text-model", ["--evaluate", "--generator={disk}/models/text.h5"], INPUT, "not a loadable Keras model"),
    ("evaluate-count-one", ["--evaluate", G, "--count", "1"], USAGE, "--count must be between 2 and"),
    ("export-onnx-not-onnx", [G, "--export-onnx", "{disk}/g.txt"], USAGE, "--export-onnx must name a .onnx"),
    # output paths and folders
    ("sample-out-dir-is-file", [G, "--digit", "3", "--out-dir", "{disk}/a_file"], INPUT, "cannot be a folder"),
    ("sample-out-dir-inside-file", [G, "--digit", "3", "--out-dir", "{disk}/a_file/x"], INPUT, "cannot be a folder"),
    ("sample-out-dir-not-writable", [G, "--digit", "3", "--out-dir", NOT_WRITABLE], INPUT, "cannot create this folder"),
    ("npz-inside-file", [G, "--digit", "3", "--out-dir", "{disk}/new_samples", "--save-npz", "{disk}/a_file/x.npz"],
     INPUT, "cannot be a folder"),
    ("npz-is-folder", [G, "--digit", "3", "--out-dir", "{disk}/new_samples", "--save-npz", "{disk}/folder.npz"], INPUT,
     "is a folder"),
    ("npz-ends-in-slash", [G, "--digit", "3", "--out-dir", "{disk}/new_samples", "--save-npz", "{disk}/x.npz/"], USAGE,
     "--save-npz must name a .npz file"),
    ("train-out-dir-is-file", [*TRAIN[:2], "--out-dir", "{disk}/a_file"], INPUT, "cannot be a folder"),
    ("train-out-dir-inside-file", [*TRAIN[:2], "--out-dir", "{disk}/a_file/run"], INPUT, "cannot be a folder"),
    ("train-out-dir-not-writable", [*TRAIN[:2], "--out-dir", NOT_WRITABLE], INPUT, "cannot create this folder"),
    ("train-into-a-run", [*TRAIN[:2], "--out-dir", "{disk}/run"], INPUT, "already holds a training run"),
    ("resume-not-a-run", ["--resume", "{disk}/not_a_run"], INPUT, "not a training run folder"),
    ("resume-a-file", ["--resume", "{disk}/a_file"], INPUT, "not a training run folder"),
    ("plot-losses-not-a-run", ["--plot-losses", "{disk}/not_a_run"], INPUT, "no readable losses.csv"),
    ("plot-architecture-into-file", ["--plot-architecture", "{disk}/a_file"], INPUT, "cannot be a folder"),
    ("export-web-into-file", [G, "--export-web", "{disk}/a_file"], INPUT, "exists and is not a folder"),
]


@pytest.mark.parametrize("argv, code, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(disk, capsys, argv, code, message):
    before = _snapshot(disk)
    capsys.readouterr()
    got = run_main([a.format(disk=disk) for a in argv])
    err = assert_one_line_error(got, capsys, message)
    assert got == code, err
    assert _snapshot(disk) == before  # nothing changed, added or half-written
    assert not Path("LAMBDA_RAN").exists()  # a Lambda's code did not run


def test_the_battery_is_large_enough():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_a_second_run_into_a_busy_folder_is_refused(disk, capsys):
    """Two processes on one run folder: while one holds it, the other gets one line (exit 1)."""
    before = _snapshot(disk)
    with files.folder_lock(disk / "run"):  # what a training or resuming process holds
        code = run_main(["--resume", str(disk / "run")])
    assert_one_line_error(code, capsys, "is in use by another training process")
    assert code == INPUT and _snapshot(disk) == before


def test_run_json_records_nothing_a_refused_command_asked_for(disk):
    """The refused `--resume --latent-dim 32` must not have touched the run's record."""
    record = json.loads((disk / "run" / "run.json").read_text())
    assert record["config"]["latent_dim"] == TINY["latent_dim"]


TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}


@pytest.mark.parametrize("tf_config, argv, message", [
    ("{not json", [], "TF_CONFIG must be JSON like"),
    (json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}}), [], "TF_CONFIG must be JSON like"),
    (json.dumps({**TWO_WORKERS, "task": {"type": "worker", "index": 2}}), [], "task index 2 is not one of the 2"),
    (json.dumps({**TWO_WORKERS, "task": {"type": "ps", "index": 0}}), [], "task type 'ps' is not one of"),
    (json.dumps(TWO_WORKERS), ["--minutes", "3"], "--minutes does not go with a TF_CONFIG cluster"),
], ids=["not-json", "no-task", "index-out-of-range", "unknown-task-type", "minutes-with-workers"])
def test_a_cluster_that_cannot_train_is_refused_before_anything_waits(disk, mnist_small, capsys, monkeypatch, tf_config,
                                                                    argv, message):
    """A bad TF_CONFIG (or a flag each worker would settle differently) stops at once: no worker waits for it."""
    monkeypatch.setenv("TF_CONFIG", tf_config)
    before = _snapshot(disk)
    capsys.readouterr()
    code = run_main(["--distribute", "--data", str(mnist_small), "--out-dir", str(disk / "cluster-run"),
                     *(argv or ["--train-steps", "2"])])
    assert_one_line_error(code, capsys, message)
    assert code == USAGE and _snapshot(disk) == before
