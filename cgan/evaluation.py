"""How good is a digit generator? Label accuracy, Frechet distance and diversity on MNIST.

All three figures come from one small MNIST classifier (`models/mnist_classifier.keras`,
trained by `python -m cgan.evaluation --train-classifier`):

- label accuracy: the share of samples the classifier reads as the digit asked for;
- Frechet distance: between Gaussians fitted to the classifier's penultimate
  features of the samples and of the 10,000 real test digits (the idea of
  TF-GAN's `mnist_frechet_distance`; 0 is identical statistics);
- diversity ratio: mean pairwise feature distance within each digit, divided
  by the same for real test digits (1.0: as varied as real handwriting;
  near 0: mode collapse).

The same figures for 1,000 real training digits of each class (10,000 in all) are
the reference line.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from cgan import ROOT
from cgan.backend import keras, tf
from cgan.cli import ArgumentParser
from cgan.data import MNIST, preprocess
from cgan.errors import UserError
from cgan.files import atomic_path
from cgan.sampling import class_count, generate, load_generator

DEFAULT_CLASSIFIER = ROOT / "models" / "mnist_classifier.keras"
FEATURE_LAYER = "features"
NUM_CLASSES = MNIST.num_classes
layers = keras.layers


# ---------------------------------------------------------------------------
# The classifier


def build_classifier() -> keras.Model:
    """Image in [-1, 1] (28x28x1) -> one logit per class; its `features` layer (128) feeds the distances."""
    image = keras.Input(MNIST.image_shape, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 14x14x32
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 7x7x64
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    features = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(features)
    logits = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(image, logits, name="mnist_classifier")


def train_classifier(path=DEFAULT_CLASSIFIER, *, data=None, epochs: int = 4, limit: int | None = None, seed: int = 0,
                     verbose: int = 2) -> tuple[Path, float]:
    """Train the evaluation classifier on the training set; return (saved path, test accuracy)."""
    keras.utils.set_random_seed(seed)
    x_train, y_train = MNIST.load(data, "train")
    x_test, y_test = MNIST.load(data, "test")
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    model = build_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.5**epoch)
    # Small shifts make the classifier read off-centre generated digits as a person would.
    augment = keras.Sequential([layers.RandomTranslation(0.08, 0.08, fill_value=-1.0, seed=seed)])
    ds = tf.data.Dataset.from_tensor_slices((preprocess(x_train), y_train)).shuffle(len(x_train), seed=seed)
    ds = ds.batch(128).map(lambda x, y: (augment(x, training=True), y)).prefetch(tf.data.AUTOTUNE)
    model.fit(ds, epochs=epochs, callbacks=[schedule], verbose=verbose, shuffle=False)
    _, accuracy = model.evaluate(preprocess(x_test), y_test, batch_size=1000, verbose=0)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path), float(accuracy)


def load_classifier(path=DEFAULT_CLASSIFIER) -> keras.Model:
    """The evaluation classifier; UserError (with the command that makes it) if missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no classifier; train it with `python -m cgan.evaluation --train-classifier`")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise UserError(f"{path}: not a loadable classifier ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------
# The figures


@dataclasses.dataclass(frozen=True)
class Scores:
    """The evaluator's figures for one set of images: labelled, or (from an unconditional generator) not.

    Without labels, accuracy is None and diversity groups the images by the class the
    classifier reads; `class_shares` (the share of the images read as each class) and
    `kl_to_uniform` (KL divergence of those shares from equal shares, 0 when every class is
    equally frequent, log 10 = 2.30 when one class takes all) tell how the classes are spread.
    """

    accuracy: float | None
    per_digit_accuracy: tuple[float, ...] | None
    frechet_distance: float
    diversity: float
    per_digit_diversity: tuple[float, ...]
    count: int
    class_shares: tuple[float, ...] = ()
    kl_to_uniform: float = float("nan")


