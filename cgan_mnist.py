"""Conditional GAN for MNIST on Keras 3: train, sample and draw a digit generator.

    python cgan_mnist.py                                      # train, dump grids, save the generator
    python cgan_mnist.py --generator=cgan_mnist.h5 --digit=6  # sixteen 6s in a PNG
    python cgan_mnist.py --plot-architecture                  # architecture/*.png

The generator G(noise, label) and the discriminator D(image, label) are built
with the functional API; the stacked adversarial model D(G(z, y), y) is built
for the diagram and the classic-Keras benchmark. Training runs a compiled
`train_step` under `fit` that updates both networks every step (see
`ConditionalGAN`), so none of the `trainable = False` pitfalls of Keras 3 apply.

Importing this module has no side effects; `main()` is the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def _import_tensorflow_quietly():
    """Import TensorFlow without its C++ start-up notices, which bypass TF_CPP_MIN_LOG_LEVEL."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow
    finally:
        os.dup2(saved, 2)  # restored before any import error is reported
        os.close(saved)
    return tensorflow


tf = _import_tensorflow_quietly()

import keras  # noqa: E402
from keras import layers  # noqa: E402

import checkpoints  # noqa: E402
from atomic_files import atomic_path, write_text  # noqa: E402

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data" / "mnist.npz"
MAX_COUNT = 10_000  # samples per digit from the CLI; more is almost surely a typo


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


