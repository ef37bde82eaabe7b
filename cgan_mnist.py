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

# TensorFlow's C++ start-up chatter is noise for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

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

    train_steps: int = 12_000
    batch_size: int = 64
    latent_dim: int = 64
    g_width: int = 64  # channels of the generator's 14x14 stage (its 7x7 stage has twice that)
    d_width: int = 64  # channels of the discriminator's 14x14 stage (its 7x7 stage has twice that)
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta_1: float = 0.5
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
        for name in ("g_lr", "d_lr"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 < value < 1):
                raise UserError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise UserError(f"--precision must be auto, float32 or bfloat16, got {self.precision!r}")


def cpu_has_fast_bfloat16() -> bool:
    """True on x86 CPUs with AMX or AVX-512 BF16, where oneDNN runs bfloat16 faster than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("amx_bf16", "avx512_bf16"))


def compute_policy(precision: str) -> str:
    """The Keras dtype policy for the training networks."""
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


def build_generator(*, latent_dim: int = 64, width: int = 64, dtype: str | None = None) -> keras.Model:
    """G(noise, label) -> image in [-1, 1], shape (28, 28, 1), float32 whatever the policy.

    The label is embedded and joined to the noise; every stage after that
    is conditioned through it.
    """
    noise = keras.Input((latent_dim,), name="noise")
    label = keras.Input((1,), dtype="int32", name="label")
    y = layers.Flatten(dtype=dtype)(layers.Embedding(NUM_CLASSES, 32, name="label_embedding", dtype=dtype)(label))
    x = layers.Concatenate(dtype=dtype)([noise, y])
    x = layers.Dense(7 * 7 * 2 * width, use_bias=False, dtype=dtype)(x)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.ReLU(dtype=dtype)(x)
    x = layers.Reshape((7, 7, 2 * width), dtype=dtype)(x)  # 7x7x2w
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, dtype=dtype)(x)
    x = layers.BatchNormalization(dtype=dtype)(x)
    x = layers.ReLU(dtype=dtype)(x)  # 14x14xw
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", dtype=dtype)(x)  # 28x28x1
    image = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model({"noise": noise, "label": label}, image, name="generator")


def build_discriminator(*, width: int = 64, dtype: str | None = None) -> keras.Model:
    """D(image, label) -> one real/fake logit (float32), with a projection head.

    The logit is psi(h) + <embed(label), h> for image features h (Miyato and
    Koyama, 2018), so the label enters as a learned class direction in
    feature space rather than as an extra input channel.
    """
    image = keras.Input(IMAGE_SHAPE, name="image")
    label = keras.Input((1,), dtype="int32", name="label")
    x = layers.Conv2D(width, 4, strides=2, padding="same", dtype=dtype)(image)
    x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 14x14xw
    x = layers.Conv2D(2 * width, 4, strides=2, padding="same", dtype=dtype)(x)
    x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 7x7x2w
    h = layers.Flatten(dtype=dtype)(x)
    unconditional = layers.Dense(1, dtype=dtype, name="psi")(h)
    embed = layers.Flatten(dtype=dtype)(
        layers.Embedding(NUM_CLASSES, h.shape[-1], name="class_projection", dtype=dtype)(label)
    )
    projection = layers.Dot(axes=1, dtype=dtype)([embed, h])
    logit = layers.Add(dtype=dtype)([unconditional, projection])
    logit = layers.Activation("linear", dtype="float32", name="logit")(logit)
    return keras.Model({"image": image, "label": label}, logit, name="discriminator")


def build_adversarial(generator: keras.Model, discriminator: keras.Model) -> keras.Model:
    """The stacked model D(G(z, y), y): noise and label in, the discriminator's logit out."""
    noise = keras.Input(generator.input["noise"].shape[1:], name="noise")
    label = keras.Input((1,), dtype="int32", name="label")
    fake = generator({"noise": noise, "label": label})
    logit = discriminator({"image": fake, "label": label})
    return keras.Model({"noise": noise, "label": label}, logit, name="adversarial")


def build_models(config: Config, *, dtype: str | None = None) -> tuple[keras.Model, keras.Model]:
    """The generator and discriminator for `config`."""
    return (
        build_generator(latent_dim=config.latent_dim, width=config.g_width, dtype=dtype),
        build_discriminator(width=config.d_width, dtype=dtype),
    )


# ---------------------------------------------------------------------------
# Training


