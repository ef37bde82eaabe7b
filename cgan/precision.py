"""Which dtype policy trains fastest here: measured once per machine and model size, then remembered.

`--precision auto` times a few training steps in float32 and in mixed bfloat16 on
the machine at hand and takes the faster. No CPU flag predicts it: on an Intel CPU
with AMX mixed bfloat16 ran 1.4-1.9x float32, on an Intel CPU with AVX-512 BF16 but
no AMX it was slower, and on an AMD EPYC with AVX-512 BF16 and no AMX it was 1.27x
faster (docs/experiments.md). The choice is cached in
`~/.cache/cgan_mnist/precision.json` (or `$CGAN_CACHE_DIR`), keyed by the CPU, the
TensorFlow version and everything in the Config that sets a step's work, so it costs
some seconds once and nothing after.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from pathlib import Path

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
MARGIN = 1.05  # bfloat16 must be this much faster to be chosen: within noise, float32 is the simpler numerics
# bfloat16 runs its first few steps much slower; float32 steps run in spells of about 62 or about
# 126 ms on the AMD EPYC (measured), hence five rounds and the fastest of them.
WARMUP_STEPS, TIMED_STEPS, ROUNDS = 15, 10, 5
# Config fields that change how much work one step is; the rest (rates, seeds, schedules) do not.
WORK_FIELDS = ("dataset", "condition", "batch_size", "latent_dim", "g_width", "g_extra_convs", "d_width", "d_extra_convs",
               "loss", "critic_steps", "unconditional")


def compute_policy(precision: str) -> str:
    """The Keras dtype policy of a resolved precision ("float32" or "bfloat16"); call `resolve` for "auto" first."""
    if precision not in POLICIES:
        raise ValueError(f"precision {precision!r} has no policy; resolve 'auto' first (cgan.precision.resolve)")
    return POLICIES[precision]


def cache_file() -> Path:
    from cgan.files import cache_dir

    return cache_dir() / "precision.json"


def cpu_description() -> str:
    """The CPU's model name and the flags that matter to bfloat16 speed."""
    name, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    relevant = sorted(flags & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "fma"})
    return f"{name} [{' '.join(relevant)}] x{os.cpu_count()}"


def cache_key(config) -> str:
    from cgan.backend import tf

    work = {name: getattr(config, name) for name in WORK_FIELDS}
    text = json.dumps({"cpu": cpu_description(), "tensorflow": tf.__version__, "work": work}, sort_keys=True)
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


def _runner(config, networks, precision: str, dataset):
    """A function running n training steps of `config` in `precision` on random images."""
    import numpy as np

    from cgan.backend import tf
    from cgan.gan import make_gan

    gan = make_gan(dataclasses.replace(config, precision=precision), networks)
    gan.set_steps_per_call(1)
    b = config.batch_size * config.critic_steps
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (b, *dataset.image_shape)).astype("float32"))
    labels = tf.constant(rng.integers(0, dataset.num_classes, (b, 1)).astype("int32"))
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
    return lambda steps: gan.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)


def step_times(config, networks, dataset) -> dict[str, float]:
    """Seconds of one training step of `config` in each precision: its fastest round, after a warm-up.

    The precisions are timed in alternating rounds, so that a busy spell of the machine
    slows both rather than one; the fastest round, because a spell only ever adds time.
    """
    import numpy as np

    from cgan.backend import keras

    runners = {precision: _runner(config, networks, precision, dataset) for precision in POLICIES}
    for run in runners.values():
        run(WARMUP_STEPS)
    times = {precision: [] for precision in POLICIES}
    for _ in range(ROUNDS):
        for precision, run in runners.items():
            start = time.perf_counter()
            run(TIMED_STEPS)
            times[precision].append((time.perf_counter() - start) / TIMED_STEPS)
    del runners
    keras.backend.clear_session(free_memory=True)
    return {precision: float(np.min(t)) for precision, t in times.items()}


def resolve(config, networks, *, verbose: bool = True):
    """`config` with precision "auto" replaced by the faster of float32 and bfloat16 here (measured or cached)."""
    if config.precision != "auto":
        return config
    from cgan.config import data_of

    key = cache_key(config)
    entry = _read_cache().get(key)
    if entry is None:
        dataset = data_of(config)
        times = step_times(config, networks, dataset)
        choice = "bfloat16" if times["bfloat16"] * MARGIN < times["float32"] else "float32"
        entry = {"choice": choice, "ms_per_step": {p: round(1000 * t, 1) for p, t in times.items()},
                 "cpu": cpu_description(), "measured": time.strftime("%Y-%m-%d %H:%M")}
        _remember(key, entry)
        how = "measured"
    else:
        how = f"measured {entry['measured']}, cached in {cache_file()}"
    if verbose:
        ms = entry["ms_per_step"]
        print(f"--precision auto: {entry['choice']} (float32 {ms['float32']} ms a step, bfloat16 {ms['bfloat16']} ms; "
              f"{how})", flush=True)
    return dataclasses.replace(config, precision=entry["choice"])
