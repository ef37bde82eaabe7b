"""cgan/losses.py and the gradient penalty: values and gradients worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config

import cgan_mnist
from cgan.backend import keras, tf
from cgan.gan import ConditionalGAN, adam
from cgan.losses import (
    LOSSES,
    bce_losses,
    class_loss,
    class_set_loss,
    feature_matching,
    hinge_losses,
    wasserstein_losses,
)


def test_hinge_losses_give_the_generator_a_gradient_from_every_fake():
    real, fake = tf.constant([[2.0], [0.5]]), tf.constant([[-3.0], [0.5]])
    with tf.GradientTape() as tape:
        tape.watch(fake)
        d_loss, g_loss = hinge_losses(real, fake)
    assert float(d_loss) == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert float(g_loss) == pytest.approx(1.25)  # -mean(D(fake))
    # The fake that D has pushed past its margin (-3) still pulls on G.
    np.testing.assert_allclose(tape.gradient(g_loss, fake).numpy(), [[-0.5], [-0.5]])


def test_bce_losses_are_the_cross_entropy_of_sigmoid_outputs_and_do_not_overflow():
    real, fake = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-200.0]])
    d_loss, g_loss = bce_losses(real, fake)
    sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x, np.float64)))  # noqa: E731
    expected_d = -np.mean(np.log(sigmoid([2.0, -1.0]))) - np.mean(np.log(1 - sigmoid([0.5, -200.0])))
    assert float(d_loss) == pytest.approx(expected_d, rel=1e-5)
    # Non-saturating: G's loss is -log s(D(G(z))); for a fake at -200 that is 200, not log(0) = -inf.
    assert float(g_loss) == pytest.approx((-np.log(sigmoid(0.5)) + 200.0) / 2, rel=1e-5)


def test_wasserstein_losses():
    d_loss, g_loss = wasserstein_losses(tf.constant([[3.0], [1.0]]), tf.constant([[-1.0], [0.0]]))
    assert float(d_loss) == pytest.approx(-0.5 - 2.0) and float(g_loss) == pytest.approx(0.5)
    assert LOSSES["wgan-gp"].critic and not LOSSES["hinge"].critic and not LOSSES["bce"].critic


def linear_critic_gan(weights: np.ndarray) -> ConditionalGAN:
    """An unconditional GAN whose critic is D(x) = w . x + b: its gradient is w at every x."""
    image = keras.Input((28, 28, 1), name="image")
    score = keras.layers.Dense(1)(keras.layers.Flatten()(image))
    critic = keras.Model({"image": image}, score)
    critic.layers[-1].kernel.assign(weights.reshape(-1, 1))
    config = tiny_config(loss="wgan-gp", unconditional=True)
    generator = cgan_mnist.config_generator(config)
    gan = ConditionalGAN(generator, critic, cgan_mnist.config_generator(config), config=config)
    gan.compile(adam(config, 1e-4), adam(config, 1e-4), LOSSES["wgan-gp"])
    return gan


def test_gradient_penalty_of_a_linear_critic_is_the_hand_worked_value():
    w = np.random.default_rng(0).standard_normal(28 * 28).astype(np.float32) * 0.1
    gan = linear_critic_gan(w)
    rng = np.random.default_rng(1)
    real, fake = (tf.constant(rng.uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)) for _ in range(2))
    penalty = float(gan.gradient_penalty(real, fake, {}))
    assert penalty == pytest.approx((np.linalg.norm(w) - 1) ** 2, rel=1e-4)  # wherever x_hat lies


def test_gradient_penalty_has_a_finite_gradient_where_the_critic_gradient_is_zero():
    gan = linear_critic_gan(np.zeros(28 * 28, np.float32))
    real = tf.zeros((4, 28, 28, 1))
    with tf.GradientTape() as tape:
        penalty = gan.gradient_penalty(real, real, {})
    grads = tape.gradient(penalty, gan.discriminator.trainable_weights)
    assert float(penalty) == pytest.approx(1.0, abs=1e-5)  # (0 - 1)^2
    assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)
    assert grads[0] is not None  # the kernel does get a gradient


def test_the_class_set_loss_is_minus_the_log_of_the_probability_on_the_labels_classes():
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], np.float32))
    labels = np.array([[0], [1]])
    # one class per label: the cross-entropy
    assert (float(class_set_loss(logits, labels, np.eye(3, dtype=np.float32)))
            == pytest.approx(float(class_loss(logits, labels))))
    # classes {0, 1} make label 0, class {2} label 1: -log 0.8 for the first, -log 0.8 for the second
    members = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    assert float(class_set_loss(logits, labels, members)) == pytest.approx(-np.log(0.8), rel=1e-5)
    # a classifier sure of a class of the other label costs a lot, finitely
    sure = np.array([[-50.0, -50.0, 50.0]], np.float32)
    assert 90 < float(class_set_loss(sure, np.array([[0]]), members)) < 110


def test_feature_matching_is_the_mean_distance_between_class_means_of_classes_both_batches_have():
    # class 0: real mean (2, 0), fake (2, 2): 2 apart; class 2: real (0, 0), fake (3, 4): 5 apart;
    # class 1 has only real images and class 3 only a fake: neither counts.
    real = tf.constant([[1.0, 0.0], [3.0, 0.0], [7.0, 7.0], [0.0, 0.0]])
    real_classes = tf.constant([[0], [0], [1], [2]])
    fake = tf.Variable([[2.0, 2.0], [3.0, 4.0], [9.0, 9.0]])
    fake_classes = tf.constant([[0], [2], [3]])
    with tf.GradientTape() as tape:
        gap = feature_matching(real, real_classes, fake, fake_classes, classes=4)
    assert float(gap) == pytest.approx(3.5, rel=1e-6)
    # G's gradient reaches the fakes of the classes that count, as unit vectors away from the real means / 2
    np.testing.assert_allclose(tape.gradient(gap, fake), [[0.0, 0.5], [0.3, 0.4], [0.0, 0.0]], atol=1e-6)
    real_variable = tf.Variable(real)
    with tf.GradientTape() as tape:
        gap = feature_matching(real_variable, real_classes, fake, fake_classes, classes=4)
    assert tape.gradient(gap, real_variable) is None  # the real features are constants to G
