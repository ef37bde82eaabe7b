"""`--minutes M`: as many training steps as fit in M minutes on this machine, and a run fitted to them.

The step is timed here, on the run's own training batches (compiled, warmed up, then the
median of a few rounds, each the time of 30 steps beyond a call's own cost; training compiles
again, as long as the warm-up did), so the plan follows the CPU at hand: the same `--minutes 3`
trains about four times as many steps on an AVX-512 CPU with bfloat16 as on an
AVX2-only one. The learning rates decay over the steps chosen (the schedule is made from
`train_steps`), the weight average's horizon is about an eighth of them (0.999, a thousand
steps, for 8,000) and the grids, checkpoints and loss curves come 16 times a run (at most one
every 15 seconds), unless the flags set them. Where fewer than `SHORT_RUN_STEPS` steps of the
default batch fit, the run takes batches of `SHORT_RUN_BATCH` instead (timed too), about twice
as many steps for the same images: a short run learns more from more, smaller steps
(docs/experiments.md, "`--minutes` on a slow CPU"). `run.json` records the plan, so `--resume`
finishes it rather than planning again.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

from cgan.config import Config

DUMP_SHARE = 0.06  # of the budget, for what the loop does besides steps and compiling (grids, checkpoints, curves)
# Grids, checkpoints and loss curves: 16 a run, but not more than one every DUMP_GAP_S seconds (a dump
# took 0.45 s on both cores of the AVX-512 EPYC: 19 of them made a 0.5-minute plan train 0.7 minutes).
DUMPS_PER_RUN, DUMP_GAP_S = 16, 15
# Steps are timed as training runs them, 10 to a compiled call; a round's figure is the difference
# between a run of SHORT and one of LONG steps, so that what each `fit` call costs once drops out.
STEPS_PER_CALL, SHORT, LONG, ROUNDS = 10, 10, 40, 3
MIN_MINUTES, MAX_MINUTES = 0.5, 10_000
# Below this many steps of the default batch (the default run's length), smaller batches. With the
# R1 default of 2026-11-30, for the same images, batch 64 was nearer the data at every budget
# measured: 1,770 steps of 128 gave FD 1.90x / 4.31x real, 3,500 of 64 1.74x / 1.68x; 2,650 of 128
# 1.67x / 2.28x, 5,300 of 64 1.51x / 1.11x; 3,570 of 128 1.45x / 1.29x and 1.26x / 1.38x (seeds 0,
# 1), 7,140 of 64 1.20x / 1.00x and 1.28x / 1.20x (docs/experiments.md, "`--minutes` timed on real
# batches").
SHORT_RUN_STEPS, SHORT_RUN_BATCH = Config.train_steps, 64


def step_seconds(config: Config, networks, dataset, batches=None) -> tuple[float, float]:
    """Seconds of one training step of `config` here, the median of a few rounds after a warm-up, and the
    seconds the warm-up took beyond its steps (tracing and compiling, which training does again).

    `batches(config)` gives the tf.data.Dataset training would take. Timed on random images
    instead, a step of the default took 128 ms on one core of the AVX-512 EPYC where training
    took 92; on its own batches the rounds spread over 89-94 ms, so their fastest was short of
    training's pace by 3% (docs/experiments.md, "`--minutes` timed on real batches").
    """
    from cgan.backend import keras
    from cgan.precision import step_runner

    run = step_runner(config, networks, config.precision, dataset, steps_per_call=STEPS_PER_CALL,
                      batches=None if batches is None else batches(config))
    try:
        warm_up = run(SHORT) * SHORT  # traces and compiles the step, and warms it up
        rounds = []
        for _ in range(ROUNDS):
            short, long = run(SHORT) * SHORT, run(LONG) * LONG
            rounds.append((long - short) / (LONG - SHORT))
        step = max(statistics.median(rounds), 1e-4)
        return step, max(warm_up - SHORT * step, 0.0)
    finally:
        del run
        keras.backend.clear_session(free_memory=True)


def fit(config: Config, minutes: float, seconds_a_step: float, start_seconds: float = 0.0) -> Config:
    """`config` with the steps that fit in `minutes` at `seconds_a_step` after `start_seconds` of compiling,
    and the dumps and average fitted to them.

    A `save_interval` or `ema_decay` other than the default was asked for and stays.
    """
    seconds = minutes * 60 * (1 - DUMP_SHARE) - start_seconds
    steps = max(10, int(seconds / seconds_a_step) // 10 * 10)  # whole compiled calls of 10
    changes = {"train_steps": steps}
    if config.save_interval == Config.save_interval:
        dumps = max(1, min(DUMPS_PER_RUN, int(minutes * 60 / DUMP_GAP_S)))
        changes["save_interval"] = max(10, steps // dumps // 10 * 10)
    if config.ema_decay == Config.ema_decay:
        changes["ema_decay"] = round(min(Config.ema_decay, max(0.9, 1 - 8 / steps)), 4)
    return dataclasses.replace(config, **changes)


def plan(config: Config, networks, dataset, minutes: float, *, batches=None, verbose: bool = True) -> Config:
    """`config` planned to train for about `minutes` here (its precision already resolved).

    `batches(config)` gives the run's training batches, which the step is timed on. A batch
    size other than the default was asked for and stays; the default one gives way to
    `SHORT_RUN_BATCH` where too few of its steps fit.
    """
    seconds, start = step_seconds(config, networks, dataset, batches)
    planned, smaller = fit(config, minutes, seconds, start), ""
    default_batch = config.batch_size == Config.batch_size
    groups_fit = not config.minibatch_std or SHORT_RUN_BATCH % config.minibatch_std == 0  # D's spread groups
    if planned.train_steps < SHORT_RUN_STEPS and default_batch and groups_fit:
        smaller = f" ({planned.train_steps:,} of batch {config.batch_size} in {1000 * seconds:.1f} ms: too few)"
        config = dataclasses.replace(config, batch_size=SHORT_RUN_BATCH)
        seconds, start = step_seconds(config, networks, dataset, batches)
        planned = fit(config, minutes, seconds, start)
    if verbose:
        print(f"--minutes {minutes:g}: a step of batch {config.batch_size} takes {1000 * seconds:.1f} ms here, so "
              f"{planned.train_steps:,} steps{smaller}, a dump every {planned.save_interval}, weight average decay "
              f"{planned.ema_decay}", flush=True)
    return planned


def check_minutes(minutes: float | None) -> None:
    from cgan.errors import UserError

    if minutes is not None and not (math.isfinite(minutes) and MIN_MINUTES <= minutes <= MAX_MINUTES):
        raise UserError(f"--minutes must be between {MIN_MINUTES} and {MAX_MINUTES:,}, got {minutes}")
