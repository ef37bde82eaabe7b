"""Layers of this project's own, in a saved generator or in the discriminator; importing this module registers them
for loading.

- `NumberCode`: a class becomes one of its numbers, drawn from the noise (`--number-code`).
- `MinibatchStd`: the discriminator's view of how alike the images of a batch are (`--minibatch-std`).
- `Attributes`: measured attributes in their units made standard scores, with what sampling needs to ask for
  them (`--condition shape`; `cgan.conditions`).
"""

from __future__ import annotations

import numpy as np

from cgan.backend import keras

ops = keras.ops


@keras.saving.register_keras_serializable(package="cgan")
class NumberCode(keras.layers.Layer):
    """(noise, label) -> weights over numbers (b, numbers): the number of its class the image will show.

    `members` is (classes, numbers), 1 where a number belongs to a class (for below50 pairs,
    the 50 numbers on each side). The first noise number, mapped through the normal
    distribution's CDF to a uniform u, picks the class's member of rank floor(u x members):
    each of a class's numbers equally likely, the same noise always the same number. So the
    generator is conditioned on a number while its input stays the class, as InfoGAN draws a
    categorical code from the noise. `label` is an int class (b, 1), or class weights
    (b, classes) for a morph: the weights then pass to each class's number.
    """

    def __init__(self, members, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # the uniform must not round: a bfloat16 u has 8 bits
        self.members = np.asarray(members, np.float32)  # (classes, numbers)

    @property
    def classes(self) -> int:
        return self.members.shape[0]

    def call(self, noise, label):
        members = ops.convert_to_tensor(self.members)
        if label.shape[-1] == 1 and self.classes > 1:  # a class (int, or bool), not weights
            weights = ops.one_hot(ops.reshape(ops.cast(label, "int32"), (-1,)), self.classes)  # (b, classes)
        else:
            weights = ops.cast(label, "float32")
        u = 0.5 * (1.0 + ops.erf(ops.cast(noise[:, :1], "float32") / np.sqrt(2.0)))  # (b, 1), uniform in [0, 1]
        counts = ops.sum(members, axis=1)  # (classes,)
        rank = ops.minimum(ops.floor(u * counts), counts - 1) + 1  # (b, classes): 1-based rank of the number drawn
        picked = members * ops.cast(ops.equal(ops.cumsum(members, axis=1), rank[:, :, None]), "float32")  # (b, c, n)
        return ops.sum(weights[:, :, None] * picked, axis=1)  # (b, numbers)

    def compute_output_shape(self, noise_shape, label_shape):
        return (noise_shape[0], self.members.shape[1])

    def get_config(self):
        return {**super().get_config(), "members": self.members.astype(int).tolist()}


@keras.saving.register_keras_serializable(package="cgan")
class MinibatchStd(keras.layers.Layer):
    """(b, h, w, c) features -> (b, h, w, c + 1): one more channel, the spread of each image's group.

    The batch is cut into consecutive groups of `group_size` images; each group's standard
    deviation over its images, averaged over positions and channels, fills the new channel of
    its images (Karras et al., 2018, "Progressive growing of GANs"). A batch of fakes too alike
    shows a smaller spread than a batch of real images, which D can then punish. Real and fake
    images must come in separate batches (as `cgan.gan` calls D), or a group would mix them.
    """

    def __init__(self, group_size: int, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, x):
        b, h, w, c = ops.shape(x)
        wide = "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"  # bfloat16 would round
        groups = ops.reshape(ops.cast(x, wide), (-1, self.group_size, h, w, c))
        spread = ops.mean(ops.sqrt(ops.var(groups, axis=1) + 1e-8), axis=(1, 2, 3))  # (b / group,)
        spread = ops.repeat(spread, self.group_size, axis=0)  # (b,): each image's group's
        channel = ops.broadcast_to(ops.reshape(ops.cast(spread, x.dtype), (-1, 1, 1, 1)), (b, h, w, 1))
        return ops.concatenate([x, channel], axis=-1)

    def compute_output_shape(self, shape):
        return (*shape[:-1], shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


@keras.saving.register_keras_serializable(package="cgan")
class Attributes(keras.layers.Layer):
    """(b, k) attributes in their units -> (b, k) standard scores: (x - mean) / sd of the training data's.

    The layer is how a saved generator records a continuous condition: `names` and `units`
    ("thickness", "px"), the training data's `mean` and `sd`, and `reference`, (classes, rows, k)
    attribute rows of real training images per class, from which sampling fills in what a user
    did not ask for (`cgan.conditions.fill`). All three are weights set from the data
    (`cgan.conditions.set_statistics`), so they travel in checkpoints and saved models alike.
    """

    def __init__(self, names, units, classes: int, rows: int, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # a standard score in bfloat16 would lose the fine steps
        self.names, self.units = tuple(names), tuple(units)
        self.classes, self.rows = int(classes), int(rows)
        k = len(self.names)
        self.mean = self.add_weight(shape=(k,), initializer="zeros", trainable=False, name="mean")
        self.sd = self.add_weight(shape=(k,), initializer="ones", trainable=False, name="sd")
        self.reference = self.add_weight(shape=(self.classes, self.rows, k), initializer="zeros", trainable=False,
                                         name="reference")

    def call(self, x):
        return (ops.cast(x, "float32") - self.mean) / self.sd

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "names": list(self.names), "units": list(self.units),
                "classes": self.classes, "rows": self.rows}


@keras.saving.register_keras_serializable(package="cgan")
class ClassNames(keras.layers.Layer):
    """The label as it is: how a generator trained on a folder of images records its classes' names, the
    folder's title and path (`cgan.folders`), so that sampling and the page can name them."""

    def __init__(self, names, title: str = "", folder: str = "", **kwargs):
        super().__init__(**kwargs)
        self.names, self.title, self.folder = tuple(names), str(title), str(folder)

    def call(self, label):
        return label

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "names": list(self.names), "title": self.title, "folder": self.folder}


def drawn_numbers(generator: keras.Model, noise, labels):
    """The numbers (b, 1) int32 that a generator with a `NumberCode` draws for this noise and these classes."""
    weights = number_code(generator)(noise, labels)
    return ops.reshape(ops.cast(ops.argmax(weights, axis=-1), "int32"), (-1, 1))


def number_code(generator: keras.Model) -> NumberCode | None:
    """The generator's `NumberCode` layer, None if it has none."""
    return next((layer for layer in generator.layers if isinstance(layer, NumberCode)), None)
