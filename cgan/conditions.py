"""What a generator is conditioned on, in one place: the inputs it takes beyond its noise, how training
reads them from the data, and how sampling fills in what a user did not ask for.

Every generator takes `noise`; a conditional one a `label` (a class, int (b, 1)); beyond that, one
continuous condition (a `Kind` of KINDS) at most:
- `shape` (`--condition shape`): each digit's thickness, slant, width and height in their units
  (px, rad, px, px; `cgan.shape.CONDITIONED`, measured as Morpho-MNIST measures them);
- `colour` (`--dataset colour`): the stroke's and the background's RGB in [0, 1] (`cgan.colour`).
Its `cgan.layers.Attributes` layer records the attributes' names, units and the training data's
statistics, with a table of real values per class, so the saved generator is all that sampling,
the page and ONNX export need to know:

    names(generator)                         # ("thickness", "slant", "width", "height"), () without
    fill(generator, labels, {"slant": 0.3}, rng)  # (n, 4): the rest from real digits nearest to it
    complete(generator, {"noise": z, "label": y}, rng)  # every input the generator takes

Training: `training_conditions` reads a run's conditions from its data (the measures are taken
once and cached beside the data with the data's digest: `measures_of`), `set_statistics` records
them in the networks before the first step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from cgan import colour, shape
from cgan.errors import UserError
from cgan.files import atomic_path, cache_dir
from cgan.layers import Attributes

SHAPE = "shape"  # the input of a generator with --condition shape
LAYER = "attributes"  # its Attributes layer, in the generator and in the discriminator
REFERENCE_ROWS = 512  # real digits' attributes a generator keeps per class, to fill in what is not asked
NEAREST = 16  # a value not asked comes from one of this many real digits nearest in what was asked
CACHE_VERSION = 1  # part of the measures cache's digest: bump when `cgan.shape` measures differently


@dataclasses.dataclass(frozen=True)
class Flag:
    """A sampling flag: `names` (the first is how messages call it) set the attributes `sets` to what `read`
    makes of the text given (None: the text is the one attribute's number)."""

    names: tuple[str, ...]
    sets: tuple[str, ...]
    help: str
    read: object = None

    @property
    def dest(self) -> str:
        return self.names[0].lstrip("-")

    def values(self, given) -> dict[str, float]:
        return dict(zip(self.sets, (given,) if self.read is None else self.read(given, self.names[0])))


def _colour_flag(names, part: str, meaning: str) -> Flag:
    return Flag(names, tuple(f"{part}_{c}" for c in ("red", "green", "blue")), meaning, colour.parse)


@dataclasses.dataclass(frozen=True)
class Kind:
    """A continuous condition: the generator input `name` takes `attributes` ({name: unit}, in order).

    `trained_with` is how a run asks for it (for messages); `flags` are the sampling flags that set its
    attributes; `measured`: the data's own values are measured from each training image (shape),
    rather than drawn as the batches are made (colour);
    `domain`: every attribute's full range when it has one (a colour channel's 0 to 1), else None
    (the page then offers the recorded values' 1st-99th percentile).
    """

    name: str
    attributes: dict
    trained_with: str
    flags: tuple[Flag, ...]
    measured: bool
    domain: tuple[float, float] | None = None

    def input(self, classes: int | None, rows: int):
        """(the Keras input this kind adds to a network, its attributes as standard scores): the `Attributes`
        layer between them keeps the data's statistics and `rows` real values per class."""
        from cgan.backend import keras

        measured = keras.Input((len(self.attributes),), name=self.name)
        return measured, Attributes(self.attributes, self.attributes.values(), classes, rows, name=LAYER)(measured)


KINDS = {
    SHAPE: Kind(SHAPE, {name: shape.UNITS[name] for name in shape.CONDITIONED}, "--condition shape",
                tuple(Flag((f"--{name}",), (name,), f"its {shape.MEANINGS[name]}; what is not given comes from "
                           "real digits nearest to what is") for name in shape.CONDITIONED), measured=True),
    colour.NAME: Kind(colour.NAME, {name: colour.UNIT for name in colour.ATTRIBUTES}, "--dataset colour",
                      (_colour_flag(("--color", "--colour"), "stroke", "the stroke's colour: a CSS name or "
                                    "#rrggbb (default: drawn at random)"),
                       _colour_flag(("--background",), "background", "the background's colour, the same way")),
                      measured=False, domain=(0.0, 1.0)),
}
_FLAGS = [flag for kind in KINDS.values() for flag in kind.flags]


def kind_for(config) -> Kind | None:
    """The continuous condition a run of `config` adds to noise and label (None for the label alone)."""
    if config.dataset == colour.NAME:
        return KINDS[colour.NAME]
    return KINDS[SHAPE] if config.condition == SHAPE else None


def kind_of(model) -> Kind | None:
    """The continuous condition a generator (or discriminator) takes (None if it takes only noise and a label)."""
    inputs = model.input if isinstance(model.input, dict) else {}
    return next((kind for name, kind in KINDS.items() if name in inputs), None)


def input_sizes(config) -> dict[str, int]:
    """{input name: width} of the continuous conditions a run of `config` adds to noise and label."""
    kind = kind_for(config)
    return {kind.name: len(kind.attributes)} if kind else {}


def attribute_layer(model) -> Attributes | None:
    """The model's `Attributes` layer (a generator's or a discriminator's), None if it takes no attributes."""
    return next((layer for layer in model.layers if isinstance(layer, Attributes)), None)


def names(generator) -> tuple[str, ...]:
    """The attributes the generator is conditioned on, in the order of its `shape` input; () if none."""
    layer = attribute_layer(generator)
    return layer.names if layer is not None else ()


def units(generator) -> tuple[str, ...]:
    layer = attribute_layer(generator)
    return layer.units if layer is not None else ()


def statistics(generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (k,), sd (k,), reference (classes, rows, k)) the generator recorded of its training data."""
    layer = attribute_layer(generator)
    return tuple(np.asarray(w.numpy(), np.float64) for w in (layer.mean, layer.sd, layer.reference))


def describe(generator) -> list[dict]:
    """The attributes as the page shows them: name, unit, range (the kind's domain, else the recorded values'
    1st-99th percentile), and each class's default (what a class is drawn with until the user moves a slider):
    its median shape; for colours, one recorded pair of the class (medians of colours would be a grey on grey)."""
    if not names(generator):
        return []
    _, _, reference = statistics(generator)
    kind = kind_of(generator)

    def bounds(j):
        return kind.domain or tuple(float(np.percentile(reference[..., j], q)) for q in (1, 99))

    return [{"name": name, "unit": unit, **dict(zip(("low", "high"), bounds(j))),
             "defaults": [float(np.median(rows[:, j]) if kind.measured else rows[0, j]) for rows in reference]}
            for j, (name, unit) in enumerate(zip(names(generator), units(generator)))]


# ---------------------------------------------------------------------------
# Sampling: every input a generator takes


def fill(generator, labels, asked: dict | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """The attributes (n, k) float32 to draw `labels` (n,) with: those `asked` ({name: value or (n,) values}),
    the others from a real digit of the same class.

    Without anything asked, each image takes the attributes of a real digit of its class
    drawn at random (from the generator's recorded table), so plain sampling draws the
    data's shapes. With some asked, the real digit is one of the NEAREST of its class
    in the asked attributes (standard scores), so the ones not asked fit those asked.
    """
    names_ = names(generator)
    asked = dict(asked or {})
    unknown = [name for name in asked if name not in names_]
    if unknown:
        raise UserError(f"this generator takes no {unknown[0]} (its attributes: {', '.join(names_) or 'none'})")
    rng = rng if rng is not None else np.random.default_rng()
    labels = np.asarray(labels).reshape(-1).astype(int)
    _, sd, reference = statistics(generator)
    n, rows = len(labels), reference.shape[1]
    values = {name: np.broadcast_to(np.asarray(value, np.float64), (n,)) for name, value in asked.items()}
    given = [names_.index(name) for name in values]
    out = np.empty((n, len(names_)))
    for c in np.unique(labels):
        mine = np.flatnonzero(labels == c)
        table = reference[c]  # (rows, k)
        if given:
            target = np.stack([values[name][mine] for name in values], 1)  # (m, g)
            distance = (((table[None, :, given] - target[:, None, :]) / sd[given]) ** 2).sum(-1)  # (m, rows)
            nearest = np.argsort(distance, axis=1, kind="stable")[:, : min(NEAREST, rows)]
            picked = nearest[np.arange(len(mine)), rng.integers(nearest.shape[1], size=len(mine))]
        else:
            picked = rng.integers(rows, size=len(mine))
        out[mine] = table[picked]
    for name, value in values.items():
        out[:, names_.index(name)] = value
    return out.astype(np.float32)


def complete(generator, inputs: dict, rng: np.random.Generator | None = None) -> dict:
    """`inputs` ({"noise": ..., "label": classes}) with every other input the generator takes, filled in (`fill`)."""
    kind = kind_of(generator)
    if kind is None or kind.name in inputs:
        return inputs
    return {**inputs, kind.name: fill(generator, inputs["label"], None, rng)}


def shape_rng(seed: int | None) -> np.random.Generator:
    """The numbers that fill in a generator's attributes for `seed`: apart from the noise's, so that a seed
    draws the same noise with or without them."""
    return np.random.default_rng(None if seed is None else [seed, 1])


def add_arguments(group) -> None:
    """The sampling flags of continuous conditions (every kind's), and --sweep."""
    for kind in KINDS.values():
        for flag in kind.flags:
            group.add_argument(*flag.names, dest=flag.dest, type=float if flag.read is None else str,
                               metavar="X" if flag.read is None else "COLOUR",
                               help=f"a generator trained with {kind.trained_with}: {flag.help}")
    group.add_argument("--sweep", nargs=3, metavar=("ATTRIBUTE", "FROM", "TO"),
                       help="with such a generator: a strip of --frames images per row where only ATTRIBUTE moves "
                            "from FROM to TO (--sweep thickness 1.5 5)")


def asked(args) -> dict[str, float]:
    """{attribute: value} of the sampling flags given (`add_arguments`); UserError for a colour that is none."""
    values = {}
    for flag in _FLAGS:
        if getattr(args, flag.dest, None) is not None:
            values.update(flag.values(getattr(args, flag.dest)))
    return values


def _flag_of(name: str) -> str:
    """The sampling flag that sets attribute `name`."""
    return next(flag.names[0] for flag in _FLAGS if name in flag.sets)


def check_asked(generator, path, values: dict, sweep=None) -> tuple[str, np.ndarray] | None:
    """UserError (one line) for attribute flags this generator cannot take or values that are not numbers;
    the sweep's (attribute, FROM and TO) if one was asked."""
    names_ = names(generator)
    for name in values:
        if name not in names_:
            flag = _flag_of(name)
            needed = next(k.trained_with for k in KINDS.values() if name in k.attributes)
            raise UserError(f"{path} was not trained with {needed}, so {flag} does not apply")
    if sweep and not names_:
        raise UserError(f"{path} takes no attributes (it was trained with neither "
                        f"{' nor '.join(k.trained_with for k in KINDS.values())}), so --sweep does not apply")
    for name, value in values.items():
        _check_value(generator, name, value, _flag_of(name))
    if not sweep:
        return None
    name, *ends = sweep
    if name not in names_:
        raise UserError(f"--sweep: {name!r} is not an attribute of {path} (its attributes: {', '.join(names_)})")
    if name in values:
        raise UserError(f"--sweep {name} moves {name}: it does not go with {_flag_of(name)}")
    try:
        low, high = (float(v) for v in ends)
    except ValueError:
        raise UserError(f"--sweep {name} FROM TO: FROM and TO must be numbers, got {' '.join(ends)}") from None
    for value in (low, high):
        _check_value(generator, name, value, f"--sweep {name}")
    return name, np.array([low, high])


def _check_value(generator, name: str, value: float, flag: str) -> None:
    """UserError unless `value` is a number a digit can measure: a positive length, a slant short of
    +-90 degrees (beyond the data's range it is the generator's guess, but a guess it can draw), a
    colour channel in 0-1."""
    unit = units(generator)[names(generator).index(name)]
    if not np.isfinite(value):
        raise UserError(f"{flag} must be a number, got {value}")
    if unit == "rad" and not abs(value) < np.pi / 2:
        raise UserError(f"{flag} is an angle in radians between -1.57 and 1.57 (MNIST: -0.5 to 0.66), got {value}")
    if unit == "px" and not 0 < value <= 28:
        raise UserError(f"{flag} is in pixels of a 28x28 image, above 0 and at most 28, got {value}")
    if unit == colour.UNIT and not 0 <= value <= 1:
        raise UserError(f"{flag}: a colour channel is between 0 and 1, got {value}")


def held(generator, inputs: dict, label: int | None, rng: np.random.Generator | None = None,
         attributes: dict | None = None) -> dict:
    """`inputs` with the generator's attributes, if it takes any, the same in every row: those `attributes` asked,
    the rest one real digit's of class `label` (a morph or a walk keeps its shape while the rest moves)."""
    kind = kind_of(generator)
    if kind is None:
        return inputs
    row = fill(generator, [label], attributes, rng)
    return {**inputs, kind.name: np.repeat(row, len(inputs["noise"]), axis=0)}


# ---------------------------------------------------------------------------
# Training: the conditions of the data


def training_conditions(kind: Kind | None, images: np.ndarray, labels: np.ndarray, source=None,
                        *, verbose: bool = False) -> dict[str, np.ndarray]:
    """A run's conditions of its training images: {"label": labels (n,)}, and with --condition shape
    {"shape": their attributes (n, k) float32} (measured once, then cached: `measures_of`). Colours
    are not the images' own: the batches draw them as they paint (`cgan.data.ColourDataset`)."""
    conditions = {"label": labels}
    if kind is not None and kind.measured:
        conditions[kind.name] = measures_of(images, source, verbose=verbose)
    return conditions


def measures_of(images: np.ndarray, source=None, *, verbose: bool = False) -> np.ndarray:
    """`cgan.shape.CONDITIONED` of training images (n, k) float32, measured once and kept with their digest.

    Kept beside the data (`mnist.npz` -> `mnist.shape.npz`; in a folder of IDX files,
    `train.shape.npz`) where that folder can be written, else in the cache folder. A blank
    image's NaN becomes its column's median. About a minute for MNIST's 60,000 on two cores.
    """
    digest = hashlib.sha256(f"cgan.conditions measures v{CACHE_VERSION} {shape.CONDITIONED}".encode()
                            + np.ascontiguousarray(images).tobytes()).hexdigest()
    places = _cache_places(source, digest)
    for path in places:
        try:
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["digest"]) == digest and saved["table"].shape == (len(images), len(shape.CONDITIONED)):
                    return saved["table"].astype(np.float32)
        except (OSError, KeyError, ValueError, EOFError):
            continue
    if verbose:
        print(f"measuring the shape of {len(images):,} training images once (about {len(images) / 1000:.0f} s); "
              f"kept in {places[0]}", flush=True)
    columns = [shape.ATTRIBUTES.index(name) for name in shape.CONDITIONED]
    table = shape.measure(images)[:, columns]
    medians = np.nanmedian(table, axis=0)
    table = np.where(np.isfinite(table), table, medians).astype(np.float32)
    for path in places:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                np.savez_compressed(tmp, digest=np.array(digest), table=table, names=np.array(shape.CONDITIONED))
            break
        except OSError:
            continue
    return table


def _cache_places(source, digest: str) -> list[Path]:
    """Where the measures of data from `source` are kept: beside it if that folder is writable, then the cache."""
    places = []
    if source is not None:
        source = Path(source)
        beside = source / "train.shape.npz" if source.is_dir() else source.with_suffix(".shape.npz")
        if os.access(beside.parent, os.W_OK) or beside.exists():
            places.append(beside)
    return [*places, cache_dir() / "shape" / f"train-{digest[:40]}.npz"]


def set_statistics(models, conditions: dict[str, np.ndarray], *, seed: int = 0) -> None:
    """Record the training data's attribute statistics in each model's `Attributes` layer (if it has one).

    Mean and SD over the whole set; the reference table, REFERENCE_ROWS real rows per class
    drawn with `seed` (with repeats where a class has fewer).
    """
    kind = next(filter(None, map(kind_of, models)), None)
    if kind is None:
        return
    labels = np.asarray(conditions["label"]).reshape(-1)
    # colours are drawn, not measured: the record is drawn the way training draws them
    table = conditions[kind.name] if kind.measured else colour.painted_table(len(labels), seed)
    table = np.asarray(table, np.float64)
    mean, sd = table.mean(0), np.maximum(table.std(0), 1e-6)
    rng = np.random.default_rng(seed)
    for model in models:
        layer = attribute_layer(model)
        if layer is None:
            continue
        reference = np.zeros(layer.reference.shape, np.float32)
        for c in range(layer.classes):
            rows = np.flatnonzero(labels == c)
            if len(rows):
                reference[c] = table[rng.choice(rows, layer.rows, replace=len(rows) < layer.rows)]
        layer.mean.assign(mean.astype(np.float32))
        layer.sd.assign(sd.astype(np.float32))
        layer.reference.assign(reference)
