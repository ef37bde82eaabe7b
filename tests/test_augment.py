"""cgan/augment.py: D's images moved by whole pixels, the background coming in, the gradient passing through."""

from __future__ import annotations

import numpy as np
import pytest

from cgan import augment
from cgan.backend import tf


def dot_image(height=28, width=28, at=(10, 12)):
    x = np.full((1, height, width, 1), augment.BACKGROUND, np.float32)
    x[0, at[0], at[1], 0] = 1.0
    return x


@pytest.mark.parametrize("shift", [(0, 0), (3, -2), (-4, 4), (4, -4)])
def test_a_shift_moves_every_pixel_by_that_many_and_the_border_is_background(shift):
    x = dot_image(at=(10, 12))
    moved = augment.translate(tf.constant(x), tf.constant([shift], tf.int32)).numpy()
    expected = dot_image(at=(10 + shift[0], 12 + shift[1]))
    np.testing.assert_array_equal(moved, expected)


def test_what_leaves_the_image_is_gone_and_background_comes_in():
    x = np.linspace(-1, 1, 28 * 28, dtype=np.float32).reshape(1, 28, 28, 1)
    moved = augment.translate(tf.constant(x), tf.constant([[2, -3]], tf.int32)).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(moved[2:, :-3], x[0, :-2, 3:, 0])
    assert (moved[:2] == augment.BACKGROUND).all() and (moved[:, -3:] == augment.BACKGROUND).all()


def test_the_limits_are_an_eighth_of_each_side():
    assert augment.shift_limits(28, 28) == (4, 4)
    assert augment.shift_limits(28, 56) == (4, 7)


def test_shifts_cover_the_limits_evenly_and_the_probability_is_the_share_shifted():
    uniform = tf.random.stateless_uniform((20_000, augment.RANDOMS), seed=[1, 2])
    every = augment.random_shifts(uniform, 28, 56, 1.0).numpy()
    assert set(every[:, 0]) == set(range(-4, 5)) and set(every[:, 1]) == set(range(-7, 8))
    counts = np.bincount(every[:, 0] + 4)
    assert counts.min() > 0.8 * counts.max()  # evenly: each of the 9 shifts about 1/9 of the time
    assert not augment.random_shifts(uniform, 28, 28, 0.0).numpy().any()
    some = augment.random_shifts(uniform, 28, 28, 0.3).numpy()
    unshifted = (uniform.numpy()[:, 2] >= 0.3)
    assert not some[unshifted].any()
    np.testing.assert_array_equal(some[~unshifted], augment.random_shifts(uniform, 28, 28, 1.0).numpy()[~unshifted])


def test_the_gradient_reaches_the_pixels_that_stay_in_the_image():
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(augment.translate(x, tf.constant([[0, 0], [1, 2]], tf.int32)))
    grad = tape.gradient(total, x).numpy()[..., 0]
    assert (grad[0] == 1).all()
    assert (grad[1, :-1, :-2] == 1).all() and (grad[1, -1:] == 0).all() and (grad[1, :, -2:] == 0).all()


def test_bfloat16_images_move_as_float32_ones_do():
    x = np.random.default_rng(1).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    uniform = tf.random.stateless_uniform((3, augment.RANDOMS), seed=[3, 4])
    as_bf16 = augment.augment(tf.cast(tf.constant(x), tf.bfloat16), uniform, 1.0)
    assert as_bf16.dtype == tf.bfloat16
    np.testing.assert_array_equal(tf.cast(as_bf16, tf.float32).numpy(),
                                  tf.cast(tf.cast(augment.augment(tf.constant(x), uniform, 1.0), tf.bfloat16),
                                          tf.float32).numpy())
