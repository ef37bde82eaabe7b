"""cgan/evaluation.py: the figures are right for real digits and bad for bad generators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import cgan_mnist
from cgan import evaluation, judges
from cgan.data import FASHION, MNIST
from cgan.errors import InputError
from cgan.sampling import load_generator


@pytest.fixture(scope="module")
def evaluator():
    return evaluation.Evaluator()  # the shipped classifier, against the 10,000 real test digits


@pytest.fixture(scope="module")
def real_train():
    x, y = MNIST.load()
    pick = np.random.default_rng(1).choice(len(x), 2000, replace=False)
    return x[pick], y[pick]


@pytest.fixture(scope="module")
def real_scores(evaluator, real_train):
    """The judges' scores of the 2,000 real digits with their right labels: the yardstick of several tests."""
    return evaluator.score(*real_train)


def test_shipped_classifier_reads_the_test_set(evaluator, mnist_small):
    x, y = MNIST.load(split="test")
    _, logits = evaluator._run(x)
    assert (logits.argmax(1) == y).mean() >= 0.99
    # the reference set against itself, under both judges (the 256 test digits of the small set: the
    # figures are exact whatever the size, and the neighbours of 10,000 twice cost 15 s)
    small = evaluation.Evaluator(data=mnist_small)
    s = small.score(*MNIST.load(mnist_small, split="test"))
    assert set(s.distances) == {"convnet", "resnet"}
    assert max(s.distances.values()) < 1e-6
    assert s.precision == s.recall == {"convnet": 1.0, "resnet": 1.0}
    assert s.diversity == pytest.approx(1.0)


def test_the_second_judge_is_another_network_that_reads_digits_too():
    first, second = (judges.load_classifier(judges.classifier_path(MNIST, judge)) for judge in judges.JUDGES)
    assert {type(layer).__name__ for layer in second.layers} - {type(layer).__name__ for layer in first.layers} >= {
        "BatchNormalization", "Add", "GlobalAveragePooling2D"}
    x, y = MNIST.load(split="test")
    read = np.argmax(np.asarray(second(evaluation.preprocess(x[:2000]), training=False)), 1)
    assert (read == y[:2000]).mean() > 0.98


def test_recall_falls_when_classes_are_missing_and_precision_does_not(evaluator, real_train, real_scores):
    x, y = real_train
    half = evaluator.score(x[y < 5], y[y < 5])  # real digits, but only 0-4: faithful, half the variety
    whole = real_scores
    for judge in judges.JUDGES:
        assert half.precision[judge] > 0.8 and whole.precision[judge] > 0.8
        assert whole.recall[judge] > 0.8 and half.recall[judge] < 0.65 * whole.recall[judge]


def test_neighbour_balls_on_known_points():
    line = np.arange(10, dtype=np.float64)[:, None]  # 0, 1, ..., 9 on a line
    radii = evaluation._neighbour_radii(line, k=3)
    assert radii.tolist() == [9, 4, 4, 4, 4, 4, 4, 4, 4, 9]  # squared distance to the 3rd nearest other point
    assert evaluation._share_covered(np.array([[1.5], [12.5], [-3.0], [-4.0]]), line, radii) == 0.5  # 1.5 and -3


def test_real_training_digits_score_well(real_scores):
    s = real_scores
    assert s.accuracy > 0.98 and min(s.per_digit_accuracy) > 0.95
    assert s.frechet_distance < 3
    assert 0.9 < s.diversity < 1.1


def test_wrong_labels_score_zero_accuracy_but_same_distance(evaluator, real_train, real_scores):
    x, y = real_train
    right, wrong = real_scores, evaluator.score(x, (y + 1) % 10)
    assert wrong.accuracy < 0.05
    assert wrong.frechet_distance == pytest.approx(right.frechet_distance)


def test_noise_and_blank_images_score_badly(evaluator, real_train):
    y = real_train[1][:500]  # far from digits at any size: 500 images are enough to show it
    rng = np.random.default_rng(0)
    noise = evaluator.score(rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8), y)
    blank = evaluator.score(np.zeros((len(y), 28, 28), np.uint8), y)
    for s in (noise, blank):
        assert s.accuracy < 0.3
        assert s.frechet_distance > 50
    assert blank.diversity < 0.05  # every image the same: no variety at all


def test_one_repeated_digit_is_mode_collapse(evaluator, real_train):
    x, y = real_train
    # Every "3" is the same 3, every "7" the same 7, ...: labels right, variety gone.
    collapsed = np.stack([x[np.flatnonzero(y == d)[0]] for d in y])
    s = evaluator.score(collapsed, y)
    assert s.accuracy > 0.9
    assert s.diversity < 0.05
    assert s.frechet_distance > 20