# ---------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass(frozen=True)
class Config:
    """Every hyperparameter of a training run; argparse fills it, checkpoints store it."""

    train_steps: int = 8_000
    batch_size: int = 64
    latent_dim: int = 64
    g_width: int = 96  # channels of the generator's 14x14 stage (its 7x7 stage has twice that)
    g_extra_convs: int = 1  # 3x3 convolutions at the generator's 14x14 stage: with those in D, Frechet distance
    # 1.87 after 8k steps, against 2.71 after 12k without them (README: "Why these sizes")
    d_width: int = 48  # channels of the discriminator's 14x14 stage (its 7x7 stage has twice that)
    d_extra_convs: int = 2  # 3x3 convolutions at the discriminator's 7x7 stage: 2 rather than 1 raised accuracy (README)
    g_lr: float = 6e-4
    d_lr: float = 6e-4
    final_lr_fraction: float = 0.0  # both learning rates decay linearly to this share by the last step
    beta_1: float = 0.0  # Adam's betas for both networks: 0 / 0.9 with rates annealed to 0 lowered the Frechet
    beta_2: float = 0.9  # distance at 12k steps by 0.14 and 0.22 on two seeds against 0.5 / 0.999 and 5% (README)
    ema_decay: float = 0.999  # generator weights are averaged; the average is what gets saved
    save_interval: int = 500
    seed: int = 0
    precision: str = "auto"  # auto | float32 | bfloat16

    def validate(self) -> None:
        """Raise UserError for settings that cannot train."""
        positive = ("train_steps", "batch_size", "latent_dim", "g_width", "d_width", "save_interval")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        for name in ("g_extra_convs", "d_extra_convs"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        for name in ("g_lr", "d_lr"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 < value < 1):
                raise UserError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if not 0 <= self.final_lr_fraction <= 1:
            raise UserError(f"--final-lr-fraction must be in [0, 1], got {self.final_lr_fraction}")
        for name in ("beta_1", "beta_2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise UserError(f"--precision must be auto, float32 or bfloat16, got {self.precision!r}")


def cpu_has_fast_bfloat16() -> bool:
    """True on x86 CPUs with AMX, whose bfloat16 tile units oneDNN uses for convolutions and matmuls.

    AVX-512 BF16 alone is not enough: on such a CPU without AMX (2 cores,
    TensorFlow 2.21) the mixed-bfloat16 step of these networks measured 1.6x
    slower than float32, the casts costing more than the narrower arithmetic saves.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def compute_policy(precision: str) -> str:
    """The Keras dtype policy for the training networks: `auto` is mixed bfloat16 on AMX CPUs, else float32."""
    if precision == "auto":
        return "mixed_bfloat16" if cpu_has_fast_bfloat16() else "float32"
    return "mixed_bfloat16" if precision == "bfloat16" else "float32"


# ---------------------------------------------------------------------------
# Pixels


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0-255, shape (n, 28, 28) -> float32 in [-1, 1], shape (n, 28, 28, 1).

    This pair is the only place that knows the networks' pixel range: the
    generator ends in tanh, so it emits [-1, 1].
    """
    return (np.asarray(images, dtype=np.float32)[..., None] - 127.5) / 127.5


def postprocess(images) -> np.ndarray:
    """Network output in [-1, 1], shape (n, 28, 28[, 1]) -> uint8 0-255, shape (n, 28, 28)."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    return np.clip(np.rint(images * 127.5 + 127.5), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Data

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _check_arrays(images, labels, source: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise UserError(f"{source}: expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),):
        raise UserError(f"{source}: expected {len(images)} labels, got shape {labels.shape}")
    if len(images) == 0:
        raise UserError(f"{source}: holds no images")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise UserError(f"{source}: labels must be digits 0-9, found {labels.min()}..{labels.max()}")
    return images, labels.astype(np.int32)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise UserError(f"{path}: too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path}: header promises shape {shape} but the file holds {body.size} bytes of data")
    return body.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"{folder}: expected {stem} or {stem}.gz (the MNIST IDX files) in this folder")


def load_mnist(path: str | os.PathLike | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (uint8, (n, 28, 28)) and labels (int32, (n,)) of `split` ("train" or "test").

    `path` is a Keras-layout .npz (x_train, y_train, x_test, y_test) or a folder
    holding the four IDX files, gzipped or raw. With no path: data/mnist.npz
    beside this script, else `keras.datasets.mnist` (which downloads).
    Raises UserError naming the path and what was expected.
    """
    if split not in IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if path is None:
        if DEFAULT_DATA.is_file():
            path = DEFAULT_DATA
        else:
            try:
                (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
            except Exception as exc:  # no internet, no cache
                raise UserError(
                    f"no data: {DEFAULT_DATA} is missing and keras.datasets.mnist could not download "
                    f"({type(exc).__name__}); pass --data PATH"
                ) from None
            pair = (x_train, y_train) if split == "train" else (x_test, y_test)
            return _check_arrays(*pair, "keras.datasets.mnist")
    path = Path(path)
    if path.is_dir():
        image_file, label_file = (_find_idx(path, stem) for stem in IDX_FILES[split])
        try:
            return _check_arrays(_read_idx(image_file), _read_idx(label_file), str(path))
        except (OSError, EOFError, gzip.BadGzipFile, struct.error) as exc:
            raise UserError(f"{path}: could not read the IDX files ({exc})") from None
    if not path.exists():
        raise UserError(f"{path}: no such file or folder (expected an MNIST .npz or a folder of IDX files)")
    keys = ("x_train", "y_train") if split == "train" else ("x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise UserError(f"{path}: expected arrays {', '.join(keys)} (Keras MNIST layout), missing {', '.join(missing)}")
            return _check_arrays(data[keys[0]], data[keys[1]], str(path))
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable .npz file ({type(exc).__name__}); expected the Keras MNIST layout") from None


# ---------------------------------------------------------------------------
# Models


def build_generator(*, latent_dim: int = 64, width: int = 64, extra_convs: int = 1, num_classes: int | None = NUM_CLASSES,
                    image_shape: tuple[int, int, int] = IMAGE_SHAPE, dtype: str | None = None,
                    soft_labels: bool = False) -> keras.Model:
    """G(noise, label) -> image in [-1, 1] of `image_shape`, float32 whatever the policy.

    `label` is an int32 class of shape (1,). Two stride-2 transposed
    convolutions grow an (h/4, w/4) grid to the image: 7x7 for a 28x28 digit,
    7x14 for a 28x56 pair; `extra_convs` 3x3 convolutions (BatchNorm, ReLU)
    refine the middle stage. `num_classes=None` builds an unconditional
    generator whose only input is `noise`. With `soft_labels` the label is
    instead a float vector of class weights, embedded by a bias-free Dense
    layer whose kernel has the embedding's shape, so `set_weights` carries a
    trained generator over and a blend of two one-hot labels morphs between
    classes.
    """
    rows, cols = image_shape[0] // 4, image_shape[1] // 4
    noise = keras.Input((latent_dim,), name="noise")
    inputs, x = {"noise": noise}, noise
    if num_classes:
        if soft_labels:
            label = keras.Input((num_classes,), name="label")
            y = layers.Dense(32, use_bias=False, name="label_embedding", dtype=dtype)(label)
        else:
            label = keras.Input((1,), dtype="int32", name="label")
            y = layers.Embedding(num_classes, 32, name="label_embedding", dtype=dtype)(label)
            y = layers.Flatten(dtype=dtype)(y)  # 32
        inputs["label"] = label
        x = layers.Concatenate(dtype=dtype)([noise, y])
    x = layers.Dense(rows * cols * 2 * width, use_bias=False, dtype=dtype)(x)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.ReLU(dtype=dtype)(x)
    x = layers.Reshape((rows, cols, 2 * width), dtype=dtype)(x)  # 7x7x2w
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, dtype=dtype)(x)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.ReLU(dtype=dtype)(x)  # 14x14xw
    for _ in range(extra_convs):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, dtype=dtype)(x)
        x = layers.BatchNormalization(dtype=dtype)(x)
        x = layers.ReLU(dtype=dtype)(x)  # 14x14xw
    x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same", dtype=dtype)(x)  # 28x28x1
    image = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(inputs, image, name="generator")


def generator_settings(generator: keras.Model) -> dict[str, int]:
    """The `build_generator` arguments `latent_dim`, `width` and `extra_convs` a generator was built with."""
    return {
        "latent_dim": generator.input["noise"].shape[-1],
        "width": next(layer.filters for layer in generator.layers if isinstance(layer, layers.Conv2DTranspose)),
        "extra_convs": sum(type(layer) is layers.Conv2D for layer in generator.layers),
    }


def build_discriminator(*, width: int = 32, extra_convs: int = 2, num_classes: int | None = NUM_CLASSES,
                        image_shape: tuple[int, int, int] = IMAGE_SHAPE, dtype: str | None = None) -> keras.Model:
    """D(image, label) -> one real/fake logit (float32), with a projection head.

    Two stride-2 convolutions bring the image to (h/4, w/4), where
    `extra_convs` 3x3 convolutions follow. The logit is psi(h) + <embed(label), h>
    for image features h (Miyato and Koyama, 2018), so the label enters as a
    learned class direction in feature space rather than as an extra input
    channel. There is no normalisation layer and no final sigmoid, so the same
    network serves as a Wasserstein critic. `num_classes=None` drops the label input and the
    projection: an unconditional discriminator, psi(h) alone.
    """
    image = keras.Input(image_shape, name="image")
    x = layers.Conv2D(width, 4, strides=2, padding="same", dtype=dtype)(image)
    x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 14x14xw
    x = layers.Conv2D(2 * width, 4, strides=2, padding="same", dtype=dtype)(x)
    x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 7x7x2w
    for _ in range(extra_convs):
        x = layers.Conv2D(2 * width, 3, padding="same", dtype=dtype)(x)
        x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 7x7x2w
    h = layers.Flatten(dtype=dtype)(x)
    logit = layers.Dense(1, dtype=dtype, name="psi")(h)
    inputs = {"image": image}
    if num_classes:
        label = keras.Input((1,), dtype="int32", name="label")
        # <embed(label), h> as h @ E (one column per class), then the label's column: one small
        # matmul instead of a per-example dot product with a gathered 7x7x2w embedding.
        per_class = layers.Dense(num_classes, use_bias=False, name="class_projection", dtype=dtype)(h)
        one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot", dtype=dtype)(label)
        logit = layers.Add(dtype=dtype)([logit, layers.Dot(axes=1, dtype=dtype)([one_hot, per_class])])
        inputs["label"] = label
    logit = layers.Activation("linear", dtype="float32", name="logit")(logit)
    return keras.Model(inputs, logit, name="discriminator")


def build_adversarial(generator: keras.Model, discriminator: keras.Model) -> keras.Model:
    """The stacked model D(G(z, y), y): noise (and label) in, the discriminator's logit out."""
    inputs = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in generator.input.items()}
    fake = generator(inputs)
    logit = discriminator({"image": fake, **({"label": inputs["label"]} if "label" in inputs else {})})
    return keras.Model(inputs, logit, name="adversarial")


def build_models(config: Config, *, dtype: str | None = None) -> tuple[keras.Model, keras.Model]:
    """The generator and discriminator for `config`."""
    discriminator = build_discriminator(width=config.d_width, extra_convs=config.d_extra_convs, dtype=dtype)
    return config_generator(config, dtype=dtype), discriminator


def config_generator(config: Config, *, dtype: str | None = None) -> keras.Model:
    """The generator for `config`."""
    return build_generator(latent_dim=config.latent_dim, width=config.g_width, extra_convs=config.g_extra_convs,
                           dtype=dtype)


# ---------------------------------------------------------------------------
# Training


def hinge_losses(real_logits, fake_logits):
    """(discriminator loss, generator loss) of the hinge GAN objective, from D's logits on real and fake images.

    D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); G: -mean(D(G(z))). With
    the projection discriminator it reached a lower Frechet distance than the
    non-saturating cross-entropy loss at equal steps (see the README). G's loss
    has no margin on purpose: with one, -mean(relu(1 + D(G(z)))), G gets no
    gradient once D pushes every fake below -1, and training stalled for good.
    """
    real_term = tf.reduce_mean(tf.nn.relu(1.0 - real_logits))
    fake_term = tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
    return real_term + fake_term, -tf.reduce_mean(fake_logits)


STEP_FIGURES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")  # what each training step reports


def steps_per_call(config: Config, start_step: int) -> int:
    """The most steps per compiled call (up to 10) that keeps every dump, and the last step, on a call boundary."""
    remaining = config.train_steps - start_step
    return next(k for k in (10, 5, 4, 2, 1) if not (start_step % k or remaining % k or config.save_interval % k))


class ConditionalGAN(keras.Model):
    """Trains a generator and a discriminator together, one update of each per step.

    Each step draws one batch of fakes, passes real and fake through the
    discriminator, and updates both networks from that single forward pass
    (D against its loss, G against its own through D). This saves
    the second generator pass of alternating updates, about a tenth of a step,
    with the same sample quality per step in our measurements.

    Also keeps `ema_generator`, an exponential moving average of the generator's
    weights: it draws cleaner digits than the raw generator and is what gets
    saved. Take it through `averaged_generator()`, which first sets its
    batch-norm statistics for its own weights.
    """

    def __init__(self, generator, discriminator, ema_generator, *, config: Config, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = ema_generator
        self.config = config
        self.seed_generator = keras.random.SeedGenerator(config.seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_acc_tracker = keras.metrics.Mean(name="d_acc_real")
        self.fake_acc_tracker = keras.metrics.Mean(name="d_acc_fake")
        # (first step whose loss was not finite, which loss), set by the NaN guard: nothing from that step on
        # is logged or drawn.
        self.diverged_at: tuple[int, str] | None = None
        self.set_steps_per_call(1)

    def set_steps_per_call(self, steps: int) -> None:
        """Run `steps` training steps per call of the compiled function (Keras' `steps_per_execution`).

        Callbacks then run once per `steps` steps; `recent_steps()` still gives
        them every step's figures, which `train_step` keeps in `step_history`.
        Saves the per-step round trip between Python and the graph (measured
        about a tenth of a step here at 10 steps per call).
        """
        self.steps_per_execution = steps
        self.step_history = keras.Variable(np.zeros((steps, len(STEP_FIGURES)), np.float32), trainable=False,
                                           name="step_history")
        self.train_function = None  # traced again with the new count

    def recent_steps(self) -> list[tuple[int, dict[str, float]]]:
        """(step, figures) for each step run since callbacks last ran, oldest first; none from `diverged_at` on."""
        step = int(self.g_optimizer.iterations.numpy())
        steps = self.steps_per_execution
        last = step if self.diverged_at is None else min(step, self.diverged_at[0] - 1)
        history = self.step_history.numpy()
        return [(s, dict(zip(STEP_FIGURES, map(float, history[(s - 1) % steps])))) for s in range(step - steps + 1, last + 1)]

    def compile(self, d_optimizer, g_optimizer, loss_fn=hinge_losses):
        """`loss_fn(real_logits, fake_logits)` returns (discriminator loss, generator loss)."""
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_acc_tracker, self.fake_acc_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        real, labels = data  # (b, 28, 28, 1) in [-1, 1]; (b, 1) int32
        batch = tf.shape(real)[0]
        noise = keras.random.normal((batch, self.config.latent_dim), seed=self.seed_generator)
        d_weights, g_weights = self.discriminator.trainable_weights, self.generator.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator({"noise": noise, "label": labels}, training=True)  # (b, 28, 28, 1)
            # Two calls rather than one on the stacked batch (D has no batch statistics, so the logits
            # are the same): G's backward pass then runs through D for the fakes only, 5% of a step.
            real_logits = self.discriminator({"image": real, "label": labels}, training=True)  # (b, 1)
            fake_logits = self.discriminator({"image": tf.cast(fake, real.dtype), "label": labels}, training=True)
            d_loss, g_loss = self.loss_fn(real_logits, fake_logits)
        d_grads, g_grads = tape.gradient(d_loss, d_weights), tape.gradient(g_loss, g_weights)
        self.d_optimizer.apply_gradients(zip(d_grads, d_weights))
        self.g_optimizer.apply_gradients(zip(g_grads, g_weights))
        self._update_ema()

        real_acc = tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))
        fake_acc = tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.real_acc_tracker.update_state(real_acc)
        self.fake_acc_tracker.update_state(fake_acc)
        figures = {"d_loss": d_loss, "g_loss": g_loss, "d_acc_real": real_acc, "d_acc_fake": fake_acc}
        row = (tf.cast(self.g_optimizer.iterations, tf.int32) - 1) % self.steps_per_execution
        values = tf.stack([tf.cast(figures[name], tf.float32) for name in STEP_FIGURES])
        self.step_history.assign(tf.tensor_scatter_nd_update(self.step_history.value, [[row]], [values]))
        # Per-step values (not running means) so logs and the CSV show each step.
        return figures

    def _update_ema(self):
        # Warm-up: the average follows the raw weights closely while they move fast.
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_w, w in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))

    def averaged_generator(self, *, statistics_from: int = 4096) -> keras.Model:
        """`ema_generator` with batch-norm statistics measured for its own weights, ready to sample.

        The statistics are those of `statistics_from` samples; the saved generator uses the default.
        """
        set_batch_norm_statistics(self.ema_generator, seed=self.config.seed, count=statistics_from)
        return self.ema_generator


