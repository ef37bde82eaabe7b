"""Your own images (cgan/folders.py): a folder of class folders, grey or colour, trains, samples, shows on the page
and is judged by judges trained on it; bad folders get one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_main
from PIL import Image

from cgan import colour, folders, web_app
from cgan.data import MNIST
from cgan.sample_command import sample_hint
from cgan.sampling import class_count, generate, load_generator

TINY_RUN = ["--train-steps", "4", "--save-interval", "2", "--g-width", "8", "--d-width", "8", "--latent-dim", "8",
            "--batch-size", "16", "--precision", "float32"]


def write_folder(root, images_by_class: dict, suffixes=(".png",)):
    """root/NAME/000.png ... from uint8 arrays, each file's suffix taken in turn from `suffixes`."""
    for name, images in images_by_class.items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{i:03d}{suffixes[i % len(suffixes)]}")
    return root


@pytest.fixture(scope="module")
def digits(mnist_small):
    return MNIST.load(mnist_small)


@pytest.fixture(scope="module")
def grey_folder(digits, tmp_path_factory):
    """Three classes of grey 28x28 PNGs: MNIST's 0s, 1s and 2s named zero, one, two."""
    x, y = digits
    return write_folder(tmp_path_factory.mktemp("grey") / "numerals",
                        {name: x[y == c][:40] for c, name in enumerate(("zero", "one", "two"))})


@pytest.fixture(scope="module")
def colour_folder(digits, tmp_path_factory):
    """Two classes of 32x32 RGB images, PNG and JPEG in turn: 3s and 4s painted in drawn colours."""
    x, y = digits
    painted = {name: colour.paint_numpy(x[y == c][:40], colour.painted_table(40, c)) for c, name in
               ((3, "threes"), (4, "fours"))}
    resized = {name: np.stack([np.asarray(Image.fromarray(i).resize((32, 32))) for i in images])
               for name, images in painted.items()}
    return write_folder(tmp_path_factory.mktemp("rgb") / "painted", resized, (".png", ".jpg"))


def test_a_folder_is_read_as_its_classes_shape_and_channels(grey_folder, colour_folder):
    grey = folders.open_folder(grey_folder)
    assert grey.class_names == ("one", "two", "zero") and grey.image_shape == (28, 28, 1)
    x, labels = grey.load(split="train")
    held, _ = grey.load(split="test")
    assert x.shape == (108, 28, 28) and len(held) == 12 and np.bincount(labels).tolist() == [36, 36, 36]
    rgb = folders.open_folder(colour_folder)
    assert rgb.class_names == ("fours", "threes") and rgb.image_shape == (32, 32, 3)
    assert rgb.load(split="train")[0].shape == (72, 32, 32, 3)
    assert folders.open_folder(colour_folder, 28).load(split="test")[0].shape == (8, 28, 28, 3)


