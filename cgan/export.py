"""A trained generator as an ONNX file, for ONNX Runtime (Python, or onnxruntime-web in a browser).

The file takes the generator's own inputs, `noise` (float32, (batch, latent_dim)) and, for a
conditional generator, `label` (int32, (batch, 1); float32 (batch, classes) for the soft-label copy
that `cgan.morphs.soft_label_generator` makes) and, for a generator with a continuous condition
(`cgan.conditions.KINDS`), its input: `shape` (float32, (batch, 4): thickness, slant, width, height
in px, rad, px, px) or `colour` (float32, (batch, 6): the stroke's and the background's RGB in 0-1),
with the batch dimension free, and gives images in [-1, 1], (batch, h, w, 1) or, RGB,
(batch, h, w, 3); `cgan.data.postprocess` turns them into pixels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from cgan.backend import keras
from cgan.errors import InputError, UserError
from cgan.files import atomic_path


def export_onnx(generator: keras.Model, path) -> Path:
    """Write `generator` to `path` (.onnx) with Keras's ONNX export (tf2onnx), atomically."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"--export-onnx must name a .onnx file, got {path}")
    missing = [name for name in ("tf2onnx", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"ONNX export needs {' and '.join(missing)}: pip install -r requirements.txt")
    # Keras exports only a model that has been called once.
    generator({name: np.zeros((1, *t.shape[1:]), t.dtype) for name, t in generator.input.items()}, training=False)
    with atomic_path(path) as tmp, open(os.devnull, "w") as quiet, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object, which NumPy 2 warns about
        with contextlib.redirect_stdout(quiet):  # tf2onnx's conversion log
            generator.export(str(tmp), format="onnx", verbose=False)
    return path

