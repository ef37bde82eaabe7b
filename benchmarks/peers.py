"""The project beside two well-known Keras conditional GANs, each trained for the same minutes here.

    python benchmarks/peers.py --minutes 3 10      # about an hour: each contender, each budget
    python benchmarks/peers.py --quick             # a few steps each: checks that it runs

The peers are written here from their published descriptions (no code of theirs is used):

- `atienza`: the conditional GAN of R. Atienza, "Advanced Deep Learning with Keras" (2018),
  chapter 4, which this project's design comes from. z uniform in [-1, 1]^100 joined to the
  one-hot label; G: Dense 7x7x128, then four blocks of BatchNorm, ReLU and a 5x5 transposed
  convolution of 128/64/32/1 filters with strides 2/2/1/1, a sigmoid output; D: the label
  through Dense(784) as a 28x28 plane beside the image, four blocks of LeakyReLU 0.2 and a
  5x5 convolution of 32/64/128/256 filters with strides 2/2/2/1, Flatten, Dense(1); binary
  cross-entropy; RMSprop 2e-4 for D and 1e-4 for the adversarial model; batch 64.
- `keras_io`: the keras.io example "Conditional GAN" (S. Paul, 2021). z normal^128 joined to
  the one-hot label; G: Dense 7x7x138 with LeakyReLU, two 4x4 stride-2 transposed
  convolutions of 128 filters with LeakyReLU, a 7x7 convolution to one channel with sigmoid;
  D: the image with 10 label planes, 3x3 stride-2 convolutions of 64 and 128 filters with
  LeakyReLU, global max pooling, Dense(1); binary cross-entropy; Adam 3e-4 for both; batch 64.

Both train on images in [0, 1], as published, with a compiled `train_step` that updates D
on a real and a fake batch and then G through D (the loop the keras.io example uses; the
book's `train_on_batch` loop does the same updates more slowly), so the comparison is of
recipes, not of training loops. Each trains until its minutes of training are spent; the
project trains with `--minutes` (its plan fits the decay and the average to the budget).
All are scored alike: 1,000 samples per digit under both judges, beside the real line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cgan_mnist  # noqa: E402
from cgan import evaluation  # noqa: E402
from cgan.backend import keras, tf  # noqa: E402
from cgan.data import MNIST  # noqa: E402
from cgan.flops import backward_flops, config_step_flops, forward_flops  # noqa: E402
from cgan.precision import cpu_description, resolve  # noqa: E402
from cgan.sampling import generate, load_generator  # noqa: E402

layers = keras.layers
CLASSES = 10


def atienza_networks() -> tuple[keras.Model, keras.Model, int]:
    """(G, D, noise size) of the book's conditional GAN."""
    noise, label = keras.Input((100,)), keras.Input((CLASSES,))
    x = layers.Dense(7 * 7 * 128)(layers.Concatenate()([noise, label]))
    x = layers.Reshape((7, 7, 128))(x)
    for filters, stride in ((128, 2), (64, 2), (32, 1), (1, 1)):  # 14x14x128, 28x28x64, 28x28x32, 28x28x1
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2DTranspose(filters, 5, strides=stride, padding="same")(x)
    generator = keras.Model([noise, label], layers.Activation("sigmoid")(x), name="atienza_generator")
    image, d_label = keras.Input((28, 28, 1)), keras.Input((CLASSES,))
    plane = layers.Reshape((28, 28, 1))(layers.Dense(28 * 28)(d_label))
    x = layers.Concatenate()([image, plane])
    for filters, stride in ((32, 2), (64, 2), (128, 2), (256, 1)):  # 14x14x32, 7x7x64, 4x4x128, 4x4x256
        x = layers.Conv2D(filters, 5, strides=stride, padding="same")(layers.LeakyReLU(0.2)(x))
    logit = layers.Dense(1)(layers.Flatten()(x))
    return generator, keras.Model([image, d_label], logit, name="atienza_discriminator"), 100


def keras_io_networks() -> tuple[keras.Model, keras.Model, int]:
    """(G, D, noise size) of the keras.io conditional GAN example."""
    noise, label = keras.Input((128,)), keras.Input((CLASSES,))
    x = layers.Dense(7 * 7 * 138)(layers.Concatenate()([noise, label]))
    x = layers.Reshape((7, 7, 138))(layers.LeakyReLU(0.2)(x))
    for _ in range(2):  # 14x14x128, 28x28x128
        x = layers.LeakyReLU(0.2)(layers.Conv2DTranspose(128, 4, strides=2, padding="same")(x))
    generator = keras.Model([noise, label], layers.Conv2D(1, 7, padding="same", activation="sigmoid")(x),
                            name="keras_io_generator")
    image, d_label = keras.Input((28, 28, 1)), keras.Input((CLASSES,))
    planes = layers.UpSampling2D(28)(layers.Reshape((1, 1, CLASSES))(d_label))  # the one-hot label as 10 planes
    x = layers.Concatenate()([image, planes])
    for filters in (64, 128):  # 14x14x64, 7x7x128
        x = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 3, strides=2, padding="same")(x))
    logit = layers.Dense(1)(layers.GlobalMaxPooling2D()(x))
    return generator, keras.Model([image, d_label], logit, name="keras_io_discriminator"), 128


