"""cgan/precision.py: --precision auto takes whichever precision trains faster here, measured once and remembered."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import tiny_config

import cgan_mnist
from cgan import precision
from cgan.config import Config


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    return tmp_path / "precision.json"


def fake_times(monkeypatch, float32_ms, bfloat16_ms):
    calls = []

    def step_times(config, networks, dataset):
        calls.extend(["float32", "bfloat16"])
        return {"float32": float32_ms / 1000, "bfloat16": bfloat16_ms / 1000}

    monkeypatch.setattr(precision, "step_times", step_times)
    return calls


@pytest.mark.parametrize("float32_ms, bfloat16_ms, expected", [
    (85.0, 67.0, "bfloat16"),  # this AMD EPYC: bfloat16 1.27x faster
    (58.0, 100.0, "float32"),  # an Intel CPU with AVX-512 BF16 and no AMX: bfloat16 slower
    (60.0, 58.0, "float32"),  # within the 5% margin: the simpler numerics
])
def test_auto_takes_the_faster_measured_precision_and_remembers_it(cache, monkeypatch, capsys, float32_ms, bfloat16_ms,
                                                                   expected):
    calls = fake_times(monkeypatch, float32_ms, bfloat16_ms)
    config = tiny_config(precision="auto")
    assert precision.resolve(config, cgan_mnist.NETWORKS).precision == expected
    assert sorted(calls) == ["bfloat16", "float32"]
    out = capsys.readouterr().out
    assert f"--precision auto: {expected} (float32 {float32_ms} ms a step, bfloat16 {bfloat16_ms} ms; measured)" in out
    saved = json.loads(cache.read_text())
    assert [entry["choice"] for entry in saved.values()] == [expected]

    calls.clear()  # the same machine and model size: no new measurement
    assert precision.resolve(dataclasses.replace(config, g_lr=1e-3, seed=9), cgan_mnist.NETWORKS).precision == expected
    assert calls == [] and "cached in" in capsys.readouterr().out
    precision.resolve(dataclasses.replace(config, g_width=16), cgan_mnist.NETWORKS)  # another model size: measured
    assert sorted(calls) == ["bfloat16", "float32"] and len(json.loads(cache.read_text())) == 2


def test_a_precision_given_is_taken_as_is(cache, monkeypatch):
    calls = fake_times(monkeypatch, 1.0, 1.0)
    for given in ("float32", "bfloat16"):
        assert precision.resolve(tiny_config(precision=given), cgan_mnist.NETWORKS).precision == given
    assert calls == [] and not cache.exists()
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        precision.compute_policy("auto")


def test_an_unwritable_cache_costs_a_measurement_not_a_failure(tmp_path, monkeypatch):
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setenv("CGAN_CACHE_DIR", str(blocked / "cache"))
    fake_times(monkeypatch, 50.0, 40.0)
    assert precision.resolve(tiny_config(precision="auto"), cgan_mnist.NETWORKS).precision == "bfloat16"


@pytest.mark.slow
def test_a_real_measurement_of_a_tiny_model_and_the_run_records_its_choice(cache, mnist_small, tmp_path):
    config = tiny_config(precision="auto", train_steps=2, save_interval=2)
    chosen = precision.resolve(config, cgan_mnist.NETWORKS, verbose=False)
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert chosen.precision == entry["choice"] and all(ms > 0 for ms in entry["ms_per_step"].values())
    cgan_mnist.train(config, out_dir=tmp_path / "run", data=mnist_small, verbose=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["precision"] == entry["choice"]  # a resume trains in the same precision


def test_the_cache_key_follows_the_work_of_a_step_only():
    base = Config()
    same = dataclasses.replace(base, g_lr=1e-3, train_steps=5, seed=3, ema_decay=0.9)
    assert precision.cache_key(base) == precision.cache_key(same)
    for change in ({"batch_size": 32}, {"dataset": "pairs"}, {"loss": "wgan-gp"}, {"d_width": 8}):
        assert precision.cache_key(dataclasses.replace(base, **change)) != precision.cache_key(base)
