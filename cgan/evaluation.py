"""How good is a generator? Label accuracy, Frechet distances, precision, recall and diversity, against real data.

Two feature networks of different design judge the images (`cgan.judges`: `convnet`, which
also reads the labels, and `resnet`), each trained by the project, so that settings chosen by
one network's figures can be checked by the other's.

The figures:

- label accuracy: the share of samples the convnet reads as the class asked for;
- Frechet distance, under each judge: between Gaussians fitted to its 128 penultimate
  features of the samples and of the 10,000 real test images (the idea of TF-GAN's
  `mnist_frechet_distance`; 0 is identical statistics);
- precision and recall under each judge (Kynkaanniemi et al., 2019, k = 3): the share of
  samples inside the real images' neighbourhoods (fidelity), and of real images inside the
  samples' (coverage);
- diversity ratio: mean pairwise convnet-feature distance within each class, divided by the
  same for real test images (1.0: as varied as the real data; near 0: mode collapse).

The same figures for real training images, as many of each class as the generator is asked
for (1,000 by default), are the reference line. The judges' features of the real test images
and the reference lines are cached (`~/.cache/cgan_mnist/evaluation/`, or `$CGAN_CACHE_DIR`)
under a digest of the judge's weights and the images: the same numbers, bit for bit, in half
the time.

A generator of two-digit pairs (28x56) is read half by half with the MNIST classifier
(`score_pairs`): the share of pairs whose read number meets the condition asked for, the
share whose halves are both read with confidence, and the distance and diversity of the
halves against real test digits, beside the same figures for real pairs.

For MNIST generators, the shape section (`shape_section`): each class's thickness, slant,
width and height as Morpho-MNIST measures them (`cgan.shape`), against the real training
digits of the reference line, beside a second draw of real training digits against them;
for pairs, of their halves (per digit where the number was asked for).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from cgan import colour, conditions, shape
from cgan.backend import keras
from cgan.cli import ArgumentParser
from cgan.data import MNIST, Dataset, PairsDataset, dataset_of, preprocess
from cgan.errors import InputError, UserError
from cgan.files import atomic_path, cache_dir
from cgan.judges import FEATURE_LAYER, JUDGES, classifier_path, load_classifier, train_classifier
from cgan.sampling import class_count, generate, load_generator

CONFIDENT = 0.9  # a pair's half counts as read with confidence at this top probability
NEIGHBOURS = 3  # k of the k-nearest-neighbour precision and recall
# Part of every cache key (features of the real images, real-data lines): bump it whenever
# features or figures come to be computed differently, and earlier cache entries go unused.
CACHE_VERSION = 1


# ---------------------------------------------------------------------------
# The figures


@dataclasses.dataclass(frozen=True)
class Scores:
    """The evaluator's figures for one set of images: labelled, or (from an unconditional generator) not.

    `frechet_distance` and `diversity` are the first judge's (the classifier that reads the
    labels); `distances`, `precision` and `recall` hold each judge's, by name (`JUDGES`).
    Precision is the share of the images that fall inside the real images' k-nearest-neighbour
    balls in feature space (fidelity), recall the share of real images inside the images' balls
    (coverage), with k = 3 (Kynkaanniemi et al., 2019).
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
    distances: dict[str, float] = dataclasses.field(default_factory=dict)
    precision: dict[str, float] = dataclasses.field(default_factory=dict)
    recall: dict[str, float] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------
# The cache: what the judges make of the real images is the same every time, so it is kept
# (in `cgan.files.cache_dir()`) under a digest of everything it depends on: the judge's
# weights, the images, the code version. A missing, stale or unreadable entry is recomputed.


def _digest(*parts) -> str:
    """SHA-256 of the parts (arrays by dtype, shape and bytes; anything else by its text), with CACHE_VERSION."""
    h = hashlib.sha256(f"cgan.evaluation cache v{CACHE_VERSION}".encode())
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            part = np.ascontiguousarray(part).tobytes()
        data = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _cache_path(kind: str, key: str, suffix: str) -> Path:
    return cache_dir() / "evaluation" / f"{kind}-{key[:40]}{suffix}"


def _cached_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as saved:
            return {name: saved[name] for name in names}
    except Exception:  # absent, truncated or foreign: recompute
        return None