def set_batch_norm_statistics(generator: keras.Model, *, seed: int = 0, count: int = 4096, chunk: int = 512) -> None:
    """Set the moving mean and variance of every BatchNormalization layer to their values over `count` samples.

    An averaged generator's weights differ from those the running statistics
    were gathered with; these are the statistics of `count` samples (labels
    cycling through the classes) drawn with the averaged weights themselves,
    layer by layer as in training. Lowered the Frechet distance by 0.1-0.3.
    Each layer's figures are summed over chunks of `chunk` samples, with the
    layers before it already set: what one training-mode pass over all the
    samples gives, without holding their activations at once (that pass over
    4,096 samples took 1.4 GB at widths 96 / 48).
    """
    rng = np.random.default_rng(seed)
    inputs = {"noise": rng.standard_normal((count, generator.input["noise"].shape[-1])).astype(np.float32)}
    if "label" in generator.input:
        inputs["label"] = (np.arange(count) % NUM_CLASSES).astype(np.int32).reshape(-1, 1)
    for layer in generator.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        to_layer = keras.Model(generator.input, layer.input)  # the earlier layers, statistics already set
        rows, total, squares = 0, 0.0, 0.0
        for start in range(0, count, chunk):
            x = to_layer({name: value[start : start + chunk] for name, value in inputs.items()}, training=False)
            x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])  # channels last: one column per channel
            rows, total, squares = rows + len(x), total + x.sum(0), squares + (x * x).sum(0)
        mean = total / rows
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(squares / rows - mean * mean, 0.0).astype(np.float32))


