"""Colour: digits painted in a stroke and a background colour, and how a colour image is read back.

`--dataset colour` paints MNIST's grey digits as it batches them: each image gets a stroke
colour and a background colour (RGB in [0, 1]) whose luma differs by at least MIN_CONTRAST,
so the digit stays readable, and each pixel blends linearly between the two by the digit's
grey level. The colours are a pure function of (seed, step), like every batch here.

Reading an image back (the same for real and generated ones):

    background(images)  # the median of each image's outer 2-pixel frame, (n, 3)
    stroke(images)      # the median of the pixels at least 80% as far from it as the farthest one, (n, 3)
    readable(images)    # grey (n, h, w) uint8: each image's luma from its background (0) to its stroke (255)

`readable` is what the judges read: a grey digit, white on black as in MNIST, whatever
the colours and whichever of the two is the lighter.
"""

from __future__ import annotations

import numpy as np

from cgan.errors import UserError

NAME = "colour"  # the condition's input, and what messages call it
ATTRIBUTES = ("stroke_red", "stroke_green", "stroke_blue", "background_red", "background_green", "background_blue")
UNIT = "rgb"  # each a fraction of full intensity, 0-1
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL converts RGB to "L"
MIN_CONTRAST = 0.3  # the least luma difference between the two colours of a painted digit
CANDIDATES = 16  # pairs drawn per image; the first with enough contrast is kept (all fail about 0.3% of the time)
FRAME = 2  # the outer frame the background is read from, in pixels
FAR = 0.8  # the stroke: pixels at least this share of the farthest pixel's distance from the background


def parse(text: str, flag: str) -> tuple[float, float, float]:
    """An RGB triple in [0, 1] from a CSS colour name or #rrggbb (#rgb); UserError naming the flag otherwise."""
    from matplotlib import colors

    try:
        return tuple(float(c) for c in colors.to_rgb(str(text).strip().lower()))
    except ValueError:
        raise UserError(f"{flag}: {text!r} is not a colour (a CSS name such as crimson, or #rrggbb)") from None


def hex_of(rgb) -> str:
    """'#rrggbb' of an RGB triple in [0, 1]."""
    return "#" + "".join(f"{int(round(255 * float(np.clip(c, 0, 1)))):02x}" for c in rgb)


# ---------------------------------------------------------------------------
# Painting (TensorFlow: inside the training batches)


def draw(seed, count: int):
    """(count, 6) float32 tensor: stroke then background RGB pairs, their lumas at least MIN_CONTRAST apart.

    `seed` is a stateless seed (2 int64). Each row is the first of CANDIDATES uniform pairs with
    enough contrast; where none has, the most contrasting one.
    """
    from cgan.backend import tf

    pairs = tf.random.stateless_uniform([count, CANDIDATES, 6], seed=seed)
    luma = tf.constant(LUMA, tf.float32)
    contrast = tf.abs(tf.reduce_sum((pairs[..., :3] - pairs[..., 3:]) * luma, -1))  # (count, candidates)
    enough = contrast >= MIN_CONTRAST
    pick = tf.where(tf.reduce_any(enough, 1), tf.argmax(tf.cast(enough, tf.int32), 1), tf.argmax(contrast, 1))
    return tf.gather(pairs, pick, batch_dims=1)


def paint(grey, colours):
    """Float RGB images in [0, 1] (b, h, w, 3) of grey digits (b, h, w) in [0, 1] and their colours (b, 6): a linear
    blend from background to stroke. TensorFlow tensors (the training batches) and NumPy arrays alike."""
    stroke, back = colours[:, None, None, :3], colours[:, None, None, 3:]
    return back + (stroke - back) * grey[..., None]


def painted_table(count: int, seed: int) -> np.ndarray:
    """(count, 6) colours drawn as training draws them, for a generator's record of its data (`cgan.conditions`)."""
    from cgan.backend import tf

    return draw(tf.constant([seed, 2**31 - 1], tf.int64), count).numpy().astype(np.float32)


def paint_numpy(images: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """uint8 RGB (n, h, w, 3) of grey uint8 digits (n, h, w) painted in `colours` (n, 6), as training paints them."""
    painted = paint(np.asarray(images, np.float64) / 255, np.asarray(colours, np.float64))
    return np.clip(np.rint(255 * painted), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Reading colours back


def _floats(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected RGB images (n, h, w, 3), got shape {images.shape}")
    return images.astype(np.float64) / 255 if images.dtype == np.uint8 else images.astype(np.float64)


def background(images: np.ndarray) -> np.ndarray:
    """(n, 3) in [0, 1]: the per-channel median of each image's outer FRAME-pixel frame."""
    x = _floats(images)
    frame = np.ones(x.shape[1:3], bool)
    frame[FRAME:-FRAME, FRAME:-FRAME] = False
    return np.median(x[:, frame], axis=1)


def stroke(images: np.ndarray, back: np.ndarray | None = None) -> np.ndarray:
    """(n, 3) in [0, 1]: the per-channel median of the pixels at least FAR as far from the background as the
    farthest pixel (the stroke's core, not its blended edge)."""
    x = _floats(images)
    back = background(x) if back is None else back
    distance = np.linalg.norm(x - back[:, None, None, :], axis=-1)  # (n, h, w)
    far = distance >= FAR * distance.max(axis=(1, 2), keepdims=True)
    picked = np.where(far[..., None], x, np.nan).reshape(len(x), -1, 3)
    return np.nanmedian(picked, axis=1)


def readable(images: np.ndarray) -> np.ndarray:
    """Grey uint8 (n, h, w) of RGB images: each one's luma mapped from its background's (0) to its stroke's (255).

    A grey image (n, h, w) is returned as it is. An image whose two colours have the same luma
    comes out blank: the judges then read no digit, as a person would not.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        return images
    x = _floats(images)
    back = background(x)
    low, high = back @ LUMA, stroke(x, back) @ LUMA
    span = high - low
    span = np.where(np.abs(span) < 1e-3, np.inf, span)
    grey = (x @ LUMA - low[:, None, None]) / span[:, None, None]
    return np.clip(np.rint(255 * grey), 0, 255).astype(np.uint8)


def errors(images: np.ndarray, asked: np.ndarray) -> dict[str, float]:
    """How far the colours read from `images` are from those `asked` ((n, 6), stroke then background): the mean
    absolute difference per channel, RGB in [0, 1], of each."""
    back = background(images)
    read = np.concatenate([stroke(images, back), back], 1)
    difference = np.abs(read - np.asarray(asked, np.float64))
    return {"stroke": float(difference[:, :3].mean()), "background": float(difference[:, 3:].mean())}