@pytest.fixture(scope="module")
def folder_runs(grey_folder, colour_folder, tmp_path_factory):
    """A tiny run on each folder, from the command line: {"grey": run folder, "colour": run folder}."""
    runs = {}
    for which, folder in (("grey", grey_folder), ("colour", colour_folder)):
        runs[which] = tmp_path_factory.mktemp(which) / "run"
        assert run_main(["--data", str(folder), "--out-dir", str(runs[which]), *TINY_RUN]) == 0
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("which", ["grey", "colour"])
def test_a_folder_trains_samples_by_class_name_and_shows_on_the_page(which, folder_runs, grey_folder, colour_folder,
                                                                     tmp_path, capsys):
    folder, run = (grey_folder if which == "grey" else colour_folder), folder_runs[which]
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["dataset"] == "folder" and config["folder"] == str(folder.resolve())
    generator = load_generator(run / "cgan_mnist.h5")
    names = ("one", "two", "zero") if which == "grey" else ("fours", "threes")
    shape = (28, 28) if which == "grey" else (32, 32, 3)
    assert class_count(generator) == len(names) and generate(generator, [0, 1], seed=0).shape == (2, *shape)
    assert sample_hint(run / "cgan_mnist.h5") == f"--class {names[0]}"  # the line after training says so
    out = tmp_path / "out"
    assert run_main([f"--generator={run / 'cgan_mnist.h5'}", "--class", names[1], "--count", "3", "--seed", "2",
                     "--out-dir", str(out), "--save-npz", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["images"].shape == (3, *shape) and saved["labels"].tolist() == [1, 1, 1]
    code = run_main([f"--generator={run / 'cgan_mnist.h5'}", "--class", "seven", "--out-dir", str(out)])
    assert_one_line_error(code, capsys, f"'seven' is not a class 0-{len(names) - 1} (or one of {', '.join(names)})")
    meta = json.loads(web_app.model_files(run / "cgan_mnist.h5")["model.json"])
    assert meta["classes"] == list(names) and meta["channels"] == (3 if which == "colour" else 1)


@pytest.mark.slow
def test_evaluate_asks_for_judges_trained_on_the_folder_then_uses_them(colour_folder, folder_runs, capsys):
    run = folder_runs["colour"]
    capsys.readouterr()
    code = run_main([f"--generator={run / 'cgan_mnist.h5'}", "--evaluate", "--count", "8"])
    err = assert_one_line_error(code, capsys, "no judges are trained on painted yet; train both with "
                                "`python -m cgan.evaluation --train-classifier --judge both --data")
    assert str(colour_folder.resolve()) in err
    from cgan import evaluation

    assert evaluation.main(["--train-classifier", "--judge", "both", "--data", str(colour_folder), "--epochs",
                            "1"]) == 0
    assert "resnet saved to" in capsys.readouterr().out
    assert run_main([f"--generator={run / 'cgan_mnist.h5'}", "--evaluate", "--count", "8", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["dataset"] == "folder" and figures["per_class"] == 8
    for row in ("generator", "real (train)"):  # the real line: the folder's own images, under its own judges
        assert 0 <= figures[row]["accuracy"] <= 1 and set(figures[row]["distances"]) == {"convnet", "resnet"}
    assert "shape" not in figures and "colours" not in figures  # no digits' or painted digits' sections


@pytest.mark.parametrize("make, argv, message", [
    ("one", [], "only one class (only); a conditional GAN needs two class folders"),
    ("none", [], "no class folders with PNG or JPEG images in them"),
    ("sizes", [], "the images are of 2 sizes (28x28, 32x32); give --image-size 28/32/64"),
    ("broken", [], "not a readable PNG or JPEG image"),
    ("odd", [], "the images are 30x30; give --image-size 28/32/64"),
    ("sizes", ["--image-size", "30"], "--image-size must be one of 28, 32, 64, got 30"),
    ("sizes", ["--dataset", "fashion"], "is a folder of class folders: it does not go with --dataset fashion"),
    ("sizes", ["--condition", "shape"], "--condition shape is not for a folder of images"),
    (None, ["--image-size", "32"], "--image-size resizes the images of a folder"),
])
def test_bad_folders_get_one_line_and_nothing_is_written(make, argv, message, digits, tmp_path, capsys):
    x, _ = digits
    folder = tmp_path / "data"
    if make == "one":
        write_folder(folder, {"only": x[:4]})
    elif make == "none":
        (folder / "empty").mkdir(parents=True)
        Image.fromarray(x[0]).save(tmp_path / "loose.png")
    elif make in ("sizes", "broken", "odd"):
        big = np.stack([np.asarray(Image.fromarray(i).resize((32, 32))) for i in x[:4]])
        odd = np.stack([np.asarray(Image.fromarray(i).resize((30, 30))) for i in x[:4]])
        write_folder(folder, {"a": x[:4], "b": big if make == "sizes" else odd if make == "odd" else x[4:8]})
        if make == "broken":
            (folder / "b" / "004.png").write_bytes(b"not a picture")
        if make == "odd":
            for p in (folder / "a").iterdir():
                Image.fromarray(odd[0]).save(p)
    data = ["--data", str(folder)] if make else []
    code = run_main([*data, *argv, "--out-dir", str(tmp_path / "run"), *TINY_RUN])
    assert_one_line_error(code, capsys, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cifar10_in_keras_layout_trains_and_names_its_classes(tmp_path, capsys):
    """CIFAR-10 itself cannot be downloaded here: a file of its layout (uint8 (n, 32, 32, 3), labels (n, 1))."""
    rng = np.random.default_rng(0)
    data = tmp_path / "cifar10.npz"
    np.savez(data, x_train=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), y_train=rng.integers(0, 10, (64, 1)),
             x_test=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), y_test=rng.integers(0, 10, (16, 1)))
    run = tmp_path / "run"
    assert run_main(["--dataset", "cifar10", "--data", str(data), "--out-dir", str(run), *TINY_RUN]) == 0
    generator = load_generator(run / "cgan_mnist.h5")
    assert generate(generator, [3], seed=0).shape == (1, 32, 32, 3)
    assert run_main([f"--generator={run / 'cgan_mnist.h5'}", "--class", "cat", "--out-dir", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("class_cat_n16_seed*.png"))) == 1
    code = run_main([f"--generator={run / 'cgan_mnist.h5'}", "--evaluate"])
    assert_one_line_error(code, capsys, "`python -m cgan.evaluation --train-classifier --dataset cifar10`")
