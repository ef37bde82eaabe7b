"""Run as a separate process by tests/test_distribute.py: TensorFlow's devices can be split only before first use.

    python tests/replicas_check.py STEPS LOSS[:SLIP] [LOSS[:SLIP] ...]

Splits the CPU into two logical devices, then, for each LOSS, trains the tiny test networks
for STEPS steps twice from the same start, in float64: over one of them, and under a
MirroredStrategy over both, with the same global batch. Prints a JSON line for each LOSS:
the largest difference of any weight between the two, and what each run trained. With SLIP
(one of `SLIPS`), a third run over both devices makes that deliberate mistake, and its largest
difference from the one-device run is printed too: the comparison must catch it. The losses
share one process: a process of its own for each cost four seconds of importing TensorFlow.

Why float64: the two runs sum their gradients in another order, and a GAN's steps magnify
that rounding (the gradient penalty most: 3.9e-3 apart after 3 float32 steps of WGAN-GP,
1.6e-6 without it). In float64 the rounding stays near 1e-15, and a slip far above it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cgan.backend import tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from conftest import tiny_config  # noqa: E402

import cgan_mnist  # noqa: E402
from cgan import distribute  # noqa: E402
from cgan.data import MNIST  # noqa: E402
from cgan.gan import DRAWS_PER_STEP, ConditionalGAN, make_gan  # noqa: E402


def _keras_split(replicas: int, batch_size: int, chunks: int) -> np.ndarray:
    """Replica r takes the r-th block of the whole step's rows, as Keras splits a batch: with a critic's
    two updates, one replica then trains on the first update's images and the other on the second's."""
    return np.arange(chunks * batch_size).reshape(replicas, -1)


def _same_numbers(self, stateful, stateless, shape, draw):
    """Every replica draws the step's numbers for its slice alone: the same noise on each replica."""
    seed = tf.stack([tf.constant(self.config.seed, tf.int64),
                     tf.cast(self.g_optimizer.iterations, tf.int64) * DRAWS_PER_STEP + draw])
    return stateless(shape, seed=seed, dtype="float32")


# Deliberate slips in the replicated run, each a mistake a change could make: (where, name, the slipped version).
SLIPS = {"keras-split": (distribute, "replica_rows", _keras_split),
         "same-noise": (ConditionalGAN, "_random", _same_numbers)}


@contextlib.contextmanager
def slipped(slip: str):
    """The code with the deliberate mistake `slip` in place; as it was again afterwards, for the next loss."""
    owner, name, replacement = SLIPS[slip]
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@functools.cache
def mirrored(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """One strategy for each set of devices, for all the runs: two strategies over the same devices number their
    collective operations alike, and the second's then meet the first's (a shape mismatch once networks differ)."""
    return tf.distribute.MirroredStrategy(list(devices))


def trained_weights(devices: list[str], config, steps: int) -> tuple[list[np.ndarray], float]:
    strategy = mirrored(tuple(devices))
    gan = make_gan(config, cgan_mnist.NETWORKS, strategy=strategy)
    images, labels = MNIST.load()
    batches = distribute.replica_batches(
        strategy, lambda: MNIST.batches(images[:512], labels[:512], seed=0,
                                        batch_size=config.batch_size * config.critic_steps),
        batch_size=config.batch_size, chunks=config.critic_steps)
    history = gan.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    weights = [np.asarray(w) for m in (gan.generator, gan.discriminator) for w in m.weights]
    return weights, {name: float(values[-1]) for name, values in history.history.items()}


def main() -> None:
    steps = int(sys.argv[1])
    for spec in sys.argv[2:]:
        loss, _, slip = spec.partition(":")
        print(json.dumps(check(loss, steps, slip or None)), flush=True)


def check(loss: str, steps: int, slip: str | None) -> dict:
    # The default recipe's terms, each of which replicas must compute as one device does. With a critic,
    # two D updates a step: each replica must take its rows of each update's batch. D's spread channel
    # in groups of 4, two a replica: its groups split over replicas (`distribute.check_batch`), and R1
    # (with the hinge loss) takes every fourth group of the whole batch, which one replica's slice does
    # not hold. None with the critic, as --loss wgan-gp sets it. --augment with the hinge loss: each
    # replica moves its rows of the batch's images by the shifts one device draws for them. Feature
    # matching with both: each replica's class means are the global batch's.
    critic = loss == "wgan-gp"
    config = tiny_config(loss=loss, batch_size=16, critic_steps=2 if critic else 1, minibatch_std=4,
                         r1_weight=0.0 if critic else 3.0, augment=0.0 if critic else 1.0, feature_matching=0.1,
                         precision="float64")
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    one, figures_one = trained_weights(devices[:1], config, steps)
    two, figures_two = trained_weights(devices[:2], config, steps)
    fresh = make_gan(config, cgan_mnist.NETWORKS)  # the same seeded start
    start = [np.asarray(w) for m in (fresh.generator, fresh.discriminator) for w in m.weights]
    figures = {
        "loss": loss,
        "devices": devices,
        "max_weight_difference": largest_difference(two, one),
        "largest_weight": max(float(np.max(np.abs(a))) for a in one),
        "weights_moved": largest_difference(one, start),
        "figures": [figures_two, figures_one],
    }
    if slip:
        with slipped(slip):
            figures["slipped_difference"] = largest_difference(trained_weights(devices[:2], config, steps)[0], one)
    return figures


def largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


if __name__ == "__main__":
    main()
