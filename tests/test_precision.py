"""cgan/precision.py: --precision auto takes float32 at once where bfloat16 is emulated, else the faster of the two.

The CPU is faked (a /proc/cpuinfo text of each kind the project has met), so every branch is
checked on every machine; one slow test measures for real on the machine at hand.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import tiny_config

import cgan_mnist
from cgan import precision
from cgan.config import Config, compute_policy

# The /proc/cpuinfo lines that matter, of the CPU kinds met so far (flags cut to the relevant ones).
AVX2_EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx fma avx2\n"
AVX512_EPYC = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 fma avx512f avx512_bf16 avx512_vnni\n"
AMX_XEON = "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU part\t: 0xd4f\n"
ARM_PLAIN = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\nCPU part\t: 0xd0c\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    return tmp_path / "precision.json"


def fake_cpu(monkeypatch, text, machine="x86_64"):
    """Make `precision` read `text` as /proc/cpuinfo on a `machine` with no GPU."""
    real = precision.cpu_info
    monkeypatch.setattr(precision, "cpu_info", lambda given=None: real(text if given is None else given))
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    monkeypatch.setattr(precision, "_has_gpu", lambda: False)


def fake_times(monkeypatch, float32_ms, bfloat16_ms):
    calls = []

    def step_times(config, networks, dataset):
        calls.extend(["float32", "bfloat16"])
        return {"float32": float32_ms / 1000, "bfloat16": bfloat16_ms / 1000}

    monkeypatch.setattr(precision, "step_times", step_times)
    return calls


@pytest.mark.parametrize("text, machine, native", [
    (AVX2_EPYC, "x86_64", False), (AVX512_EPYC, "x86_64", True), (AMX_XEON, "x86_64", True),
    (ARM_BF16, "aarch64", True), (ARM_PLAIN, "aarch64", False), ("", "x86_64", None), (ARM_PLAIN, "riscv64", None),
])
def test_native_bfloat16_is_read_from_the_cpu_flags(text, machine, native):
    assert precision.native_bfloat16(text, machine=machine) is native


def test_without_bfloat16_instructions_auto_takes_float32_at_once(cache, monkeypatch, capsys):
    fake_cpu(monkeypatch, AVX2_EPYC)
    calls = fake_times(monkeypatch, 300.0, 4600.0)
    assert "AMD EPYC 7B13 [avx2 fma]" in precision.cpu_description()
    assert precision.resolve(Config(), cgan_mnist.NETWORKS).precision == "float32"
    assert calls == [] and not cache.exists()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "--precision auto: float32 (this CPU has no bfloat16 instructions" in out


@pytest.mark.parametrize("cpu, float32_ms, bfloat16_ms, expected", [
    (AVX512_EPYC, 85.0, 67.0, "bfloat16"),  # the AMD EPYC with AVX-512 BF16: bfloat16 1.27x faster
    (AVX512_EPYC, 58.0, 100.0, "float32"),  # an Intel CPU with AVX-512 BF16 and no AMX: bfloat16 slower
    (AMX_XEON, 60.0, 58.0, "float32"),  # within the 5% margin: the simpler numerics
    (ARM_BF16, 80.0, 50.0, "bfloat16"),
])
def test_with_bfloat16_instructions_auto_times_both_says_so_first_and_remembers(cache, monkeypatch, capsys, cpu,
                                                                                float32_ms, bfloat16_ms, expected):
    fake_cpu(monkeypatch, cpu, machine="aarch64" if cpu is ARM_BF16 else "x86_64")
    calls = fake_times(monkeypatch, float32_ms, bfloat16_ms)
    config = tiny_config(precision="auto")
    assert precision.resolve(config, cgan_mnist.NETWORKS).precision == expected
    assert sorted(calls) == ["bfloat16", "float32"]
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("--precision auto: timing float32 and bfloat16 once for this machine") and "20 s" in first
    assert second.startswith(f"--precision auto: {expected} (float32 {float32_ms} ms a step, bfloat16 {bfloat16_ms} ms")
    assert f"bfloat16 {float32_ms / bfloat16_ms:.2f}x as fast; measured in" in second
    saved = json.loads(cache.read_text())
    assert [entry["choice"] for entry in saved.values()] == [expected]

    calls.clear()  # the same machine and model size: no new measurement
    assert precision.resolve(dataclasses.replace(config, g_lr=1e-3, seed=9), cgan_mnist.NETWORKS).precision == expected
    assert calls == [] and "cached in" in capsys.readouterr().out
    precision.resolve(dataclasses.replace(config, g_width=16), cgan_mnist.NETWORKS)  # another model size: measured
    assert sorted(calls) == ["bfloat16", "float32"] and len(json.loads(cache.read_text())) == 2


class FakeClock:
    """Time that passes only as the fake runners run."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_runners(clock, seconds_a_step, compile_s=2.0):
    """make_runner for `measure`: each runner advances `clock` by its steps' time; `log` records (precision, steps)."""
    log = []

    def make_runner(name):
        compiled = []

        def run(steps):
            clock.now += seconds_a_step[name] * steps + (0 if compiled else compile_s)
            compiled.append(True)
            log.append((name, steps))
            return seconds_a_step[name]

        return run

    return make_runner, log


