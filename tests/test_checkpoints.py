"""cgan/checkpoints.py: a checkpoint restores every variable of a run, and a wrong one is refused."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config

import cgan_mnist
from cgan import checkpoints
from cgan.data import MNIST


def test_save_restore_round_trip_and_only_the_newest_two_are_kept(mnist_small, tmp_path):
    config = tiny_config()
    gan = cgan_mnist.make_gan(config)
    images, labels = MNIST.load(mnist_small)
    gan.fit(MNIST.batches(images, labels, batch_size=16, seed=0), epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    for step in (1, 2, 3):
        checkpoints.save(gan, tmp_path, step)
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == ["step_000002.npz", "step_000003.npz"]
    (tmp_path / "checkpoints" / ".step_000004.npz.x.tmp.npz").write_bytes(b"partial")  # an interrupted write
    assert len(checkpoints.list_checkpoints(tmp_path)) == 2

    fresh = cgan_mnist.make_gan(tiny_config(seed=9))
    assert checkpoints.restore(fresh, checkpoints.list_checkpoints(tmp_path)[-1]) == 3
    for name in ("generator", "ema_generator", "discriminator"):
        for a, b in zip(getattr(gan, name).weights, getattr(fresh, name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(gan.g_optimizer.variables, fresh.g_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(gan.seed_generator.state), np.asarray(fresh.seed_generator.state))


def test_a_checkpoint_of_other_networks_is_refused(tmp_path):
    checkpoints.save(cgan_mnist.make_gan(tiny_config()), tmp_path, 5)
    with pytest.raises(ValueError, match="shape"):
        checkpoints.restore(cgan_mnist.make_gan(tiny_config(g_width=12)), checkpoints.list_checkpoints(tmp_path)[0])
    with pytest.raises(ValueError, match="arrays"):
        checkpoints.restore(cgan_mnist.make_gan(tiny_config(g_extra_convs=0)),
                            checkpoints.list_checkpoints(tmp_path)[0])
