"""Your own images: a folder with one sub-folder of PNG or JPEG images per class, as a `Dataset`.

    photos/
      cats/  a.png b.jpg ...
      dogs/  c.png ...

is the layout `keras.utils.image_dataset_from_directory` reads. `python cgan_mnist.py --data photos`
trains on it: the class names are the sub-folders' (sorted), the images are grey when every file is
grey (PNG or JPEG modes L, LA, 1, I) and RGB otherwise, and their size is their own when they share
one, or `--image-size` (28, 32 or 64 a side). Every TEST_EVERY-th image of a class (in name order)
is held out for the judges' test set; the GAN and the judges train on the rest.

A generator trained on a folder records its class names, title and folder in a `ClassNames` layer
on its label, so sampling (`--class NAME`), the page and `--evaluate` need nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from pathlib import Path

import numpy as np

from cgan.data import Dataset
from cgan.errors import InputError, UserError

NAME = "folder"
EXTENSIONS = (".png", ".jpg", ".jpeg")
SIZES = (28, 32, 64)  # what the networks take: a side that halves twice to a whole grid
TEST_EVERY = 10
GREY_MODES = ("1", "L", "LA", "I", "I;16")


@dataclasses.dataclass(frozen=True)
class FolderDataset(Dataset):
    """A folder of class sub-folders (`open_folder`); `folder` is its absolute path ("" when known only from a
    generator's record)."""

    folder: str = ""

    @property
    def generator_name(self) -> str:
        return f"generator_{NAME}"

    def class_record(self) -> dict:
        return {"names": self.class_names, "title": self.title, "folder": self.folder}

    def load(self, path=None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Images (uint8, (n, s, s) grey or (n, s, s, 3) RGB) and labels of `split`: every TEST_EVERY-th image of
        each class is "test", the rest "train"."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        folder = Path(path or self.folder)
        if not self.folder and path is None:
            raise InputError(f"{self.title}: the folder this generator was trained on is not known; pass --data DIR")
        names, files = scan(folder)
        if tuple(names) != self.class_names:
            raise InputError(f"{folder}: its classes ({', '.join(names)}) are not this model's "
                             f"({', '.join(self.class_names)})")
        picked = [(path, c) for c, paths in enumerate(files) for i, path in enumerate(paths)
                  if (i % TEST_EVERY == TEST_EVERY - 1) == (split == "test")]
        images = np.stack([_read(path, self.image_shape) for path, _ in picked])
        return images, np.array([c for _, c in picked], np.int32)


def is_image_folder(path) -> bool:
    """Whether `--data path` is to be read as class folders of images: any folder that holds no IDX files (one that
    is not a proper tree of class folders is then told what is missing, by `scan`)."""
    path = Path(path)
    return path.is_dir() and not any("idx" in p.name and "ubyte" in p.name for p in path.iterdir())


def overrides(args) -> dict:
    """The Config fields of `--data DIR` when DIR is a folder of class folders ({} otherwise); UserError if
    another --dataset was asked for."""
    if not (args.data and is_image_folder(args.data)):
        return {}
    if "dataset" in getattr(args, "given", ()) and args.dataset != NAME:
        raise UserError(f"--data {args.data} is a folder of class folders: it does not go with "
                        f"--dataset {args.dataset}")
    return {"dataset": NAME, "folder": str(Path(args.data).resolve())}


def _images(folder: Path):
    return (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def scan(folder) -> tuple[list[str], list[list[Path]]]:
    """The class names (sub-folders holding images, sorted) and each one's image files (sorted); InputError for a
    folder that does not hold two classes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    classes = sorted((sub for sub in folder.iterdir() if sub.is_dir()), key=lambda p: p.name)
    found = [(sub.name, sorted(_images(sub), key=lambda p: p.name)) for sub in classes]
    found = [(name, files) for name, files in found if files]
    if not found:
        raise InputError(f"{folder}: no class folders with PNG or JPEG images in them (expected {folder}/NAME/*.png, "
                         "one sub-folder per class, or IDX files such as train-images-idx3-ubyte.gz)")
    if len(found) == 1:
        raise InputError(f"{folder}: only one class ({found[0][0]}); a conditional GAN needs two class folders "
                         "or more")
    return [name for name, _ in found], [files for _, files in found]


@functools.lru_cache(maxsize=8)
def _survey(folder: str) -> tuple[tuple[str, ...], frozenset, bool]:
    """(class names, the images' (width, height) sizes, whether all are grey), from the files' headers only."""
    from PIL import Image, UnidentifiedImageError

    names, files = scan(folder)
    sizes, grey = set(), True
    for path in (p for paths in files for p in paths):
        try:
            with Image.open(path) as image:
                sizes.add(image.size)
                grey = grey and image.mode in GREY_MODES
        except (OSError, UnidentifiedImageError, ValueError):
            raise InputError(f"{path}: not a readable PNG or JPEG image") from None
    return tuple(names), frozenset(sizes), grey


def open_folder(folder, image_size: int = 0) -> FolderDataset:
    """The dataset of a class-folder tree, its images `image_size` a side (0: their own, if they share one);
    InputError (one line) for a folder that cannot be trained on."""
    folder = Path(folder).resolve()
    names, sizes, grey = _survey(str(folder))
    if image_size:
        if image_size not in SIZES:
            raise UserError(f"--image-size must be one of {', '.join(map(str, SIZES))}, got {image_size}")
        side = image_size
    elif len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
        more = ", ..." if len(sizes) > 4 else ""
        raise InputError(f"{folder}: the images are of {len(sizes)} sizes ({shown}{more}); "
                         f"give --image-size {'/'.join(map(str, SIZES))} to resize them")
    else:
        (width, height), = sizes
        if width != height or width not in SIZES:
            raise InputError(f"{folder}: the images are {width}x{height}; give --image-size "
                             f"{'/'.join(map(str, SIZES))} to resize them")
        side = width
    return FolderDataset(name=NAME, title=folder.name, image_shape=(side, side, 1 if grey else 3), class_names=names,
                         class_word="class", default_path=folder, keras_name="", folder=str(folder),
                         example=f"--class {names[0]}", description=f"images of {folder.name} ({len(names)} classes)")


def _read(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image file as uint8 of `shape` ((s, s, 1) gives (s, s)), resized (Lanczos) if it is another size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if shape[-1] == 1 else "RGB")
            if image.size != (shape[1], shape[0]):
                image = image.resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
            return np.asarray(image, np.uint8)
    except (OSError, UnidentifiedImageError, ValueError):
        raise InputError(f"{path}: not a readable PNG or JPEG image") from None


def from_record(names, title: str, folder: str, image_shape) -> FolderDataset:
    """The dataset a folder generator recorded (`cgan.layers.ClassNames`)."""
    return FolderDataset(name=NAME, title=title, image_shape=tuple(image_shape), class_names=tuple(names),
                         class_word="class", default_path=Path(folder or "."), keras_name="", folder=folder,
                         example=f"--class {names[0]}", description=f"images of {title} ({len(names)} classes)")


def judge_folder(dataset: Dataset) -> str:
    """Where a folder's judges are kept, under the cache: by its title, class names and image shape."""
    digest = hashlib.sha256(repr((dataset.class_names, dataset.image_shape)).encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', dataset.title)}-{digest}"