def _keep(path: Path, write) -> None:
    """Write a cache entry atomically; a cache that cannot be written only costs time."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except (OSError, InputError):
        pass


class _FeatureSpace:
    """One judge's view of the real test images: its features of them, their statistics and neighbour radii."""

    def __init__(self, classifier: keras.Model, real_images: np.ndarray):
        self.model = keras.Model(classifier.input, [classifier.get_layer(FEATURE_LAYER).output, classifier.output])
        self.key = _digest(classifier.to_json(), *map(np.asarray, classifier.get_weights()), FEATURE_LAYER,
                           np.asarray(real_images))
        path = _cache_path("features", self.key, ".npz")
        cached = _cached_arrays(path, ("features", "radii"))
        if cached is not None and len(cached["features"]) == len(cached["radii"]) == len(real_images):
            self.real, self._radii = cached["features"].astype(np.float64), cached["radii"]
        else:
            self.real, _ = self.run(real_images)
            self._radii = _neighbour_radii(self.real)
            # float32 holds the features exactly: they come out of the network as float32
            _keep(path, lambda tmp: np.savez(tmp, features=self.real.astype(np.float32), radii=self._radii))
        self.mu, self.sigma = self.real.mean(0), np.cov(self.real, rowvar=False)

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats, logits = [], []
        for i in range(0, len(images), 1000):
            f, batch_logits = self.model(preprocess(images[i : i + 1000]), training=False)
            feats.append(np.asarray(f, np.float64))
            logits.append(np.asarray(batch_logits))
        return np.concatenate(feats), np.concatenate(logits)

    def distance(self, feats: np.ndarray) -> float:
        return frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), self.mu, self.sigma)

    def precision_recall(self, feats: np.ndarray) -> tuple[float, float]:
        return (_share_covered(feats, self.real, self._radii),
                _share_covered(self.real, feats, _neighbour_radii(feats)))


class Evaluator:
    """Scores labelled uint8 images against the real test images of `dataset` through its judges.

    `classifier` (default: the dataset's convnet) reads the labels and gives the first set of
    features; `second` (default: the dataset's resnet; False for none) gives the second.
    """

    def __init__(self, classifier: keras.Model | None = None, *, data=None, dataset: Dataset = MNIST,
                 second: keras.Model | bool | None = None):
        self.dataset = dataset
        self.num_classes = dataset.num_classes
        self.classifier = classifier if classifier is not None else load_classifier(classifier_path(dataset))
        if second is None:
            second = load_classifier(classifier_path(dataset, "resnet"))
        x_test, y_test = dataset.load(data, "test")
        self.spaces = {"convnet": _FeatureSpace(self.classifier, x_test)}
        if second is not False:
            self.spaces["resnet"] = _FeatureSpace(second, x_test)
        self.key = _digest(*(space.key for space in self.spaces.values()), y_test)
        feats = self.spaces["convnet"].real
        self.ref_spread = np.array([_mean_pairwise_distance(feats[y_test == d]) for d in range(self.num_classes)])

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first judge's features and logits of uint8 images."""
        return self.spaces["convnet"].run(images)

    def score(self, images: np.ndarray, labels: np.ndarray | None) -> Scores:
        """Figures for uint8 images (n, h, w) that were meant to show digits `labels` (None: any digits).

        RGB images (n, h, w, 3) are read on their luma, from background to stroke (`cgan.colour.readable`).
        """
        images = np.asarray(images)
        if images.ndim == 4 and self.dataset.channels == 1:  # colour digits, read by grey judges
            images = colour.readable(images)
        shape, classes = self.dataset.image_shape[: 2 if self.dataset.channels == 1 else 3], self.num_classes
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
        if images.dtype != np.uint8 or images.shape[1:] != shape or (labels is not None and len(images) != len(labels)):
            raise ValueError(f"expected uint8 images (n, {shape[0]}, {shape[1]}) and n labels, "
                             f"got {images.dtype} {images.shape}, {None if labels is None else labels.shape}")
        feats, logits = self._run(images)
        distances, precision, recall = {}, {}, {}
        for name, space in self.spaces.items():
            judged = feats if name == "convnet" else space.run(images)[0]
            distances[name] = space.distance(judged)
            precision[name], recall[name] = space.precision_recall(judged)
        read = logits.argmax(1)
        groups = read if labels is None else labels
        spread = [
            (_mean_pairwise_distance(feats[groups == d]) / self.ref_spread[d] if (groups == d).sum() > 1
             else float("nan"))
            for d in range(classes)
        ]
        shares = np.bincount(read, minlength=classes) / len(read)
        present = shares > 0
        accuracy = per_digit = None
        if labels is not None:
            correct = read == labels
            accuracy = float(correct.mean())
            per_digit = tuple(float(correct[labels == d].mean()) if (labels == d).any() else float("nan")
                              for d in range(classes))
        return Scores(
            accuracy=accuracy,
            per_digit_accuracy=per_digit,
            frechet_distance=distances["convnet"],
            diversity=float(np.nanmean(spread)),
            per_digit_diversity=tuple(float(s) for s in spread),
            count=len(images),
            class_shares=tuple(float(x) for x in shares),
            kl_to_uniform=float(np.sum(shares[present] * np.log(shares[present] * classes))),
            distances=distances,
            precision=precision,
            recall=recall,
        )

    def score_generator(self, generator, *, per_digit: int = 1000, seed: int = 0) -> Scores:
        """Figures for `per_digit` samples of each digit from `generator` (as many in all from an unconditional one)."""
        return self.score(*draw(generator, per_digit=per_digit, classes=self.num_classes, seed=seed))