class ConditionalGAN(keras.Model):
    """Trains a generator and a discriminator together, one update of each per step.

    Also keeps `ema_generator`, an exponential moving average of the generator's
    weights: it draws cleaner digits than the raw generator and is what gets saved.
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

    def compile(self, d_optimizer, g_optimizer, loss_fn=None):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn or keras.losses.BinaryCrossentropy(from_logits=True)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_acc_tracker, self.fake_acc_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        real, labels = data  # (b, 28, 28, 1) in [-1, 1]; (b, 1) int32
        batch = tf.shape(real)[0]
        noise_shape = (batch, self.config.latent_dim)
        ones = tf.ones((batch, 1))
        zeros = tf.zeros((batch, 1))

        # Discriminator: real and fake go through it as one batch of 2b.
        noise = keras.random.normal(noise_shape, seed=self.seed_generator)
        fake = self.generator({"noise": noise, "label": labels}, training=True)
        with tf.GradientTape() as tape:
            logits = self.discriminator(
                {"image": tf.concat([real, tf.cast(fake, real.dtype)], 0), "label": tf.concat([labels, labels], 0)},
                training=True,
            )
            real_logits, fake_logits = logits[:batch], logits[batch:]
            d_loss = self.loss_fn(ones, real_logits) + self.loss_fn(zeros, fake_logits)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        # Generator: fresh noise, non-saturating loss through the updated discriminator.
        noise = keras.random.normal(noise_shape, seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake = self.generator({"noise": noise, "label": labels}, training=True)
            g_logits = self.discriminator({"image": fake, "label": labels}, training=True)
            g_loss = self.loss_fn(ones, g_logits)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self._update_ema()

        real_acc = tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))
        fake_acc = tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.real_acc_tracker.update_state(real_acc)
        self.fake_acc_tracker.update_state(fake_acc)
        # Per-step values (not running means) so logs and the CSV show each step.
        return {"d_loss": d_loss, "g_loss": g_loss, "d_acc_real": real_acc, "d_acc_fake": fake_acc}

    def _update_ema(self):
        # Warm-up: the average follows the raw weights closely while they move fast.
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_w, w in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))
        for ema_w, w in zip(self.ema_generator.non_trainable_weights, self.generator.non_trainable_weights):
            ema_w.assign(tf.cast(w, ema_w.dtype))  # batch-norm statistics are running means already


def make_gan(config: Config) -> ConditionalGAN:
    """A compiled ConditionalGAN for `config`, ready for `fit`."""
    keras.utils.set_random_seed(config.seed)
    policy = compute_policy(config.precision)
    generator, discriminator = build_models(config, dtype=policy)
    ema_generator = build_generator(latent_dim=config.latent_dim, width=config.g_width, dtype="float32")
    ema_generator.set_weights(generator.get_weights())
    gan = ConditionalGAN(generator, discriminator, ema_generator, config=config, name="cgan")
    gan.compile(
        d_optimizer=keras.optimizers.Adam(config.d_lr, beta_1=config.beta_1),
        g_optimizer=keras.optimizers.Adam(config.g_lr, beta_1=config.beta_1),
    )
    return gan


def make_dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int) -> tf.data.Dataset:
    """An endless, shuffled stream of (image batch in [-1, 1], label batch (b, 1))."""
    if len(images) < batch_size:
        raise UserError(f"the data holds {len(images)} images, fewer than one batch of {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices((images[..., None], labels.reshape(-1, 1).astype(np.int32)))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    # Scale on the fly: the uint8 set stays 47 MB instead of 188 MB of floats.
    ds = ds.map(lambda x, y: ((tf.cast(x, tf.float32) - 127.5) / 127.5, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Write a uint8 grey image atomically (temporary name, then rename)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(pixels, mode="L").save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def tile(images: np.ndarray, rows: int, *, scale: int = 2, gap: int = 2) -> np.ndarray:
    """Images (n, 28, 28) uint8 -> one grid image, `rows` rows, row-major, scaled up by `scale`."""
    n = len(images)
    cols = -(-n // rows)
    size = 28 * scale
    grid = np.full((rows * (size + gap) + gap, cols * (size + gap) + gap), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        big = np.kron(img, np.ones((scale, scale), np.uint8))
        grid[gap + r * (size + gap) : gap + r * (size + gap) + size, gap + c * (size + gap) : gap + c * (size + gap) + size] = big
    return grid


def save_grid(path, images: np.ndarray, rows: int) -> Path:
    """A PNG grid of uint8 images, `rows` rows."""
    return write_png(path, tile(images, rows))


def save_generator(generator: keras.Model, path) -> Path:
    """Save `generator` whole (legacy .h5 or native .keras, by suffix), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".keras" if path.suffix == ".keras" else ".h5"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the "HDF5 is legacy" notice: .h5 is this project's published format
            generator.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class SampleGrid(keras.callbacks.Callback):
    """Every `interval` steps, draws one row per digit from fixed noise with the averaged generator."""

    def __init__(self, gan: ConditionalGAN, out_dir: Path, *, interval: int, per_digit: int = 10, seed: int = 0):
        super().__init__()
        self.gan, self.out_dir, self.interval = gan, Path(out_dir), interval
        self.digits = np.repeat(np.arange(NUM_CLASSES), per_digit)
        self.per_digit, self.seed = per_digit, seed

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.gan.g_optimizer.iterations.numpy())
        if step % self.interval == 0:
            self.dump(step)

    def dump(self, step: int) -> Path:
        images = generate(self.gan.ema_generator, self.digits, seed=self.seed)
        return save_grid(self.out_dir / f"step_{step:06d}.png", images, rows=NUM_CLASSES)


