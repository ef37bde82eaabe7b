"""The hyperparameters of a training run: one frozen dataclass, each field described once.

A field's `help` metadata is its only description: the command line
(`add_arguments`) and the flags table of docs/flags.md (checked by
`tests/test_readme.py`) are made from it. Why a default has its value is in
docs/experiments.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from cgan.data import CONDITIONS, DATASET_NAMES, dataset_named
from cgan.errors import UserError

PRECISIONS = ("auto", "float32", "bfloat16", "float64")
# The Keras dtype policy of each precision that trains fast; "auto" is first resolved to one (cgan.precision.resolve).
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# float64 is for checking that two ways of training compute the same thing: there float rounding
# (about 1e-16) stays far below what a slip in the computation changes, however much a GAN's steps
# magnify it (tests/test_distribute.py). Never timed by --precision auto.
CHECK_POLICIES = {"float64": "float64"}
LOSSES = ("hinge", "bce", "wgan-gp")  # cgan.losses.LOSSES defines them
AUX_TARGETS = ("label", "number")
# Defaults that depend on the loss, taken unless the user sets the field: the WGAN-GP paper's
# Adam settings (Gulrajani et al., 2017: rates 1e-4, betas 0.5 / 0.9, the second being every
# loss's default) and its five critic updates per generator update; its gradient penalty replaces R1.
LOSS_DEFAULTS = {"wgan-gp": {"g_lr": 1e-4, "d_lr": 1e-4, "beta_1": 0.5, "critic_steps": 5, "r1_weight": 0.0}}
# Without labels there is nothing for the auxiliary classifier to learn: its default weight is then 0.
UNCONDITIONAL_DEFAULTS = {"aux_weight": 0.0}
# A dataset's own recipe, taken unless the user sets the field: clothes need the capacity and the
# steps the digits could give up (docs/experiments.md, "Harder data"), and the 64 noise numbers, no
# spread channel, R1 at weight 1, no auxiliary classifier, no feature matching and G's faster rate
# that models/fashion.h5 was trained with (with D's rate and the weight average of the digits).
# Keyed by --dataset.
DATASET_DEFAULTS = {"fashion": {"g_width": 96, "d_width": 48, "aux_weight": 0.0, "train_steps": 16000, "g_lr": 1.2e-3,
                                "latent_dim": 64, "minibatch_std": 0, "r1_weight": 1.0, "feature_matching": 0.0},
                    # the colours must reach the last layers, which paint every pixel: conditional batch norm
                    "colour": {"g_class_norm": True}}


# A condition's own recipe, keyed by --condition: the shape's attributes reach every stage of G through
# conditional batch normalisation, which drew the asked shapes closer than concatenation alone did
# (docs/experiments.md, "How to condition the shape").
CONDITION_DEFAULTS = {"shape": {"g_class_norm": True}}


# The integer settings' ranges: below them nothing trains; above them a run would not fit in memory
# or in a lifetime (a typo, not a wish).
INTEGER_RANGES = {"train_steps": (1, 10_000_000), "batch_size": (1, 4096), "latent_dim": (1, 4096),
                  "g_width": (1, 1024), "g_top_width": (0, 1024), "d_width": (1, 1024), "g_extra_convs": (0, 16),
                  "d_extra_convs": (0, 16), "minibatch_std": (0, 4096), "save_interval": (1, 10_000_000),
                  "critic_steps": (1, 100)}


def _field(default, help: str, **metadata):
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


@dataclasses.dataclass(frozen=True)
class Config:
    """Every hyperparameter of a training run; argparse fills it, checkpoints store it."""

    dataset: str = _field("mnist", "what to learn: mnist digits, fashion (Fashion-MNIST clothes), pairs (two digits "
                          "side by side, 28x56), colour (digits painted in a stroke and a background colour drawn "
                          "per image, conditioned on both) or cifar10 (downloaded by Keras; not run here); your own "
                          "images: --data DIR", choices=DATASET_NAMES)
    image_size: int = _field(0, "with --data DIR of class folders: the side its images are resized to, 28, 32 or 64 "
                             "(0: their own, when they share one)")
    folder: str = _field("", "the folder of class folders a run trains on (set from --data DIR)", flag=False)
    # The script's --condition, which also picks a class when sampling a below50 generator.
    condition: str = _field("number", "with --dataset pairs: the label is the number 00-99 (number) or whether it is "
                            "at most 49 (below50); with --dataset mnist, shape: the digit and its measured thickness, "
                            "slant, width and height (cgan.conditions)", flag=False, choices=CONDITIONS)
    train_steps: int = _field(3_510, "training steps, each one generator update (and --critic-steps of D)")
    batch_size: int = _field(128, "images per step")
    latent_dim: int = _field(256, "noise dimensions")
    g_width: int = _field(48, "generator channels at 14x14 (twice that at 7x7)")
    g_extra_convs: int = _field(1, "3x3 convolutions (BatchNorm, ReLU) at the generator's 14x14 stage")
    g_top_width: int = _field(0, "generator channels at the image's full size (28x28), drawn by the last transposed "
                              "convolution (BatchNorm, ReLU) before a 3x3 convolution to the image; 0: the transposed "
                              "convolution draws the image")
    g_class_norm: bool = _field(False, "the generator's batch normalisations also scale and shift each channel by "
                                "the label (and the shape, with --condition shape: conditional batch normalisation), "
                                "so the condition reaches every stage")
    d_width: int = _field(32, "discriminator channels at 14x14 (twice that at 7x7)")
    d_extra_convs: int = _field(2, "3x3 convolutions (LeakyReLU) at the discriminator's 7x7 stage")
    minibatch_std: int = _field(4, "group size of the discriminator's minibatch standard deviation (Karras et al., "
                                "2018): at its 7x7 stage one more channel, the features' spread over each group of N "
                                "images, so D can tell a batch of too-alike fakes; must divide --batch-size; 0: none")
    g_lr: float = _field(9e-4, "generator Adam learning rate at the first step")
    d_lr: float = _field(6e-4, "discriminator Adam learning rate at the first step")
    final_lr_fraction: float = _field(0.0, "both learning rates decay linearly to this share of their start by the "
                                      "last step")
    beta_1: float = _field(0.0, "Adam beta_1 of both optimizers")
    beta_2: float = _field(0.9, "Adam beta_2 of both optimizers")
    ema_decay: float = _field(0.999, "decay of the generator's weight average (the saved generator), after a warm-up: "
                              "at step s it is at most (1 + s) / (W + s) (--ema-warmup W), which reaches X at "
                              "step (WX - 1) / (1 - X): for W = 10, 8,990 for 0.999, 4,490 for 0.998")
    ema_warmup: float = _field(10.0, "the weight average's warm-up W: at step s its decay is at most (1 + s) / "
                               "(W + s), so that without a binding --ema-decay the average weighs step t about as "
                               "t^(W - 2): smaller W averages over more of the run (2: every step alike)")
    save_interval: int = _field(500, "steps between sample grids, checkpoints and loss-curve updates")
    loss: str = _field("hinge", "GAN objective; bce is the classic cross-entropy GAN, wgan-gp a Wasserstein critic "
                       "with gradient penalty", choices=LOSSES)
    gp_weight: float = _field(10.0, "weight of the gradient penalty, with --loss wgan-gp")
    r1_weight: float = _field(3.0, "weight gamma of the R1 penalty (Mescheder et al., 2018): D's loss also gets "
                              "gamma/2 times the squared norm of its gradient at real images, taken on a quarter of "
                              "each real batch; 0: none")
    augment: float = _field(0.0, "share of the images the discriminator sees (real and fake alike, and in its "
                            "penalties) moved by up to an eighth of their size, the border filled with background "
                            "(DiffAugment's translation, Zhao et al., 2020), so D cannot learn the training images "
                            "pixel for pixel; 0: none")
    critic_steps: int = _field(1, "discriminator (critic) updates per generator update, each on its own real batch")
    aux_weight: float = _field(0.25, "weight of an auxiliary classifier on the discriminator's features (AC-GAN): D "
                               "also learns the labels of real images, and G is pushed towards fakes it reads as their "
                               "label; 0: none")
    twin_classifier: bool = _field(False, "with --aux-weight: a twin classifier on the discriminator's features "
                                   "(TAC-GAN, Gong et al., 2019) learns the labels the fakes were drawn for, and G is "
                                   "pushed towards fakes it reads wrongly: against the auxiliary classifier's pull "
                                   "towards each label's most typical look")
    aux_target: str = _field("label", "what the auxiliary classifier learns: label, or with --dataset pairs, number: "
                             "the number 00-99 a real pair shows, while G and D are still conditioned on --condition; "
                             "G is then pushed towards fakes read as a number of their label (for below50: on the "
                             "asked side of 50)", choices=AUX_TARGETS)
    number_code: bool = _field(False, "with --dataset pairs --condition below50: G draws a number on the asked side "
                               "from its first noise number and is conditioned on it (an InfoGAN-style code), and D is "
                               "conditioned on numbers (real pairs' own, fakes' drawn): the one-bit generator is a "
                               "number generator inside")
    mode_seeking: float = _field(0.0, "weight of the mode-seeking term (Mao et al., 2019): G is pushed to make two "
                                 "fakes of one label differ as their noises differ, against mode collapse; 0: none")
    feature_matching: float = _field(0.1, "weight of G's feature matching term (Salimans et al., 2016), class by "
                                     "class: the distance between the means of the discriminator's last features "
                                     "over the batch's real images and over its fakes of each class, which G shrinks; "
                                     "0: none")
    shape_weight: float = _field(1.0, "with --condition shape or --dataset colour: weight of a regression head on the "
                                 "discriminator's "
                                 "features that learns real digits' measured attributes, G being pushed towards fakes "
                                 "it reads as the attributes asked (an auxiliary network for the continuous "
                                 "conditions); 0: none, the projection alone")
    unconditional: bool = _field(False, "train without labels: the networks have no label input (a baseline)")
    precision: str = _field("auto", "auto: whichever of float32 and mixed bfloat16 trains faster on this machine, "
                            "timed once per machine and model size and cached; float64: several times slower, for "
                            "checking that two runs compute the same thing", choices=PRECISIONS)
    seed: int = _field(0, "random seed", flag=False)  # the script's --seed, whose default differs for sampling

    def validate(self) -> None:
        """Raise UserError for settings that cannot train."""
        for name, (low, high) in INTEGER_RANGES.items():
            if not low <= getattr(self, name) <= high:
                raise UserError(f"{flag(name)} must be between {low} and {high:,}, got {getattr(self, name)}")
        for name in ("g_lr", "d_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value < 1):
                raise UserError(f"{flag(name)} must be between 0 and 1, got {value}")
        if not 0 <= self.final_lr_fraction <= 1:
            raise UserError(f"--final-lr-fraction must be in [0, 1], got {self.final_lr_fraction}")
        if not (math.isfinite(self.ema_warmup) and 1 < self.ema_warmup <= 1e6):
            raise UserError(f"--ema-warmup must be above 1 and at most 1e6, got {self.ema_warmup}")
        for name in ("beta_1", "beta_2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"{flag(name)} must be in [0, 1), got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise UserError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0 <= self.gp_weight <= 1e6:
            raise UserError(f"--gp-weight must be between 0 and 1e6, got {self.gp_weight}")
        if not (math.isfinite(self.aux_weight) and 0 <= self.aux_weight <= 100):
            raise UserError(f"--aux-weight must be between 0 and 100, got {self.aux_weight}")
        if not (math.isfinite(self.r1_weight) and 0 <= self.r1_weight <= 1e6):
            raise UserError(f"--r1-weight must be between 0 and 1e6, got {self.r1_weight}")
        if not 0 <= self.augment <= 1:
            raise UserError(f"--augment is a share of the images, in [0, 1], got {self.augment}")
        for name in ("mode_seeking", "feature_matching"):
            if not (math.isfinite(getattr(self, name)) and 0 <= getattr(self, name) <= 100):
                raise UserError(f"{flag(name)} must be between 0 and 100, got {getattr(self, name)}")
        if self.minibatch_std and self.batch_size % self.minibatch_std:
            raise UserError(f"--minibatch-std {self.minibatch_std} must divide --batch-size {self.batch_size} "
                            "(its groups are of equal size; --minibatch-std 0: none)")
        if self.aux_weight and self.unconditional:
            raise UserError("--aux-weight needs labels to learn: it does not go with --unconditional")
        if self.aux_target not in AUX_TARGETS:
            raise UserError(f"--aux-target must be label or number, got {self.aux_target!r}")
        if self.g_class_norm and self.unconditional:
            raise UserError("--g-class-norm needs labels to scale and shift by: it does not go with --unconditional")
        if self.twin_classifier and not self.aux_weight:
            raise UserError("--twin-classifier is the auxiliary classifier's twin: give --aux-weight above 0")
        if self.twin_classifier and self.aux_target == "number":
            raise UserError("--twin-classifier does not go with --aux-target number: the twin learns the fakes' "
                            "labels, which are not numbers")
        if self.aux_target == "number":
            if self.dataset != "pairs":
                raise UserError("--aux-target number needs --dataset pairs (the only images with a number), "
                                f"got {self.dataset}")
            if not self.aux_weight:
                raise UserError("--aux-target number needs an auxiliary classifier: give --aux-weight above 0")
        if self.number_code:
            if self.dataset != "pairs" or self.condition == "number":
                raise UserError("--number-code is for --dataset pairs --condition below50 (a number already labels "
                                "--condition number)")
            if self.unconditional or self.aux_target == "number":
                raise UserError(f"--number-code does not go with "
                                f"{'--unconditional' if self.unconditional else '--aux-target number'}: it conditions "
                                "D on numbers itself")
        if not (math.isfinite(self.shape_weight) and 0 <= self.shape_weight <= 100):
            raise UserError(f"--shape-weight must be between 0 and 100, got {self.shape_weight}")
        if self.dataset == "colour" and self.unconditional:
            raise UserError("--dataset colour conditions on the digit and its colours: it does not go with "
                            "--unconditional")
        if self.condition == "shape" and (self.unconditional or self.number_code):
            raise UserError("--condition shape conditions on the digit and its shape: it does not go with "
                            f"{'--unconditional' if self.unconditional else '--number-code'}")
        if self.image_size and self.dataset != "folder":
            raise UserError("--image-size resizes the images of a folder: it is for --data DIR of class folders")
        if self.dataset == "folder" and self.condition != "number":
            raise UserError(f"--condition {self.condition} is not for a folder of images: its classes are the "
                            "condition")
        data_of(self)
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision must be auto, float32, bfloat16 or float64, got {self.precision!r}")


# Fields added after run.json existed, with the value that runs written before them trained with.
FORMER_DEFAULTS = {"beta_2": 0.999, "g_extra_convs": 0, "d_extra_convs": 0, "g_top_width": 0, "aux_target": "label",
                   "number_code": False, "minibatch_std": 0, "r1_weight": 0.0,
                   "twin_classifier": False, "g_class_norm": False, "ema_warmup": 10.0, "augment": 0.0,
                   "feature_matching": 0.0}


def compute_policy(precision: str) -> str:
    """The Keras dtype policy of a resolved precision ("float32", "bfloat16" or "float64")."""
    policies = {**POLICIES, **CHECK_POLICIES}
    if precision not in policies:
        raise ValueError(f"precision {precision!r} has no policy; resolve 'auto' first (cgan.precision.resolve)")
    return policies[precision]


def output_dtype(policy: str | None) -> str:
    """The dtype of the networks' outputs and losses: float32 under every policy but float64's."""
    return "float64" if policy == "float64" else "float32"


def data_of(config: Config):
    """The dataset `config` trains on (a `cgan.data.Dataset`; for a folder, read from its files' headers)."""
    if config.dataset == "folder":
        from cgan import folders

        if not config.folder:
            raise UserError("--dataset folder trains on a folder of class folders: give it as --data DIR")
        return folders.open_folder(config.folder, config.image_size)
    return dataset_named(config.dataset, config.condition)


def training_batches(config: Config, images, conditions: dict, *, start_step: int = 0):
    """The tf.data.Dataset a run of `config` trains on from `start_step`: one real batch for each D update of a step.

    `conditions` are the images' labels and any other conditions (`cgan.conditions.training_conditions`).
    """
    extra = {name: values for name, values in conditions.items() if name != "label"}
    return data_of(config).batches(images, conditions["label"], batch_size=config.batch_size * config.critic_steps,
                                   seed=config.seed, start_step=start_step,
                                   numbers=config.aux_target == "number" or config.number_code, extra=extra)


def flag(name: str) -> str:
    """The command-line flag of a Config field: `g_lr` -> `--g-lr`."""
    return "--" + name.replace("_", "-")


def flag_fields() -> list[dataclasses.Field]:
    """The Config fields that are command-line flags, in order."""
    return [f for f in dataclasses.fields(Config) if f.metadata.get("flag", True)]


def _default_text(field: dataclasses.Field) -> str:
    by_loss = [f"{values[field.name]} with --loss {loss}" for loss, values in LOSS_DEFAULTS.items()
               if field.name in values]
    by_data = [f"{values[field.name]} with --dataset {name}" for name, values in DATASET_DEFAULTS.items()
               if field.name in values]
    by_data += [f"{values[field.name]} with --condition {name}" for name, values in CONDITION_DEFAULTS.items()
                if field.name in values]
    unlabelled = ([f"{UNCONDITIONAL_DEFAULTS[field.name]} with --unconditional"] if field.name in UNCONDITIONAL_DEFAULTS
                  else [])
    return "; ".join([str(field.default), *by_loss, *by_data, *unlabelled])


def _has_other_defaults(name: str) -> bool:
    """Whether a field's default depends on the loss, the dataset or --unconditional."""
    return (any(name in values for values in (*LOSS_DEFAULTS.values(), *DATASET_DEFAULTS.values(),
                                              *CONDITION_DEFAULTS.values()))
            or name in UNCONDITIONAL_DEFAULTS)


def add_arguments(group) -> None:
    """Add one flag per Config field to an argparse group, with the field's help and default.

    A field whose default depends on the loss (or on the dataset, or --unconditional) gets None from
    argparse when not given, so that `from_args` can tell "not given" from "given as the default".
    """
    for field in flag_fields():
        help_text = f"{field.metadata['help']} (default: {_default_text(field)})"
        if field.type in (bool, "bool"):
            if _has_other_defaults(field.name):  # None when not given, and a --no- flag to turn the default off
                group.add_argument(flag(field.name), action=argparse.BooleanOptionalAction, default=None,
                                   help=f"{field.metadata['help']} (default: {_default_text(field)})")
            else:
                group.add_argument(flag(field.name), action="store_true", help=field.metadata["help"])
            continue
        default = field.default
        metavar = None if "choices" in field.metadata else {int: "N", float: "X"}.get(type(default))
        group.add_argument(flag(field.name), type=type(default),
                           default=None if _has_other_defaults(field.name) else default,
                           metavar=metavar, choices=field.metadata.get("choices"), help=help_text)


def from_args(args: argparse.Namespace, **overrides) -> Config:
    """The Config of parsed arguments (made by `add_arguments`), with `overrides` on top."""
    given = {f.name: getattr(args, f.name) for f in flag_fields() if getattr(args, f.name) is not None}
    return for_loss(**{**given, **overrides})


def for_loss(**values) -> Config:
    """A Config of `values`, fields not among them taking the defaults of the chosen dataset, condition and loss
    (and of --unconditional; the loss's before the dataset's, as a Wasserstein critic needs its own rates)."""
    loss, dataset = values.get("loss", Config.loss), values.get("dataset", Config.dataset)
    unlabelled = UNCONDITIONAL_DEFAULTS if values.get("unconditional") else {}
    condition = CONDITION_DEFAULTS.get(values.get("condition", Config.condition), {})
    return Config(**{**DATASET_DEFAULTS.get(dataset, {}), **condition, **LOSS_DEFAULTS.get(loss, {}), **unlabelled,
                     **values})


def from_run(values: dict) -> Config:
    """The Config a run folder recorded, fields it predates set to what it trained with."""
    return Config(**{**FORMER_DEFAULTS, **values})
