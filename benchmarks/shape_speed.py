"""How long Morpho-MNIST's measures (cgan/shape.py) take: 10,000 real training digits on one thread and on every core.

    python benchmarks/shape_speed.py            # 10,000 images
    python benchmarks/shape_speed.py --count 1000

Prints the seconds for each and the images per second; issue #42's aim is 10,000 in at most 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cgan import shape  # noqa: E402
from cgan.data import MNIST  # noqa: E402
from cgan.precision import cpu_description  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Seconds to measure the shape of real digits.")
    p.add_argument("--count", type=int, default=10_000, help="how many training digits (default: 10,000)")
    args = p.parse_args(argv)
    images = MNIST.load()[0][: args.count]
    figures = {"cpu": cpu_description(), "count": len(images)}
    for workers in (1, os.cpu_count() or 1):
        start = time.perf_counter()
        shape.measure(images, workers=workers)
        seconds = time.perf_counter() - start
        figures[f"seconds_{workers}_threads"] = round(seconds, 2)
        print(f"{len(images):,} images on {workers} thread(s): {seconds:.1f} s, {len(images) / seconds:.0f} images/s, "
              f"{1000 * seconds / len(images):.2f} ms an image", flush=True)
    print(f"on {figures['cpu']}")
    return figures


if __name__ == "__main__":
    main()
