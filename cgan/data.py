"""Training data: what a dataset is (image shape, classes), how to load it, how to batch it, and the pixel range.

A `Dataset` is the one place that names an image shape and a set of classes;
everything else asks it, or asks the generator it was trained for.
`preprocess` and `postprocess` are the only place that knows the networks' pixel range.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from cgan import ROOT
from cgan.errors import InputError, UserError

# ---------------------------------------------------------------------------
# Pixels

_HALF_RANGE = 127.5  # uint8 0..255 <-> [-1, 1]: the generator ends in tanh


def to_model_range(pixels):
    """Float pixels 0-255 -> [-1, 1]; works on NumPy arrays and TensorFlow tensors alike."""
    return (pixels - _HALF_RANGE) / _HALF_RANGE


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0-255, shape (n, h, w) or (n, h, w, 3) -> float32 in [-1, 1], shape (n, h, w, 1) or (n, h, w, 3)."""
    images = np.asarray(images, dtype=np.float32)
    return to_model_range(images[..., None] if images.ndim == 3 else images)


def postprocess(images) -> np.ndarray:
    """Network output in [-1, 1], shape (n, h, w[, 1]) or (n, h, w, 3) -> uint8 0-255, shape (n, h, w) (grey)
    or (n, h, w, 3) (RGB)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return np.clip(np.rint(images * _HALF_RANGE + _HALF_RANGE), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Datasets

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A labelled image dataset: its image shape, its classes, and where its files are.

    `load` reads a Keras-layout .npz (x_train, y_train, x_test, y_test) or a
    folder holding the four IDX files (gzipped or raw), and falls back to
    `keras.datasets.<keras_name>` (which downloads) when no file is given and
    `default_path` is missing.
    """

    name: str
    title: str  # as a person writes it: "MNIST"
    image_shape: tuple[int, int, int]  # (h, w, channels) of the networks' images
    class_names: tuple[str, ...]
    class_word: str  # what one class is called in messages: "digit"
    default_path: Path
    keras_name: str
    idx_files: dict = dataclasses.field(default_factory=lambda: {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    })
    aliases: dict = dataclasses.field(default_factory=dict)  # other names of classes, lower case: {"boot": 9}
    grid_classes: tuple[int, ...] | None = None  # the classes a training run's sample grid shows (None: all)
    # How the sampling command asks for a class: its own flags beside --class and --classes ("digit",
    # "digits"), the hint a flag that does not fit gets, the example the line after training shows,
    # and what the generator draws, as a message says it ("" for the defaults of `describe`).
    class_flags: tuple[str, ...] = ()
    ask_hint: str = "--class NAME"
    example: str = ""
    description: str = ""

    def describe(self) -> str:
        """What a generator of this dataset draws, in a message: "Fashion-MNIST classs" reads "... classes"."""
        return self.description or f"{self.title} {self.class_word}{'es' if self.class_word.endswith('s') else 's'}"

    def sample_example(self) -> str:
        """The flags that draw one class, as the line after training suggests them."""
        return self.example or f"--class {self.class_names[0].lower()}"

    @property
    def key(self) -> str:
        """The dataset's name in files and on the command line: "mnist", "fashion", "pairs_number"."""
        return self.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def generator_name(self) -> str:
        """The Keras name of a generator trained on this dataset; how a saved generator says what it draws."""
        return "generator" if self is MNIST else f"generator_{self.key}"

    @property
    def judged_by(self) -> Dataset:
        """The dataset whose judges read this one's images (its own; MNIST's for pairs and colour)."""
        return self

    @property
    def channels(self) -> int:
        return self.image_shape[-1]

    def class_record(self) -> dict | None:
        """What a generator of this dataset keeps of its classes beyond their number (`cgan.layers.ClassNames`):
        nothing, but for a folder of images."""
        return None

    @property
    def named_classes(self) -> bool:
        """Whether the classes have names (grids then show them) rather than being numerals."""
        return not all(name.replace("-", "").isdigit() for name in self.class_names)

    def shown_classes(self) -> list[int]:
        """The classes of a default grid: all of them, or a chosen few where there are many."""
        return list(self.grid_classes) if self.grid_classes is not None else list(range(self.num_classes))

    def class_range(self) -> str:
        """How the classes read in a message: "0-9"."""
        return f"0-{self.num_classes - 1}"

    def parse_class(self, text: str) -> int:
        """A class from its number or its name; ValueError naming what is allowed."""
        text = str(text).strip()
        if text in self.class_names:
            return self.class_names.index(text)
        lowered = {name.lower(): c for c, name in enumerate(self.class_names)} | self.aliases
        if text.lower() in lowered:
            return lowered[text.lower()]
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a {self.class_word} {self.class_range()}{self._names_hint()}") from None
        if not 0 <= value < self.num_classes:
            raise ValueError(f"{value} is not a {self.class_word} {self.class_range()}{self._names_hint()}")
        return value

    def _names_hint(self) -> str:
        if not self.named_classes:
            return ""
        return " (or one of " + ", ".join(name.lower() for name in self.class_names) + ")"

    def load(self, path: str | os.PathLike | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Images (uint8, (n, h, w)) and labels (int32, (n,)) of `split`; InputError naming the path and what
        was expected."""
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if path is None:
            if self.default_path.exists():
                path = self.default_path
            else:
                return self._load_from_keras(split)
        path = Path(path)
        if path.is_dir():
            image_file, label_file = (self._find_idx(path, stem) for stem in self.idx_files[split])
            try:
                return self._check(_read_idx(image_file), _read_idx(label_file), str(path))
            except (OSError, EOFError, gzip.BadGzipFile, struct.error) as exc:
                raise InputError(f"{path}: could not read the IDX files ({exc})") from None
        if not path.exists():
            raise InputError(f"{path}: no such file or folder (expected an {self.title} .npz or a folder of IDX files)")
        keys = ("x_train", "y_train") if split == "train" else ("x_test", "y_test")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in keys if k not in data.files]
                if missing:
                    raise InputError(f"{path}: expected arrays {', '.join(keys)} (Keras {self.title} layout), "
                                     f"missing {', '.join(missing)}")
                return self._check(data[keys[0]], data[keys[1]], str(path))
        except UserError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: not a readable .npz file ({type(exc).__name__}); "
                             f"expected the Keras {self.title} layout") from None

    def _load_from_keras(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        from cgan.backend import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, self.keras_name).load_data()
        except Exception as exc:  # no internet, no cache
            raise InputError(f"no data: {self.default_path} is missing and keras.datasets.{self.keras_name} could not "
                             f"download ({type(exc).__name__}); pass --data PATH") from None
        pair = (x_train, y_train) if split == "train" else (x_test, y_test)
        return self._check(*pair, f"keras.datasets.{self.keras_name}")

    def _check(self, images, labels, source: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = np.asarray(images), np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1:] == (1,):  # CIFAR-10's (n, 1)
            labels = labels[:, 0]
        shape = self.image_shape[:2] if self.channels == 1 else self.image_shape
        if images.shape[1:] != shape or images.dtype != np.uint8:
            raise InputError(f"{source}: expected uint8 images of shape (n, {', '.join(map(str, shape))}), "
                             f"got {images.dtype} {images.shape}")
        if labels.shape != (len(images),):
            raise InputError(f"{source}: expected {len(images)} labels, got shape {labels.shape}")
        if len(images) == 0:
            raise InputError(f"{source}: holds no images")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise InputError(f"{source}: labels must be {self.class_word}s {self.class_range()}, "
                             f"found {labels.min()}..{labels.max()}")
        return images, labels.astype(np.int32)

    def _find_idx(self, folder: Path, stem: str) -> Path:
        dotted = stem.replace("-idx", ".idx")
        for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise InputError(f"{folder}: expected {stem} or {stem}.gz (the {self.title} IDX files) in this folder")

    def batches(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int, start_step: int = 0,
                numbers: bool = False, extra: dict[str, np.ndarray] | None = None):
        """The training batches of these images from `start_step` on (see `shuffled_batches`)."""
        if numbers:
            raise ValueError(f"{self.title} images show no number (numbers=True is for pairs)")
        return shuffled_batches(images, labels, batch_size=batch_size, seed=seed, start_step=start_step, extra=extra)


MNIST = Dataset(
    name="mnist", title="MNIST", image_shape=(28, 28, 1), class_names=tuple("0123456789"), class_word="digit",
    default_path=ROOT / "data" / "mnist.npz", keras_name="mnist",
    class_flags=("digit", "digits"), ask_hint="--digit N", example="--digit=6", description="single digits (28x28)",
)

FASHION = Dataset(
    name="fashion", title="Fashion-MNIST", image_shape=(28, 28, 1),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    class_word="class", default_path=Path("/usr/share/datasets/fashion-mnist"),  # Debian's dataset-fashion-mnist
    keras_name="fashion_mnist",
    aliases={"t-shirt": 0, "tshirt": 0, "top": 0, "trousers": 1, "boot": 9, "ankle-boot": 9}, example="--class shirt",
)


@dataclasses.dataclass(frozen=True)
class PairsDataset(Dataset):
    """Two MNIST digits side by side (28x56), drawn at random for every batch; the number is 10 x left + right.

    `condition` "number": the label is the number, 0-99 (00-09 included, as the images show them);
    "below50": the label is 1 when the number is at most 49, else 0. The data is MNIST's:
    `load` gives single digits and their classes, and `batches` pairs them.
    """

    condition: str = "number"

    @property
    def key(self) -> str:
        return f"{self.name}_{self.condition}"

    @property
    def judged_by(self) -> Dataset:
        return MNIST

    def label(self, left, right):
        """The class of pairs with these left and right digits (NumPy or TensorFlow integers)."""
        number = 10 * left + right
        return number if self.condition == "number" else 1 - number // 50  # an integer 1 up to 49 (a bool from TF's <=)

    def number_members(self) -> np.ndarray:
        """(100, classes) float32: 1 where the number 00-99 has that label (--aux-target number)."""
        numbers = np.arange(100)
        members = np.zeros((100, self.num_classes), np.float32)
        members[numbers, self.label(numbers // 10, numbers % 10)] = 1
        return members

    def load(self, path=None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """MNIST's single digits (uint8, (n, 28, 28)) and their digit labels; pairs are made per batch."""
        return MNIST.load(path, split)

    def pairs(self, images: np.ndarray, digits: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` pairs (uint8, (count, 28, 56)) of digits drawn at random, and their classes; for evaluation."""
        rng = np.random.default_rng(seed)
        left, right = rng.integers(len(images), size=(2, count))
        return (np.concatenate([images[left], images[right]], axis=2),
                self.label(digits[left], digits[right]).astype(np.int32))

    def batches(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int, start_step: int = 0,
                numbers: bool = False, extra: dict[str, np.ndarray] | None = None):
        """Batches of pairs: the two digits of every pair drawn afresh per step, a pure function of (seed, step).

        `numbers`: each pair's number (00-99) in place of its label, the same pairs otherwise.
        """
        from cgan.backend import tf

        if extra:
            raise ValueError(f"pairs take no conditions but their label, got {', '.join(extra)}")
        x, digits = tf.constant(images), tf.constant(labels.astype(np.int32))
        n = len(images)

        def batch_at(step):
            which = tf.random.stateless_uniform([2, batch_size], seed=tf.stack([tf.cast(seed, tf.int64), step]),
                                                maxval=n, dtype=tf.int64)
            pair = tf.concat([tf.gather(x, which[0]), tf.gather(x, which[1])], axis=2)  # (b, 28, 56)
            left, right = tf.gather(digits, which[0]), tf.gather(digits, which[1])
            label = 10 * left + right if numbers else self.label(left, right)
            return to_model_range(tf.cast(pair, tf.float32)[..., None]), {"label": tf.reshape(label, (-1, 1))}

        return _step_batches(batch_at, start_step)


PAIRS_NUMBER = PairsDataset(
    name="pairs", title="MNIST pairs", image_shape=(28, 56, 1), class_names=tuple(f"{n:02d}" for n in range(100)),
    class_word="number", default_path=MNIST.default_path, keras_name="mnist", condition="number",
    grid_classes=(7, 18, 29, 30, 41, 52, 63, 74, 85, 96),  # every digit once on each side
    class_flags=("number", "numbers"), ask_hint="--number NN", example="--number 37",
    description="two-digit numbers (28x56)",
)
PAIRS_BELOW50 = PairsDataset(
    name="pairs", title="MNIST pairs", image_shape=(28, 56, 1), class_names=("50-99", "00-49"), class_word="condition",
    default_path=MNIST.default_path, keras_name="mnist", condition="below50",
    class_flags=("condition",), ask_hint="--condition 1 (or 0)", example="--condition 1",
    description="two-digit numbers conditioned on whether they are at most 49",
)


@dataclasses.dataclass(frozen=True)
class ColourDataset(Dataset):
    """MNIST's digits painted as they are batched: a stroke and a background colour per image (`cgan.colour`).

    `load` gives the grey digits; `batches` paints each with colours drawn per (seed, step),
    and gives them as the condition `colour` (b, 6) beside the label.
    """

    @property
    def judged_by(self) -> Dataset:
        return MNIST

    def load(self, path=None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """MNIST's grey digits (uint8, (n, 28, 28)) and their labels; the batches paint them."""
        return MNIST.load(path, split)

    def batches(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int, start_step: int = 0,
                numbers: bool = False, extra: dict[str, np.ndarray] | None = None):
        """The grey digits' batches (`shuffled_batches`), each image painted in colours drawn for (seed, step)."""
        from cgan import colour
        from cgan.backend import tf

        if numbers or extra:
            raise ValueError("coloured digits take no conditions but their label and colours")

        def painted(step, grey, conditions):
            colours = colour.draw(tf.stack([step, tf.cast(seed, tf.int64)]), batch_size)
            rgb = colour.paint(tf.cast((grey[..., 0] + 1) / 2, tf.float32), colours)
            return 2 * rgb - 1, {**conditions, colour.NAME: colours}

        return shuffled_batches(images, labels, batch_size=batch_size, seed=seed, start_step=start_step,
                                then=painted)


COLOUR = ColourDataset(
    name="colour", title="coloured MNIST", image_shape=(28, 28, 3), class_names=tuple("0123456789"),
    class_word="digit", default_path=MNIST.default_path, keras_name="mnist",
    class_flags=("digit", "digits"), ask_hint="--digit N", example="--digit 3 --color crimson --background navy",
    description="single digits painted in a stroke and a background colour (28x28 RGB)",
)
# Not run here: these machines cannot download it, and no package ships it (README, "Colour and your own images").
CIFAR10 = Dataset(
    name="cifar10", title="CIFAR-10", image_shape=(32, 32, 3),
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    class_word="class", default_path=ROOT / "data" / "cifar10.npz", keras_name="cifar10",
    aliases={"plane": 0, "car": 1}, example="--class cat",
)
DATASETS = {d.key: d for d in (MNIST, FASHION, PAIRS_NUMBER, PAIRS_BELOW50, COLOUR, CIFAR10)}
DATASET_NAMES = ("mnist", "fashion", "pairs", "colour", "cifar10", "folder")  # folder: --data DIR of class folders
PAIR_CONDITIONS = ("number", "below50")
CONDITIONS = (*PAIR_CONDITIONS, "shape")  # shape: MNIST's digit and its measures (cgan.conditions)


def dataset_named(name: str, condition: str = "number") -> Dataset:
    """The dataset of `--dataset NAME` (and, for pairs, `--condition`)."""
    if name not in DATASET_NAMES:
        raise UserError(f"--dataset must be one of {', '.join(DATASET_NAMES)}, got {name!r}")
    if name == "folder":
        raise UserError("--dataset folder trains on a folder of class folders: give it as --data DIR")
    if name == "pairs":
        if condition not in PAIR_CONDITIONS:
            raise UserError(f"--condition must be number or below50 for --dataset pairs, got {condition!r}")
        return DATASETS[f"pairs_{condition}"]
    if condition == "shape" and name != "mnist":
        raise UserError(f"--condition shape measures digits: it is for --dataset mnist, not --dataset {name}")
    if condition not in ("number", "shape"):  # "number", the field's default, means none but the class here
        raise UserError(f"--condition {condition} is for --dataset pairs; --dataset {name} takes --condition shape")
    return DATASETS[name]


def dataset_of(generator) -> Dataset:
    """The dataset a generator of this project was trained on, from its name (MNIST for older generators);
    a folder's from the class names it recorded."""
    from cgan.layers import ClassNames

    record = next((layer for layer in generator.layers if isinstance(layer, ClassNames)), None)
    if record is not None:
        from cgan import folders

        return folders.from_record(record.names, record.title, record.folder, generator.output.shape[1:])
    for dataset in DATASETS.values():
        if generator.name == dataset.generator_name:
            return dataset
    return MNIST


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise InputError(f"{path}: too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(f"{path}: header promises shape {shape} but the file holds {body.size} bytes of data")
    return body.reshape(shape)


# ---------------------------------------------------------------------------
# Batching


def shuffled_batches(images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int, start_step: int = 0,
                     extra: dict[str, np.ndarray] | None = None, then=None):
    """A tf.data.Dataset of (images in [-1, 1] (b, h, w, 1), conditions) from step `start_step` on.

    The conditions are {"label": (b, 1) int32} and the same rows of each of `extra`'s
    per-image arrays (the shape measures of `--condition shape`: {"shape": (n, k)}).
    `then(step, images, conditions)`, if given, makes each batch what it returns (coloured digits paint).
    Every epoch is a fresh permutation, and the batch of a step is a pure
    function of (seed, step): a resumed run sees exactly the data an
    uninterrupted one would have.
    """
    from cgan.backend import tf

    n = len(images)
    if n < batch_size:
        raise InputError(f"the data holds {n} images, fewer than one batch of {batch_size}")
    x = tf.constant(images)
    per_image = {"label": tf.constant(labels.astype(np.int32).reshape(-1, 1)),
                 **{name: tf.constant(np.asarray(values, np.float32)) for name, values in (extra or {}).items()}}

    def batch_at(step):
        position = step * batch_size + tf.range(batch_size, dtype=tf.int64)
        epoch, within = position // n, position % n
        seeds = tf.stack([tf.fill([batch_size], tf.cast(seed, tf.int64)), epoch, tf.zeros_like(epoch)], 1)  # (b, 3)
        # A stateless permutation of 0..n-1 per (seed, epoch); the raw op takes per-element seeds.
        index = tf.raw_ops.RandomIndexShuffle(index=within, seed=seeds, max_index=tf.constant(n - 1, tf.int64))
        # Scaled per batch: the uint8 set stays 47 MB instead of 188 MB of floats.
        batch = (to_model_range(tf.cast(tf.gather(x, index), tf.float32)[..., None]),
                 {name: tf.gather(values, index) for name, values in per_image.items()})
        return batch if then is None else then(step, *batch)

    return _step_batches(batch_at, start_step)


def _step_batches(batch_at, start_step: int):
    """A tf.data.Dataset of `batch_at(step)` for step = start_step, start_step + 1, ..."""
    from cgan.backend import tf

    # A batch takes well under a millisecond against tens for a step, so there is nothing to tune; and
    # with tf.data's autotuner on, `fit` often sat idle at its end until the autotuner's next wake-up
    # (its period doubles from 10 ms up to a minute).
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = tf.data.Dataset.range(start_step, 2**62).map(batch_at).prefetch(16)
    return ds.with_options(options)
