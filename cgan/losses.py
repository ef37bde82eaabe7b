"""GAN objectives. Each is one `Loss`: the discriminator's and the generator's loss from D's logits on real and
fake images.

- `hinge` (the default): D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); G: -mean(D(G(z))).
- `bce`: the non-saturating cross-entropy GAN of the original paper, the sigmoid applied here,
  not in the network: D: -mean(log s(D(x))) - mean(log(1 - s(D(G(z))))); G: -mean(log s(D(G(z)))).
- `wgan-gp`: the Wasserstein critic: D: mean(D(G(z))) - mean(D(x)), plus the gradient penalty
  that `gan.ConditionalGAN.gradient_penalty` adds; G: -mean(D(G(z))).

Each loss is a mean over the replica's batch divided by the number of replicas, so that gradients
summed across replicas under a distribution strategy are those of the mean over the global batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cgan.backend import tf


def replica_context():
    """The replica context (None in a cross-replica context) and the number of replicas in sync."""
    context = tf.distribute.get_replica_context()
    return context, context.num_replicas_in_sync if context is not None else 1


def wide(x):
    """`x` as float32 for a loss or a figure, or as float64 where it is (a --precision float64 run)."""
    return x if x.dtype == tf.float64 else tf.cast(x, tf.float32)


def replica_mean(x):
    """Mean over this replica's batch, scaled so that the sum over replicas is the global mean."""
    _, replicas = replica_context()
    mean = tf.reduce_mean(x)
    return mean if replicas == 1 else mean / replicas


def feature_matching(real_features, real_classes, fake_features, fake_classes, classes: int):
    """G's feature matching term (Salimans et al., 2016), class by class.

    The mean, over the classes that both the real and the fake images of the batch
    have, of the L2 distance between their mean features (b, n) of that class;
    `real_classes` and `fake_classes` are (b, 1) ints below `classes`. The real
    features are constants to G. Under a distribution strategy the class means are
    the global batch's (sums and counts all-reduced, which passes the gradient on) and
    the term is divided by the number of replicas, as `replica_mean` divides.
    """
    def sums(features, labels):
        features = wide(features)
        one_hot = tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), classes, dtype=features.dtype)
        return tf.matmul(one_hot, features, transpose_a=True), tf.reduce_sum(one_hot, 0)

    (real_sums, real_counts), (fake_sums, fake_counts) = (sums(tf.stop_gradient(real_features), real_classes),
                                                          sums(fake_features, fake_classes))
    context, replicas = replica_context()
    if replicas > 1:
        real_sums, real_counts, fake_sums, fake_counts = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [real_sums, real_counts, fake_sums, fake_counts])
    real_means = real_sums / tf.maximum(real_counts, 1.0)[:, None]
    fake_means = fake_sums / tf.maximum(fake_counts, 1.0)[:, None]
    both = tf.cast((real_counts > 0) & (fake_counts > 0), real_sums.dtype)
    gaps = tf.sqrt(tf.reduce_sum(tf.square(real_means - fake_means), 1) + 1e-8)  # + 1e-8: a finite gradient at 0
    return tf.reduce_sum(gaps * both) / tf.maximum(tf.reduce_sum(both), 1.0) / replicas


def hinge_losses(real_logits, fake_logits):
    """(D loss, G loss) of the hinge objective.

    G's loss has no margin on purpose: with one, -mean(relu(1 + D(G(z)))), G gets
    no gradient once D pushes every fake below -1, and training stalls for good.
    """
    d_loss = replica_mean(tf.nn.relu(1.0 - real_logits)) + replica_mean(tf.nn.relu(1.0 + fake_logits))
    return d_loss, -replica_mean(fake_logits)


def bce_losses(real_logits, fake_logits):
    """(D loss, G loss) of the non-saturating cross-entropy objective, from logits.

    softplus(-l) is -log(sigmoid(l)), computed without overflow for large |l|.
    """
    d_loss = replica_mean(tf.nn.softplus(-real_logits)) + replica_mean(tf.nn.softplus(fake_logits))
    return d_loss, replica_mean(tf.nn.softplus(-fake_logits))


