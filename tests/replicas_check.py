"""Run as a separate process by tests/test_distribute.py: TensorFlow's devices can be split only before first use.

    python tests/replicas_check.py LOSS STEPS

Splits the CPU into two logical devices, then trains the tiny test networks for STEPS
steps twice from the same start: under a MirroredStrategy over both devices, and over
one of them, with the same global batch. Prints JSON: the largest difference of any
weight between the two, and what each run trained.
"""

from __future__ import annotations

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

import cgan_mnist  # noqa: E402
from cgan.data import MNIST  # noqa: E402
from cgan.distribute import replica_batches  # noqa: E402
from cgan.gan import make_gan  # noqa: E402
from conftest import tiny_config  # noqa: E402


def trained_weights(devices: list[str], config, steps: int) -> tuple[list[np.ndarray], float]:
    strategy = tf.distribute.MirroredStrategy(devices)
    gan = make_gan(config, cgan_mnist.NETWORKS, strategy=strategy)
    images, labels = MNIST.load()
    batches = replica_batches(strategy, lambda: MNIST.batches(images[:512], labels[:512], seed=0,
                                                              batch_size=config.batch_size * config.critic_steps),
                              batch_size=config.batch_size, chunks=config.critic_steps)
    history = gan.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    weights = [np.asarray(w) for m in (gan.generator, gan.discriminator) for w in m.weights]
    return weights, {name: float(values[-1]) for name, values in history.history.items()}


def main() -> None:
    loss, steps = sys.argv[1], int(sys.argv[2])
    # With a critic, two D updates a step: each replica must take its rows of each update's batch.
    # D's spread channel off: its sqrt(variance + 1e-8) magnifies the replicas' other order of float
    # sums where a tiny network's features barely vary (weights 1.7e-4 apart after 3 steps; 2.8e-6
    # with 1e-2 in place of 1e-8). Its groups split over replicas by `distribute.check_batch`.
    # R1 with the hinge loss (every fourth image, the same on one device); none with the critic, as
    # --loss wgan-gp sets it. --augment with the hinge loss: each replica moves its rows of the batch's images
    # by the shifts one device draws for them. Feature matching with both: each replica's class means
    # are the global batch's.
    critic = loss == "wgan-gp"
    config = tiny_config(loss=loss, batch_size=32, critic_steps=2 if critic else 1, minibatch_std=0,
                         r1_weight=0.0 if critic else 3.0, augment=0.0 if critic else 1.0, feature_matching=0.1)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    two, figures_two = trained_weights(devices[:2], config, steps)
    one, figures_one = trained_weights(devices[:1], config, steps)
    fresh = make_gan(config, cgan_mnist.NETWORKS)  # the same seeded start
    start = [np.asarray(w) for m in (fresh.generator, fresh.discriminator) for w in m.weights]
    print(json.dumps({
        "devices": devices,
        "max_weight_difference": max(float(np.max(np.abs(a - b))) for a, b in zip(two, one)),
        "largest_weight": max(float(np.max(np.abs(a))) for a in one),
        "weights_moved": max(float(np.max(np.abs(a - b))) for a, b in zip(one, start)),
        "figures": [figures_two, figures_one],
    }))


if __name__ == "__main__":
    main()
