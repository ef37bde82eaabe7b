"""What the discriminator sees moved: differentiable translation (DiffAugment, Zhao et al., 2020).

Real and fake images alike are shifted before D (and its penalties) see them, so D
cannot learn the training images pixel for pixel, while G's gradient passes through
the shift. The augmentation draws its own random numbers and takes them as an
argument, so the caller decides where they come from (one device or replicas).
"""

from __future__ import annotations

from cgan.backend import tf
from cgan.data import to_model_range

BACKGROUND = to_model_range(0.0)  # a black pixel, what comes in at the border
RANDOMS = 3  # numbers each image needs: its vertical and horizontal shift, and whether it is shifted


def shift_limits(height: int, width: int) -> tuple[int, int]:
    """The largest shift along each axis: an eighth of the side, rounded (28 -> 4, 56 -> 7)."""
    return int(height / 8 + 0.5), int(width / 8 + 0.5)


def translate(images, shifts):
    """`images` (b, h, w, c) moved by `shifts` (b, 2) int32 pixels (down, right), the background coming in.

    Each shift is at most `shift_limits` along its axis. A gather, so the gradient
    reaches the unshifted pixels.
    """
    height, width = images.shape[1], images.shape[2]
    limit_y, limit_x = shift_limits(height, width)
    padded = tf.pad(images, [[0, 0], [limit_y, limit_y], [limit_x, limit_x], [0, 0]], constant_values=BACKGROUND)
    rows = tf.range(height)[None, :] + limit_y - shifts[:, :1]  # (b, h): the padded row each output row takes
    cols = tf.range(width)[None, :] + limit_x - shifts[:, 1:]  # (b, w)
    return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)


def random_shifts(uniform, height: int, width: int, probability: float):
    """Shifts (b, 2) int32 from `uniform` (b, RANDOMS) numbers in [0, 1): each image is shifted with
    `probability`, by a whole number of pixels drawn evenly within `shift_limits`; otherwise by 0."""
    limits = tf.constant(shift_limits(height, width), tf.float32)
    shifts = tf.floor(uniform[:, :2] * (2 * limits + 1)) - limits
    shifted = tf.cast(uniform[:, 2:] < probability, tf.float32)
    return tf.cast(shifts * shifted, tf.int32)


def augment(images, uniform, probability: float):
    """`images` (b, h, w, c) as D sees them with --augment `probability`, from `uniform` (b, RANDOMS) in [0, 1)."""
    return translate(images, random_shifts(uniform, images.shape[1], images.shape[2], probability))
