"""Peak memory of sampling as the count grows: 1,000, 10,000 and 100,000 images written with --save-npz.

    python benchmarks/sample_memory.py            # about two minutes
    python benchmarks/sample_memory.py --quick    # 100 and 1,000 images: checks that it runs

Each count is one `python cgan_mnist.py --generator=cgan_mnist.h5 --count K --save-npz ...`
(K per digit, all ten digits) in its own process, whose peak resident memory the kernel
reports when it ends. The reference line, measured in the same run, draws the 16 images of
`--digit 3`: what loading TensorFlow and the generator costs before any image is drawn.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def peak_run(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Run `python cgan_mnist.py ARGV`; return (its peak resident memory in MB, seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "cgan_mnist.py"), *argv], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports KiB


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 images only")
    parser.add_argument("--generator", default=str(ROOT / "cgan_mnist.h5"))
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from cgan.precision import cpu_description

    per_digit = (10, 100) if args.quick else (100, 1000, 10_000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mb, seconds = peak_run([f"--generator={args.generator}", "--digit", "3", "--seed", "0", "--out-dir", str(tmp)],
                               tmp)
        rows.append({"images": 16, "peak_mb": round(mb), "seconds": round(seconds, 1), "npz_mb": None})
        for k in per_digit:
            npz = tmp / f"n{k}.npz"
            mb, seconds = peak_run([f"--generator={args.generator}", "--count", str(k), "--seed", "0", "--out-dir",
                                    str(tmp), "--save-npz", str(npz)], tmp)
            with np.load(npz) as data:
                assert data["images"].shape == (10 * k, 28, 28) and data["labels"].shape == (10 * k,)
            rows.append({"images": 10 * k, "peak_mb": round(mb), "seconds": round(seconds, 1),
                         "npz_mb": round(npz.stat().st_size / 2**20, 1)})
            npz.unlink()
    base = rows[0]["peak_mb"]
    print(f"sampling peak memory ({cpu_description()}, {platform.python_version()})")
    print(f"{'images':>8}{'peak MB':>9}{'over 16 images':>16}{'seconds':>9}{'npz MB':>8}")
    for r in rows:
        npz_mb = "" if r["npz_mb"] is None else f"{r['npz_mb']:8.1f}"
        print(f"{r['images']:>8,}{r['peak_mb']:9d}{r['peak_mb'] - base:+15d} {r['seconds']:8.1f}{npz_mb}")
    largest, smallest = rows[-1], rows[1]
    print(f"{largest['images']:,} images peak at {largest['peak_mb'] / smallest['peak_mb']:.2f}x the peak of "
          f"{smallest['images']:,}")
    result = {"cpu": cpu_description(), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
