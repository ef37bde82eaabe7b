"""cgan/morphs.py: label morphs and latent walks start and end where `generate` does."""

from __future__ import annotations

import numpy as np

import cgan_mnist
from cgan import morphs
from cgan.sampling import generate, load_generator


def test_interpolation_keeps_noise_and_moves_label(tiny_generator_file):
    g = load_generator(tiny_generator_file)
    frames = morphs.interpolate(g, 3, 7, frames=5, seed=11)
    assert frames.shape == (5, 28, 28) and frames.dtype == np.uint8
    # The ends are exactly what generate() draws for digits 3 and 7 with the same noise.
    np.testing.assert_array_equal(frames[0], generate(g, [3], seed=11)[0])
    np.testing.assert_array_equal(frames[-1], generate(g, [7], seed=11)[0])
    np.testing.assert_array_equal(frames, morphs.interpolate(g, 3, 7, frames=5, seed=11))


def test_soft_labels_work_for_any_generator_shape():
    g = cgan_mnist.build_generator(latent_dim=8, width=8, extra_convs=2, num_classes=100, image_shape=(28, 56, 1))
    soft = morphs.soft_label_generator(g)
    assert soft.input["label"].shape[-1] == 100
    frames = morphs.interpolate(g, 12, 87, frames=3, seed=0)
    assert frames.shape == (3, 28, 56)
    np.testing.assert_array_equal(frames[[0, -1]],
                                  np.concatenate([generate(g, [12], seed=0), generate(g, [87], seed=0)]))


def test_soft_labels_reach_the_class_norms_of_a_generator_that_has_them():
    g = cgan_mnist.build_generator(latent_dim=8, width=8, class_norm=True)
    rng = np.random.default_rng(0)
    # Non-zero gains and biases (they start at zero), so the label also acts at every stage.
    g.set_weights([rng.normal(size=w.shape).astype("float32") * 0.3 if w.ndim == 2 and not w.any() else w
                   for w in g.get_weights()])
    frames = morphs.interpolate(g, 2, 9, frames=3, seed=0)
    np.testing.assert_array_equal(frames[[0, -1]], np.concatenate([generate(g, [2], seed=0), generate(g, [9], seed=0)]))


def test_walk_keeps_digit_and_slerps_noise(tiny_generator_file):
    g = load_generator(tiny_generator_file)
    frames = morphs.walk(g, 5, frames=6, seed=2)
    assert frames.shape == (6, 28, 28)
    np.testing.assert_array_equal(frames[0], generate(g, [5], seed=2)[0])
    np.testing.assert_array_equal(frames[-1], generate(g, [5], seed=3)[0])
    z0, z1 = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = morphs.slerp(z0, z1, np.linspace(0, 1, 5))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(1, 2, 5), rtol=0.2)
    np.testing.assert_allclose(path[[0, -1]], [z0, z1], atol=1e-6)
    np.testing.assert_allclose(morphs.slerp(z0, 3 * z0, np.array([0.5])), [2 * z0])  # same direction: a line
