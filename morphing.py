"""Morphs and latent walks with a trained generator, as frame stacks, PNG strips and animated GIFs.

- `interpolate(generator, a, b, frames, seed)`: fixed noise, the label blended from digit a to digit b;
- `walk(generator, digit, frames, seed)`: fixed digit, the noise moved along the great circle
  (spherical interpolation) between the noise of `seed` and of `seed + 1`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cgan_mnist
from atomic_files import atomic_path
from cgan_mnist import NUM_CLASSES


def soft_label_generator(generator):
    """A copy of `generator` that takes 10 class weights as its label instead of one digit."""
    soft = cgan_mnist.build_generator(**cgan_mnist.generator_settings(generator), soft_labels=True)
    soft.set_weights(generator.get_weights())
    return soft


def _noise(latent_dim: int, seed: int | None, count: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def interpolate(generator, a: int, b: int, *, frames: int = 10, seed: int | None = None) -> np.ndarray:
    """uint8 frames (frames, 28, 28): one noise vector, the label moving linearly from digit a to b.

    The first frame equals `generate(generator, [a], seed)`, the last the same noise with digit b.
    """
    soft = soft_label_generator(generator)
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]
    labels = (1 - t) * np.eye(NUM_CLASSES, dtype=np.float32)[a] + t * np.eye(NUM_CLASSES, dtype=np.float32)[b]
    noise = np.repeat(_noise(soft.input["noise"].shape[-1], seed), frames, axis=0)
    return cgan_mnist.postprocess(soft({"noise": noise, "label": labels}, training=False))


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors z0 and z1 at fractions t (shape (k,)) -> (k, dim)."""
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.asarray(t, np.float64)[:, None]
    if omega < 1e-6:  # (nearly) the same direction: a straight line is the same path
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


def walk(generator, digit: int, *, frames: int = 10, seed: int | None = None) -> np.ndarray:
    """uint8 frames (frames, 28, 28): digit fixed, the noise walking from seed's vector to seed+1's."""
    latent_dim = generator.input["noise"].shape[-1]
    base = 0 if seed is None else seed
    z0, z1 = _noise(latent_dim, base)[0], _noise(latent_dim, base + 1)[0]
    noise = slerp(z0, z1, np.linspace(0.0, 1.0, frames))
    labels = np.full((frames, 1), digit, np.int32)
    return cgan_mnist.postprocess(generator({"noise": noise, "label": labels}, training=False))


def save_gif(path, frames: np.ndarray, *, scale: int = 4, duration_ms: int = 120) -> Path:
    """An endlessly looping animated GIF of uint8 frames (k, 28, 28), scaled up `scale` times."""
    from PIL import Image

    images = [Image.fromarray(np.kron(f, np.ones((scale, scale), np.uint8)), mode="L") for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return Path(path)