def test_a_candidate_clearly_slower_at_warm_up_is_timed_no_further():
    clock = FakeClock()
    make_runner, log = fake_runners(clock, {"float32": 0.32, "bfloat16": 4.6})  # the AVX2 EPYC's figures
    times = precision.measure(make_runner, clock=clock)
    assert times == {"float32": 0.32, "bfloat16": 4.6}
    assert [steps for name, steps in log if name == "bfloat16"] == [1, precision.WARMUP_STEPS]
    assert clock.now <= precision.BUDGET_S + 4.6 * (1 + precision.WARMUP_STEPS)  # float32's rounds fit the budget


@pytest.mark.parametrize("seconds_a_step", [
    {"float32": 0.068, "bfloat16": 0.054},  # the AMD EPYC with AVX-512 BF16
    {"float32": 0.13, "bfloat16": 0.12},
    {"float32": 0.5, "bfloat16": 0.45},  # a big model: fewer rounds, same budget
])
def test_measuring_fits_the_budget_compiling_included(seconds_a_step):
    clock = FakeClock()
    make_runner, log = fake_runners(clock, seconds_a_step)
    assert precision.measure(make_runner, clock=clock) == seconds_a_step
    assert clock.now <= precision.BUDGET_S
    rounds = [steps for name, steps in log if name == "bfloat16"][2:]
    assert 1 <= len(rounds) <= precision.ROUNDS


def test_a_precision_given_is_taken_as_is(cache, monkeypatch):
    calls = fake_times(monkeypatch, 1.0, 1.0)
    for given in ("float32", "bfloat16"):
        assert precision.resolve(tiny_config(precision=given), cgan_mnist.NETWORKS).precision == given
    assert calls == [] and not cache.exists()
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        compute_policy("auto")


def test_an_unwritable_cache_costs_a_measurement_not_a_failure(tmp_path, monkeypatch):
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setenv("CGAN_CACHE_DIR", str(blocked / "cache"))
    fake_cpu(monkeypatch, AMX_XEON)
    fake_times(monkeypatch, 50.0, 40.0)
    assert precision.resolve(tiny_config(precision="auto"), cgan_mnist.NETWORKS).precision == "bfloat16"


@pytest.mark.slow
def test_a_real_auto_on_this_machine_and_the_run_records_its_choice(cache, mnist_small, tmp_path):
    config = tiny_config(precision="auto", train_steps=2, save_interval=2)
    chosen = precision.resolve(config, cgan_mnist.NETWORKS, verbose=False)
    if precision.native_bfloat16() is not False:
        entry = next(iter(json.loads(cache.read_text()).values()))
        assert chosen.precision == entry["choice"] and all(ms > 0 for ms in entry["ms_per_step"].values())
    cgan_mnist.train(config, out_dir=tmp_path / "run", data=mnist_small, verbose=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["precision"] == chosen.precision  # a resume trains in the same precision


def test_the_cache_key_follows_the_work_of_a_step_only():
    base = Config()
    same = dataclasses.replace(base, g_lr=1e-3, train_steps=5, seed=3, ema_decay=0.9)
    assert precision.cache_key(base) == precision.cache_key(same)
    for change in ({"batch_size": 32}, {"dataset": "pairs"}, {"loss": "wgan-gp"}, {"d_width": 8}):
        assert precision.cache_key(dataclasses.replace(base, **change)) != precision.cache_key(base)
