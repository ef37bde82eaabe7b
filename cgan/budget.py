"""`--minutes M`: as many training steps as fit in M minutes on this machine, and a run fitted to them.

The step is timed here (compiled, warmed up, then its fastest of a few rounds, each the time
of 30 steps beyond a call's own cost), so the plan follows the CPU at hand: the same
`--minutes 3` trains about four times as many steps on an AVX-512 CPU with bfloat16 as on an
AVX2-only one. The learning rates decay over the steps chosen (the schedule is made from
`train_steps`), the weight average's horizon is about an eighth of them (0.999, a thousand
steps, for 8,000) and the grids, checkpoints and loss curves come 16 times a run, unless the
flags set them. Where fewer than `SHORT_RUN_STEPS` steps of the default batch fit, the run
takes batches of `SHORT_RUN_BATCH` instead (timed too), about twice as many steps for the same
images: a short run learns more from more, smaller steps (docs/experiments.md, "`--minutes` on
a slow CPU"). `run.json` records the plan, so `--resume` finishes it rather than planning again.
"""

from __future__ import annotations

import dataclasses
import math

from cgan.config import Config

DUMP_SHARE = 0.06  # of the budget, for what the loop does besides steps (grids, checkpoints, curves, compiling)
DUMPS_PER_RUN = 16
# Steps are timed as training runs them, 10 to a compiled call; a round's figure is the difference
# between a run of SHORT and one of LONG steps, so that what each `fit` call costs once drops out.
STEPS_PER_CALL, SHORT, LONG, ROUNDS = 10, 10, 40, 3
MIN_MINUTES, MAX_MINUTES = 0.5, 10_000
# Below this many steps of the default batch, smaller batches: on one core of the AVX-512 EPYC
# standing in for an AVX2 CPU, 2.5 minutes gave 800 steps of 128 (97.3%, FD 12x real) or 1,780
# of 64 (98.8%, 3.6x); 8.2 minutes 2,960 of 128 (1.8x) or 5,990 of 64 (2.1x).
SHORT_RUN_STEPS, SHORT_RUN_BATCH = 1_500, 64


def step_seconds(config: Config, networks, dataset) -> float:
    """Seconds of one training step of `config` here: the fastest of a few rounds after a warm-up."""
    from cgan.backend import keras
    from cgan.precision import step_runner

    run = step_runner(config, networks, config.precision, dataset, steps_per_call=STEPS_PER_CALL)
    try:
        run(SHORT)  # traces and compiles the step, and warms it up
        rounds = []
        for _ in range(ROUNDS):
            short, long = run(SHORT) * SHORT, run(LONG) * LONG
            rounds.append((long - short) / (LONG - SHORT))
        return max(min(rounds), 1e-4)
    finally:
        del run
        keras.backend.clear_session(free_memory=True)


def fit(config: Config, minutes: float, seconds_a_step: float) -> Config:
    """`config` with the steps that fit in `minutes` at `seconds_a_step`, and the dumps and average fitted to them.

    A `save_interval` or `ema_decay` other than the default was asked for and stays.
    """
    steps = max(10, int(minutes * 60 * (1 - DUMP_SHARE) / seconds_a_step) // 10 * 10)  # whole compiled calls of 10
    changes = {"train_steps": steps}
    if config.save_interval == Config.save_interval:
        changes["save_interval"] = max(10, steps // DUMPS_PER_RUN // 10 * 10)
    if config.ema_decay == Config.ema_decay:
        changes["ema_decay"] = round(min(Config.ema_decay, max(0.9, 1 - 8 / steps)), 4)
    return dataclasses.replace(config, **changes)


def plan(config: Config, networks, dataset, minutes: float, *, verbose: bool = True) -> Config:
    """`config` planned to train for about `minutes` here (its precision already resolved).

    A batch size other than the default was asked for and stays; the default one gives way to
    `SHORT_RUN_BATCH` where too few of its steps fit.
    """
    seconds = step_seconds(config, networks, dataset)
    planned, smaller = fit(config, minutes, seconds), ""
    default_batch = config.batch_size == Config.batch_size
    groups_fit = not config.minibatch_std or SHORT_RUN_BATCH % config.minibatch_std == 0  # D's spread groups
    if planned.train_steps < SHORT_RUN_STEPS and default_batch and groups_fit:
        smaller = f" ({planned.train_steps:,} of batch {config.batch_size} in {1000 * seconds:.1f} ms: too few)"
        config = dataclasses.replace(config, batch_size=SHORT_RUN_BATCH)
        seconds = step_seconds(config, networks, dataset)
        planned = fit(config, minutes, seconds)
    if verbose:
        print(f"--minutes {minutes:g}: a step of batch {config.batch_size} takes {1000 * seconds:.1f} ms here, so "
              f"{planned.train_steps:,} steps{smaller}, a dump every {planned.save_interval}, weight average decay "
              f"{planned.ema_decay}", flush=True)
    return planned


def check_minutes(minutes: float | None) -> None:
    from cgan.errors import UserError

    if minutes is not None and not (math.isfinite(minutes) and MIN_MINUTES <= minutes <= MAX_MINUTES):
        raise UserError(f"--minutes must be between {MIN_MINUTES} and {MAX_MINUTES:,}, got {minutes}")
