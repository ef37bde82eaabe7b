"""cgan/budget.py: --minutes M plans as many steps as fit in M minutes here, and fits the run to them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_main, tiny_config

import cgan_mnist
from cgan import budget
from cgan.config import Config
from cgan.data import to_model_range


@pytest.mark.parametrize("minutes, seconds_a_step, steps, interval, decay", [
    (10, 0.0705, 8000, 500, 0.999),  # a default run's length at its AVX-512 pace
    (3, 0.040, 4230, 350, 0.9981),  # 12 dumps, one every 15 s
    (3, 0.320, 520, 40, 0.9846),  # the AVX2 EPYC's float32 step
    (0.5, 5.0, 10, 10, 0.9),  # the least: one compiled call of 10, whatever the budget
])
def test_the_plan_fits_the_minutes_and_the_run_to_the_steps(minutes, seconds_a_step, steps, interval, decay):
    planned = budget.fit(Config(), minutes, seconds_a_step)
    assert (planned.train_steps, planned.save_interval, planned.ema_decay) == (steps, interval, decay)
    fits = planned.train_steps * seconds_a_step <= minutes * 60 * (1 - budget.DUMP_SHARE) + 1e-9
    assert planned.train_steps == 10 or fits
    planned.validate()


def test_the_compiling_training_does_again_comes_off_the_budget():
    assert budget.fit(Config(), 3, 0.050, 20.0).train_steps == 2980  # (180 s x 0.94 - 20 s) / 50 ms: 2,984
    assert budget.fit(Config(), 0.5, 0.040, 60.0).train_steps == 10  # never less than one compiled call


def test_a_dump_interval_or_average_asked_for_stays():
    asked = dataclasses.replace(Config(), save_interval=100, ema_decay=0.99)
    planned = budget.fit(asked, 3, 0.04)
    assert (planned.save_interval, planned.ema_decay) == (100, 0.99) and planned.train_steps == 4230


@pytest.mark.parametrize("seconds_of_128, batch, steps", [
    (0.175, 64, 1610),  # one core of the AVX-512 EPYC in float32: 800 steps of 128 are too few
    (0.078, 64, 3610),  # 1,800 steps of 128, short of the default run's 3,510: still too few
    (0.035, 128, 4020),  # enough steps of the default batch
])
def test_a_short_run_takes_smaller_batches(monkeypatch, capsys, seconds_of_128, batch, steps):
    timed = []

    def step_seconds(config, networks, dataset, batches=None):
        timed.append(config.batch_size)
        return seconds_of_128 * config.batch_size / 128, 0.0

    monkeypatch.setattr(budget, "step_seconds", step_seconds)
    planned = budget.plan(Config(), None, None, 2.5)
    assert (planned.batch_size, planned.train_steps) == (batch, steps)
    assert timed == [128, 64][: 1 + (batch == 64)]  # the smaller batch is timed, not guessed
    assert f"a step of batch {batch} takes" in capsys.readouterr().out
    asked = budget.plan(dataclasses.replace(Config(), batch_size=96), None, None, 2.5, verbose=False)
    assert asked.batch_size == 96  # a batch size asked for stays, however few steps fit
    grouped = budget.plan(dataclasses.replace(Config(), minibatch_std=128), None, None, 2.5, verbose=False)
    assert grouped.batch_size == 128  # D's groups of 128 would not divide a batch of 64


def test_the_step_is_timed_on_the_runs_own_batches(mnist_small, tmp_path, monkeypatch):
    """On random images a step took 1.4x its training time on one core (128 against 92 ms): the plan fell short."""
    seen = {}

    def step_seconds(config, networks, dataset, batches=None):
        images, given = next(iter(batches(config)))
        seen["images"], seen["labels"] = images.numpy(), given["label"].numpy()
        return 60.0, 0.0  # the least plan, one call of 10 steps

    monkeypatch.setattr(budget, "step_seconds", step_seconds)
    cgan_mnist.train(tiny_config(), out_dir=tmp_path, data=mnist_small, minutes=0.5, limit=32, verbose=False)
    with np.load(mnist_small) as d:
        kept, kept_labels = to_model_range(d["x_train"][:32].astype(np.float32)), d["y_train"][:32]
    assert seen["images"].shape == (16, 28, 28, 1)
    for image, label in zip(seen["images"], seen["labels"][:, 0]):  # each one of the 32 kept, with its label
        same = np.flatnonzero(np.abs(kept - image[..., 0]).max(axis=(1, 2)) < 1e-6)
        assert len(same) and label in kept_labels[same]


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "3", "--train-steps", "100"], "does not go with --train-steps"),
    (["--minutes", "3", "--dry-run"], "does not go with --dry-run"),
    (["--minutes", "0"], "--minutes must be between 0.5"),
    (["--minutes", "nan"], "--minutes must be between 0.5"),
])
def test_minutes_refuses_what_does_not_go_with_it(tmp_path, capsys, argv, message):
    assert_one_line_error(run_main([*argv, "--out-dir", str(tmp_path / "run")]), capsys, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_budgeted_run_records_its_plan_and_a_resume_finishes_it(mnist_small, tmp_path, capsys, monkeypatch):
    config = tiny_config(save_interval=Config.save_interval)
    measured = budget.step_seconds

    def slower(*args, **kwargs):  # timed for real, then taken as 100x slower: the half minute plans few steps
        step, start = measured(*args, **kwargs)
        return 100 * step, start

    monkeypatch.setattr(budget, "step_seconds", slower)
    path = cgan_mnist.train(config, out_dir=tmp_path, data=mnist_small, minutes=0.5)
    out = capsys.readouterr().out
    run = json.loads((tmp_path / "run.json").read_text())
    steps = run["config"]["train_steps"]
    assert run["minutes"] == 0.5 and steps % 10 == 0 and steps > config.train_steps
    assert "--minutes 0.5: a step of batch 16 takes" in out and f"so {steps:,} steps" in out
    assert run["config"]["save_interval"] == max(10, steps // 2 // 10 * 10)  # 30 s: two dumps, 15 s apart
    assert cgan_mnist.resume(tmp_path) == path  # finished: the same plan, nothing planned again
    assert "nothing to train" in capsys.readouterr().out
