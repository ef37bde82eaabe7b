"""A digit's shape, measured as Morpho-MNIST measures it: thickness, slant, width, height, area, length.

Castro, Tan, Kainz, Konukoglu and Glocker, "Morpho-MNIST: quantitative assessment and
diagnostics for representation learning" (JMLR 2019), define each measure on the image
upsampled 4x (cubic) and binarised at half its intensity range; their definitions are
followed here, the code is this project's. Every figure is in pixels of the 28x28 image
(area in square pixels), slant in radians.

    from cgan.shape import measure
    table = measure(images)  # (n, 6) float64, columns ATTRIBUTES; NaN for a blank image

    python -m cgan.shape samples.npz --out shapes.npz   # any --save-npz file; MNIST's digits without one

One function per measure, on one binarised image; `measure_one` makes the binary
image and its medial axis once; `measure` maps it over a batch on every core (threads:
SciPy's and scikit-image's loops let go of the interpreter), upsampling each chunk of
images with two matrix products: 0.9 ms an image on one core of an AMD EPYC with AVX-512
(1.65 ms with SciPy's zoom for each image), 10,000 images in 5.6-6.8 s on two
(`benchmarks/shape_speed.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

SCALE = 4  # the upsampling before binarising: the medial axis of a 28x28 stroke is too coarse
ATTRIBUTES = ("thickness", "slant", "width", "height", "area", "length")
CONDITIONED = ATTRIBUTES[:4]  # what a shape-conditioned generator takes
UNITS = {"thickness": "px", "slant": "rad", "width": "px", "height": "px", "area": "px^2", "length": "px"}
# What each conditioned attribute is, for a sampling flag's help; the ranges are MNIST's training digits' 1st-99th
# percentiles.
MEANINGS = {"thickness": "mean stroke width in pixels (MNIST: 1.5-4.7)",
            "slant": "lean in radians, positive when the top leans right (MNIST: -0.5-0.66; 0.25 is 14 degrees)",
            "width": "width in pixels once the slant is undone (MNIST: 3-21)",
            "height": "height in pixels (MNIST: 14-20.5; most digits are 20-20.5)"}
CHUNK = 250  # images per task of the parallel map


@functools.cache
def _zoom_matrix(size: int, scale: int) -> np.ndarray:
    """(size * scale, size): SciPy's cubic-spline zoom along one axis (`ndimage.zoom`, order 3) as a matrix.

    The zoom is linear and separable, so M X M^T upsamples an image X, and a chunk of images
    takes two matrix products instead of one spline pass each (about four times faster; equal to
    `ndimage.zoom` to 1e-12 of the range, no pixel of 2,000 MNIST digits binarised otherwise).
    """
    from scipy import ndimage

    return np.stack([ndimage.zoom(unit, scale, order=3) for unit in np.eye(size)], axis=1)


def upsample(images: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """Images (n, h, w), any range, upsampled `scale`x by cubic splines: float64 (n, h * scale, w * scale)."""
    images = np.asarray(images, np.float64)
    return _zoom_matrix(images.shape[1], scale) @ images @ _zoom_matrix(images.shape[2], scale).T


def _threshold(upsampled: np.ndarray) -> np.ndarray:
    low, high = upsampled.min(), upsampled.max()
    return upsampled > (low + high) / 2 if high > low else np.zeros(upsampled.shape, bool)


def binarise(image: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """The image (h, w), any range, upsampled `scale`x by cubic splines and thresholded at half its range: bool."""
    return _threshold(upsample(np.asarray(image)[None], scale)[0])


def medial_axis(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(skeleton, distance): the binary image's medial axis (bool) and each pixel's distance to the background."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    return skeletonize(binary), ndimage.distance_transform_edt(binary)


def thickness(skeleton: np.ndarray, distance: np.ndarray, scale: int = SCALE) -> float:
    """Twice the mean distance to the background along the medial axis: the stroke's mean width."""
    return float(2 * distance[skeleton].mean() / scale) if skeleton.any() else float("nan")


def _shear(binary: np.ndarray) -> tuple[float, float]:
    """(shear, mean row) of the foreground: x - mean x ~ shear (y - mean y), y counted downwards."""
    y, x = np.nonzero(binary)
    y_mean = y.mean()
    dy = y - y_mean
    var_y = float((dy * dy).mean())
    return (float((dy * (x - x.mean())).mean() / var_y) if var_y else 0.0), float(y_mean)


def slant(binary: np.ndarray) -> float:
    """arctan of the foreground's horizontal shear, in radians; positive when the top leans right.

    The shear is cov(x, y) / var(y) of the foreground pixels' coordinates; rows count
    downwards, so a top that leans right has a negative shear, hence the sign.
    """
    return float(np.arctan(-_shear(binary)[0])) if binary.any() else float("nan")