def test_without_labels_the_class_spread_replaces_accuracy(evaluator, real_train, real_scores):
    x, y = real_train
    labelled, unlabelled = real_scores, evaluator.score(x, None)
    assert unlabelled.accuracy is None and unlabelled.per_digit_accuracy is None
    assert unlabelled.frechet_distance == pytest.approx(labelled.frechet_distance)
    assert unlabelled.diversity == pytest.approx(labelled.diversity, abs=0.03)  # grouped by the digit read, ~99% right
    np.testing.assert_allclose(unlabelled.class_shares, np.bincount(y, minlength=10) / len(y), atol=0.01)
    assert unlabelled.kl_to_uniform < 0.01
    only_ones = evaluator.score(x[y == 1], None)  # a generator that draws one digit only
    assert max(only_ones.class_shares) > 0.95 and only_ones.kl_to_uniform > 2.0  # log 10 = 2.30 at the limit
    table = evaluation.format_table({"generator": only_ones, "real": unlabelled})
    assert "KL" in table and "accuracy" not in table


def test_reference_line_is_class_balanced_like_the_generators_samples(monkeypatch, tmp_path):
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    drawn = []

    class Recorder:
        dataset, num_classes, key = MNIST, 10, "recorder"

        def score(self, images, labels):
            drawn.append((images, labels))
            return evaluation.Scores(None, None, 0.0, 1.0, (), len(images))

    evaluation.reference_scores(Recorder(), per_digit=50)
    images, labels = drawn[0]
    assert np.bincount(labels, minlength=10).tolist() == [50] * 10  # MNIST itself is not balanced
    assert len({im.tobytes() for im in images}) == 500  # distinct real digits, no repeats


def test_frechet_distance_of_known_gaussians():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    s1, s2 = np.eye(3), 4 * np.eye(3)
    # |mu1 - mu2|^2 = 9; trace term = 3 + 12 - 2 * 3 * 2 = 3
    assert evaluation.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(12.0)


def test_classifier_training_runs_and_saves(mnist_small, tmp_path):
    path, accuracy = judges.train_classifier(tmp_path / "clf.keras", data=mnist_small, epochs=1, verbose=0)
    assert 0 <= accuracy <= 1
    assert judges.load_classifier(path).output.shape[-1] == 10


