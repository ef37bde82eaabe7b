"""cgan/config.py: each setting is described once, and the command line is made from that description."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from cgan import config
from cgan.config import Config
from cgan.errors import UserError


def test_every_field_has_help_and_every_flag_field_becomes_a_flag():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    flags = {a.option_strings[0]: a for a in parser._actions if a.option_strings and a.dest != "help"}
    assert set(flags) == {config.flag(f.name) for f in config.flag_fields()}
    for field in dataclasses.fields(Config):
        assert field.metadata["help"].strip(), field.name
    for field in config.flag_fields():
        action = flags[config.flag(field.name)]
        assert action.help.startswith(field.metadata["help"])
        if field.type == "bool" and any(field.name in values for values in config.CONDITION_DEFAULTS.values()):
            # on for a condition: "not given" is None, and --no-... turns it off
            assert action.default is None and isinstance(action, argparse.BooleanOptionalAction)
            assert "True with --condition shape" in action.help
        elif field.type == "bool":
            assert action.default is False and action.const is True  # a switch
        elif any(field.name in values for values in config.LOSS_DEFAULTS.values()):
            assert action.default is None and "with --loss wgan-gp" in action.help  # "not given" is visible
        elif any(field.name in values for values in config.DATASET_DEFAULTS.values()):
            assert action.default is None and "with --dataset fashion" in action.help
        elif field.name in config.UNCONDITIONAL_DEFAULTS:
            assert action.default is None and action.help.endswith("with --unconditional)")
        else:
            assert action.help.endswith(f"(default: {field.default})") and action.default == field.default
    assert "--seed" not in flags  # the script's own --seed: its default differs for sampling
    assert flags["--precision"].choices == config.PRECISIONS


def test_flags_round_trip_into_the_config():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    args = parser.parse_args(["--g-width", "32", "--ema-decay", "0.99", "--precision", "bfloat16"])
    made = config.from_args(args, seed=4)
    assert made == dataclasses.replace(Config(), g_width=32, ema_decay=0.99, precision="bfloat16", seed=4)


def test_the_loss_chooses_defaults_the_user_did_not_set():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    wgan = config.from_args(parser.parse_args(["--loss", "wgan-gp"]))
    assert (wgan.g_lr, wgan.d_lr, wgan.beta_1, wgan.beta_2, wgan.critic_steps) == (1e-4, 1e-4, 0.5, 0.9, 5)
    mine = config.from_args(parser.parse_args(["--loss", "wgan-gp", "--g-lr", "0.0009", "--critic-steps", "2"]))
    assert (mine.g_lr, mine.d_lr, mine.critic_steps) == (9e-4, 1e-4, 2)  # given as the hinge default, still kept
    assert config.from_args(parser.parse_args([])) == Config()
    bce = config.from_args(parser.parse_args(["--loss", "bce", "--unconditional"]))
    assert bce == dataclasses.replace(Config(), loss="bce", unconditional=True, aux_weight=0.0)


def test_a_dataset_brings_its_own_recipe_where_the_user_set_nothing():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    fashion = config.from_args(parser.parse_args(["--dataset", "fashion"]))
    recipe = config.DATASET_DEFAULTS["fashion"]
    assert {name: getattr(fashion, name) for name in recipe} == recipe
    assert recipe["g_width"] != Config().g_width and recipe["train_steps"] != Config().train_steps  # else no test
    assert "96 with --dataset fashion" in next(a.help for a in parser._actions if "--g-width" in a.option_strings)
    mine = config.from_args(parser.parse_args(["--dataset", "fashion", "--g-width", "48", "--train-steps", "100"]))
    # given as the digits' default, kept
    assert (mine.g_width, mine.train_steps, mine.d_width) == (48, 100, recipe["d_width"])
    assert config.from_args(parser.parse_args(["--dataset", "mnist"])) == Config()
    # a Wasserstein critic keeps its own rates on clothes too
    wgan = config.from_args(parser.parse_args(["--dataset", "fashion", "--loss", "wgan-gp"]))
    assert (wgan.g_lr, wgan.critic_steps, wgan.g_width) == (1e-4, 5, recipe["g_width"])


def test_a_run_file_from_before_a_field_existed_gets_what_it_trained_with():
    recorded = dataclasses.asdict(Config(g_width=32))
    for name in config.FORMER_DEFAULTS:
        del recorded[name]
    restored = config.from_run(recorded)
    assert restored.g_width == 32
    assert {name: getattr(restored, name) for name in config.FORMER_DEFAULTS} == config.FORMER_DEFAULTS
    assert config.from_run(dataclasses.asdict(Config())) == Config()  # a new run file is taken as written


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("latent_dim", -3), ("save_interval", 0),
                                          ("g_lr", 1.5), ("ema_decay", 1.0), ("beta_1", -0.1), ("loss", "lsgan"),
                                          ("critic_steps", 0), ("gp_weight", -1.0),
                                          ("aux_weight", -1.0), ("mode_seeking", float("inf")),
                                          ("minibatch_std", 3), ("minibatch_std", -1), ("r1_weight", -1.0),
                                          ("r1_weight", float("nan")), ("feature_matching", -0.1),
                                          ("feature_matching", float("nan"))])
def test_validate_names_the_flag(field, value):
    with pytest.raises(UserError, match=config.flag(field)):
        dataclasses.replace(Config(), **{field: value}).validate()
    Config().validate()  # the defaults are valid