class Evaluator:
    """Scores labelled uint8 images against real MNIST test digits through one classifier."""

    def __init__(self, classifier: keras.Model | None = None, *, data=None):
        self.classifier = classifier if classifier is not None else load_classifier()
        self.features_model = keras.Model(self.classifier.input, [
            self.classifier.get_layer(FEATURE_LAYER).output, self.classifier.output])
        x_test, y_test = MNIST.load(data, "test")
        feats, _ = self._run(x_test)
        self.ref_mu, self.ref_sigma = feats.mean(0), np.cov(feats, rowvar=False)
        self.ref_spread = np.array([_mean_pairwise_distance(feats[y_test == d]) for d in range(NUM_CLASSES)])

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats, logits = [], []
        for i in range(0, len(images), 1000):
            f, l = self.features_model(preprocess(images[i : i + 1000]), training=False)
            feats.append(np.asarray(f, np.float64))
            logits.append(np.asarray(l))
        return np.concatenate(feats), np.concatenate(logits)

    def score(self, images: np.ndarray, labels: np.ndarray | None) -> Scores:
        """Figures for uint8 images (n, h, w) that were meant to show digits `labels` (None: any digits)."""
        images = np.asarray(images)
        shape = MNIST.image_shape[:2]
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
        if images.dtype != np.uint8 or images.shape[1:] != shape or (labels is not None and len(images) != len(labels)):
            raise ValueError(f"expected uint8 images (n, {shape[0]}, {shape[1]}) and n labels, "
                             f"got {images.dtype} {images.shape}, {None if labels is None else labels.shape}")
        feats, logits = self._run(images)
        read = logits.argmax(1)
        groups = read if labels is None else labels
        spread = [
            _mean_pairwise_distance(feats[groups == d]) / self.ref_spread[d] if (groups == d).sum() > 1 else float("nan")
            for d in range(NUM_CLASSES)
        ]
        shares = np.bincount(read, minlength=NUM_CLASSES) / len(read)
        present = shares > 0
        accuracy = per_digit = None
        if labels is not None:
            correct = read == labels
            accuracy = float(correct.mean())
            per_digit = tuple(float(correct[labels == d].mean()) if (labels == d).any() else float("nan")
                              for d in range(NUM_CLASSES))
        return Scores(
            accuracy=accuracy,
            per_digit_accuracy=per_digit,
            frechet_distance=frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), self.ref_mu, self.ref_sigma),
            diversity=float(np.nanmean(spread)),
            per_digit_diversity=tuple(float(s) for s in spread),
            count=len(images),
            class_shares=tuple(float(x) for x in shares),
            kl_to_uniform=float(np.sum(shares[present] * np.log(shares[present] * NUM_CLASSES))),
        )

    def score_generator(self, generator, *, per_digit: int = 1000, seed: int = 0) -> Scores:
        """Figures for `per_digit` samples of each digit from `generator` (as many in all from an unconditional one)."""
        if class_count(generator) is None:
            return self.score(generate(generator, count=per_digit * NUM_CLASSES, seed=seed), None)
        digits = np.repeat(np.arange(NUM_CLASSES), per_digit)
        return self.score(generate(generator, digits, seed=seed), digits)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between two Gaussians.

    Tr((S1 S2)^1/2) is taken as the sum of the square roots of the eigenvalues
    of S1^1/2 S2 S1^1/2, which is symmetric and positive semi-definite: stable
    for the singular covariances of ReLU features (dead units), where
    `scipy.linalg.sqrtm` of the product warns and loses precision.
    """
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)).sum()
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_covmean)


def _mean_pairwise_distance(feats: np.ndarray, max_points: int = 1000) -> float:
    """Mean Euclidean distance between distinct rows (the first `max_points` rows)."""
    feats = feats[:max_points]
    sq = (feats**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * feats @ feats.T, 0)
    n = len(feats)
    return float(np.sqrt(d2).sum() / (n * (n - 1)))


def reference_scores(evaluator: Evaluator, *, data=None, per_digit: int = 1000, seed: int = 0) -> Scores:
    """The figures for `per_digit` real training digits of each class: the best a generator can hope for.

    Drawn class-balanced, as generators are scored (`per_digit` samples of each
    digit), so the line measures the same protocol: a random draw follows the
    data's class shares instead, which differ from the generator's equal shares
    and lower its distance to the (unbalanced) test set by about 0.1.
    """
    x_train, y_train = MNIST.load(data, "train")
    rng = np.random.default_rng(seed)
    by_class = (np.flatnonzero(y_train == d) for d in range(NUM_CLASSES))
    pick = np.concatenate([rng.choice(index, size=min(per_digit, len(index)), replace=False) for index in by_class])
    return evaluator.score(x_train[pick], y_train[pick])


def format_table(rows: dict[str, Scores]) -> str:
    """A plain-text table, one row per scored set; class spread instead of accuracy when a set has no labels."""
    if any(s.accuracy is None for s in rows.values()):
        lines = [f"{'':<12}{'FD':>8}{'diversity':>10}{'most':>7}{'least':>7}{'KL':>7}   share read as each digit 0..{NUM_CLASSES - 1} (%)"]
        for name, s in rows.items():
            shares = " ".join(f"{100 * x:5.1f}" for x in s.class_shares)
            lines.append(f"{name:<12}{s.frechet_distance:8.2f}{s.diversity:10.3f}{100 * max(s.class_shares):6.1f}%"
                         f"{100 * min(s.class_shares):6.1f}%{s.kl_to_uniform:7.3f}   {shares}")
        return "\n".join(lines)
    head = f"{'':<12}{'accuracy':>9}{'worst':>7}{'FD':>8}{'diversity':>10}   per-digit accuracy 0..{NUM_CLASSES - 1} (%)"
    lines = [head]
    for name, s in rows.items():
        per = " ".join(f"{100 * a:5.1f}" for a in s.per_digit_accuracy)
        lines.append(
            f"{name:<12}{100 * s.accuracy:8.2f}%{100 * min(s.per_digit_accuracy):6.1f}%"
            f"{s.frechet_distance:8.2f}{s.diversity:10.3f}   {per}"
        )
    return "\n".join(lines)


def evaluate(generator_path, *, classifier_path=DEFAULT_CLASSIFIER, data=None, per_digit: int = 1000, seed: int = 0,
             as_json: bool = False) -> dict[str, Scores]:
    """Score a saved generator and the real-data reference line; print the table (or JSON)."""
    generator = load_generator(generator_path)
    evaluator = Evaluator(load_classifier(classifier_path), data=data)
    rows = {
        "generator": evaluator.score_generator(generator, per_digit=per_digit, seed=seed),
        "real (train)": reference_scores(evaluator, data=data),
    }
    if as_json:
        print(json.dumps({"generator_path": str(generator_path), "per_digit": per_digit, "seed": seed,
                          **{k: dataclasses.asdict(v) for k, v in rows.items()}}, indent=2))
    else:
        what = f"{per_digit} samples per digit" if class_count(generator) else f"{per_digit * NUM_CLASSES} samples of any digit"
        print(f"{generator_path}: {what}, seed {seed}")
        print(format_table(rows))
    return rows


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m cgan.evaluation", description="Score a digit generator, or train the classifier that scores it.")
    p.add_argument("--generator", metavar="PATH", help="the generator to score")
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER), metavar="PATH", help="the evaluation classifier (default: models/mnist_classifier.keras)")
    p.add_argument("--train-classifier", action="store_true", help="train the classifier on the 60k training digits and save it to --classifier")
    p.add_argument("--epochs", type=int, default=4, help="classifier training epochs (default: 4)")
    p.add_argument("--per-digit", type=int, default=1000, help="samples per digit to score (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed for the samples (default: 0)")
    p.add_argument("--data", metavar="PATH", help="MNIST .npz or IDX folder (default: data/mnist.npz)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    try:
        if args.train_classifier:
            path, accuracy = train_classifier(args.classifier, data=args.data, epochs=args.epochs)
            print(f"classifier saved to {path}: test accuracy {100 * accuracy:.2f}%")
            return 0
        if not args.generator:
            raise UserError("give --generator PATH to score, or --train-classifier")
        if not 2 <= args.per_digit <= 10_000:
            raise UserError(f"--per-digit must be between 2 and 10000, got {args.per_digit}")
        evaluate(args.generator, classifier_path=args.classifier, data=args.data, per_digit=args.per_digit,
                 seed=args.seed, as_json=args.json)
        return 0
    except UserError as exc:
        print(f"python -m cgan.evaluation: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
