"""The two judges of the evaluation: feature networks trained by the project, their builders, training and loading.

- `convnet` (`models/mnist_classifier.keras`, `models/fashion_classifier.keras`): two
  conv-conv-pool stages and a dense layer; it also reads the labels;
- `resnet` (`models/mnist_resnet.keras`, `models/fashion_resnet.keras`): a small residual
  network with batch norm and global average pooling, trained with another seed and with
  rotations and zooms as well as shifts.

Each has a `features` layer (128) that the distances of `cgan.evaluation` are taken in.
`python -m cgan.evaluation --train-classifier [--dataset fashion] [--judge resnet]` trains them.
"""

from __future__ import annotations

from pathlib import Path

from cgan import ROOT
from cgan.backend import keras, tf
from cgan.data import FASHION, MNIST, Dataset, preprocess
from cgan.errors import InputError
from cgan.files import atomic_path

layers = keras.layers

CLASSIFIERS = {MNIST.key: ROOT / "models" / "mnist_classifier.keras",
               FASHION.key: ROOT / "models" / "fashion_classifier.keras"}
DEFAULT_CLASSIFIER = CLASSIFIERS[MNIST.key]
CLASSIFIER_EPOCHS = {MNIST.key: 4, FASHION.key: 10}
JUDGES = ("convnet", "resnet")  # the feature networks: the first also reads the labels, the second is a second opinion
FEATURE_LAYER = "features"


def classifier_path(dataset: Dataset, judge: str = "convnet") -> Path:
    """Where feature network `judge` of `dataset` is kept (pairs and coloured digits are read by MNIST's; a folder's
    are in the cache, `cgan.folders.judge_folder`)."""
    if dataset.key == "folder":
        from cgan import folders
        from cgan.files import cache_dir

        return cache_dir() / "judges" / folders.judge_folder(dataset) / f"{judge}.keras"
    key = dataset.judged_by.key
    if judge == "convnet":
        return CLASSIFIERS.get(key, ROOT / "models" / f"{key}_classifier.keras")
    return ROOT / "models" / f"{key}_{judge}.keras"


def build_classifier(dataset: Dataset = MNIST) -> keras.Model:
    """Image in [-1, 1] (28x28x1) -> one logit per class; its `features` layer (128) feeds the distances."""
    image = keras.Input(dataset.image_shape, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 14x14x32
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 7x7x64
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    features = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(features)
    logits = layers.Dense(dataset.num_classes, name="logits")(x)
    return keras.Model(image, logits, name=f"{dataset.name}_classifier")


def build_resnet(dataset: Dataset = MNIST) -> keras.Model:
    """The second judge: a small residual network with batch norm and global average pooling.

    A different design from `build_classifier` (no max pooling, no flattened 7x7 map): its
    `features` (128) summarise the image after averaging over positions, so its distances
    weigh other aspects of the images than the first network's.
    """
    image = keras.Input(dataset.image_shape, name="image")
    x = layers.Conv2D(32, 3, padding="same", use_bias=False)(image)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for width, stride in ((32, 1), (64, 2), (96, 2)):  # 28x28x32, 14x14x64, 7x7x96
        shortcut = x
        if stride != 1 or x.shape[-1] != width:
            shortcut = layers.BatchNormalization()(layers.Conv2D(width, 1, strides=stride, use_bias=False)(x))
        y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same", use_bias=False)(y))
        x = layers.ReLU()(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    features = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    logits = layers.Dense(dataset.num_classes, name="logits")(layers.Dropout(0.2)(features))
    return keras.Model(image, logits, name=f"{dataset.name}_resnet")


def _augmentation(judge: str, seed: int) -> keras.Sequential:
    """The random distortions each judge trains with."""
    if judge == "convnet":
        # Small shifts make the classifier read off-centre generated digits as a person would. (Keras'
        # default fill mode, reflect, ignores fill_value: the shipped classifiers trained that way.)
        return keras.Sequential([layers.RandomTranslation(0.08, 0.08, fill_value=-1.0, seed=seed)])
    fill = {"fill_mode": "constant", "fill_value": -1.0, "seed": seed}
    # Rotations, zooms and larger shifts: a different view of what counts as the same digit.
    return keras.Sequential([layers.RandomRotation(0.03, **fill), layers.RandomZoom(0.1, **fill),
                             layers.RandomTranslation(0.1, 0.1, **fill)])


JUDGE_SEEDS = {"convnet": 0, "resnet": 1}
BUILDERS = {"convnet": build_classifier, "resnet": build_resnet}


def train_classifier(path=None, *, dataset: Dataset = MNIST, judge: str = "convnet", data=None,
                     epochs: int | None = None, limit: int | None = None, seed: int | None = None,
                     verbose: int = 2) -> tuple[Path, float]:
    """Train feature network `judge` of `dataset` on its training set; return (saved path, test accuracy)."""
    path = classifier_path(dataset, judge) if path is None else path
    epochs = CLASSIFIER_EPOCHS.get(dataset.key, 10) if epochs is None else epochs
    seed = JUDGE_SEEDS[judge] if seed is None else seed
    keras.utils.set_random_seed(seed)
    x_train, y_train = dataset.load(data, "train")
    x_test, y_test = dataset.load(data, "test")
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    model = BUILDERS[judge](dataset)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.5 ** (epoch * 4 / epochs))
    augment = _augmentation(judge, seed)
    ds = tf.data.Dataset.from_tensor_slices((preprocess(x_train), y_train)).shuffle(len(x_train), seed=seed)
    ds = ds.batch(128).map(lambda x, y: (augment(x, training=True), y)).prefetch(tf.data.AUTOTUNE)
    model.fit(ds, epochs=epochs, callbacks=[schedule], verbose=verbose, shuffle=False)
    _, accuracy = model.evaluate(preprocess(x_test), y_test, batch_size=1000, verbose=0)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path), float(accuracy)


def load_classifier(path=DEFAULT_CLASSIFIER) -> keras.Model:
    """A feature network of the evaluation; InputError (with the command that makes it) if missing or broken."""
    path = Path(path)
    if not path.is_file():
        key, _, judge = path.stem.rpartition("_")  # models/<dataset>_classifier.keras, models/<dataset>_resnet.keras
        which = (f" --dataset {key}" if key and key != MNIST.key else "") + (" --judge resnet" if judge == "resnet"
                                                                            else "")
        raise InputError(f"{path}: no classifier; train it with `python -m cgan.evaluation --train-classifier{which}`")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise InputError(f"{path}: not a loadable classifier ({type(exc).__name__})") from None