def learning_rate_schedule(config: Config, initial: float):
    """Linear decay from `initial` to `initial * final_lr_fraction` over the run's steps."""
    return keras.optimizers.schedules.PolynomialDecay(
        initial, decay_steps=config.train_steps, end_learning_rate=initial * config.final_lr_fraction
    )


def adam(config: Config, learning_rate) -> keras.optimizers.Adam:
    """Adam with the run's betas; `learning_rate` is a number or a schedule."""
    return keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)


def make_gan(config: Config, *, loss_fn=hinge_losses) -> ConditionalGAN:
    """A compiled ConditionalGAN for `config`, ready for `fit`; `loss_fn` as in `ConditionalGAN.compile`."""
    keras.utils.set_random_seed(config.seed)
    # Grappler's remapper fails on this step's graph and logs an error line at the first step
    # ("remapper failed: ... Mutation::Apply error"); without it the step runs as fast (measured).
    tf.config.optimizer.set_experimental_options({"remapping": False})
    policy = compute_policy(config.precision)
    generator, discriminator = build_models(config, dtype=policy)
    ema_generator = config_generator(config, dtype="float32")
    ema_generator.set_weights(generator.get_weights())
    gan = ConditionalGAN(generator, discriminator, ema_generator, config=config, name="cgan")
    gan.compile(
        d_optimizer=adam(config, learning_rate_schedule(config, config.d_lr)),
        g_optimizer=adam(config, learning_rate_schedule(config, config.g_lr)),
        loss_fn=loss_fn,
    )
    return gan


