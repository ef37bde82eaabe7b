"""Architecture diagrams of built models, with Keras's plot_model (which needs pydot and Graphviz's `dot`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from cgan.backend import keras
from cgan.errors import InputError
from cgan.files import atomic_path, check_folder, make_folder


def draw(models, folder, *, quiet_failure: bool = False) -> list[Path]:
    """Write FOLDER/<model name>.png for each model; with `quiet_failure`, print a note instead of raising."""
    folder = check_folder(folder)  # a path that cannot be a folder is the first thing to say, with or without `dot`
    if shutil.which("dot") is None:
        message = "architecture diagrams need Graphviz's `dot`: apt-get install graphviz (or brew install graphviz)"
        if quiet_failure:
            print(f"note: skipped {message}", flush=True)
            return []
        raise InputError(message)
    make_folder(folder)
    written = []
    for model in models:
        path = folder / f"{model.name}.png"
        try:
            with atomic_path(path) as tmp:
                keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True, dpi=72)
        except Exception as exc:
            if quiet_failure:
                print(f"note: skipped architecture diagrams ({type(exc).__name__}: {exc})", flush=True)
                return written
            raise InputError(f"could not draw {path}: {exc}") from None
        written.append(path)
    return written
