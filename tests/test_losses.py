"""cgan/losses.py: the hinge objective's values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from cgan.backend import tf
from cgan.losses import hinge_losses


def test_hinge_losses_give_the_generator_a_gradient_from_every_fake():
    real, fake = tf.constant([[2.0], [0.5]]), tf.constant([[-3.0], [0.5]])
    with tf.GradientTape() as tape:
        tape.watch(fake)
        d_loss, g_loss = hinge_losses(real, fake)
    assert float(d_loss) == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert float(g_loss) == pytest.approx(1.25)  # -mean(D(fake))
    # The fake that D has pushed past its margin (-3) still pulls on G.
    np.testing.assert_allclose(tape.gradient(g_loss, fake).numpy(), [[-0.5], [-0.5]])