def width_and_height(binary: np.ndarray, scale: int = SCALE) -> tuple[float, float]:
    """The extent along x of the foreground once its slant is undone (each row shifted back), and along y."""
    if not binary.any():
        return float("nan"), float("nan")
    shear, y_mean = _shear(binary)
    y, x = np.nonzero(binary)
    upright = x - shear * (y - y_mean)
    return float((upright.max() - upright.min() + 1) / scale), float((y.max() - y.min() + 1) / scale)


def area(binary: np.ndarray, scale: int = SCALE) -> float:
    """The foreground's area, in square pixels of the original image."""
    return float(binary.sum() / scale**2)


def length(skeleton: np.ndarray, scale: int = SCALE) -> float:
    """The medial axis's length: its links between neighbouring pixels, a diagonal one counting sqrt(2).

    A diagonal link is counted only where no path of two straight links joins the same
    two pixels, so a staircase is not measured twice.
    """
    s = skeleton
    straight = np.count_nonzero(s[:, 1:] & s[:, :-1]) + np.count_nonzero(s[1:, :] & s[:-1, :])
    # (i, j)-(i+1, j+1) and (i, j+1)-(i+1, j), unless a corner pixel links them already
    down_right = s[:-1, :-1] & s[1:, 1:] & ~s[:-1, 1:] & ~s[1:, :-1]
    down_left = s[:-1, 1:] & s[1:, :-1] & ~s[:-1, :-1] & ~s[1:, 1:]
    diagonal = np.count_nonzero(down_right) + np.count_nonzero(down_left)
    return float((straight + np.sqrt(2) * diagonal) / scale)


def measure_one(image: np.ndarray) -> np.ndarray:
    """The ATTRIBUTES of one image (h, w): float64 (6,), NaN where the image is blank."""
    return _measure_binary(binarise(image))


def _measure_binary(binary: np.ndarray) -> np.ndarray:
    if not binary.any():
        return np.full(len(ATTRIBUTES), np.nan)
    skeleton, distance = medial_axis(binary)
    return np.array([thickness(skeleton, distance), slant(binary), *width_and_height(binary), area(binary),
                     length(skeleton)])


def _measure_chunk(images: np.ndarray) -> np.ndarray:
    """`measure_one` of each image, the chunk upsampled at once."""
    if not len(images):
        return np.empty((0, len(ATTRIBUTES)))
    return np.stack([_measure_binary(_threshold(upsampled)) for upsampled in upsample(images)])


def measure(images: np.ndarray, *, workers: int | None = None) -> np.ndarray:
    """The ATTRIBUTES (n, 6) of images (n, h, w) (uint8 or float), over `workers` threads (default: every core)."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    workers = min(workers or os.cpu_count() or 1, max(1, len(images) // CHUNK))
    chunks = [images[i : i + CHUNK] for i in range(0, len(images), CHUNK)]
    if workers <= 1:
        return np.concatenate([_measure_chunk(c) for c in chunks]) if chunks else _measure_chunk(images)
    with ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(_measure_chunk, chunks)))


# ---------------------------------------------------------------------------
# Comparing a set of digits with real ones, attribute by attribute


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How one set of digits differs in shape from real ones, per class: rows "all", then each class.

    For each row and each of `attributes`: `shift`, the set's mean minus the real digits'
    mean (in the attribute's unit); `shift_sds`, that shift over the real digits' standard
    deviation; `wasserstein`, the 1-D Wasserstein distance between the two sets' values.
    Blank images (no foreground) are left out of both.
    """

    attributes: tuple[str, ...]
    rows: tuple[str, ...]
    shift: tuple[tuple[float, ...], ...]
    shift_sds: tuple[tuple[float, ...], ...]
    wasserstein: tuple[tuple[float, ...], ...]


def compare(table: np.ndarray, labels: np.ndarray | None, real: np.ndarray, real_labels: np.ndarray,
            *, classes: int, attributes: tuple[str, ...] = CONDITIONED) -> Comparison:
    """The Comparison of measured digits `table` (n, ATTRIBUTES) of `labels` (None: "all" only) with `real`."""
    from scipy.stats import wasserstein_distance

    columns = [ATTRIBUTES.index(name) for name in attributes]
    groups = [("all", np.ones(len(table), bool), np.ones(len(real), bool))]
    if labels is not None:
        groups += [(str(c), labels == c, real_labels == c) for c in range(classes)]
    def cell(a, b):  # (shift, shift in SDs, W1) of values a against real values b, blanks left out
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) == 0 or len(b) < 2:
            return (float("nan"),) * 3
        shift = float(a.mean() - b.mean())
        return shift, shift / float(b.std()) if b.std() > 0 else float("nan"), float(wasserstein_distance(a, b))

    names, shift, sds, w1 = [], [], [], []
    for name, mine, theirs in groups:
        row = [cell(table[mine, column], real[theirs, column]) for column in columns]
        names.append(name)
        for figures, values in zip((shift, sds, w1), zip(*row)):
            figures.append(tuple(values))
    return Comparison(tuple(attributes), tuple(names), tuple(shift), tuple(sds), tuple(w1))


