"""Latent directions for sliders: the principal directions of the generator's first layer (GANSpace).

GANSpace (Harkonen et al., 2020) finds a generator's main axes of variation by
a PCA of its first layer's activations over random noise. In this project's
generators that layer is Dense -> BatchNorm, which in inference mode is affine
in the noise: h = A z + (a label term). Its covariance over z ~ N(0, I) is A A^T,
so the PCA is exact and needs no sampling: the right singular vectors of A are
the unit noise directions that move h along its principal components, and the
squared singular values are their variances. Moving z by t along direction k
moves it t standard deviations along that axis, so a slider from -3 to 3 spans
what the noise itself spans.

Each direction is also described by what it does to the pixels, measured on
sample digits pushed 2 standard deviations each way (ink, slant, width,
height): by its clearest effect, or its two clearest where a stronger direction
has that name; one with no clear effect of its own is just called by its number.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cgan import colour, conditions
from cgan.backend import keras
from cgan.data import postprocess
from cgan.sampling import class_count, latent_dim, noise

# What a direction does, from the pixels: (name when the figure grows, name when it shrinks).
EFFECTS = {"ink": ("bolder", "thinner"), "slant": ("slant right", "slant left"),
           "width": ("wider", "narrower"), "height": ("taller", "shorter")}
CLEAR_EFFECT = 0.5  # a change of at least half the statistic's spread over real-looking samples


@dataclasses.dataclass(frozen=True)
class Directions:
    vectors: np.ndarray  # float32 (count, latent_dim), orthonormal rows
    variance_share: np.ndarray  # float (count,): each one's share of the first layer's noise variance
    names: list[str]  # "PC1 · thicker", ...

    def to_json(self) -> dict:
        return {"vectors": np.round(self.vectors.astype(float), 5).tolist(),
                "variance_share": np.round(self.variance_share, 4).tolist(), "names": list(self.names)}


def shift(z: np.ndarray, directions: Directions, offsets) -> np.ndarray:
    """Noise z (n, latent_dim) moved by offsets[k] standard deviations along each direction k."""
    offsets = np.asarray(offsets, np.float32).reshape(-1)
    return (z + offsets @ directions.vectors[: len(offsets)]).astype(np.float32)


def first_layer_response(generator: keras.Model) -> np.ndarray:
    """The matrix A (units, latent_dim) of the first BatchNorm's output as a function of the noise.

    Read off by finite differences (the layer is affine in z), with the label fixed at class 0:
    the label adds a constant and does not change A.
    """
    norm = next(layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization))
    probe = keras.Model(generator.input, norm.output)
    dim = latent_dim(generator)
    z = np.concatenate([np.zeros((1, dim), np.float32), np.eye(dim, dtype=np.float32)])
    inputs = {"noise": z}
    if class_count(generator) is not None:  # (and a shape generator's attributes, one real 0's: a constant too)
        inputs = conditions.held(generator, {**inputs, "label": np.zeros((len(z), 1), np.int32)}, 0,
                                 np.random.default_rng(0))
    h = np.asarray(probe(inputs, training=False), np.float64).reshape(len(z), -1)
    return (h[1:] - h[0]).T


def _statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image ink (mean darkness), slant (shear of the ink's second moments), width and height (its spreads);
    of an RGB image's digit as its luma reads from background to stroke (`cgan.colour.readable`)."""
    ink = colour.readable(images).astype(np.float64) / 255.0
    mass = ink.sum(axis=(1, 2)) + 1e-6
    rows, cols = np.mgrid[: images.shape[1], : images.shape[2]]
    r_mean = (ink * rows).sum(axis=(1, 2)) / mass
    c_mean = (ink * cols).sum(axis=(1, 2)) / mass
    dr, dc = rows - r_mean[:, None, None], cols - c_mean[:, None, None]
    var_r = (ink * dr**2).sum(axis=(1, 2)) / mass
    var_c = (ink * dc**2).sum(axis=(1, 2)) / mass
    # Rows grow downwards: a stroke leaning right has its top to the right, so column falls as row grows.
    slant = -(ink * dr * dc).sum(axis=(1, 2)) / mass / (var_r + 1e-6)
    return {"ink": ink.mean(axis=(1, 2)), "slant": slant, "width": np.sqrt(var_c), "height": np.sqrt(var_r)}


def effects(generator: keras.Model, vectors: np.ndarray, *, samples: int = 50, step: float = 2.0,
            seed: int = 0) -> list[dict[str, float]]:
    """What each direction does to the pixels: each statistic's mean change, in its spread over samples
    (`samples` of each class, or as many in all as ten classes would give when there are more: a pairs
    generator's 100 numbers would otherwise draw 5,000 images for each direction and sign)."""
    classes = class_count(generator)
    per_class = samples if (classes or 1) <= 10 else max(1, 10 * samples // classes)
    z = noise(generator, per_class * (classes or 1), seed)
    base = {"noise": z}
    if classes is not None:
        base["label"] = np.repeat(np.arange(classes, dtype=np.int32), per_class).reshape(-1, 1)
        base = conditions.complete(generator, base, np.random.default_rng(seed))
    spread = {name: value.std() + 1e-9
              for name, value in _statistics(postprocess(generator(base, training=False))).items()}
    found = []
    for vector in vectors:
        moved = {}
        for sign in (-1, 1):
            images = postprocess(generator({**base, "noise": z + sign * step * vector}, training=False))
            moved[sign] = _statistics(images)
        found.append({name: float((moved[1][name] - moved[-1][name]).mean() / spread[name]) for name in EFFECTS})
    return found


def names_for(found: list[dict[str, float]]) -> tuple[list[str], list[int]]:
    """A name for each direction that no stronger one has, and the sign that makes it read as growth.

    A direction is named by its clearest effect ("bolder"); if a stronger direction has that
    name, by its two clearest ("bolder, slant left"); failing that, by its number alone. Its
    sign is turned so that its clearest effect grows, so a slider to the right adds.
    """
    taken, names, signs = set(), [], []
    for k, effect in enumerate(found):
        clear = sorted((n for n in effect if abs(effect[n]) >= CLEAR_EFFECT), key=lambda n: -abs(effect[n]))
        sign = -1 if clear and effect[clear[0]] < 0 else 1
        words = [EFFECTS[n][0 if sign * effect[n] > 0 else 1] for n in clear[:2]]
        candidates = [words[0], ", ".join(words)] if len(words) == 2 else words
        label = next((c for c in candidates if c not in taken), "")
        taken.add(label)
        names.append(f"PC{k + 1} · {label}" if label else f"PC{k + 1}")
        signs.append(sign)
    return names, signs


def latent_directions(generator: keras.Model, count: int = 8) -> Directions:
    """The `count` principal noise directions of `generator`'s first layer, strongest first, named.

    Each is named by what sets it apart from the stronger ones (`names_for`), its sign chosen
    so that its clearest effect reads as growth (bolder, wider, ...).
    """
    response = first_layer_response(generator)
    _, singular, right = np.linalg.svd(response, full_matrices=False)
    count = min(count, len(singular))
    vectors = right[:count].astype(np.float32)
    share = singular[:count] ** 2 / np.sum(singular**2)
    names, signs = names_for(effects(generator, vectors))
    vectors *= np.asarray(signs, np.float32)[:, None]
    return Directions(vectors, share, names)
