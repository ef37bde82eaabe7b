"""`--precision auto`: float32 or mixed bfloat16, whichever trains faster here.

Where the hardware has no bfloat16 arithmetic (an x86 CPU without AVX-512 BF16 or AMX, an
ARM CPU without `bf16`), mixed bfloat16 is emulated: 10x slower than float32 on an AVX2-only
AMD EPYC. There auto takes float32 at once and times nothing. Where it has (or where it
cannot tell: a GPU, another architecture), no flag predicts the winner: on an Intel CPU with
AMX mixed bfloat16 ran 1.4-1.9x float32, on an Intel CPU with AVX-512 BF16 but no AMX it was
slower, on an AMD EPYC with AVX-512 BF16 1.2-1.3x faster (docs/experiments.md). So both are
timed, float32 first, within a budget of BUDGET_S seconds; a candidate whose warm-up is
already clearly slower is dropped there. The choice is cached in
`~/.cache/cgan_mnist/precision.json` (or `$CGAN_CACHE_DIR`), keyed by the CPU, the TensorFlow
version and the Config fields that set a step's work, so it costs seconds once and nothing after.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from cgan.config import POLICIES, training_batches

MARGIN = 1.05  # bfloat16 must be this much faster to be chosen: within noise, float32 is the simpler numerics
CLEARLY_SLOWER = 1.5  # a candidate whose warm-up steps are this much slower than float32's is not timed further
BUDGET_S = 20.0  # all the measuring of one model size, building and compiling both steps included
SPARE_S = 2.0  # of the budget, kept for what follows the last round (freeing both models, the cache write)
# bfloat16 runs its first few steps slower; float32 steps ran in spells of about 62 or about 126 ms on
# the AMD EPYC (measured on random images), hence alternating rounds of about ROUND_S s each and the fastest.
WARMUP_STEPS, ROUND_S, ROUNDS = 8, 0.6, 4
# In the cache key: choices timed on random images (before 2026-11-30's sixth session) are timed again.
TIMED_ON = "training batches"
# Config fields that change how much work one step is; the rest (rates, seeds, schedules) do not.
WORK_FIELDS = ("dataset", "condition", "batch_size", "latent_dim", "g_width", "g_extra_convs", "g_top_width", "d_width",
               "d_extra_convs", "loss", "critic_steps", "unconditional")
# The CPU flags that say whether bfloat16 arithmetic is native (x86: `flags`, ARM: `Features` in /proc/cpuinfo).
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cache_file() -> Path:
    from cgan.files import cache_dir

    return cache_dir() / "precision.json"


def cpu_info(text: str | None = None) -> tuple[str, set[str]]:
    """The CPU's model name and flags, from `/proc/cpuinfo` (or `text` in its format)."""
    name, flags = platform.processor() or "unknown", set()
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") or (key == "CPU part" and name == "unknown"):
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name, flags


def cpu_description(text: str | None = None) -> str:
    """The CPU's model name and the flags that matter to float32 and bfloat16 speed."""
    name, flags = cpu_info(text)
    relevant = sorted(flags & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "fma", "bf16", "asimd"})
    return f"{name} [{' '.join(relevant)}] x{os.cpu_count()}"


def native_bfloat16(text: str | None = None, *, machine: str | None = None) -> bool | None:
    """Whether this CPU does bfloat16 arithmetic in hardware: True, False, or None where its flags do not say."""
    _, flags = cpu_info(text)
    if flags & BF16_FLAGS:
        return True
    machine = (machine or platform.machine()).lower()
    if flags and machine in ("x86_64", "amd64", "i686", "aarch64", "arm64"):
        return False
    return None


def _has_gpu() -> bool:
    from cgan.backend import tf

    return bool(tf.config.list_physical_devices("GPU"))


