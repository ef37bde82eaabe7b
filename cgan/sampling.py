"""Drawing images with a trained generator: load it, save it, `generate`. No training code is imported.

    from cgan.sampling import load_generator, generate
    generator = load_generator("cgan_mnist.h5")
    images = generate(generator, [6, 6, 0, 1], seed=0)  # uint8, (4, 28, 28), 0-255
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cgan import conditions
from cgan.backend import keras
from cgan.data import dataset_of, postprocess
from cgan.errors import InputError, UserError
from cgan.files import atomic_path
from cgan.layers import number_code  # also registers the project's layers, for loading

LABEL_EMBEDDING = "label_embedding"  # the layer of a conditional generator that turns a class into a vector


def latent_dim(generator: keras.Model) -> int:
    """How many noise numbers the generator takes per image."""
    return generator.input["noise"].shape[-1]


def class_count(generator: keras.Model) -> int | None:
    """How many classes the generator was trained on; None for an unconditional one."""
    if "label" not in generator.input:
        return None
    code = number_code(generator)
    if code is not None:  # the label picks a number, which the embedding then takes (--number-code)
        return code.classes
    return generator.get_layer(LABEL_EMBEDDING).weights[0].shape[0]  # (classes, embedding size)


def image_size(generator: keras.Model) -> tuple[int, int]:
    """(height, width) of the generator's images."""
    return tuple(generator.output.shape[1:3])


def picture_shape(generator: keras.Model) -> tuple[int, ...]:
    """The shape of one of the generator's uint8 pictures: (height, width) if grey, (height, width, 3) if RGB."""
    channels = generator.output.shape[-1]
    return (*image_size(generator), *((channels,) if channels != 1 else ()))


def load_generator(path) -> keras.Model:
    """Load a generator saved by this project (.h5 or .keras); InputError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a loadable Keras model ({reason})") from None
    inputs = model.input if isinstance(model.input, dict) else {}
    shape = tuple(model.output.shape[1:]) if not isinstance(model.output, (list, dict)) else ()
    known = [{"noise"}, {"noise", "label"}, *({"noise", "label", kind} for kind in conditions.KINDS)]
    if set(inputs) not in known or len(shape) != 3 or shape[-1] not in (1, 3):
        raise InputError(f"{path}: not a generator (expected inputs 'noise' (and 'label', and one of "
                         f"{', '.join(map(repr, conditions.KINDS))}) and a grey or RGB image output)")
    dataset = dataset_of(model)
    classes = class_count(model) if "label" in inputs else None
    if shape != dataset.image_shape or classes not in (None, dataset.num_classes):
        drawn = f"{shape[0]}x{shape[1]}x{shape[2]} images" + (f" of {classes} classes" if classes else "")
        raise InputError(f"{path}: draws {drawn}, but its name ({model.name}) says {dataset.title}, "
                         f"{'x'.join(map(str, dataset.image_shape))} of {dataset.num_classes} classes")
    return model


def save_generator(generator: keras.Model, path) -> Path:
    """Save `generator` whole (legacy .h5 or native .keras, by suffix), atomically."""
    from absl import logging as absl_logging

    suffix = ".keras" if Path(path).suffix == ".keras" else ".h5"
    verbosity = absl_logging.get_verbosity()
    # Keras's "HDF5 is legacy" notice: .h5 is this project's published format
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        with atomic_path(path, suffix=suffix) as tmp:
            generator.save(tmp)
    finally:
        absl_logging.set_verbosity(verbosity)
    return Path(path)


def noise(generator: keras.Model, count: int, seed: int | None) -> np.ndarray:
    """The noise `generate` draws for `count` images with `seed`: float32 (count, latent_dim)."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim(generator))).astype(np.float32)


def generate(generator: keras.Model, labels=None, seed: int | None = None, *, count: int | None = None,
             attributes: dict | None = None, batch_size: int = 250) -> np.ndarray:
    """uint8 images (0-255) of shape (n, h, w), or (n, h, w, 3) if RGB: one per requested class, or `count`
    from an unconditional generator.

    The same seed gives the same images; each image's noise depends only on
    the seed and its position. A conditional generator takes `labels`; an
    unconditional one (no label input) takes `count` instead. A generator with
    attributes (`--condition shape`) takes `attributes`, {name: value or (n,) values}
    ({"thickness": 4.0}); those not given are a real digit's (`cgan.conditions.fill`).
    """
    batches = list(generate_batches(generator, labels, seed, count=count, attributes=attributes,
                                    batch_size=batch_size))
    return np.concatenate(batches) if batches else np.empty((0, *picture_shape(generator)), np.uint8)


def generate_batches(generator: keras.Model, labels=None, seed: int | None = None, *, count: int | None = None,
                     attributes: dict | None = None, batch_size: int = 250):
    """The images of `generate`, as uint8 batches of up to `batch_size`: memory stays flat however many are asked."""
    classes = class_count(generator)
    if attributes and not conditions.names(generator):
        raise UserError(f"this generator takes no {next(iter(attributes))}: it was not trained with --condition shape")
    if classes is None:
        if labels is not None:
            raise UserError("this generator has no labels (it was trained with --unconditional): "
                            "ask for a count of images")
        if count is None or count < 0:
            raise ValueError(f"an unconditional generator needs count >= 0, got {count}")
        total = count
    else:
        if labels is None:
            raise ValueError("a conditional generator needs the labels to draw")
        labels = np.asarray(labels).reshape(-1)
        if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= classes):
            raise UserError(f"labels must be integers 0-{classes - 1} for this generator, got {labels.tolist()[:10]}")
        labels, total = labels.astype(np.int32).reshape(-1, 1), len(labels)
    shapes = None
    if conditions.names(generator):
        shapes = conditions.fill(generator, labels, attributes, conditions.shape_rng(seed))
    rng = np.random.default_rng(seed)  # drawn batch by batch, the same numbers as `noise` draws at once
    for i in range(0, total, batch_size):
        inputs = {"noise": rng.standard_normal((min(batch_size, total - i), latent_dim(generator))).astype(np.float32)}
        if classes is not None:
            inputs["label"] = labels[i : i + batch_size]
        if shapes is not None:
            inputs[conditions.kind_of(generator).name] = shapes[i : i + batch_size]
        yield postprocess(generator(inputs, training=False))