def format_comparisons(comparisons: dict[str, Comparison]) -> str:
    """A plain-text table: for each row (all, then each class) a line per set, each attribute's shift, SDs and W1."""
    first = next(iter(comparisons.values()))
    head = "".join(f"{name + ' (' + UNITS[name] + ')':^24}" for name in first.attributes)
    lines = ["shape (Morpho-MNIST measures) against real training digits: mean shift, in the unit and in real "
             "standard deviations, and the 1-D Wasserstein distance",
             f"{'':<6}{'':<13}{head}",
             f"{'class':<6}{'set':<13}" + f"{'shift':>8}{'SDs':>7}{'W1':>8} " * len(first.attributes)]
    for r, row in enumerate(first.rows):
        for name, comparison in comparisons.items():
            cells = "".join(f"{comparison.shift[r][a]:+8.3f}{comparison.shift_sds[r][a]:+7.2f}"
                            f"{comparison.wasserstein[r][a]:8.3f} " for a in range(len(comparison.attributes)))
            lines.append(f"{row:<6}{name:<13}{cells}")
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------
# Command line


def summary(table: np.ndarray, labels: np.ndarray | None) -> str:
    """Each attribute's median (and the interquartile range), over all images and per class where labelled."""
    head = f"{'class':<7}{'images':>7}" + "".join(f"{name + ' (' + UNITS[name] + ')':>24}" for name in ATTRIBUTES)
    groups = [("all", np.ones(len(table), bool))]
    if labels is not None:
        groups += [(str(c), labels == c) for c in np.unique(labels)]
    lines = [head]
    for name, rows in groups:
        cells = ""
        for column in table[rows].T:
            finite = column[np.isfinite(column)]
            low, mid, high = np.percentile(finite, [25, 50, 75]) if len(finite) else (np.nan,) * 3
            cells += f"{f'{mid:.3f} ({low:.2f}-{high:.2f})':>24}"
        lines.append(f"{name:<7}{int(rows.sum()):>7}{cells}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from cgan.cli import ArgumentParser
    from cgan.data import MNIST
    from cgan.errors import UserError

    p = ArgumentParser(prog="python -m cgan.shape",
                       description="Measure digits' thickness, slant, width, height, area and length as Morpho-MNIST "
                                   "does, and print each one's median per class.")
    p.add_argument("images", nargs="?", metavar="NPZ",
                   help="an .npz holding `images` (uint8 (n, 28, 28)) and, if labelled, `labels`, as --save-npz "
                        "writes it (default: MNIST's training digits)")
    p.add_argument("--limit", type=int, help="measure only the first N images")
    p.add_argument("--out", metavar="FILE.npz",
                   help="also write the measures: `attributes` (n, 6) float64, NaN for a blank image, `names`, "
                        "and `labels` if the images had them")
    args = p.parse_args(argv)
    try:
        images, labels = read_npz(args.images) if args.images else MNIST.load()
        if args.limit is not None:
            if args.limit < 1:
                raise UserError(f"--limit must be at least 1, got {args.limit}")
            images, labels = images[: args.limit], None if labels is None else labels[: args.limit]
        if args.out and not args.out.endswith(".npz"):
            raise UserError(f"--out must name an .npz file, got {args.out!r}")
        table = measure(images)
        print(summary(table, labels))
        if args.out:
            from cgan.files import atomic_path

            arrays = {"attributes": table, "names": np.array(ATTRIBUTES)}
            if labels is not None:
                arrays["labels"] = labels
            with atomic_path(args.out) as tmp:
                np.savez_compressed(tmp, **arrays)
            print(f"wrote {args.out}")
        return 0
    except UserError as exc:
        print(f"python -m cgan.shape: error: {exc}", file=sys.stderr)
        return exc.exit_code


def read_npz(path) -> tuple[np.ndarray, np.ndarray | None]:
    """The `images` (n, h, w) and `labels` (or None) of an .npz in the layout of --save-npz; InputError (one line)
    for a file that cannot serve."""
    from cgan.errors import InputError

    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data.files:
                raise InputError(f"{path}: no `images` array (found {', '.join(data.files) or 'none'}); "
                                 "--save-npz writes `images` and `labels`")
            images = data["images"]
            labels = data["labels"].reshape(-1) if "labels" in data.files else None
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npz ({str(exc).splitlines()[0][:100]})") from None
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.dtype != np.uint8 or not len(images):
        raise InputError(f"{path}: `images` must be uint8 (n, h, w), the layout of --save-npz; got {images.dtype} "
                         f"{images.shape}")
    if labels is not None and len(labels) != len(images):
        raise InputError(f"{path}: {len(labels)} labels for {len(images)} images")
    return images, labels


if __name__ == "__main__":
    sys.exit(main())
