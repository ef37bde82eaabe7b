"""Morphs and latent walks with a trained generator, as uint8 frame stacks.

- `interpolate(generator, a, b, frames, seed)`: fixed noise, the label blended from class a to class b;
- `walk(generator, label, frames, seed)`: fixed class, the noise moved along the great circle
  (spherical interpolation) between the noise of `seed` and of `seed + 1`;
- `sweep(generator, labels, name, values, seed)`: for a generator with attributes (`--condition
  shape`), fixed noise and class per row, only one attribute moving along `values`.

A generator with attributes keeps them fixed through a morph or a walk: those asked
(`attributes`), the others a real digit's of the first class (`cgan.conditions.fill`).
"""

from __future__ import annotations

import numpy as np

from cgan import conditions
from cgan.backend import keras
from cgan.data import postprocess
from cgan.errors import UserError
from cgan.sampling import LABEL_EMBEDDING, class_count, latent_dim, noise


def soft_label_generator(generator: keras.Model) -> keras.Model:
    """A copy of `generator` whose label is a float vector of class weights instead of one class.

    The label embedding becomes a bias-free Dense layer whose kernel is the
    embedding table, so a one-hot label draws exactly what `generate` draws and
    a blend of two one-hot labels lies between them. Works for any generator of
    this project without knowing how it was built.
    """
    classes = class_count(generator)
    if classes is None:
        raise UserError("this generator has no labels (it was trained with --unconditional): "
                        "it cannot morph between them")
    embedding = generator.get_layer(LABEL_EMBEDDING)

    def clone(layer):
        if layer is embedding and isinstance(layer, keras.layers.Embedding):  # a NumberCode passes weights on itself
            return keras.layers.Dense(embedding.output_dim, use_bias=False, name=LABEL_EMBEDDING)
        return layer.__class__.from_config(layer.get_config())

    inputs = {"noise": keras.Input((latent_dim(generator),), name="noise"),
              "label": keras.Input((classes,), name="label")}
    kind = conditions.kind_of(generator)
    if kind is not None:
        inputs[kind.name] = keras.Input((len(kind.attributes),), name=kind.name)
    soft = keras.models.clone_model(generator, input_tensors=inputs, clone_function=clone)
    soft.set_weights(generator.get_weights())
    return soft


def interpolate(generator: keras.Model, a: int, b: int, *, frames: int = 10, seed: int | None = None,
                attributes: dict | None = None) -> np.ndarray:
    """uint8 frames (frames, h, w): one noise vector, the label moving linearly from class a to b.

    The first frame equals `generate(generator, [a], seed)`, the last the same noise with class b.
    """
    soft = soft_label_generator(generator)
    eye = np.eye(class_count(generator), dtype=np.float32)
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]
    labels = (1 - t) * eye[a] + t * eye[b]
    z = np.repeat(noise(generator, 1, seed), frames, axis=0)
    return postprocess(soft(conditions.held(generator, {"noise": z, "label": labels}, a, conditions.shape_rng(seed),
                                            attributes), training=False))


def sweep(generator: keras.Model, labels, name: str, values, *, seed: int | None = None,
          attributes: dict | None = None) -> np.ndarray:
    """uint8 frames (rows x len(values), h, w): per row one noise and class (`labels`), only attribute `name`
    taking each of `values`; the other attributes are those asked, the rest a real digit's of the row's class."""
    labels, values = np.asarray(labels, np.int32).reshape(-1), np.asarray(values, np.float32)
    rows = conditions.fill(generator, labels, attributes, conditions.shape_rng(seed))
    shapes = np.repeat(rows, len(values), axis=0)
    shapes[:, conditions.names(generator).index(name)] = np.tile(values, len(labels))
    inputs = {"noise": np.repeat(noise(generator, len(labels), seed), len(values), axis=0),
              "label": np.repeat(labels, len(values)).reshape(-1, 1), conditions.kind_of(generator).name: shapes}
    return np.concatenate([postprocess(generator({k: v[i : i + 250] for k, v in inputs.items()}, training=False))
                           for i in range(0, len(shapes), 250)])


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors z0 and z1 at fractions t (shape (k,)) -> (k, dim)."""
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.asarray(t, np.float64)[:, None]
    if omega < 1e-6:  # (nearly) the same direction: a straight line is the same path
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


def walk(generator: keras.Model, label: int | None, *, frames: int = 10, seed: int | None = None,
         attributes: dict | None = None) -> np.ndarray:
    """uint8 frames (frames, h, w): class fixed, the noise walking from seed's vector to seed+1's.

    `label` is None for an unconditional generator, and a class for a conditional one.
    """
    if (label is None) != (class_count(generator) is None):
        raise UserError("this generator has no labels: walk without a digit" if label is not None
                        else "this generator draws a given class: walk with a digit, --walk N")
    base = 0 if seed is None else seed
    inputs = {"noise": slerp(noise(generator, 1, base)[0], noise(generator, 1, base + 1)[0],
                             np.linspace(0.0, 1.0, frames))}
    if label is not None:
        inputs["label"] = np.full((frames, 1), label, np.int32)
    return postprocess(generator(conditions.held(generator, inputs, label, conditions.shape_rng(seed), attributes),
                                 training=False))