@dataclasses.dataclass(frozen=True)
class Peer:
    build: object
    noise: str  # "uniform" in [-1, 1] or "normal"
    d_optimizer: object
    g_optimizer: object


PEERS = {
    "atienza": Peer(atienza_networks, "uniform", lambda: keras.optimizers.RMSprop(2e-4),
                    lambda: keras.optimizers.RMSprop(1e-4)),
    "keras_io": Peer(keras_io_networks, "normal", lambda: keras.optimizers.Adam(3e-4),
                     lambda: keras.optimizers.Adam(3e-4)),
}


class PeerGAN(keras.Model):
    """One D update on a real and a fake batch, then one G update through D, with binary cross-entropy."""

    def __init__(self, generator, discriminator, noise_size: int, noise: str, seed: int = 0):
        super().__init__()
        self.generator, self.discriminator, self.noise_size, self.noise = generator, discriminator, noise_size, noise
        self.seeds = keras.random.SeedGenerator(seed)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.built = True

    def draw_noise(self, batch):
        if self.noise == "uniform":
            return keras.random.uniform((batch, self.noise_size), -1.0, 1.0, seed=self.seeds)
        return keras.random.normal((batch, self.noise_size), seed=self.seeds)

    def train_step(self, data):
        real, labels = data  # (b, 28, 28, 1) in [0, 1], (b, 10) one-hot
        batch = tf.shape(real)[0]
        fake = self.generator([self.draw_noise(batch), labels], training=True)
        with tf.GradientTape() as tape:
            logits = self.discriminator([tf.concat([real, fake], 0), tf.concat([labels, labels], 0)], training=True)
            truth = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], 0)
            d_loss = self.bce(truth, logits)
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, weights), weights))
        with tf.GradientTape() as tape:
            fake = self.generator([self.draw_noise(batch), labels], training=True)
            g_loss = self.bce(tf.ones((batch, 1)), self.discriminator([fake, labels], training=True))
        weights = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, weights), weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def peer_step_flops(generator, discriminator, batch: int = 64) -> int:
    """A peer step: G forward, D forward and backward (weights) on 2b; G forward and backward, D forward and input."""
    g, d = forward_flops(generator), forward_flops(discriminator)
    d_update = g + 2 * (d + backward_flops(discriminator, inputs=False))
    g_update = g + backward_flops(generator) + d + backward_flops(discriminator, weights=False)
    return batch * (d_update + g_update)


