"""cgan/flops.py: a training step's operations, counted from the layers, against sums done by hand."""

from __future__ import annotations

import dataclasses

from conftest import tiny_config

import cgan_mnist
from cgan import flops
from cgan.backend import keras

layers = keras.layers


def test_each_multiplying_layer_counts_two_operations_a_multiply_add():
    image = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="same")(image)  # 4x4x4: 16 positions x 27 x 4
    x = layers.Conv2DTranspose(2, 4, strides=2, padding="same")(x)  # 16 inputs x 4 x 16 x 2
    x = layers.ReLU()(x)
    out = layers.Dense(5)(layers.Flatten()(x))  # 8x8x2 = 128 -> 5
    model = keras.Model(image, out)
    forward = 2 * (16 * 27 * 4 + 16 * 4 * 16 * 2 + 128 * 5)
    assert flops.forward_flops(model) == forward
    # Backward: every layer's weights once more, every input but the first's once more.
    assert flops.backward_flops(model) == forward + 2 * (16 * 4 * 16 * 2 + 128 * 5)
    assert flops.backward_flops(model, inputs=False) == forward


def test_a_step_counts_what_train_step_runs():
    config = tiny_config(r1_weight=0.0)
    g, d = cgan_mnist.config_generator(config), cgan_mnist.config_discriminator(config)
    gf, df = flops.forward_flops(g), flops.forward_flops(d)
    d_input = flops.backward_flops(d, weights=False)
    joint = flops.step_flops(config, g, d)
    assert joint == config.batch_size * (gf + flops.backward_flops(g) + 2 * (df + flops.backward_flops(d, inputs=False))
                                         + d_input)
    two = dataclasses.replace(config, critic_steps=2)
    assert flops.step_flops(two, g, d) > joint  # two D updates, each with its own fakes
    critic = dataclasses.replace(config, loss="wgan-gp", critic_steps=2)
    assert flops.step_flops(critic, g, d) > flops.step_flops(two, g, d)  # and the penalty
    assert flops.step_flops(dataclasses.replace(config, batch_size=32), g, d) == 2 * joint
    # R1: D forward, its input gradient and that gradient's backward, on a quarter of the real batch.
    r1 = flops.step_flops(dataclasses.replace(config, r1_weight=1.0), g, d) - joint
    assert r1 == config.batch_size // 4 * (df + 2 * d_input + flops.backward_flops(d, inputs=False))


def test_a_96_wide_generator_works_mostly_at_14x14():
    config = cgan_mnist.Config(g_width=96, g_extra_convs=1)
    g = cgan_mnist.config_generator(config)
    w = config.g_width
    at_14 = 2 * 7 * 7 * 2 * w * 16 * w + 2 * 14 * 14 * w * 9 * w  # the 7->14 transposed conv and the 3x3 conv
    assert 0.9 < at_14 / flops.forward_flops(g) < 1