class ProgressLine(keras.callbacks.Callback):
    """A short line every `every` steps: step, losses, steps per second, ETA."""

    def __init__(self, gan: ConditionalGAN, total: int, every: int):
        super().__init__()
        self.gan, self.total, self.every = gan, total, every

    def on_train_begin(self, logs=None):
        self.t0, self.step0 = time.perf_counter(), int(self.gan.g_optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.gan.g_optimizer.iterations.numpy())
        if step % self.every and step != self.total:
            return
        rate = (step - self.step0) / max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        logs = {k: float(v) for k, v in (logs or {}).items()}
        print(
            f"step {step}/{self.total}  d_loss {logs.get('d_loss', float('nan')):.3f}  "
            f"g_loss {logs.get('g_loss', float('nan')):.3f}  {rate:.1f} steps/s  eta {eta / 60:.1f} min",
            flush=True,
        )


def train(
    config: Config,
    *,
    out_dir,
    data=None,
    model_name: str = "cgan_mnist.h5",
    limit: int | None = None,
    verbose: bool = True,
    callbacks=(),
) -> Path:
    """Train a conditional GAN from scratch; return the path of the saved (averaged) generator.

    Writes `out_dir/samples/step_NNNNNN.png` every `config.save_interval` steps
    and the generator to `out_dir/model_name` (a path with a folder is used as is).
    `limit` keeps only the first `limit` training images (for quick runs and tests);
    `callbacks` are extra Keras callbacks (they see the ConditionalGAN as `self.model`).
    """
    config.validate()
    out_dir = Path(out_dir)
    images, labels = load_mnist(data, "train")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    dataset = make_dataset(images, labels, batch_size=config.batch_size, seed=config.seed)
    gan = make_gan(config)
    model_path = Path(model_name) if Path(model_name).parent != Path(".") else out_dir / model_name
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    if verbose:
        print(
            f"training {config.train_steps} steps on {len(images)} images, batch {config.batch_size}, "
            f"seed {config.seed}, {compute_policy(config.precision)} -> {out_dir}",
            flush=True,
        )
        plot_architecture(out_dir / "architecture", config, quiet_failure=True)
    samples = SampleGrid(gan, out_dir / "samples", interval=config.save_interval, seed=config.seed)
    callbacks = [samples, keras.callbacks.TerminateOnNaN(), *callbacks]
    if verbose:
        callbacks.append(ProgressLine(gan, config.train_steps, every=min(config.save_interval, 100)))
    start = time.perf_counter()
    gan.fit(dataset, epochs=1, steps_per_epoch=config.train_steps, callbacks=callbacks, verbose=0)
    elapsed = time.perf_counter() - start
    step = int(gan.g_optimizer.iterations.numpy())
    if step % config.save_interval:
        samples.dump(step)
    path = save_generator(gan.ema_generator, model_path)
    if verbose:
        print(f"trained {step} steps in {elapsed / 60:.1f} min ({elapsed / max(step, 1) * 1000:.0f} ms/step)")
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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{model.name}.", suffix=".png")
        os.close(fd)
        try:
            keras.utils.plot_model(model, to_file=tmp, show_shapes=True, show_layer_names=True, dpi=72)
            os.replace(tmp, path)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
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


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    p = _Parser(
        prog="cgan_mnist.py",
        description="Train a conditional GAN on MNIST, or draw digits with a trained generator.",
    )
    run = p.add_argument_group("what to do (default: train)")
    run.add_argument("--generator", metavar="PATH", help="a trained generator (.h5 or .keras): sample from it instead of training")
    run.add_argument("--plot-architecture", nargs="?", const="architecture", metavar="DIR",
                     help="write generator.png, discriminator.png and adversarial.png to DIR (default: architecture) and exit")
    run.add_argument("--dry-run", action="store_true", help="train 2 steps on 256 images into a temporary folder, to check the set-up")

    sample = p.add_argument_group("sampling (with --generator)")
    sample.add_argument("--digit", type=_digit, metavar="N", help="draw only digit N (0-9); default: one row per digit")
    sample.add_argument("--count", type=int, default=None, metavar="K", help="samples per digit (default: 16 with --digit, 10 per row otherwise)")
    sample.add_argument("--show", action="store_true", help="also open the grid in a window")

    train_group = p.add_argument_group("training")
    train_group.add_argument("--train-steps", type=int, default=defaults.train_steps, help=f"training steps, one update of D and of G each (default: {defaults.train_steps})")
    train_group.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"images per step (default: {defaults.batch_size})")
    train_group.add_argument("--latent-dim", type=int, default=defaults.latent_dim, help=f"noise dimensions (default: {defaults.latent_dim})")
    train_group.add_argument("--g-lr", type=float, default=defaults.g_lr, help=f"generator Adam learning rate (default: {defaults.g_lr})")
    train_group.add_argument("--d-lr", type=float, default=defaults.d_lr, help=f"discriminator Adam learning rate (default: {defaults.d_lr})")
    train_group.add_argument("--g-width", type=int, default=defaults.g_width, help=f"generator channels at 14x14 (default: {defaults.g_width})")
    train_group.add_argument("--d-width", type=int, default=defaults.d_width, help=f"discriminator channels at 14x14 (default: {defaults.d_width})")
    train_group.add_argument("--ema-decay", type=float, default=defaults.ema_decay, help=f"decay of the generator's weight average (default: {defaults.ema_decay})")
    train_group.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default=defaults.precision,
                             help="auto: mixed bfloat16 on CPUs with AMX/AVX-512 BF16, else float32 (default: auto)")
    train_group.add_argument("--save-interval", type=int, default=defaults.save_interval, help=f"steps between sample grids (default: {defaults.save_interval})")
    train_group.add_argument("--data", metavar="PATH", help="MNIST .npz (Keras layout) or folder of IDX files (default: data/mnist.npz)")
    train_group.add_argument("--limit", type=int, metavar="N", help="train on the first N images only (quick runs)")
    train_group.add_argument("--model-name", default="cgan_mnist.h5", help="file name of the saved generator inside --out-dir (default: cgan_mnist.h5)")

    common = p.add_argument_group("common")
    common.add_argument("--out-dir", metavar="DIR", help="output folder (default: runs/train-TIMESTAMP for training, samples for sampling)")
    common.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives the same samples (default: 0 for training, random for sampling)")
    return p


