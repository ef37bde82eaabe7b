"""How often a pairs generator draws what it was asked for, read by each of the two judges.

    python benchmarks/pairs_judges.py                          # the shipped pairs models, about two minutes
    python benchmarks/pairs_judges.py runs/x/pairs_below50.h5  # any pairs generators

`--evaluate` reads both halves of each sample with the convnet, the classifier the
pairs aims are stated against. This reads the same samples (those of `--evaluate`:
seed 0, 5,000 per condition for below50 and 100 per number) with the residual network
as well, so that a generator chosen by its share under one network is checked by the
other, and prints real pairs of test digits read the same way as the reference line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cgan import evaluation  # noqa: E402
from cgan.data import MNIST, PairsDataset, dataset_of, preprocess  # noqa: E402
from cgan.judges import JUDGES, classifier_path, load_classifier  # noqa: E402
from cgan.precision import cpu_description  # noqa: E402
from cgan.sampling import generate, load_generator  # noqa: E402

SHIPPED = [ROOT / "models" / "pairs_below50.h5", ROOT / "models" / "pairs_number.h5"]


def read_numbers(judge, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (left, right) digits `judge` reads in 28x56 uint8 images."""
    digits = np.asarray(judge.predict(preprocess(evaluation.halves(images)), batch_size=500, verbose=0)).argmax(1)
    return digits[: len(images)], digits[len(images):]


def condition_met(judge, dataset: PairsDataset, images: np.ndarray, labels: np.ndarray) -> float:
    left, right = read_numbers(judge, images)
    return float(np.mean(dataset.label(left, right) == labels))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("generators", nargs="*", type=Path, default=SHIPPED, help="pairs generators (default: shipped)")
    args = parser.parse_args(argv)
    judges = {name: load_classifier(classifier_path(MNIST, name)) for name in JUDGES}
    print(f"{cpu_description()}; share of samples meeting the condition asked for")
    print(f"{'':44s}" + "".join(f"{name:>10s}" for name in judges))
    real_rows = {}
    for path in args.generators:
        generator = load_generator(path)
        dataset = dataset_of(generator)
        if not isinstance(dataset, PairsDataset):
            print(f"{path}: not a pairs generator", file=sys.stderr)
            return 1
        per_class = 5000 if dataset.condition == "below50" else 100
        labels = np.repeat(np.arange(dataset.num_classes), per_class)
        images = generate(generator, labels, seed=0)
        shares = [condition_met(judge, dataset, images, labels) for judge in judges.values()]
        print(f"{str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path):44s}"
              + "".join(f"{share:10.2%}" for share in shares))
        if dataset.condition not in real_rows:
            # Real pairs of test digits, as --evaluate draws them for its reference line.
            real, truth = dataset.pairs(*dataset.load(split="test"), len(labels), seed=0)
            real_rows[dataset.condition] = [condition_met(judge, dataset, real, truth) for judge in judges.values()]
            print(f"{'real pairs of test digits (' + dataset.condition + ')':44s}"
                  + "".join(f"{share:10.2%}" for share in real_rows[dataset.condition]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
