"""TensorFlow and Keras, imported once and quietly: `from cgan.backend import keras, tf`."""

from __future__ import annotations

import os
import sys


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

import keras  # noqa: E402  (after TensorFlow, which it would otherwise import noisily)

__all__ = ["keras", "tf"]