def draw(generator, *, per_digit: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels) that a generator is scored on: `per_digit` of each class, in order (labels None and as
    many images in all from an unconditional generator)."""
    if class_count(generator) is None:
        return generate(generator, count=per_digit * classes, seed=seed), None
    digits = np.repeat(np.arange(classes), per_digit)
    return generate(generator, digits, seed=seed), digits


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All squared Euclidean distances between the rows of `a` and of `b` (float32, (len(a), len(b)))."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0)


def _neighbour_radii(feats: np.ndarray, k: int = NEIGHBOURS, block: int = 1000) -> np.ndarray:
    """Each row's squared distance to its k-th nearest other row (the row itself is at index 0)."""
    return np.concatenate([np.partition(_squared_distances(feats[i : i + block], feats), k, axis=1)[:, k]
                           for i in range(0, len(feats), block)])


def _share_covered(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, block: int = 1000) -> float:
    """The share of `points` within the squared radius `radii` of at least one of `centres`."""
    inside = [(_squared_distances(points[i : i + block], centres) <= radii[None, :]).any(1)
              for i in range(0, len(points), block)]
    return float(np.concatenate(inside).mean())


def worse_distance_ratio(s: Scores, real: Scores) -> float:
    """The larger of the judges' distance over the real line's: the figure settings are chosen by."""
    return max(s.distances[judge] / real.distances[judge] for judge in s.distances)


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


def reference_scores(evaluator: Evaluator, *, data=None, per_digit: int = 1000, seed: int = 0,
                     painted: bool = False) -> Scores:
    """The figures for `per_digit` real training digits of each class: the best a generator can hope for.

    Drawn class-balanced, as generators are scored (`per_digit` samples of each
    digit), so the line measures the same protocol: a random draw follows the
    data's class shares instead, which differ from the generator's equal shares
    and lower its distance to the (unbalanced) test set by about 0.1. `painted`: the digits
    painted as `--dataset colour` paints them, then read back as a colour generator's are.
    """
    x_train, y_train = evaluator.dataset.load(data, "train")
    pick = _balanced_pick(y_train, evaluator.num_classes, per_digit, seed)[0]
    images, labels = x_train[pick], y_train[pick]
    if painted:
        images = colour.readable(colour.paint_numpy(images, colour.painted_table(len(images), seed)))
    path = _cache_path("real", _digest(evaluator.key, images, labels), ".json")
    try:
        saved = json.loads(path.read_text())
        return Scores(**{name: tuple(v) if isinstance(v, list) else v for name, v in saved.items()})
    except Exception:  # absent, truncated or foreign: recompute
        pass
    scores = evaluator.score(images, labels)
    _keep(path, lambda tmp: tmp.write_text(json.dumps(dataclasses.asdict(scores)) + "\n"))
    return scores


