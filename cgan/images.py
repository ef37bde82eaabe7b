"""Image files: grids of samples as PNG, frame stacks as animated GIF, raw samples as .npz. All written atomically."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from cgan.files import atomic_path

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """A uint8 image (h, w) or (h, w, 3) with each pixel repeated `scale` x `scale` times."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def tile(images: np.ndarray, rows: int, *, scale: int = 2, gap: int = 2) -> np.ndarray:
    """Images (n, h, w) or (n, h, w, 3) uint8 -> one grid image of `rows` rows, row-major, each image scaled up
    by `scale`, on white."""
    cols = -(-len(images) // rows)
    height, width = images.shape[1] * scale, images.shape[2] * scale
    grid = np.full((rows * (height + gap) + gap, cols * (width + gap) + gap, *images.shape[3:]), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        top, left = gap + r * (height + gap), gap + c * (width + gap)
        grid[top : top + height, left : left + width] = upscale(img, scale)
    return grid


def _mode(pixels: np.ndarray) -> str:
    """PIL's mode of a uint8 image: "L" for grey (h, w), "RGB" for (h, w, 3)."""
    return "RGB" if pixels.ndim == 3 else "L"


def write_png(path, pixels: np.ndarray) -> Path:
    """Write a uint8 grey (h, w) or RGB (h, w, 3) image as PNG."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(pixels, mode=_mode(pixels)).save(tmp, format="PNG")
    return Path(path)


def name_rows(grid: np.ndarray, names: list[str], rows: int, *, gap: int = 2) -> np.ndarray:
    """`grid` (from `tile`, `rows` rows) with each row's name written in a white margin on its left."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    margin = max(draw.textbbox((0, 0), name, font=font)[2] for name in names) + 8
    picture = Image.new(_mode(grid), (grid.shape[1] + margin, grid.shape[0]), (255,) * len(_mode(grid)))
    picture.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(picture)
    row_height = (grid.shape[0] - gap) / rows
    for r, name in enumerate(names):
        draw.text((4, gap + r * row_height + row_height / 2 - 6), name, fill=(0,) * len(_mode(grid)), font=font)
    return np.asarray(picture)


def save_grid(path, images: np.ndarray, rows: int, *, row_names: list[str] | None = None) -> Path:
    """A PNG grid of uint8 images (n, h, w), `rows` rows, each row's name on its left if `row_names` are given."""
    grid = tile(images, rows)
    return write_png(path, name_rows(grid, row_names, rows) if row_names else grid)


def save_gif(path, frames: np.ndarray, *, scale: int = 4, duration_ms: int = 120) -> Path:
    """An endlessly looping animated GIF of uint8 frames (k, h, w) or (k, h, w, 3), scaled up `scale` times."""
    from PIL import Image

    images = [Image.fromarray(upscale(f, scale), mode=_mode(f)) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return Path(path)


def save_npz(path, images, labels=None, *, shape: tuple[int, ...] | None = None) -> Path:
    """Write images (uint8, (n, h, w) or (n, h, w, 3)) and their labels (float32 for morph frames, else int32; none for
    an unconditional generator's images) to a compressed .npz that `np.load` reads.

    `images` is an array, or an iterable of uint8 batches of `shape` in all, written as they come,
    so that memory does not grow with their number. The same arrays give the same bytes: the
    archive's entries carry a fixed date rather than the time of writing.
    """
    if isinstance(images, np.ndarray):
        images, shape = [images], images.shape
    arrays = [("images", np.dtype(np.uint8), tuple(shape), images)]
    if labels is not None:
        labels = np.asarray(labels)
        labels = labels.astype(np.int32) if np.all(labels == np.round(labels)) else labels.astype(np.float32)
        arrays.append(("labels", labels.dtype, labels.shape, [labels]))
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, dtype, array_shape, batches in arrays:
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(entry, "w", force_zip64=True) as f:
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": array_shape}
                np.lib.format.write_array_header_1_0(f, header)
                written = 0
                for batch in batches:
                    batch = np.ascontiguousarray(batch, dtype)
                    written += len(batch)
                    f.write(batch.tobytes())
            if written != array_shape[0]:
                raise ValueError(f"{name}: {written} rows written, {array_shape[0]} promised")
    return Path(path)
