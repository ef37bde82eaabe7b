"""GAN objectives: each takes the discriminator's logits on real and on fake images and returns (D loss, G loss)."""

from __future__ import annotations

from cgan.backend import tf


def hinge_losses(real_logits, fake_logits):
    """(discriminator loss, generator loss) of the hinge GAN objective.

    D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); G: -mean(D(G(z))). G's
    loss has no margin on purpose: with one, -mean(relu(1 + D(G(z)))), G gets
    no gradient once D pushes every fake below -1, and training stalls for good.
    """
    real_term = tf.reduce_mean(tf.nn.relu(1.0 - real_logits))
    fake_term = tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
    return real_term + fake_term, -tf.reduce_mean(fake_logits)
