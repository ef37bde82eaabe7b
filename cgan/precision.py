"""Which dtype policy trains fastest on this CPU."""

from __future__ import annotations

from pathlib import Path


def cpu_has_fast_bfloat16() -> bool:
    """True on x86 CPUs with AMX, whose bfloat16 tile units oneDNN uses for convolutions and matmuls.

    AVX-512 BF16 alone is not taken as enough: on one such CPU without AMX the
    casts of mixed bfloat16 cost more than the narrower arithmetic saved
    (docs/experiments.md has the figures).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def compute_policy(precision: str) -> str:
    """The Keras dtype policy for the training networks: `auto` is mixed bfloat16 on AMX CPUs, else float32."""
    if precision == "auto":
        return "mixed_bfloat16" if cpu_has_fast_bfloat16() else "float32"
    return "mixed_bfloat16" if precision == "bfloat16" else "float32"