def make_dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int,
                 start_step: int = 0) -> tf.data.Dataset:
    """Batches (images in [-1, 1] (b, 28, 28, 1), labels (b, 1) int32) from step `start_step` on.

    Every epoch is a fresh permutation, and the batch of a step is a pure
    function of (seed, step): a resumed run sees exactly the data an
    uninterrupted one would have.
    """
    n = len(images)
    if n < batch_size:
        raise UserError(f"the data holds {n} images, fewer than one batch of {batch_size}")
    x, y = tf.constant(images), tf.constant(labels.astype(np.int32).reshape(-1, 1))

    def batch_at(step):
        position = step * batch_size + tf.range(batch_size, dtype=tf.int64)
        epoch, within = position // n, position % n
        seeds = tf.stack([tf.fill([batch_size], tf.cast(seed, tf.int64)), epoch, tf.zeros_like(epoch)], 1)  # (b, 3)
        # A stateless permutation of 0..n-1 per (seed, epoch); the raw op takes per-element seeds.
        index = tf.raw_ops.RandomIndexShuffle(index=within, seed=seeds, max_index=tf.constant(n - 1, tf.int64))
        # Scaled per batch: the uint8 set stays 47 MB instead of 188 MB of floats.
        return (tf.cast(tf.gather(x, index), tf.float32)[..., None] - 127.5) / 127.5, tf.gather(y, index)

    # A batch takes about 0.2 ms to make against 35 ms for a step, so there is nothing to tune; and
    # with tf.data's autotuner on, `fit` often sat idle at its end until the autotuner's next wake-up
    # (its period doubles from 10 ms up to a minute): 39 s after a 1,000-step run, 3 s after each
    # 200-step call of the speed benchmark.
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = tf.data.Dataset.range(start_step, 2**62).map(batch_at).prefetch(16)
    return ds.with_options(options)


def write_png(path, pixels: np.ndarray) -> Path:
    """Write a uint8 grey image (h, w), atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(pixels, mode="L").save(tmp, format="PNG")
    return Path(path)


def tile(images: np.ndarray, rows: int, *, scale: int = 2, gap: int = 2) -> np.ndarray:
    """Images (n, 28, 28) uint8 -> one grid image, `rows` rows, row-major, scaled up by `scale`."""
    cols = -(-len(images) // rows)
    size = 28 * scale
    grid = np.full((rows * (size + gap) + gap, cols * (size + gap) + gap), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        top, left = gap + r * (size + gap), gap + c * (size + gap)
        grid[top : top + size, left : left + size] = np.kron(img, np.ones((scale, scale), np.uint8))
    return grid


def save_grid(path, images: np.ndarray, rows: int) -> Path:
    """A PNG grid of uint8 images, `rows` rows."""
    return write_png(path, tile(images, rows))


def save_generator(generator: keras.Model, path) -> Path:
    """Save `generator` whole (legacy .h5 or native .keras, by suffix), atomically."""
    from absl import logging as absl_logging

    suffix = ".keras" if Path(path).suffix == ".keras" else ".h5"
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # Keras's "HDF5 is legacy" notice: .h5 is this project's published format
    try:
        with atomic_path(path, suffix=suffix) as tmp:
            generator.save(tmp)
    finally:
        absl_logging.set_verbosity(verbosity)
    return Path(path)


class SampleGrid(keras.callbacks.Callback):
    """Every `interval` steps, draws one row per digit from fixed noise with the averaged generator."""

    def __init__(self, gan: ConditionalGAN, out_dir: Path, *, interval: int, per_digit: int = 10, seed: int = 0):
        super().__init__()
        self.gan, self.out_dir, self.interval = gan, Path(out_dir), interval
        self.digits = np.repeat(np.arange(NUM_CLASSES), per_digit)
        self.seed = seed
        self.last: tuple[int, np.ndarray] | None = None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.gan.g_optimizer.iterations.numpy())
        if step % self.interval == 0 and self.gan.diverged_at is None:  # diverged weights draw a black grid
            self.dump(step)

    def grid(self, step: int) -> np.ndarray:
        """The fixed-noise grid at `step` (drawn once per step, shared with TensorBoard)."""
        if self.last is None or self.last[0] != step:
            # Statistics from 1,024 samples take 0.25 s a grid against 1 s from 4,096 (about 24 s of a
            # default run), and look the same in a preview.
            images = generate(self.gan.averaged_generator(statistics_from=1024), self.digits, seed=self.seed)
            self.last = (step, tile(images, NUM_CLASSES))
        return self.last[1]

    def dump(self, step: int) -> Path:
        return write_png(self.out_dir / f"step_{step:06d}.png", self.grid(step))


class TrainingStopped(Exception):
    """Training ended before its last step; `exit_code` is what the command line returns."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


RUN_FILE = "run.json"  # config and data settings of a run: what --resume needs to continue it
# Config fields added after run.json existed, with the value that runs written before them trained with.
FORMER_DEFAULTS = {"beta_2": 0.999, "g_extra_convs": 0, "d_extra_convs": 0}


def train(
    config: Config,
    *,
    out_dir,
    data=None,
    model_name: str = "cgan_mnist.h5",
    limit: int | None = None,
    verbose: bool = True,
    callbacks=(),
    tensorboard=None,
) -> Path:
    """Train a conditional GAN from scratch; return the path of the saved (averaged) generator.

    Writes into `out_dir`: `samples/step_NNNNNN.png` (fixed noise, a row per digit),
    `checkpoints/` and `losses.csv` + `loss_curve.png` every `config.save_interval`
    steps, and at the end the generator as `model_name` (a path with a folder is
    used as is). `limit` keeps only the first `limit` training images; `callbacks`
    are extra Keras callbacks; `tensorboard` is a log folder. Raises
    TrainingStopped on SIGINT/SIGTERM (after a checkpoint) or on a NaN loss.
    """
    config.validate()
    _check_tensorboard(tensorboard)
    if limit is not None and limit <= 0:
        raise UserError(f"--limit must be a positive integer, got {limit}")
    out_dir = Path(out_dir)
    if checkpoints.list_checkpoints(out_dir) or (out_dir / RUN_FILE).exists():
        raise UserError(f"{out_dir} already holds a training run: continue it with --resume {out_dir}, or pick another --out-dir")
    images, labels = load_mnist(data, "train")  # before anything is written: bad data leaves no trace
    run = {"config": dataclasses.asdict(config), "data": None if data is None else str(Path(data).resolve()),
           "limit": limit, "model_name": str(model_name)}
    write_text(out_dir / RUN_FILE, json.dumps(run, indent=2) + "\n")
    return _fit(config, out_dir, images, labels, run, start_step=0, gan=make_gan(config), verbose=verbose,
                callbacks=callbacks, tensorboard=tensorboard)