def _balanced_pick(labels: np.ndarray, classes: int, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint class-balanced draws of indices, up to `per_class` of each class in each: the reference
    line's (the same whatever the second) and another, for the real-against-real shape line."""
    rng, other_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    first, second = [], []
    for index in (np.flatnonzero(labels == c) for c in range(classes)):
        chosen = rng.choice(index, size=min(per_class, len(index)), replace=False)
        first.append(chosen)
        rest = np.setdiff1d(index, chosen)
        second.append(other_rng.choice(rest, size=min(per_class, len(rest)), replace=False))
    return np.concatenate(first), np.concatenate(second)


def measured(images: np.ndarray) -> np.ndarray:
    """`cgan.shape.measure` of uint8 images, cached under a digest of the images (real digits are measured once)."""
    path = _cache_path("shape", _digest("shape", shape.ATTRIBUTES, images), ".npz")
    saved = _cached_arrays(path, ("table",))
    if saved is not None and saved["table"].shape == (len(images), len(shape.ATTRIBUTES)):
        return saved["table"]
    table = shape.measure(images)
    _keep(path, lambda tmp: np.savez(tmp, table=table))
    return table


def shape_section(images: np.ndarray, labels: np.ndarray | None, *, data=None, per_digit: int = 1000,
                  seed: int = 0) -> dict[str, shape.Comparison]:
    """The shape of generated digits (uint8 (n, 28, 28) drawn for `labels`, None: any) against real training
    digits: the reference line's draw of `per_digit` a class, and a second, disjoint draw of real digits against
    that one (the real-against-real line: what chance alone gives)."""
    x_train, y_train = MNIST.load(data, "train")
    reference, other = _balanced_pick(y_train, MNIST.num_classes, per_digit, seed)
    real, real_labels = measured(x_train[reference]), y_train[reference]
    return {"generator": shape.compare(shape.measure(images), labels, real, real_labels, classes=MNIST.num_classes),
            "real (train)": shape.compare(measured(x_train[other]), y_train[other] if labels is not None else None,
                                          real, real_labels, classes=MNIST.num_classes)}


@dataclasses.dataclass(frozen=True)
class ColourErrors:
    """How far the colours read from a colour generator's images are from those asked (`cgan.colour.errors`):
    mean absolute differences per channel, RGB in [0, 1], over all images and per digit; `real_*` the same for
    real digits painted in the colours asked (what the reading itself costs)."""

    stroke: float
    background: float
    per_digit_stroke: tuple[float, ...]
    per_digit_background: tuple[float, ...]
    real_stroke: float
    real_background: float
    count: int


def colour_section(generator, images: np.ndarray, labels: np.ndarray, *, data=None, seed: int = 0) -> ColourErrors:
    """The `ColourErrors` of RGB `images` drawn by `generate(generator, labels, seed)`, whose colours it draws
    again (the same numbers), against real training digits painted in those colours."""
    asked = conditions.fill(generator, labels, None, conditions.shape_rng(seed))
    labels = np.asarray(labels).reshape(-1)
    per_digit = [colour.errors(images[labels == d], asked[labels == d]) for d in range(MNIST.num_classes)
                 if (labels == d).any()]
    x_train, y_train = MNIST.load(data, "train")
    pick = _balanced_pick(y_train, MNIST.num_classes, max(1, len(images) // MNIST.num_classes), seed)[0][: len(images)]
    real = colour.errors(colour.paint_numpy(x_train[pick], asked[: len(pick)]), asked[: len(pick)])
    mine = colour.errors(images, asked)
    return ColourErrors(stroke=mine["stroke"], background=mine["background"],
                        per_digit_stroke=tuple(e["stroke"] for e in per_digit),
                        per_digit_background=tuple(e["background"] for e in per_digit),
                        real_stroke=real["stroke"], real_background=real["background"], count=len(images))


def format_colours(errors: ColourErrors) -> str:
    """The colour section as text: the errors of the stroke and the background, and the real line."""
    return "\n".join([
        f"colours asked and read ({errors.count} images; RGB 0-1, mean absolute difference per channel)",
        f"{'':<22}{'stroke':>10}{'worst digit':>13}{'background':>12}{'worst digit':>13}",
        f"{'generator':<22}{errors.stroke:>10.4f}{max(errors.per_digit_stroke):>13.4f}"
        f"{errors.background:>12.4f}{max(errors.per_digit_background):>13.4f}",
        f"{'real digits, painted':<22}{errors.real_stroke:>10.4f}{'':>13}{errors.real_background:>12.4f}",
    ])


CONTROL_PERCENTILES = (10, 50, 90)  # the asked values of the control section: each digit's own percentiles


@dataclasses.dataclass(frozen=True)
class Control:
    """How well a generator with attributes (`--condition shape`) draws the values asked, per attribute.

    Spreads are each digit's own: the standard deviation (SD) of the attribute over that
    digit's training images. `error_sds[a][p]`: the mean absolute difference between the
    value asked (each digit's CONTROL_PERCENTILES[p]) and the value measured, in SDs,
    averaged over the digits, the other attributes filled in from real digits nearest to
    it; `worst_error_sds[a]`: that digit's figure, over the three values, for the worst digit;
    `real_error_sds[a]`: the same difference between real digits and themselves moved by one pixel
    right and down, the measure's own noise (a quarter-pixel step after the 4x upsampling).
    `side_effect_sds[a]`: the others held at each digit's medians, `a` moved from its 10th
    to its 90th percentile: the largest shift of another attribute's mean, in SDs, averaged
    over the digits; `worst_side_effect_sds[a]` the worst digit's; `real_side_effect_sds[a]`
    the same shift between real digits around the 10th and around the 90th percentile of
    `a` (5th-15th, 85th-95th): how much the attributes go together in the data. `side_effects[a][j]`: the
    shift of attribute j's mean when `a` moves, averaged over the digits (0 for j = a). A shift is the
    mean of `ends_per_cell` paired differences (the same noise at both ends); with 100 of them, three
    seeds put one model's side effects 0.02-0.03 SD apart, as much as their distance from the aim.
    """

    attributes: tuple[str, ...]
    error_sds: tuple[tuple[float, ...], ...]
    worst_error_sds: tuple[float, ...]
    side_effect_sds: tuple[float, ...]
    worst_side_effect_sds: tuple[float, ...]
    real_side_effect_sds: tuple[float, ...]
    side_effects: tuple[tuple[float, ...], ...]
    real_error_sds: tuple[float, ...]
    per_cell: int
    ends_per_cell: int


def control_section(generator, *, data=None, per_cell: int = 100, ends_per_cell: int | None = None,
                    seed: int = 0) -> Control:
    """The `Control` figures of a generator with attributes: `per_cell` samples of each digit and asked value,
    and `ends_per_cell` (default: 4 x per_cell) at each end of a side effect."""
    ends_per_cell = ends_per_cell or 4 * per_cell
    names = conditions.names(generator)
    x_train, y_train = MNIST.load(data, "train")
    columns = [shape.CONDITIONED.index(name) for name in names]
    real = conditions.measures_of(x_train, data or MNIST.default_path)[:, columns].astype(np.float64)
    classes = class_count(generator)
    own = [real[y_train == c] for c in range(classes)]
    q = np.stack([np.percentile(r, CONTROL_PERCENTILES, axis=0) for r in own])  # (classes, 3, k)
    sd = np.stack([r.std(0) for r in own])  # (classes, k)
    digits = np.repeat(np.arange(classes), per_cell)
    measured_ = lambda images: shape.measure(images)[:, [shape.ATTRIBUTES.index(n) for n in names]]  # noqa: E731
    picked = _balanced_pick(y_train, classes, per_cell, seed)[0]  # real digits, class by class
    moved = np.pad(x_train[picked], ((0, 0), (1, 0), (1, 0)))[:, :-1, :-1]  # one pixel right and down
    error = np.abs(measured_(moved) - real[picked]) / sd[y_train[picked]]
    real_error = np.stack([error[y_train[picked] == c].mean(0) for c in range(classes)])
    errors, worst, effects, worst_effects, real_effects, matrix = [], [], [], [], [], []
    for a, name in enumerate(names):
        cell = np.zeros((classes, len(CONTROL_PERCENTILES)))
        for p in range(len(CONTROL_PERCENTILES)):
            asked = q[digits, p, a]
            got = measured_(generate(generator, digits, seed=seed, attributes={name: asked}))[:, a]
            cell[:, p] = np.nanmean(np.abs(got - asked).reshape(classes, per_cell), axis=1) / sd[:, a]
        errors.append(tuple(float(x) for x in cell.mean(0)))
        worst.append(float(cell.mean(1).max()))
        ends, at = [], np.repeat(np.arange(classes), ends_per_cell)
        for p in (0, len(CONTROL_PERCENTILES) - 1):  # the same noise at both ends: only `a` differs
            held = {other: q[at, 1, j] for j, other in enumerate(names) if j != a} | {name: q[at, p, a]}
            ends.append(measured_(generate(generator, at, seed=seed, attributes=held)))
        shift = np.abs(np.nanmean((ends[1] - ends[0]).reshape(classes, ends_per_cell, -1), axis=1)) / sd
        others = [j for j in range(len(names)) if j != a]
        matrix.append(tuple(0.0 if j == a else float(x) for j, x in enumerate(shift.mean(0))))
        effects.append(float(shift[:, others].mean(0).max()))
        worst_effects.append(float(shift[:, others].max()))
        real_shift = []
        for c, r in enumerate(own):
            low, high = (np.percentile(r[:, a], bounds) for bounds in ((5, 15), (85, 95)))
            around = [r[(r[:, a] >= b[0]) & (r[:, a] <= b[1])] for b in (low, high)]
            real_shift.append(np.abs(around[1].mean(0) - around[0].mean(0)) / sd[c])
        real_effects.append(float(np.stack(real_shift)[:, others].mean(0).max()))
    return Control(tuple(names), tuple(errors), tuple(worst), tuple(effects), tuple(worst_effects),
                   tuple(real_effects), tuple(matrix), tuple(float(x) for x in real_error.mean(0)), per_cell,
                   ends_per_cell)


def format_control(control: Control) -> str:
    """A plain-text table of `control_section`'s figures, one line per attribute."""
    pct = "".join(f"{'p' + str(p):>7}" for p in CONTROL_PERCENTILES)
    lines = [f"shape control: {control.per_cell} samples of each digit and value ({control.ends_per_cell} at each end "
             "of a side effect); errors and shifts in SDs of the attribute over that digit's training images "
             "(aims: error <= 0.25, side effect <= 0.10)",
             f"{'attribute':<11}{'|asked - measured| at':>21}{'':>8}{'worst':>7}{'real':>7}   "
             f"{'side effect p10->p90':>20}{'worst':>7}{'real':>7}   shift of each",
             f"{'':<11}{pct}{'mean':>8}{'digit':>7}{'1 px':>7}   {'(others at medians)':>20}{'digit':>7}{'data':>7}   "
             + " ".join(f"{n[:5]:>5}" for n in control.attributes)]
    for a, name in enumerate(control.attributes):
        cells = "".join(f"{x:7.3f}" for x in control.error_sds[a])
        lines.append(f"{name:<11}{cells}{np.mean(control.error_sds[a]):8.3f}{control.worst_error_sds[a]:7.3f}"
                     f"{control.real_error_sds[a]:7.3f}   "
                     f"{control.side_effect_sds[a]:20.3f}{control.worst_side_effect_sds[a]:7.3f}"
                     f"{control.real_side_effect_sds[a]:7.3f}   "
                     + " ".join(f"{x:5.2f}" for x in control.side_effects[a]))
    return "\n".join(lines)


def _judged(s: Scores) -> tuple[str, str]:
    """The header and the row cells of the judges' figures: each distance, then precision and recall per judge."""
    names = list(s.distances) or ["convnet"]
    head = "".join(f"{'FD ' + n[:4]:>9}" for n in names) + f"{'precision':>12}{'recall':>12}"
    distances = s.distances or {"convnet": s.frechet_distance}
    pair = lambda d: "/".join(f"{d[n]:.3f}" for n in names) if d else "-"  # noqa: E731
    return head, "".join(f"{distances[n]:9.3f}" for n in names) + f"{pair(s.precision):>12}{pair(s.recall):>12}"


def format_table(rows: dict[str, Scores]) -> str:
    """A plain-text table, one row per scored set; class spread instead of accuracy when a set has no labels.

    The judges' columns: a Frechet distance for each, then precision and recall as convnet/resnet.
    """
    first = next(iter(rows.values()))
    classes, judged_head = len(first.per_digit_diversity), _judged(first)[0]
    if any(s.accuracy is None for s in rows.values()):
        lines = [f"{'':<12}{judged_head}{'diversity':>10}{'most':>7}{'least':>7}{'KL':>7}"
                 f"   share read as each class 0..{classes - 1} (%)"]
        for name, s in rows.items():
            shares = " ".join(f"{100 * x:5.1f}" for x in s.class_shares)
            lines.append(f"{name:<12}{_judged(s)[1]}{s.diversity:10.3f}{100 * max(s.class_shares):6.1f}%"
                         f"{100 * min(s.class_shares):6.1f}%{s.kl_to_uniform:7.3f}   {shares}")
        return "\n".join(lines)
    lines = [f"{'':<12}{'accuracy':>9}{'worst':>7}{judged_head}{'diversity':>10}"
             f"   per-class accuracy 0..{classes - 1} (%)"]
    for name, s in rows.items():
        per = " ".join(f"{100 * a:5.1f}" for a in s.per_digit_accuracy)
        lines.append(f"{name:<12}{100 * s.accuracy:8.2f}%{100 * min(s.per_digit_accuracy):6.1f}%{_judged(s)[1]}"
                     f"{s.diversity:10.3f}   {per}")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class PairScores:
    """Figures for two-digit pairs, read half by half with the MNIST classifier.

    `condition_met`: the share whose read number satisfies the class asked for (equals it,
    for --condition number; lies on the asked side of 50, for below50); `per_class_met` the
    same per class asked for; `both_confident`: the share whose halves both have a top
    probability of at least 0.9; `halves`: the single-digit figures of all halves (Frechet
    distance and diversity against real test digits, grouped by the digit read).
    """

    condition_met: float
    per_class_met: tuple[float, ...]
    both_confident: float
    halves: Scores
    count: int


def halves(images: np.ndarray) -> np.ndarray:
    """The left halves of pairs (n, h, 2w), then their right halves: (2n, h, w)."""
    width = images.shape[2] // 2
    return np.concatenate([images[:, :, :width], images[:, :, width:]])


def score_pairs(evaluator: Evaluator, dataset: PairsDataset, images: np.ndarray, labels: np.ndarray) -> PairScores:
    """Figures for uint8 pairs (n, 28, 56) meant to show classes `labels` of `dataset`; `evaluator` is MNIST's."""
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    both = halves(images)
    _, logits = evaluator._run(both)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    n = len(images)
    read = dataset.label(probs[:n].argmax(1), probs[n:].argmax(1))
    met = read == labels
    confident = (probs[:n].max(1) >= CONFIDENT) & (probs[n:].max(1) >= CONFIDENT)
    per_class = tuple(float(met[labels == c].mean()) if (labels == c).any() else float("nan")
                      for c in range(dataset.num_classes))
    return PairScores(condition_met=float(met.mean()), per_class_met=per_class, both_confident=float(confident.mean()),
                      halves=evaluator.score(both, None), count=n)


def pair_rows(images: np.ndarray, asked: np.ndarray, dataset: PairsDataset, *, data=None, seed: int = 0,
              classifier: Path | None = None) -> dict[str, PairScores]:
    """The figures of a generator's pairs `images` drawn for classes `asked`, and those of as many real pairs from
    the test digits and from the training digits."""
    evaluator = Evaluator(load_classifier(classifier or classifier_path(dataset)), data=data)
    rows = {"generator": score_pairs(evaluator, dataset, images, asked)}
    for split in ("test", "train"):
        digits, classes = dataset.load(data, split)
        real, labels = dataset.pairs(digits, classes, len(asked), seed=seed)
        rows[f"real ({split})"] = score_pairs(evaluator, dataset, real, labels)
    return rows


def format_pair_table(rows: dict[str, PairScores], dataset: PairsDataset) -> str:
    met = "number right" if dataset.condition == "number" else "right side of 50"
    judged_head = _judged(next(iter(rows.values())).halves)[0]
    lines = [f"{'':<13}{met:>17}{'worst ' + dataset.class_word:>16}{'both confident':>16}{judged_head}{'diversity':>10}"
             "   (distances, precision, recall and diversity: of the halves)"]
    for name, s in rows.items():
        worst = int(np.nanargmin(s.per_class_met))
        worst_text = f"{100 * s.per_class_met[worst]:.1f}% ({dataset.class_names[worst]})"
        lines.append(f"{name:<13}{100 * s.condition_met:16.2f}%{worst_text:>16}{100 * s.both_confident:15.2f}%"
                     f"{_judged(s.halves)[1]}{s.halves.diversity:10.3f}")
    return "\n".join(lines)


def evaluate(generator_path, *, classifier: Path | None = None, data=None, per_digit: int | None = None, seed: int = 0,
             as_json: bool = False) -> dict:
    """Score a saved generator and the real-data reference line; print the table (or JSON).

    `per_digit` samples of each class (default 1,000; for pairs by number, 100 of each of the 100 numbers).
    """
    generator = load_generator(generator_path)
    dataset = dataset_of(generator)
    conditional = class_count(generator) is not None
    shapes, control, colours = {}, None, None
    if isinstance(dataset, PairsDataset) and conditional:
        per_digit = per_digit or 10_000 // dataset.num_classes
        asked = np.repeat(np.arange(dataset.num_classes), per_digit)
        images = generate(generator, asked, seed=seed)
        rows = pair_rows(images, asked, dataset, data=data, seed=seed, classifier=classifier)
        table = format_pair_table(rows, dataset)
        # each half is an MNIST digit: by number, the digit asked for on each side is known
        digits = np.concatenate([asked // 10, asked % 10]) if dataset.condition == "number" else None
        # as many real digits of each as there are halves of a digit, up to the digits' 1,000
        shapes = shape_section(halves(images), digits, data=data, per_digit=min(1000, 2 * len(images) // 10))
        table += "\n\n" + shape.format_comparisons(shapes)
    else:
        per_digit = per_digit or 1000
        if isinstance(dataset, PairsDataset):
            raise InputError(f"{generator_path}: a pairs generator without labels has no condition to check")
        if dataset.key == "folder":
            data = data or dataset.folder
            if not (classifier or classifier_path(dataset)).is_file():
                raise InputError(f"{generator_path}: no judges are trained on {dataset.title} yet; train both with "
                                 f"`python -m cgan.evaluation --train-classifier --judge both --data "
                                 f"{data or 'DIR'}` (then --evaluate again)")
        # coloured digits are judged on their luma by MNIST's judges, against real digits painted and read back
        painted = dataset.key == colour.NAME
        evaluator = Evaluator(load_classifier(classifier or classifier_path(dataset)), data=data,
                              dataset=dataset.judged_by)
        images, labels = draw(generator, per_digit=per_digit, classes=dataset.num_classes, seed=seed)
        rows = {
            "generator": evaluator.score(images, labels),
            # the real line takes as many images as the generator gives: distances grow as samples shrink
            "real (train)": reference_scores(evaluator, data=data, per_digit=per_digit, painted=painted),
        }
        table = format_table(rows)
        if dataset.judged_by is MNIST:
            shapes = shape_section(colour.readable(images), labels, data=data, per_digit=per_digit)
            table += "\n\n" + shape.format_comparisons(shapes)
        kind = conditions.kind_of(generator)
        if kind is conditions.KINDS[conditions.SHAPE]:
            control = control_section(generator, data=data, seed=seed)
            table += "\n\n" + format_control(control)
        elif kind is conditions.KINDS[colour.NAME]:
            colours = colour_section(generator, images, labels, data=data, seed=seed)
            table += "\n\n" + format_colours(colours)
    if as_json:
        figures = {k: dataclasses.asdict(v) for k, v in rows.items()}
        if shapes:
            figures["shape"] = {k: dataclasses.asdict(v) for k, v in shapes.items()}
        if control is not None:
            figures["shape_control"] = dataclasses.asdict(control)
        if colours is not None:
            figures["colours"] = dataclasses.asdict(colours)
        print(json.dumps({"generator_path": str(generator_path), "dataset": dataset.key, "per_class": per_digit,
                          "seed": seed, **figures}, indent=2, allow_nan=True))
    else:
        word = dataset.class_word
        what = (f"{per_digit} samples per {word}" if conditional
                else f"{per_digit * dataset.num_classes} samples of any {word}")
        print(f"{generator_path} ({dataset.title}): {what}, seed {seed}")
        print(table)
    return rows


def read_samples(path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels int (n,)) of a file in the layout of --save-npz (`shape.read_npz`): digits
    drawn by anything (this project's generators, benchmarks/rivals.py's, anyone's); InputError (one line) else."""
    images, labels = shape.read_npz(path)
    if images.shape[1:] != MNIST.image_shape[:2] or labels is None:
        raise InputError(f"{path}: expected digits (n, 28, 28) and their labels, the layout of --save-npz; got "
                         f"{images.shape}{' without labels' if labels is None else ''}")
    if not (np.issubdtype(labels.dtype, np.integer) and np.all((labels >= 0) & (labels < MNIST.num_classes))):
        raise InputError(f"{path}: labels must be digits 0-9")
    return images, labels.astype(np.int64)


def evaluate_samples(path, *, classifier: Path | None = None, data=None, as_json: bool = False) -> dict:
    """Score saved digits (`read_samples`) as `evaluate` scores a generator's: both judges and the shape section,
    beside as many real training digits of each class as the file's scarcest class has."""
    images, labels = read_samples(path)
    per_digit = int(np.bincount(labels, minlength=MNIST.num_classes).min())
    if per_digit < 2:
        raise InputError(f"{path}: every digit needs at least 2 samples to be scored, and one has {per_digit}")
    evaluator = Evaluator(load_classifier(classifier or classifier_path(MNIST)), data=data)
    rows = {"samples": evaluator.score(images, labels),
            "real (train)": reference_scores(evaluator, data=data, per_digit=per_digit)}
    shapes = shape_section(images, labels, data=data, per_digit=per_digit)
    if as_json:
        print(json.dumps({"samples_path": str(path), "count": len(images), "real_per_class": per_digit,
                          **{k: dataclasses.asdict(v) for k, v in rows.items()},
                          "shape": {k: dataclasses.asdict(v) for k, v in shapes.items()}}, indent=2, allow_nan=True))
    else:
        print(f"{path}: {len(images):,} digits; the real line: {per_digit} per digit")
        print(format_table(rows) + "\n\n" + shape.format_comparisons(shapes))
    return rows


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m cgan.evaluation",
                       description="Score a generator or saved digits, or train the classifier that scores them.")
    p.add_argument("--generator", metavar="PATH", help="the generator to score")
    p.add_argument("--samples", metavar="FILE.npz",
                   help="score digits saved in the layout of --save-npz (`images` uint8 (n, 28, 28), `labels`) "
                        "instead of a generator's")
    p.add_argument("--classifier", metavar="PATH",
                   help="the evaluation classifier (default: models/<dataset>_classifier.keras)")
    p.add_argument("--train-classifier", action="store_true",
                   help="train the classifier on the 60k training images and save it to --classifier")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion", "cifar10"),
                   help="with --train-classifier: which one (default: mnist)")
    p.add_argument("--judge", default="convnet", choices=(*JUDGES, "both"),
                   help="with --train-classifier: which feature network "
                        "(default: convnet, which also reads the labels)")
    p.add_argument("--epochs", type=int, default=None,
                   help="classifier training epochs (default: 4 for mnist, 10 for fashion)")
    p.add_argument("--per-digit", type=int, default=None,
                   help="samples per class to score (default: 1000; 100 per number for pairs)")
    p.add_argument("--seed", type=int, default=0, help="noise seed for the samples (default: 0)")
    p.add_argument("--data", metavar="PATH", help="a Keras-layout .npz or IDX folder (default: the dataset's own), "
                                                  "or a folder of class folders (your own images)")
    p.add_argument("--image-size", type=int, default=0,
                   help="with --data DIR of class folders: the side its images are resized to (as the GAN trained)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    try:
        if args.train_classifier:
            from cgan import folders
            from cgan.data import DATASETS

            dataset = DATASETS[args.dataset]
            if args.data and folders.is_image_folder(args.data):
                dataset = folders.open_folder(args.data, args.image_size)
            if args.judge == "both" and args.classifier:
                raise UserError("--judge both trains two networks: it does not go with --classifier PATH")
            for judge in JUDGES if args.judge == "both" else (args.judge,):
                path, accuracy = train_classifier(args.classifier, dataset=dataset, judge=judge, data=args.data,
                                                  epochs=args.epochs)
                print(f"{judge} saved to {path}: test accuracy {100 * accuracy:.2f}%")
            return 0
        if args.samples:
            if args.generator:
                raise UserError("--samples scores saved digits: it does not go with --generator")
            evaluate_samples(args.samples, classifier=args.classifier, data=args.data, as_json=args.json)
            return 0
        if not args.generator:
            raise UserError("give --generator PATH or --samples FILE.npz to score, or --train-classifier")
        if args.per_digit is not None and not 2 <= args.per_digit <= 10_000:
            raise UserError(f"--per-digit must be between 2 and 10000, got {args.per_digit}")
        evaluate(args.generator, classifier=args.classifier, data=args.data, per_digit=args.per_digit,
                 seed=args.seed, as_json=args.json)
        return 0
    except UserError as exc:
        print(f"python -m cgan.evaluation: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
