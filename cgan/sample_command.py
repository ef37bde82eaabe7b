"""The sampling command of `cgan_mnist.py --generator PATH`: what its flags ask the generator for,
and the grids, GIFs and npz files it writes. It needs no network builder, so it lives below the script.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cgan import conditions, images, morphs
from cgan.data import DATASETS, MNIST, Dataset, dataset_of
from cgan.errors import UserError
from cgan.files import check_file, check_folder
from cgan.sampling import class_count, generate_batches, load_generator, picture_shape

MAX_COUNT = 10_000  # samples per class from the command line; more is almost surely a typo
PICTURE_LIMIT = 1024  # images a sample grid shows at most (--save-npz keeps them all)
# the sampling flags of one kind of dataset's classes (`Dataset.class_flags`), beside --class and --classes
DATASET_CLASS_FLAGS = tuple(name for dataset in DATASETS.values() for name in dataset.class_flags)
ANY_CLASS = -1  # --walk without a digit, for a generator without labels (not a string: argparse would parse it)


def add_arguments(sample) -> None:
    """The sampling flags, in the argparse group `sample`: which classes (each dataset's own flags too),
    morphs and walks, any conditions the generator takes beyond the class (`cgan.conditions`), and the outputs."""
    which = sample.add_mutually_exclusive_group()
    which.add_argument("--digit", metavar="N",
                       help=f"draw only digit N ({MNIST.class_range()}); default: one row per digit")
    which.add_argument("--digits", nargs="+", metavar="N", help="draw these digits, one row each")
    which.add_argument("--class", dest="class_", metavar="C",
                       help="draw only class C, by number or name "
                            "(any generator with labels: --class shirt, --class 6)")
    which.add_argument("--classes", nargs="+", metavar="C", help="draw these classes, one row each")
    which.add_argument("--number", metavar="NN",
                       help="a pairs generator trained with --condition number: draw only the number NN (00-99)")
    which.add_argument("--numbers", nargs="+", metavar="NN", help="the same, for several numbers, one row each")
    which.add_argument("--interpolate", nargs=2, metavar=("A", "B"),
                       help="fixed noise, the label morphing from class A to B")
    which.add_argument("--walk", nargs="?", const=ANY_CLASS, metavar="N",
                       help="class N fixed, the noise walking between two seeds (no N for an unconditional generator)")
    conditions.add_arguments(sample)
    sample.add_argument("--count", type=int, default=None, metavar="K",
                        help="samples per digit (default: 16 with --digit, 10 per row otherwise; with --evaluate, "
                             "scored per class: 1000, 100 per number for pairs)")
    sample.add_argument("--frames", type=int, default=10, help="frames of --interpolate or --walk (default: 10)")
    sample.add_argument("--gif", action="store_true", help="with --interpolate or --walk: also write an animated GIF")
    sample.add_argument("--save-npz", metavar="PATH",
                        help="also write the images (uint8) and their labels to PATH (.npz)")
    sample.add_argument("--show", action="store_true", help="also open the picture in a window")
    sample.add_argument("--json", action="store_true", help="with --evaluate: print JSON instead of a table")
    sample.add_argument("--export-onnx", metavar="PATH",
                        help="write the generator as an ONNX file (.onnx) for ONNX Runtime, and exit")


def sample(args) -> list[Path]:
    """Sampling from the command line: grids, morphs and walks, with optional GIF and npz."""
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {args.count}")
    if not 2 <= args.frames <= 1000:
        raise UserError(f"--frames must be between 2 and 1000, got {args.frames}")
    if args.gif and args.interpolate is None and args.walk is None and args.sweep is None:
        raise UserError("--gif needs --interpolate A B, --walk N or --sweep")
    if args.sweep and (args.interpolate is not None or args.walk is not None):
        raise UserError(f"--sweep does not go with {'--interpolate' if args.interpolate else '--walk'}")
    if args.save_npz and (Path(args.save_npz).suffix != ".npz" or args.save_npz.endswith("/")):
        raise UserError(f"--save-npz must name a .npz file, got {args.save_npz}")
    generator = load_generator(args.generator)
    # Before drawing or writing anything: a file in the way of either output stops it here.
    out_dir = check_folder(args.out_dir or "samples")
    if args.save_npz:
        check_file(args.save_npz)
    dataset = dataset_of(generator)
    seed = args.seed if args.seed is not None else int(np.random.default_rng().integers(2**31))
    conditional = class_count(generator) is not None
    asked = _asked_classes(args, dataset, args.generator)
    attributes = conditions.asked(args)
    swept = conditions.check_asked(generator, args.generator, attributes, args.sweep)
    if not conditional and (asked is not None or args.interpolate is not None or args.walk not in (None, ANY_CLASS)):
        raise UserError(f"{args.generator} has no labels (it was trained with --unconditional): "
                        f"draw with --count K, or --walk without a {dataset.class_word}")
    if conditional and args.walk == ANY_CLASS:
        raise UserError(f"--walk needs a {dataset.class_word} N for this generator: --walk N")
    word = dataset.class_word
    plural = word + ("es" if word.endswith("s") else "s")
    joint = "_" if dataset.named_classes else ""  # class_shirt, digit6
    row_names = None
    if args.interpolate is not None:
        a, b = (_parse_class(dataset, text, "--interpolate") for text in args.interpolate)
        pictures = morphs.interpolate(generator, a, b, frames=args.frames, seed=seed, attributes=attributes)
        labels, rows = np.linspace(a, b, args.frames), 1
        stem = f"morph{_file_name(dataset, a)}-{_file_name(dataset, b)}_f{args.frames}_seed{seed}"
    elif args.walk is not None:
        label = _parse_class(dataset, args.walk, "--walk") if conditional else None
        pictures = morphs.walk(generator, label, frames=args.frames, seed=seed, attributes=attributes)
        labels = np.full(args.frames, label) if conditional else None
        stem, rows = f"walk{_file_name(dataset, label) if conditional else ''}_f{args.frames}_seed{seed}", 1
    elif swept is not None:  # a row per class asked (and per --count), the attribute moving along each
        name, (low, high) = swept
        chosen = asked if asked is not None else dataset.shown_classes()
        labels = np.repeat(chosen, args.count or 1)
        pictures = morphs.sweep(generator, labels, name, np.linspace(low, high, args.frames), seed=seed,
                                attributes=attributes)
        labels, rows = np.repeat(labels, args.frames), len(labels)
        which = "".join(_file_name(dataset, c) for c in chosen) if len(chosen) <= 10 else "many"
        stem = f"sweep-{name}{low:g}-{high:g}_{word}{which}_f{args.frames}_seed{seed}"
    elif not conditional:
        count = args.count or 100
        pictures, labels, per_row = None, None, None
        rows = _near_square_rows(count)
        stem = f"any_n{count}_seed{seed}"
    else:
        if asked is not None and len(asked) == 1 and not args.digits and not args.classes and not args.numbers:
            count = args.count or 16
            labels, rows, per_row = np.full(count, asked[0]), _near_square_rows(count), None
            stem = f"{word}{joint}{_file_name(dataset, asked[0])}_n{count}_seed{seed}"
        else:
            chosen = asked if asked is not None else dataset.shown_classes()
            count = args.count or (16 if asked is not None else 10)
            labels, rows, per_row = np.repeat(chosen, count), len(chosen), count
            row_names = [dataset.class_names[c] for c in chosen]
            every = asked is None and len(chosen) == dataset.num_classes
            which = dataset.class_range() if every else "_sampler" if asked is None else joint + joint.join(
                _file_name(dataset, c) for c in chosen)
            stem = f"{plural}{which}_n{count}_seed{seed}"
        pictures = None
    npz = None
    if pictures is None:  # samples, drawn batch by batch so that memory stays flat however many are asked for
        total = count if labels is None else len(labels)
        shown, rows = _shown(total, rows, per_row)
        pictures, npz = _draw(generator, labels, seed, total, shown, args.save_npz, attributes)
        if len(shown) < total:
            print(f"the picture shows {len(shown):,} of the {total:,} images"
                  + ("" if args.save_npz else "; --save-npz PATH keeps them all"))
    names = row_names if row_names and dataset.named_classes else None
    written = [images.save_grid(out_dir / f"{stem}.png", pictures, rows=rows, row_names=names)]
    if args.gif:
        written.append(images.save_gif(out_dir / f"{stem}.gif", pictures))
    if args.save_npz:
        written.append(npz or images.save_npz(args.save_npz, pictures, labels))
    for path in written:
        print(f"wrote {path}")
    print(f"seed {seed}")
    if args.show:
        import matplotlib.pyplot as plt

        plt.imshow(images.tile(pictures, rows), cmap="gray")
        plt.axis("off")
        plt.show()
    return written


def _shown(total: int, rows: int, per_row: int | None) -> tuple[np.ndarray, int]:
    """The positions of the images a sample grid shows, and its rows.

    All of them up to PICTURE_LIMIT; beyond, the first PICTURE_LIMIT (near-square layout,
    `per_row` None) or the first of each row's `per_row` (one row per class).
    """
    if total <= PICTURE_LIMIT:
        return np.arange(total), rows
    if per_row is None:
        return np.arange(PICTURE_LIMIT), _near_square_rows(PICTURE_LIMIT)
    keep = max(1, PICTURE_LIMIT // rows)
    return (np.arange(rows)[:, None] * per_row + np.arange(keep)).reshape(-1), rows


def _draw(generator, labels, seed: int, total: int, shown: np.ndarray, npz_path,
          attributes: dict) -> tuple[np.ndarray, Path | None]:
    """Draw `total` samples in batches, streaming them to `npz_path` if given; (the images at `shown`, the npz)."""
    kept, start = [], 0

    def batches():
        nonlocal start
        for batch in generate_batches(generator, labels, seed, count=total if labels is None else None,
                                      attributes=attributes):
            inside = shown[(shown >= start) & (shown < start + len(batch))]
            kept.append(batch[inside - start])
            start += len(batch)
            yield batch

    npz = None
    if npz_path:
        npz = images.save_npz(npz_path, batches(), labels, shape=(total, *picture_shape(generator)))
    else:
        for _ in batches():
            pass
    return np.concatenate(kept), npz


def sample_hint(path) -> str:
    """The flags that draw one class from the generator at `path`, as the line after training suggests."""
    generator = load_generator(path)
    if class_count(generator) is None:
        return "--count 16"
    shaped = conditions.kind_of(generator) is conditions.KINDS[conditions.SHAPE]  # ask for the shape too
    return dataset_of(generator).sample_example() + (" --thickness 3.5 --slant 0.25" if shaped else "")


def _parse_class(dataset: Dataset, text: str, flag: str) -> int:
    try:
        return dataset.parse_class(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc} for this generator") from None


def _file_name(dataset: Dataset, label: int) -> str:
    """A class as it appears in file names: "6", "37", "00-49", "ankle-boot"."""
    return "".join(c if c.isalnum() else "-" for c in dataset.class_names[label].lower()).strip("-")


def _asked_classes(args, dataset: Dataset, path) -> list[int] | None:
    """The classes the sampling flags ask for (None: none asked), each checked against what the generator draws."""
    for name in DATASET_CLASS_FLAGS:  # a dataset's own flags fit its generators only
        if getattr(args, name) is not None and name not in dataset.class_flags:
            raise UserError(f"{path} draws {dataset.describe()}, so --{name} does not apply: use {dataset.ask_hint}")
    for name in ("digit", "class_", "number", "condition"):
        if getattr(args, name) is not None:
            return [_parse_class(dataset, getattr(args, name), "--" + name.strip("_"))]
    for name in ("digits", "classes", "numbers"):
        if getattr(args, name) is not None:
            return [_parse_class(dataset, text, "--" + name) for text in getattr(args, name)]
    return None


def _near_square_rows(count: int) -> int:
    """The most rows, up to the square root, that divide `count`: 16 -> 4 x 4, 10 -> 2 x 5."""
    return max(r for r in range(1, int(np.sqrt(count)) + 1) if count % r == 0)