def _sample(args) -> Path:
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    generator = load_generator(args.generator)
    seed = args.seed if args.seed is not None else int(np.random.default_rng().integers(2**31))
    if args.digit is not None:
        count = args.count or 16
        digits, rows = np.full(count, args.digit), max(1, int(np.sqrt(count)))
        rows = next(r for r in range(rows, 0, -1) if count % r == 0) if count % rows else rows
        name = f"digit{args.digit}_n{count}_seed{seed}.png"
    else:
        count = args.count or 10
        digits, rows = np.repeat(np.arange(NUM_CLASSES), count), NUM_CLASSES
        name = f"digits0-9_n{count}_seed{seed}.png"
    images = generate(generator, digits, seed=seed)
    path = save_grid(Path(args.out_dir or "samples") / name, images, rows=rows)
    print(f"wrote {path} (seed {seed})")
    if args.show:
        import matplotlib.pyplot as plt

        plt.imshow(tile(images, rows), cmap="gray")
        plt.axis("off")
        plt.show()
    return path


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.plot_architecture:
            for path in plot_architecture(args.plot_architecture):
                print(f"wrote {path}")
            return 0
        if args.generator:
            _sample(args)
            return 0
        if args.limit is not None and args.limit <= 0:
            raise UserError(f"--limit must be a positive integer, got {args.limit}")
        config = Config(
            train_steps=2 if args.dry_run else args.train_steps,
            batch_size=args.batch_size,
            latent_dim=args.latent_dim,
            g_width=args.g_width,
            d_width=args.d_width,
            g_lr=args.g_lr,
            d_lr=args.d_lr,
            ema_decay=args.ema_decay,
            save_interval=1 if args.dry_run else args.save_interval,
            seed=0 if args.seed is None else args.seed,
            precision=args.precision,
        )
        if args.dry_run:
            with tempfile.TemporaryDirectory() as tmp:
                train(config, out_dir=tmp, data=args.data, limit=256, model_name=args.model_name)
            print("dry run ok")
            return 0
        out_dir = args.out_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}"
        path = train(config, out_dir=out_dir, data=args.data, limit=args.limit, model_name=args.model_name)
        print(f"sample it: python cgan_mnist.py --generator={path} --digit=6")
        return 0
    except UserError as exc:
        print(f"cgan_mnist.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cgan_mnist.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