def _check_tensorboard(log_dir) -> None:
    import importlib.util

    if log_dir and importlib.util.find_spec("tensorboard") is None:
        raise UserError("--tensorboard needs the tensorboard package: pip install -r requirements.txt")


def resume(run_dir, *, verbose: bool = True, callbacks=(), tensorboard=None) -> Path:
    """Continue the run in `run_dir` from its newest checkpoint to its configured last step."""
    run_dir = Path(run_dir)
    _check_tensorboard(tensorboard)
    try:
        run = json.loads((run_dir / RUN_FILE).read_text())
        config = Config(**{**FORMER_DEFAULTS, **run["config"]})
    except (OSError, ValueError, TypeError, KeyError):
        raise UserError(f"{run_dir}: not a training run folder (no readable {RUN_FILE})") from None
    found = checkpoints.list_checkpoints(run_dir)
    if not found:
        raise UserError(f"{run_dir}: no checkpoint to resume from (one is written every --save-interval steps)")
    images, labels = load_mnist(run["data"], "train")
    gan = make_gan(config)
    try:
        step = checkpoints.restore(gan, found[-1])
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{found[-1]}: unreadable checkpoint ({exc})") from None
    if verbose:
        print(f"resuming {run_dir} from step {step} ({found[-1].name})", flush=True)
    return _fit(config, run_dir, images, labels, run, start_step=step, gan=gan, verbose=verbose,
                callbacks=callbacks, tensorboard=tensorboard)


def _fit(config, out_dir, images, labels, run, *, start_step, gan, verbose, callbacks, tensorboard) -> Path:
    import training_log

    if run["limit"] is not None:
        images, labels = images[: run["limit"]], labels[: run["limit"]]
    model_name = Path(run["model_name"])
    model_path = model_name if model_name.parent != Path(".") else out_dir / model_name
    dataset = make_dataset(images, labels, batch_size=config.batch_size, seed=config.seed, start_step=start_step)
    if verbose and start_step == 0:
        print(f"training {config.train_steps} steps on {len(images)} images, batch {config.batch_size}, "
              f"seed {config.seed}, {compute_policy(config.precision)} -> {out_dir}", flush=True)
        plot_architecture(out_dir / "architecture", config, quiet_failure=True)
    samples = SampleGrid(gan, out_dir / "samples", interval=config.save_interval, seed=config.seed)
    guard = checkpoints.Checkpointer(gan, out_dir, interval=config.save_interval)
    all_callbacks = [
        guard,  # first: a NaN step stops here, before anything else records it
        samples,
        training_log.LossLog(gan, out_dir, interval=config.save_interval, start_step=start_step),
        *callbacks,
    ]
    if tensorboard:
        all_callbacks.append(training_log.TensorBoardLog(gan, tensorboard, interval=config.save_interval, grid_source=samples.grid))
    if verbose:
        all_callbacks.append(training_log.Progress(gan, config.train_steps, every=min(config.save_interval, 500)))
    remaining = config.train_steps - start_step
    gan.set_steps_per_call(steps_per_call(config, start_step))
    start = time.perf_counter()
    if remaining > 0:
        gan.fit(dataset, epochs=1, steps_per_epoch=remaining, callbacks=all_callbacks, verbose=0, shuffle=False)
    elapsed = time.perf_counter() - start
    step = int(gan.g_optimizer.iterations.numpy())
    if gan.diverged_at:
        at, what = gan.diverged_at
        last = checkpoints.list_checkpoints(out_dir)
        kept = f"last good checkpoint: {last[-1]}" if last else "no checkpoint was written before it"
        raise TrainingStopped(f"training diverged at step {at}: {what}; {kept} (lower --g-lr/--d-lr and train again)", 1)
    if guard.signal_received is not None:
        raise TrainingStopped(f"stopped at step {step} by signal {guard.signal_received}; checkpoint written, "
                              f"continue with --resume {out_dir}", 128 + guard.signal_received)
    if step % config.save_interval:
        checkpoints.save(gan, out_dir, step)
        samples.dump(step)
    path = save_generator(gan.averaged_generator(), model_path)
    if verbose:
        done = step - start_step
        print(f"trained {done} steps in {elapsed / 60:.1f} min ({elapsed / max(done, 1) * 1000:.0f} ms/step)")
        print(f"generator saved to {path}")
    return path


# ---------------------------------------------------------------------------
# Inference