class StopAfter(keras.callbacks.Callback):
    """Stops training once `seconds` of it have passed (after the first call, which compiles)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.start, self.steps, self.trained = seconds, None, 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        if self.start is None:
            self.start = time.perf_counter()
            return
        self.steps = batch + 1
        self.trained = time.perf_counter() - self.start
        if self.trained >= self.seconds:
            self.model.stop_training = True


class TrainingClock(keras.callbacks.Callback):
    """Seconds from the end of the first compiled call (which traces the step) to the end of training."""

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "start"):
            self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start


def train_peer(name: str, minutes: float, images, labels, *, max_steps: int | None = None) -> dict:
    """Train peer `name` for `minutes` (or `max_steps`); its generator as a function of labels -> uint8 images."""
    keras.utils.set_random_seed(0)
    peer = PEERS[name]
    generator, discriminator, noise_size = peer.build()
    gan = PeerGAN(generator, discriminator, noise_size, peer.noise)
    gan.compile(peer.d_optimizer(), peer.g_optimizer())
    x = (images.astype("float32") / 255.0)[..., None]
    y = keras.utils.to_categorical(labels, CLASSES).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).repeat().batch(64, drop_remainder=True)
    clock = StopAfter(minutes * 60)
    gan.fit(data.prefetch(2), epochs=1, steps_per_epoch=max_steps or 10_000_000, callbacks=[clock], verbose=0,
            shuffle=False)
    rng = np.random.default_rng(0)

    def draw(wanted: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            z = (rng.uniform(-1, 1, (len(chunk), noise_size)) if peer.noise == "uniform"
                 else rng.standard_normal((len(chunk), noise_size))).astype("float32")
            picture = generator([z, keras.utils.to_categorical(chunk, CLASSES)], training=False)
            out.append(np.clip(np.rint(np.asarray(picture)[..., 0] * 255), 0, 255).astype(np.uint8))
        return np.concatenate(out)

    return {"draw": draw, "steps": clock.steps, "minutes": clock.trained / 60,
            "tflop": clock.steps * peer_step_flops(generator, discriminator) / 1e12}


def train_project(minutes: float, flags: list[str], *, quick: bool) -> dict:
    """The project's recipe (the default, or `flags` of cgan_mnist.py) with `--minutes`."""
    config = cgan_mnist.config_from_args(cgan_mnist.build_parser().parse_args(flags))
    if quick:
        config = dataclasses.replace(config, train_steps=4, save_interval=2, precision="float32")
    config = resolve(config, cgan_mnist.NETWORKS, verbose=False)
    clock = TrainingClock()
    with tempfile.TemporaryDirectory() as tmp:
        path = cgan_mnist.train(config, out_dir=tmp, verbose=False, minutes=None if quick else minutes,
                                callbacks=[clock])
        run = json.loads((Path(tmp) / "run.json").read_text())
        generator = load_generator(path)
    planned = cgan_mnist.Config(**run["config"])
    return {"draw": lambda wanted: generate(generator, wanted, seed=0), "steps": planned.train_steps,
            "minutes": clock.seconds / 60,
            "tflop": planned.train_steps * config_step_flops(planned, cgan_mnist.NETWORKS) / 1e12}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[3, 10], help="training budgets (default: 3 10)")
    p.add_argument("--per-digit", type=int, default=1000, help="samples per digit to score (default: 1000)")
    p.add_argument("--quick", action="store_true",
                   help="a few steps each and 20 samples per digit: checks that it runs")
    p.add_argument("--contenders", nargs="+", choices=("project", *PEERS), default=["project", *PEERS],
                   help="which to train (default: all)")
    p.add_argument("--project-flags", default="", metavar="FLAGS",
                   help="training flags of cgan_mnist.py for the project's contender "
                        "(default: none, its default recipe)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = p.parse_args(argv)
    per_digit = 20 if args.quick else args.per_digit
    images, labels = MNIST.load()
    evaluator = evaluation.Evaluator()
    real = evaluation.reference_scores(evaluator, per_digit=per_digit)
    wanted = np.repeat(np.arange(CLASSES), per_digit)
    rows = []
    print(f"{cpu_description()}; {per_digit} samples per digit")
    print(HEADER, flush=True)
    for minutes in ([0.05] if args.quick else args.minutes):
        for name in args.contenders:
            trained = (train_project(minutes, shlex.split(args.project_flags), quick=args.quick) if name == "project"
                       else train_peer(name, minutes, images, labels, max_steps=4 if args.quick else None))
            s = evaluator.score(trained["draw"](wanted), wanted)
            rows.append({"contender": name, "budget_minutes": minutes, "steps": trained["steps"],
                         "minutes": trained["minutes"], "tflop": trained["tflop"], "accuracy": s.accuracy,
                         "worst": min(s.per_digit_accuracy), "distances": s.distances, "recall": s.recall})
            print(format_row(rows[-1], real), flush=True)
    print(format_row({"contender": "real digits", "budget_minutes": 0, "steps": 0, "minutes": 0, "tflop": 0,
                      "accuracy": real.accuracy, "worst": min(real.per_digit_accuracy), "distances": real.distances,
                      "recall": real.recall}, real))
    result = {"cpu": cpu_description(), "per_digit": per_digit, "rows": rows, "real": dataclasses.asdict(real)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


HEADER = (f"{'contender':<13}{'budget':>7}{'steps':>7}{'min':>6}{'TFLOP':>7}{'accuracy':>9}{'worst':>7}"
          f"{'FD conv':>14}{'FD resn':>15}{'recall conv/resn':>18}")


def format_row(r: dict, real) -> str:
    fd = "".join(f"{r['distances'][j]:8.3f} ({r['distances'][j] / real.distances[j]:.2f}x)"
                 for j in ("convnet", "resnet"))
    return (f"{r['contender']:<13}{r['budget_minutes']:7g}{r['steps']:7d}{r['minutes']:6.1f}{r['tflop']:7.1f}"
            f"{100 * r['accuracy']:8.2f}%{100 * r['worst']:6.1f}%{fd}"
            f"   {r['recall']['convnet']:.3f}/{r['recall']['resnet']:.3f}")


if __name__ == "__main__":
    main()