def wasserstein_losses(real_logits, fake_logits):
    """(critic loss, G loss) of the Wasserstein objective, without the gradient penalty."""
    return replica_mean(fake_logits) - replica_mean(real_logits), -replica_mean(fake_logits)


def class_loss(class_logits, labels):
    """Cross-entropy of an auxiliary classifier's logits (b, classes) against the labels (b, 1)."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return replica_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=class_logits))


def class_set_loss(class_logits, labels, members):
    """-log of the probability an auxiliary classifier gives to the classes of each example's label.

    `class_logits` (b, classes) are over fine classes (the numbers 00-99 of a pair), `labels`
    (b, 1) coarse ones (a side of 50), `members` (classes, labels) 1 where a fine class
    belongs to a label. With one fine class per label this is `class_loss`.
    """
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = wide(class_logits)
    # 1 for the classes of each example's label, else 0 (arithmetic, not a boolean mask: oneDNN has no
    # boolean kernels and TensorFlow logs an error line for each)
    inside = tf.gather(tf.transpose(tf.cast(members, logits.dtype)), labels)  # (b, classes)
    within = tf.reduce_logsumexp(logits - (1.0 - inside) * 1e30, axis=-1)
    return replica_mean(tf.reduce_logsumexp(logits, axis=-1) - within)


# What a step also reports with an auxiliary classifier: its loss on the real batch (D's term) and on
# the fakes (G's term), each before the --aux-weight factor.
def attribute_loss(predicted, asked):
    """Mean squared error of a regression head's attributes (b, k) against those asked (b, k), in standard scores."""
    return replica_mean(tf.reduce_mean(tf.square(wide(predicted) - tf.cast(asked, wide(predicted).dtype)), axis=-1))


ATTRIBUTE_FIGURES = ("d_shape_loss", "g_shape_loss")
CLASS_FIGURES = ("d_class_loss", "g_class_loss")
# And with the twin classifier (--twin-classifier), its loss on the fakes, before the factor.
TWIN_FIGURE = "twin_class_loss"


def mode_seeking(fake, noise):
    """(G's mode-seeking loss, the ratio it grows) for fakes whose second half repeats the first half's labels.

    The ratio is mean|G(z1, y) - G(z2, y)| / mean|z1 - z2| over the pairs (row i of
    each half), and the loss 1 / (ratio + 1e-5), as in Mao et al. (2019): small when
    different noise gives different images. Each replica's own ratio: the loss is not
    a mean of per-image terms, so under a strategy it is divided by the replica count.
    """
    half = tf.shape(fake)[0] // 2
    fake = wide(fake)
    noise = tf.cast(noise, fake.dtype)
    images = tf.reduce_mean(tf.abs(fake[:half] - fake[half : 2 * half]))
    codes = tf.reduce_mean(tf.abs(noise[:half] - noise[half : 2 * half]))
    ratio = images / codes
    return replica_mean(1.0 / (ratio + 1e-5)), ratio


@dataclasses.dataclass(frozen=True)
class Loss:
    """A GAN objective, and what training records and does differently for it."""

    losses: Callable  # (real_logits, fake_logits) -> (D loss, G loss)
    critic: bool = False  # D is a Wasserstein critic: its loss gets the gradient penalty
    # What each training step reports: the losses, then D's accuracies, or for a critic its
    # estimate of the Wasserstein distance, mean(D(x)) - mean(D(G(z))), and the penalty.
    figures: tuple[str, ...] = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")


LOSSES = {
    "hinge": Loss(hinge_losses),
    "bce": Loss(bce_losses),
    "wgan-gp": Loss(wasserstein_losses, critic=True, figures=("d_loss", "g_loss", "wasserstein", "gradient_penalty")),
}