def load_generator(path) -> keras.Model:
    """Load a generator saved by this project (.h5 or .keras); UserError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a loadable Keras model ({reason})") from None
    inputs = model.input if isinstance(model.input, dict) else {}
    if set(inputs) != {"noise", "label"} or tuple(model.output.shape[1:]) != IMAGE_SHAPE:
        raise UserError(f"{path}: not a generator (expected inputs 'noise' and 'label' and a 28x28x1 image output)")
    return model


def generate(generator: keras.Model, digits, seed: int | None = None, *, batch_size: int = 1000) -> np.ndarray:
    """One uint8 image (0-255, 28x28) per requested digit: shape (len(digits), 28, 28).

    The same seed gives the same images; each image's noise depends only on
    the seed and its position in `digits`.
    """
    digits = np.asarray(digits).reshape(-1)
    if digits.size and (not np.issubdtype(digits.dtype, np.integer) or digits.min() < 0 or digits.max() >= NUM_CLASSES):
        raise UserError(f"digits must be integers 0-9, got {digits.tolist()[:10]}")
    latent_dim = generator.input["noise"].shape[-1]
    noise = np.random.default_rng(seed).standard_normal((len(digits), latent_dim)).astype(np.float32)
    labels = digits.astype(np.int32).reshape(-1, 1)
    out = np.empty((len(digits), 28, 28), np.uint8)
    for i in range(0, len(digits), batch_size):
        batch = generator({"noise": noise[i : i + batch_size], "label": labels[i : i + batch_size]}, training=False)
        out[i : i + batch_size] = postprocess(batch)
    return out


# ---------------------------------------------------------------------------
# Diagrams


def plot_architecture(folder, config: Config = Config(), *, quiet_failure: bool = False) -> list[Path]:
    """Write generator.png, discriminator.png and adversarial.png to `folder` with plot_model."""
    import shutil

    folder = Path(folder)
    if shutil.which("dot") is None:
        message = "architecture diagrams need Graphviz's `dot`: apt-get install graphviz (or brew install graphviz)"
        if quiet_failure:
            print(f"note: skipped {message}", flush=True)
            return []
        raise UserError(message)
    generator, discriminator = build_models(config)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for model in (generator, discriminator, build_adversarial(generator, discriminator)):
        path = folder / f"{model.name}.png"
        try:
            with atomic_path(path) as tmp:
                keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True, dpi=72)
        except Exception as exc:
            if quiet_failure:
                print(f"note: skipped architecture diagrams ({type(exc).__name__}: {exc})", flush=True)
                return written
            raise UserError(f"could not draw {path}: {exc}") from None
        written.append(path)
    return written


# ---------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage plus error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _digit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a digit 0-9") from None
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"{value} is not a digit 0-9")
    return value


CONFIG_HELP = {
    "train_steps": "training steps, one update of D and of G each",
    "batch_size": "images per step",
    "latent_dim": "noise dimensions",
    "g_width": "generator channels at 14x14 (twice that at 7x7)",
    "g_extra_convs": "3x3 convolutions (BatchNorm, ReLU) at the generator's 14x14 stage",
    "d_width": "discriminator channels at 14x14 (twice that at 7x7)",
    "d_extra_convs": "3x3 convolutions (LeakyReLU) at the discriminator's 7x7 stage",
    "g_lr": "generator Adam learning rate at the first step",
    "d_lr": "discriminator Adam learning rate at the first step",
    "final_lr_fraction": "both learning rates decay linearly to this share of their start by the last step",
    "beta_1": "Adam beta_1 of both optimizers",
    "beta_2": "Adam beta_2 of both optimizers",
    "ema_decay": "decay of the generator's weight average (the saved generator)",
    "save_interval": "steps between sample grids, checkpoints and loss-curve updates",
    "precision": "auto: mixed bfloat16 on CPUs with AMX, else float32",
}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every training flag is a field of Config."""
    defaults = Config()
    p = _Parser(prog="cgan_mnist.py", description="Train a conditional GAN on MNIST, or draw digits with a trained generator.")
    run = p.add_argument_group("what to do (default: train from scratch)")
    run.add_argument("--generator", metavar="PATH", help="a trained generator (.h5 or .keras): sample from it instead of training")
    run.add_argument("--evaluate", action="store_true", help="with --generator: print label accuracy, Frechet distance and diversity against real digits")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the training run in RUN_DIR from its newest checkpoint")
    run.add_argument("--plot-losses", metavar="RUN_DIR", help="redraw RUN_DIR/loss_curve.png from RUN_DIR/losses.csv and exit")
    run.add_argument("--plot-architecture", nargs="?", const="architecture", metavar="DIR",
                     help="write generator.png, discriminator.png and adversarial.png to DIR (default: architecture) and exit")
    run.add_argument("--dry-run", action="store_true", help="train 2 steps on 256 images in a temporary folder, to check the set-up")

    sample = p.add_argument_group("sampling (with --generator)")
    which = sample.add_mutually_exclusive_group()
    which.add_argument("--digit", type=_digit, metavar="N", help="draw only digit N (0-9); default: one row per digit 0-9")
    which.add_argument("--digits", type=_digit, nargs="+", metavar="N", help="draw these digits, one row each")
    which.add_argument("--interpolate", type=_digit, nargs=2, metavar=("A", "B"), help="fixed noise, the label morphing from digit A to B")
    which.add_argument("--walk", type=_digit, metavar="N", help="digit N fixed, the noise walking between two seeds")
    sample.add_argument("--count", type=int, default=None, metavar="K", help="samples per digit (default: 16 with --digit, 10 per row otherwise)")
    sample.add_argument("--frames", type=int, default=10, help="frames of --interpolate or --walk (default: 10)")
    sample.add_argument("--gif", action="store_true", help="with --interpolate or --walk: also write an animated GIF")
    sample.add_argument("--save-npz", metavar="PATH", help="also write the images (uint8) and their labels to PATH (.npz)")
    sample.add_argument("--show", action="store_true", help="also open the picture in a window")
    sample.add_argument("--json", action="store_true", help="with --evaluate: print JSON instead of a table")

    train_group = p.add_argument_group("training")
    for field in dataclasses.fields(Config):
        if field.name in CONFIG_HELP:
            default = getattr(defaults, field.name)
            extra = {"choices": ("auto", "float32", "bfloat16")} if field.name == "precision" else {}
            metavar = {int: "N", float: "X"}.get(type(default))
            train_group.add_argument(f"--{field.name.replace('_', '-')}", type=type(default), default=default,
                                     metavar=metavar, help=f"{CONFIG_HELP[field.name]} (default: {default})", **extra)
    train_group.add_argument("--data", metavar="PATH", help="MNIST .npz (Keras layout) or folder of IDX files (default: data/mnist.npz)")
    train_group.add_argument("--limit", type=int, metavar="N", help="train on the first N images only (quick runs)")
    train_group.add_argument("--model-name", default="cgan_mnist.h5", help="file name of the saved generator inside --out-dir (default: cgan_mnist.h5)")
    train_group.add_argument("--tensorboard", metavar="DIR", help="also log losses and sample grids for `tensorboard --logdir DIR`")

    common = p.add_argument_group("common")
    common.add_argument("--out-dir", metavar="DIR", help="output folder (default: runs/train-TIMESTAMP for training, samples for sampling)")
    common.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives the same images (default: 0 for training, random for sampling)")
    return p


