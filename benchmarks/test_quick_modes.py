"""The measurement scripts' quick modes run and report what their full runs report.

    python -m pytest benchmarks -q    # about a minute and a half on 2 cores: before regenerating figures

They live here, not in tests/: they time and train at the default sizes, which the suite
(`python -m pytest -q`, tests/ only) cannot afford on the slowest CPU kind; the suite checks
that every script here imports and parses its flags (tests/test_benchmarks.py).
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the scripts, and the package they measure


@pytest.mark.slow
def test_train_speed_benchmark_quick_mode():
    from cgan.precision import native_bfloat16

    result = import_module("train_speed").main(["--quick", "--precision", "float32"])
    assert result["project_images_per_s"] > 0 and result["classic_images_per_s"] > 0
    assert result["step_gflop"] > 0 and 0 < result["share_of_matmul_peak"] < 1.5
    if native_bfloat16() is False:  # emulated: not timed
        assert result["other_precision_images_per_s"] is None and result["auto_picked_the_faster"] is None
    else:
        assert result["other_precision_images_per_s"] > 0
    assert result["classic_networks_learned"] == {"discriminator": True, "generator": True}
    assert result["peak_rss_mb"] > 0


@pytest.mark.slow
def test_compare_variants_quick_mode(tmp_path):
    # bce: one D update a step, so the quickest of the conditional variants to trace (WGAN-GP's five: test_gan.py)
    result = import_module("compare_variants").main(["--quick", "--out", str(tmp_path), "--variants", "bce",
                                                      "unconditional"])
    assert set(result["variants"]) == {"bce", "unconditional"}
    assert result["variants"]["unconditional"]["accuracy"] is None and result["variants"]["bce"]["accuracy"] >= 0
    assert {p.name for p in tmp_path.iterdir()} == {"bce.png", "unconditional.png", "compare_variants.txt",
                                                    "compare_variants.json"}


def test_shape_speed_benchmark_on_a_few_digits():
    result = import_module("shape_speed").main(["--count", "300"])
    assert result["count"] == 300 and result["seconds_1_threads"] > 0


@pytest.mark.slow
def test_rivals_quick_mode_draws_scores_and_saves_each_contender(tmp_path):
    import numpy as np

    # the GAN's contender is the project's --minutes run, which benchmarks/peers.py and the budget tests train
    result = import_module("rivals").main(["--quick", "--out", str(tmp_path), "--contenders", "cvae", "flow"])
    assert [row["contender"] for row in result["rows"]] == ["cvae", "flow"]
    for row in result["rows"]:
        assert row["steps"] >= 1 and row["draw_seconds_1000"] > 0 and 0 <= row["accuracy"] <= 1
        with np.load(tmp_path / f"{row['contender']}_0.05min.npz") as saved:  # the layout of --save-npz
            assert saved["images"].shape == (100, 28, 28) and saved["images"].dtype == np.uint8
            assert saved["labels"].tolist() == np.repeat(np.arange(10), 10).tolist()
    assert {"rivals.txt", "rivals.json", "flow_0.05min.png"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.slow
def test_rivals_tuning_names_the_best_setting_of_each_rival_and_tries_every_sampler(tmp_path, monkeypatch):
    rivals = import_module("rivals")
    monkeypatch.setattr(rivals, "TUNING", {"cvae": [{}], "flow": [{}, {"flow_lr": 2e-3}]})
    monkeypatch.setattr(rivals, "SAMPLERS", [(1.0, 2), (3.0, 2)])
    best = rivals.main(["--tune", "--quick", "--seed", "0", "--out", str(tmp_path), "--contenders", "flow"])
    assert set(best) == {"flow"} and best["flow"]["seed"] == 0
    assert best["flow"]["guidance"] in (1.0, 3.0) and best["flow"]["sampler_steps"] == 2
    lines = (tmp_path / "tuning_seed0_0.05min.txt").read_text().splitlines()
    tried = [line.split("  ")[0] for line in lines if line.startswith(("cvae:", "flow:"))]
    assert tried == ["flow: as given; w=1, 2 steps", "flow: as given; w=3, 2 steps",
                     "flow: flow_lr=0.002; w=1, 2 steps", "flow: flow_lr=0.002; w=3, 2 steps"]
    assert not list(tmp_path.glob("*.npz"))  # tuning saves no samples