def cache_key(config) -> str:
    from cgan.backend import tf

    work = {name: getattr(config, name) for name in WORK_FIELDS}
    text = json.dumps({"cpu": cpu_description(), "tensorflow": tf.__version__, "work": work, "timed_on": TIMED_ON},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _remember(key: str, entry: dict) -> None:
    from cgan.errors import UserError
    from cgan.files import write_text

    try:
        write_text(cache_file(), json.dumps({**_read_cache(), key: entry}, indent=2) + "\n")
    except (OSError, UserError):  # a read-only home or a file in the way costs a measurement next time
        pass


def step_runner(config, networks, precision: str, dataset, *, steps_per_call: int = 1,
                batches=None) -> Callable[[int], float]:
    """A function running n training steps of `config` in `precision`; it returns seconds a step.

    The steps train on `batches` (a tf.data.Dataset of training batches), or without them
    on one batch of random images, repeated. Each run is one `fit` call, whose own set-up
    (tens of milliseconds) is in its figure.
    """
    import numpy as np

    from cgan.backend import tf
    from cgan.conditions import input_sizes
    from cgan.gan import make_gan

    gan = make_gan(dataclasses.replace(config, precision=precision), networks)
    gan.set_steps_per_call(steps_per_call)
    if batches is None:
        b = config.batch_size * config.critic_steps
        rng = np.random.default_rng(0)
        images = tf.constant(rng.uniform(-1, 1, (b, *dataset.image_shape)).astype("float32"))
        conditions = {"label": tf.constant(rng.integers(0, dataset.num_classes, (b, 1)).astype("int32"))}
        for name, size in input_sizes(config).items():
            conditions[name] = tf.constant(rng.standard_normal((b, size)).astype("float32"))
        batches = tf.data.Dataset.from_tensors((images, conditions)).repeat()

    def run(steps: int) -> float:
        start = time.perf_counter()
        gan.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        return (time.perf_counter() - start) / steps

    return run


def measure(make_runner: Callable[[str], Callable[[int], float]], *, budget: float = BUDGET_S,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Seconds a step of each precision (float32 first), from `make_runner(precision)`'s runs, within `budget` s.

    Each runner compiles on one step, then warms up. A candidate whose warm-up is
    CLEARLY_SLOWER than float32's is dropped there (its figure is its warm-up's). The
    others are timed in alternating rounds of about ROUND_S s, so that a busy spell of the machine slows
    both rather than one, until ROUNDS rounds or the budget; each figure is its fastest
    round, since a spell only ever adds time.
    """
    deadline = clock() + budget - SPARE_S
    runners, times = {}, {}
    for precision in POLICIES:
        run = runners[precision] = make_runner(precision)
        run(1)  # traces and compiles the step
        times[precision] = [run(WARMUP_STEPS)]
        if precision != "float32" and times[precision][0] > CLEARLY_SLOWER * min(times["float32"]):
            del runners[precision]
    for _ in range(ROUNDS):
        steps = {precision: max(2, round(ROUND_S / min(times[precision]))) for precision in runners}
        if clock() + sum(n * min(times[precision]) for precision, n in steps.items()) > deadline:
            break
        for precision, run in runners.items():
            times[precision].append(run(steps[precision]))
    return {precision: float(min(t)) for precision, t in times.items()}


def step_times(config, networks, dataset) -> dict[str, float]:
    """Seconds of one training step of `config` in each precision, measured here (see `measure`).

    The steps train on the dataset's own images where they are installed: on one batch of random
    images, repeated, a float32 step of the default took 128 ms on both cores of the AVX-512 EPYC
    against 68 ms on real batches, and a bfloat16 one 64 against 54, so the comparison itself was
    off (2.0x against 1.25x; docs/experiments.md, "`--minutes` timed on real batches").
    """
    from cgan.backend import keras
    from cgan.conditions import kind_for, training_conditions

    batches = None
    if dataset.default_path.exists():  # never the download fallback: timing must not wait on a network
        images, labels = dataset.load(None, "train")
        batches = training_batches(config, images, training_conditions(kind_for(config), images, labels,
                                                                       dataset.default_path))
    try:
        return measure(lambda precision: step_runner(config, networks, precision, dataset, batches=batches))
    finally:
        keras.backend.clear_session(free_memory=True)


def resolve(config, networks, *, verbose: bool = True):
    """`config` with precision "auto" replaced by float32 or bfloat16, whichever is faster here (known, cached
    or timed)."""
    if config.precision != "auto":
        return config
    if native_bfloat16() is False and not _has_gpu():
        if verbose:
            print("--precision auto: float32 (this CPU has no bfloat16 instructions, so mixed bfloat16 would be "
                  "emulated, about 10x slower; nothing timed)", flush=True)
        return dataclasses.replace(config, precision="float32")
    from cgan.config import data_of

    key = cache_key(config)
    entry = _read_cache().get(key)
    if entry is None:
        if verbose:
            print(f"--precision auto: timing float32 and bfloat16 once for this machine and model size, "
                  f"up to {BUDGET_S:.0f} s", flush=True)
        start = time.perf_counter()
        times = step_times(config, networks, data_of(config))
        choice = "bfloat16" if times["bfloat16"] * MARGIN < times["float32"] else "float32"
        entry = {"choice": choice, "ms_per_step": {p: round(1000 * t, 1) for p, t in times.items()},
                 "cpu": cpu_description(), "measured": time.strftime("%Y-%m-%d %H:%M"),
                 "seconds": round(time.perf_counter() - start, 1)}
        _remember(key, entry)
        how = f"measured in {entry['seconds']} s"
    else:
        how = f"measured {entry['measured']}, cached in {cache_file()}"
    if verbose:
        ms = entry["ms_per_step"]
        ratio = ms["float32"] / ms["bfloat16"]
        print(f"--precision auto: {entry['choice']} (float32 {ms['float32']} ms a step, bfloat16 {ms['bfloat16']} ms: "
              f"bfloat16 {ratio:.2f}x as fast; {how})", flush=True)
    return dataclasses.replace(config, precision=entry["choice"])