@pytest.mark.slow
def test_evaluate_cli_json(tiny_generator_file, capsys):
    assert cgan_mnist.main(["--evaluate", f"--generator={tiny_generator_file}", "--json", "--count", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_class"] == 50 and len(out["generator"]["per_digit_accuracy"]) == 10
    assert set(out["generator"]) >= {"accuracy", "per_digit_accuracy", "frechet_distance", "diversity"}
    assert out["real (train)"]["accuracy"] > 0.98
    assert out["generator"]["accuracy"] < 0.5  # an untrained generator draws no digits
    shapes = out["shape"]  # Morpho-MNIST's measures against real training digits, and real against real
    assert shapes["generator"]["attributes"] == ["thickness", "slant", "width", "height"]
    assert shapes["real (train)"]["rows"] == ["all", *map(str, range(10))]
    assert max(abs(x) for x in shapes["real (train)"]["shift_sds"][0]) < 0.25  # all digits: chance alone


@pytest.mark.slow
def test_evaluate_an_unconditional_generator(tiny_unconditional_generator_file, capsys):
    assert evaluation.main(["--generator", str(tiny_unconditional_generator_file), "--per-digit", "50"]) == 0
    out = capsys.readouterr().out
    assert "500 samples of any digit" in out and "KL" in out and "accuracy" not in out
    assert evaluation.main(["--generator", str(tiny_unconditional_generator_file), "--per-digit", "20", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["generator"]["accuracy"] is None and len(scores["generator"]["class_shares"]) == 10


def test_evaluate_needs_a_generator_and_a_classifier(tiny_generator_file, tmp_path, capsys):
    assert evaluation.main([]) == 2
    assert "give --generator PATH" in capsys.readouterr().err
    assert evaluation.main(["--generator", str(tiny_generator_file), "--classifier", str(tmp_path / "none.keras")]) == 1
    err = capsys.readouterr().err
    assert "python -m cgan.evaluation --train-classifier" in err and len(err.strip().splitlines()) == 1
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert evaluation.main(["--generator", str(tiny_generator_file), "--classifier", str(broken)]) == 1
    assert "not a loadable classifier" in capsys.readouterr().err
    assert evaluation.main(["--generator", str(tiny_generator_file), "--per-digit", "1"]) == 2
    assert "--per-digit must be between" in capsys.readouterr().err


def test_shipped_generator_draws_the_digits_asked_for(evaluator):
    # A smaller sample than the README's 1,000 per digit, so the bounds leave room for sampling noise.
    s = evaluator.score_generator(load_generator(ROOT / "cgan_mnist.h5"), per_digit=300)
    assert s.accuracy >= 0.98 and min(s.per_digit_accuracy) >= 0.94
    assert s.frechet_distance < 6
    assert s.diversity > 0.85


@pytest.mark.parametrize("dataset, judge, command", [
    (MNIST, "convnet", "--train-classifier`"), (MNIST, "resnet", "--train-classifier --judge resnet`"),
    (FASHION, "convnet", "--train-classifier --dataset fashion`"),
    (FASHION, "resnet", "--train-classifier --dataset fashion --judge resnet`"),
])
def test_a_missing_judge_names_the_command_that_makes_it(monkeypatch, dataset, judge, command):
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    with pytest.raises(InputError, match=f"python -m cgan.evaluation {command}"):
        judges.load_classifier(judges.classifier_path(dataset, judge))


@pytest.mark.slow
def test_the_judges_view_of_real_images_is_cached_exactly_and_rebuilt_when_stale(monkeypatch, tmp_path,
                                                                                  mnist_small):
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    classifier = judges.load_classifier(judges.DEFAULT_CLASSIFIER)
    x, y = MNIST.load()
    images, labels = x[:300], y[:300]
    fresh = evaluation.Evaluator(classifier, data=mnist_small, second=False)
    first = fresh.score(images, labels)
    cached_files = sorted((tmp_path / "evaluation").iterdir())
    assert [p.suffix for p in cached_files] == [".npz"]
    with monkeypatch.context() as patched:  # from the cache, with no pass of the real test images
        patched.setattr(evaluation._FeatureSpace, "run", lambda self, images: pytest.fail("recomputed"))
        again = evaluation.Evaluator(classifier, data=mnist_small, second=False)
    assert np.array_equal(again.spaces["convnet"].real, fresh.spaces["convnet"].real)
    assert again.score(images, labels) == first
    # a truncated entry (a disk that filled up, say) is recomputed and replaced
    cached_files[0].write_bytes(cached_files[0].read_bytes()[:1000])
    assert evaluation.Evaluator(classifier, data=mnist_small, second=False).score(images, labels) == first
    assert cached_files[0].stat().st_size > 1000
    # other weights are another judge: its features are computed, not taken from the first's entry
    classifier.layers[-1].set_weights([w * 2 for w in classifier.layers[-1].get_weights()])
    changed = evaluation.Evaluator(classifier, data=mnist_small, second=False)
    assert changed.key != fresh.key and len(list((tmp_path / "evaluation").iterdir())) == 2


@pytest.mark.slow
def test_the_real_line_is_cached_under_what_it_depends_on(monkeypatch, tmp_path, mnist_small):
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    # the small set's 256 test digits: an empty cache computes their features, not 10,000's
    judge = evaluation.Evaluator(judges.load_classifier(judges.DEFAULT_CLASSIFIER), data=mnist_small, second=False)
    first = evaluation.reference_scores(judge, per_digit=20)
    lines = list((tmp_path / "evaluation").glob("real-*.json"))
    assert len(lines) == 1
    with monkeypatch.context() as patched:
        patched.setattr(judge, "score", lambda *args: pytest.fail("recomputed"))
        assert evaluation.reference_scores(judge, per_digit=20) == first
    lines[0].write_text("{not json")
    assert evaluation.reference_scores(judge, per_digit=20) == first
    assert json.loads(lines[0].read_text())["count"] == 200
    other = evaluation.reference_scores(judge, per_digit=20, seed=1)  # other images: another entry
    assert other != first and len(list((tmp_path / "evaluation").glob("real-*.json"))) == 2


@pytest.mark.slow
def test_saved_digits_are_scored_like_a_generators_and_a_bad_file_gets_one_line(tmp_path, capsys):
    from cgan.images import save_npz

    with np.load(ROOT / "data" / "mnist.npz") as d:  # real digits must score as real ones do
        images, labels = d["x_test"][:600], d["y_test"][:600]
    path = save_npz(tmp_path / "real.npz", images, labels)
    assert evaluation.main(["--samples", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 600 and out["real_per_class"] == np.bincount(labels).min()
    assert out["samples"]["accuracy"] > 0.97 and out["real (train)"]["accuracy"] > 0.97
    assert out["shape"]["generator"]["attributes"] == ["thickness", "slant", "width", "height"]

    np.savez(tmp_path / "floats.npz", images=images.astype(np.float32), labels=labels)
    np.savez(tmp_path / "eleven.npz", images=images, labels=np.where(labels == 9, 10, labels))
    np.savez(tmp_path / "no_nines.npz", images=images[labels != 9], labels=labels[labels != 9])
    for name, says in [("floats.npz", "the layout of --save-npz"), ("eleven.npz", "labels must be digits 0-9"),
                       ("no_nines.npz", "at least 2 samples"), ("missing.npz", "not a readable .npz")]:
        assert evaluation.main(["--samples", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert evaluation.main(["--samples", str(path), "--generator", str(path)]) == 2
    assert "does not go with --generator" in capsys.readouterr().err
