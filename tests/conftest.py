"""Shared fixtures: a small slice of real MNIST and small models, made once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cgan_mnist  # noqa: E402

# Tiny networks: the tests check behaviour, not sample quality.
TINY = dict(latent_dim=8, g_width=8, d_width=8, batch_size=16)


@pytest.fixture(scope="session")
def mnist_small(tmp_path_factory) -> Path:
    """The first 512 training and 256 test digits of the real MNIST, as a Keras-layout .npz."""
    with np.load(ROOT / "data" / "mnist.npz") as d:
        arrays = {"x_train": d["x_train"][:512], "y_train": d["y_train"][:512],
                  "x_test": d["x_test"][:256], "y_test": d["y_test"][:256]}
    path = tmp_path_factory.mktemp("data") / "mnist_small.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def tiny_generator_file(tmp_path_factory) -> Path:
    """An untrained tiny generator saved as .h5, as training would save it."""
    generator = cgan_mnist.build_generator(latent_dim=TINY["latent_dim"], width=TINY["g_width"])
    return cgan_mnist.save_generator(generator, tmp_path_factory.mktemp("models") / "tiny.h5")


@pytest.fixture(scope="session")
def tiny_discriminator_file(tmp_path_factory) -> Path:
    """A discriminator saved as .h5: loadable, but not a generator."""
    discriminator = cgan_mnist.build_discriminator(width=TINY["d_width"])
    return cgan_mnist.save_generator(discriminator, tmp_path_factory.mktemp("models") / "discriminator.h5")
