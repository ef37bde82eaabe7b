"""cgan/images.py: grids, GIFs and npz files of uint8 images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cgan import images


def test_tile_places_each_image_scaled_in_row_major_order():
    stack = np.stack([np.full((3, 5), 10 * (i + 1), np.uint8) for i in range(5)])  # five 3x5 images
    grid = images.tile(stack, rows=2, scale=2, gap=1)
    assert grid.shape == (2 * (6 + 1) + 1, 3 * (10 + 1) + 1)  # 2 rows of 3 columns, the last cell empty
    assert grid[1, 1] == 10 and grid[1, 12] == 20 and grid[8, 1] == 40 and grid[8, 12] == 50
    assert grid[8, 23] == 255 and grid[0, 0] == 255  # background and gaps are white


def test_png_gif_and_npz_files(tmp_path):
    frames = np.stack([np.full((28, 56), v, np.uint8) for v in (0, 128, 255)])
    png = images.save_grid(tmp_path / "grid.png", frames, rows=3)
    with Image.open(png) as im:
        assert im.size == (56 * 2 + 4, 3 * (56 + 2) + 2)
    gif = images.save_gif(tmp_path / "a.gif", frames, scale=2)
    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.size == (112, 56)
    images.save_npz(tmp_path / "whole.npz", frames, [1, 2, 3])
    images.save_npz(tmp_path / "morph.npz", frames, [3.0, 3.5, 4.0])
    with np.load(tmp_path / "whole.npz") as whole, np.load(tmp_path / "morph.npz") as morph:
        np.testing.assert_array_equal(whole["images"], frames)
        assert whole["labels"].dtype == np.int32 and morph["labels"].dtype == np.float32
        assert morph["labels"].tolist() == [3.0, 3.5, 4.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "grid.png", "morph.npz", "whole.npz"]