def _sample(args) -> list[Path]:
    """Sampling from the command line: grids, morphs and walks, with optional GIF and npz."""
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if not 2 <= args.frames <= 1000:
        raise UserError(f"--frames must be between 2 and 1000, got {args.frames}")
    if args.gif and args.interpolate is None and args.walk is None:
        raise UserError("--gif needs --interpolate A B or --walk N")
    if args.save_npz and Path(args.save_npz).suffix != ".npz":
        raise UserError(f"--save-npz must name a .npz file, got {args.save_npz}")
    generator = load_generator(args.generator)
    seed = args.seed if args.seed is not None else int(np.random.default_rng().integers(2**31))
    out_dir = Path(args.out_dir or "samples")
    if args.interpolate is not None or args.walk is not None:
        import morphing

        if args.interpolate is not None:
            a, b = args.interpolate
            images = morphing.interpolate(generator, a, b, frames=args.frames, seed=seed)
            labels, stem = np.linspace(a, b, args.frames), f"morph{a}-{b}_f{args.frames}_seed{seed}"
        else:
            images = morphing.walk(generator, args.walk, frames=args.frames, seed=seed)
            labels, stem = np.full(args.frames, args.walk), f"walk{args.walk}_f{args.frames}_seed{seed}"
        rows = 1
    else:
        if args.digit is not None:
            count = args.count or 16
            digits = np.full(count, args.digit)
            rows = max(r for r in range(1, int(np.sqrt(count)) + 1) if count % r == 0)  # near-square
            stem = f"digit{args.digit}_n{count}_seed{seed}"
        else:
            chosen = args.digits if args.digits is not None else list(range(NUM_CLASSES))
            count = args.count or (16 if args.digits is not None else 10)
            digits, rows = np.repeat(chosen, count), len(chosen)
            stem = f"digits{''.join(map(str, chosen)) if args.digits is not None else '0-9'}_n{count}_seed{seed}"
        images, labels = generate(generator, digits, seed=seed), digits
    written = [save_grid(out_dir / f"{stem}.png", images, rows=rows)]
    if args.gif:
        import morphing

        written.append(morphing.save_gif(out_dir / f"{stem}.gif", images))
    if args.save_npz:
        written.append(save_npz(args.save_npz, images, labels))
    for path in written:
        print(f"wrote {path}")
    print(f"seed {seed}")
    if args.show:
        import matplotlib.pyplot as plt

        plt.imshow(tile(images, rows), cmap="gray")
        plt.axis("off")
        plt.show()
    return written


def save_npz(path, images: np.ndarray, labels) -> Path:
    """Write images (uint8, (n, 28, 28)) and labels (float32 for morph frames, else int32) to a .npz, atomically."""
    labels = np.asarray(labels)
    labels = labels.astype(np.int32) if np.all(labels == np.round(labels)) else labels.astype(np.float32)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, images=images, labels=labels)
    return Path(path)


def config_from_args(args) -> Config:
    """The Config the command line asks for."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if f.name in CONFIG_HELP}
    if args.dry_run:
        values.update(train_steps=2, save_interval=1)
    return Config(**values, seed=0 if args.seed is None else args.seed)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.plot_architecture:
            for path in plot_architecture(args.plot_architecture):
                print(f"wrote {path}")
        elif args.plot_losses:
            import training_log

            try:
                print(f"wrote {training_log.plot_losses(args.plot_losses)}")
            except (OSError, ValueError, KeyError) as exc:
                raise UserError(f"{args.plot_losses}: no readable losses.csv ({type(exc).__name__})") from None
        elif args.evaluate:
            if not args.generator:
                raise UserError("--evaluate needs --generator PATH")
            import evaluation

            evaluation.evaluate(args.generator, data=args.data, seed=args.seed or 0, as_json=args.json)
        elif args.generator:
            _sample(args)
        elif args.resume:
            path = resume(args.resume, tensorboard=args.tensorboard)
            print(f"sample it: python cgan_mnist.py --generator={path} --digit=6")
        elif args.dry_run:
            with tempfile.TemporaryDirectory() as tmp:
                train(config_from_args(args), out_dir=tmp, data=args.data, limit=256, model_name="dry_run.h5")
            print("dry run ok")
        else:
            out_dir = args.out_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}"
            path = train(config_from_args(args), out_dir=out_dir, data=args.data, limit=args.limit,
                         model_name=args.model_name, tensorboard=args.tensorboard)
            print(f"sample it: python cgan_mnist.py --generator={path} --digit=6")
        return 0
    except UserError as exc:
        print(f"cgan_mnist.py: error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        print(f"cgan_mnist.py: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # outside training (which checkpoints and stops itself)
        print("cgan_mnist.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run as the module `cgan_mnist` that evaluation.py and morphing.py import: as `__main__`, this
    # file's UserError would be a second class, and theirs would escape `main` as a traceback.
    import cgan_mnist

    sys.exit(cgan_mnist.main())
