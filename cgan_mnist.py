"""Conditional GAN for MNIST on Keras 3: train, sample and draw a digit generator.

    python cgan_mnist.py                                      # train, dump grids, save the generator
    python cgan_mnist.py --generator=cgan_mnist.h5 --digit=6  # sixteen 6s in a PNG
    python cgan_mnist.py --plot-architecture                  # architecture/*.png

This script defines the networks with the functional API: the generator
G(noise, label), the discriminator D(image, label) and the stacked adversarial
model D(G(z, y), y) (for the diagram and the classic-Keras benchmark), and it is
the command line. The machinery lives in the package `cgan/` below it, which
never imports this file: training gets these builders passed down as
`NETWORKS`. Training runs a compiled `train_step` under `fit` that updates both
networks every step (`cgan.gan.ConditionalGAN`), so none of the
`trainable = False` pitfalls of Keras 3 apply.

Importing this module has no side effects beyond importing TensorFlow; `main()` is the command line.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path


def _interrupted_while_loading(signum, frame):
    print("cgan_mnist.py: interrupted", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":  # Ctrl-C while TensorFlow loads: one line and exit 130, not a traceback from its import
    signal.signal(signal.SIGINT, _interrupted_while_loading)

import numpy as np

from cgan import conditions, diagrams, folders, sample_command, training
from cgan import config as config_flags
from cgan.backend import keras
from cgan.cli import ArgumentParser, flag_name
from cgan.config import Config, data_of, output_dtype
from cgan.data import MNIST, PAIRS_NUMBER
from cgan.errors import InputError, TrainingStopped, UserError
from cgan.gan import ConditionalGAN, Networks
from cgan.gan import make_gan as _make_gan
from cgan.layers import ClassNames, MinibatchStd, NumberCode
from cgan.precision import resolve
from cgan.sampling import LABEL_EMBEDDING, generate, load_generator

__all__ = ["build_generator", "build_discriminator", "build_adversarial", "NETWORKS", "train", "resume", "make_gan",
           "load_generator", "generate", "plot_architecture", "main"]

layers = keras.layers
MAX_SEED = 2**32 - 1  # NumPy's and Keras's seeds are unsigned 32-bit numbers


# ---------------------------------------------------------------------------
# The networks


def build_generator(*, latent_dim: int = 64, width: int = 64, extra_convs: int = 1, top_width: int = 0,
                    num_classes: int | None = MNIST.num_classes, number_members: np.ndarray | None = None,
                    image_shape: tuple[int, int, int] = MNIST.image_shape, class_norm: bool = False,
                    continuous: conditions.Kind | None = None, class_record: dict | None = None,
                    dtype: str | None = None, synchronized: bool = False, name: str = "generator") -> keras.Model:
    """G(noise, label[, shape]) -> image in [-1, 1] of `image_shape`, float32 whatever the policy (but float64's).

    `label` is an int32 class of shape (1,). Two stride-2 transposed
    convolutions grow an (h/4, w/4) grid to the image: 7x7 for a 28x28 digit,
    7x14 for a 28x56 pair; `extra_convs` 3x3 convolutions (BatchNorm, ReLU)
    refine the middle stage. With `top_width`, the last transposed convolution
    draws that many channels at the image's size (BatchNorm, ReLU) and a 3x3
    convolution turns them into the image. `num_classes=None` builds an unconditional
    generator whose only input is `noise`. With `number_members` ((classes, numbers), 1 where a
    number has a class), the label first becomes one of its class's numbers, drawn from the
    noise (`cgan.layers.NumberCode`), and the embedding is the number's. With `class_norm`, each
    BatchNorm's output is also scaled by 1 + gain(e) and shifted by bias(e), two linear maps of the
    label's embedding e (conditional batch normalisation: de Vries et al., 2017; Miyato and Koyama,
    2018), so the label reaches every stage and not only the first. `continuous` (with classes; a
    `cgan.conditions.Kind`) adds its input (`shape` (b, 4) or `colour` (b, 6)): attributes in their
    units, which an `Attributes` layer makes standard scores (and records, with the data's statistics);
    a linear map of them joins the label's embedding, so they condition every place the label does.
    `class_record` ({"names", "title", "folder"}, a folder's classes) is kept on the label by a
    `ClassNames` layer, so the saved generator can name its classes. `synchronized` batch normalisation
    takes its statistics over the global batch under a distribution strategy. `name` says what
    it draws (`cgan.data.Dataset.generator_name`), so a saved generator needs no other record.
    """
    rows, cols = image_shape[0] // 4, image_shape[1] // 4
    noise = keras.Input((latent_dim,), name="noise")
    inputs, x = {"noise": noise}, noise
    if num_classes:
        label = keras.Input((1,), dtype="int32", name="label")
        named = ClassNames(**class_record, name="class_names")(label) if class_record else label
        if number_members is None:
            y = layers.Embedding(num_classes, 32, name=LABEL_EMBEDDING, dtype=dtype)(named)
            y = layers.Flatten(dtype=dtype)(y)  # 32
        else:
            y = NumberCode(number_members, name="number_code")(noise, named)  # (b, numbers) one-hot
            y = layers.Dense(32, use_bias=False, name=LABEL_EMBEDDING, dtype=dtype)(y)  # 32: the number's embedding
        inputs["label"] = label
        if continuous:
            inputs[continuous.name], scores = continuous.input(num_classes, conditions.REFERENCE_ROWS)
            y = layers.Concatenate(dtype=dtype)([y, layers.Dense(32, name="attribute_embedding", dtype=dtype)(scores)])
        x = layers.Concatenate(dtype=dtype)([noise, y])

    def normalized(x):
        """BatchNorm and ReLU; with `class_norm`, the label's own gain and bias between them."""
        x = layers.BatchNormalization(synchronized=synchronized, dtype=dtype)(x)
        if class_norm and num_classes:
            channels = x.shape[-1]
            # x (1 + gain(y)) + bias(y), both zero at the start: the unconditional BatchNorm's output
            gain, bias = (layers.Dense(channels, use_bias=False, kernel_initializer="zeros", dtype=dtype)(y)
                          for _ in range(2))
            if len(x.shape) == 4:
                gain, bias = (layers.Reshape((1, 1, channels), dtype=dtype)(t) for t in (gain, bias))
            x = layers.Add(dtype=dtype)([x, layers.Multiply(dtype=dtype)([x, gain]), bias])
        return layers.ReLU(dtype=dtype)(x)

    x = layers.Dense(rows * cols * 2 * width, use_bias=False, dtype=dtype)(x)
    x = normalized(x)
    x = layers.Reshape((rows, cols, 2 * width), dtype=dtype)(x)  # 7x7x2w
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, dtype=dtype)(x)
    x = normalized(x)  # 14x14xw
    for _ in range(extra_convs):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, dtype=dtype)(x)
        x = normalized(x)  # 14x14xw
    if top_width:
        x = layers.Conv2DTranspose(top_width, 4, strides=2, padding="same", use_bias=False, dtype=dtype)(x)
        x = normalized(x)  # 28x28xtop_width
        x = layers.Conv2D(image_shape[-1], 3, padding="same", dtype=dtype)(x)
    else:
        x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same", dtype=dtype)(x)  # 28x28x1 (h x w x 1)
    image = layers.Activation("tanh", dtype=output_dtype(dtype), name="image")(x)
    return keras.Model(inputs, image, name=name)


def build_discriminator(*, width: int = 32, extra_convs: int = 2, minibatch_std: int = 0,
                        num_classes: int | None = MNIST.num_classes,
                        image_shape: tuple[int, int, int] = MNIST.image_shape, auxiliary: bool = False,
                        auxiliary_classes: int | None = None, twin: bool = False, features: bool = False,
                        continuous: conditions.Kind | None = None, attribute_head: bool = False,
                        dtype: str | None = None) -> keras.Model:
    """D(image, label[, shape]) -> one real/fake logit (float32; float64 under that policy), with a projection head.

    Two stride-2 convolutions bring the image to (h/4, w/4), where
    `extra_convs` 3x3 convolutions follow, after a channel of the batch's spread
    (`cgan.layers.MinibatchStd`, groups of `minibatch_std` images) if given.
    The logit is psi(h) + <embed(label), h> for image features h (Miyato and
    Koyama, 2018), so the label enters as a learned class direction in feature
    space rather than as an extra input channel. There is no normalisation
    layer and no final sigmoid, so the same network serves as a Wasserstein
    critic. `num_classes=None` drops the label input and the projection: an
    unconditional discriminator, psi(h) alone. `auxiliary` adds a second output,
    `class_logits`, one per class from the same features h: the auxiliary
    classifier of AC-GAN (Odena et al., 2017), for `--aux-weight`; over
    `auxiliary_classes` classes if given (the numbers of pairs, for `--aux-target number`).
    `twin` adds a third, `twin_logits`, the same head again: TAC-GAN's twin classifier
    (Gong et al., 2019), which learns the labels of fakes, for `--twin-classifier`.
    `features` adds `features`, h itself, for G's feature matching (`--feature-matching`).
    `continuous` (as for the generator) adds its input and a second projection,
    <A h, s> for the attributes' standard scores s; `attribute_head` adds the output
    `attribute_predictions`, a regression of s from h (for `--shape-weight`).
    """
    image = keras.Input(image_shape, name="image")
    x = layers.Conv2D(width, 4, strides=2, padding="same", dtype=dtype)(image)
    x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 14x14xw
    x = layers.Conv2D(2 * width, 4, strides=2, padding="same", dtype=dtype)(x)
    x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 7x7x2w
    if minibatch_std:
        x = MinibatchStd(minibatch_std, dtype=dtype)(x)  # 7x7x(2w + 1)
    for _ in range(extra_convs):
        x = layers.Conv2D(2 * width, 3, padding="same", dtype=dtype)(x)
        x = layers.LeakyReLU(0.2, dtype=dtype)(x)  # 7x7x2w
    h = layers.Flatten(dtype=dtype)(x)
    logit = layers.Dense(1, dtype=dtype, name="psi")(h)
    inputs = {"image": image}
    if num_classes:
        label = keras.Input((1,), dtype="int32", name="label")
        # <embed(label), h> as h @ E (one column per class), then the label's column: one small
        # matmul instead of a per-example dot product with a gathered 7x7x2w embedding.
        per_class = layers.Dense(num_classes, use_bias=False, name="class_projection", dtype=dtype)(h)
        one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot", dtype=dtype)(label)
        logit = layers.Add(dtype=dtype)([logit, layers.Dot(axes=1, dtype=dtype)([one_hot, per_class])])
        inputs["label"] = label
    if continuous:
        inputs[continuous.name], scores = continuous.input(num_classes, 1)
        per_attribute = layers.Dense(len(continuous.attributes), use_bias=False, name="attribute_projection",
                                     dtype=dtype)(h)
        logit = layers.Add(dtype=dtype)([logit, layers.Dot(axes=1, dtype=dtype)([scores, per_attribute])])
    logit = layers.Activation("linear", dtype=output_dtype(dtype), name="logit")(logit)
    outputs = {"logit": logit}
    if continuous and attribute_head:
        predicted = layers.Dense(len(continuous.attributes), dtype=dtype, name="attribute_regressor")(h)
        outputs["attribute_predictions"] = layers.Activation("linear", dtype=output_dtype(dtype),
                                                             name="attribute_predictions")(predicted)
    if auxiliary:
        class_logits = layers.Dense(auxiliary_classes or num_classes, dtype=dtype, name="classifier")(h)
        outputs["class_logits"] = layers.Activation("linear", dtype=output_dtype(dtype),
                                                    name="class_logits")(class_logits)
        if twin:
            twin_logits = layers.Dense(auxiliary_classes or num_classes, dtype=dtype, name="twin_classifier")(h)
            outputs["twin_logits"] = layers.Activation("linear", dtype=output_dtype(dtype),
                                                       name="twin_logits")(twin_logits)
    if features:
        outputs["features"] = layers.Activation("linear", dtype=output_dtype(dtype), name="features")(h)
    return keras.Model(inputs, outputs if len(outputs) > 1 else logit, name="discriminator")


def build_adversarial(generator: keras.Model, discriminator: keras.Model) -> keras.Model:
    """The stacked model D(G(z, c), c): noise (and conditions c) in, the discriminator's logit (and heads) out."""
    inputs = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in generator.input.items()}
    fake = generator(inputs)
    logit = discriminator({"image": fake, **{name: t for name, t in inputs.items() if name in discriminator.input}})
    return keras.Model(inputs, logit, name="adversarial")


def config_generator(config: Config, *, dtype: str | None = None, distributed: bool = False) -> keras.Model:
    """The generator `config` asks for; `distributed`: batch statistics over all replicas' batches."""
    dataset = data_of(config)
    return build_generator(latent_dim=config.latent_dim, width=config.g_width, extra_convs=config.g_extra_convs,
                           top_width=config.g_top_width,
                           num_classes=None if config.unconditional else dataset.num_classes,
                           number_members=dataset.number_members().T if config.number_code else None,
                           image_shape=dataset.image_shape, class_norm=config.g_class_norm,
                           continuous=conditions.kind_for(config), class_record=dataset.class_record(), dtype=dtype,
                           synchronized=distributed,
                           name=dataset.generator_name)


def config_discriminator(config: Config, *, dtype: str | None = None, distributed: bool = False) -> keras.Model:
    """The discriminator `config` asks for (it has no batch statistics, so `distributed` changes nothing)."""
    dataset = data_of(config)
    # a pair shows one of the numbers 00-99: D judges each (--number-code) or its classifier reads it (--aux-target)
    numbers = PAIRS_NUMBER.num_classes
    classes = numbers if config.number_code else dataset.num_classes
    return build_discriminator(width=config.d_width, extra_convs=config.d_extra_convs,
                               minibatch_std=config.minibatch_std,
                               num_classes=None if config.unconditional else classes,
                               image_shape=dataset.image_shape, auxiliary=config.aux_weight > 0,
                               auxiliary_classes=numbers if config.aux_target == "number" else None,
                               twin=config.twin_classifier, features=config.feature_matching > 0,
                               continuous=conditions.kind_for(config),
                               attribute_head=config.shape_weight > 0, dtype=dtype)


NETWORKS = Networks(generator=config_generator, discriminator=config_discriminator, adversarial=build_adversarial)


DEFAULT_CONFIG = Config()  # plot_architecture's default


def plot_architecture(folder, config: Config = DEFAULT_CONFIG, *, quiet_failure: bool = False) -> list[Path]:
    """Write generator.png, discriminator.png and adversarial.png to `folder` with plot_model."""
    return diagrams.draw(NETWORKS.for_diagrams(config), folder, quiet_failure=quiet_failure)


# ---------------------------------------------------------------------------
# Training with these networks


def make_gan(config: Config) -> ConditionalGAN:
    """A compiled ConditionalGAN of this script's networks for `config` (precision "auto" resolved here first)."""
    return _make_gan(resolve(config, NETWORKS, verbose=False), NETWORKS)


def train(config: Config, *, out_dir, **options) -> Path | None:
    """Train from scratch into `out_dir` (see `cgan.training.train` for the options); return the generator's path
    (None on a worker of a cluster other than the chief, which writes nothing there)."""
    return training.train(config, networks=NETWORKS, out_dir=out_dir, **options)


def resume(run_dir, **options) -> Path | None:
    """Continue the run in `run_dir` from its newest checkpoint (see `cgan.training.resume`)."""
    return training.resume(run_dir, networks=NETWORKS, **options)


# ---------------------------------------------------------------------------
# Command line


def build_parser() -> ArgumentParser:
    """The command line; every training flag is a field of Config."""
    p = ArgumentParser(prog="cgan_mnist.py",
                       description="Train a conditional GAN on MNIST, or draw digits with a trained generator.")
    run = p.add_argument_group("what to do (default: train from scratch)")
    run.add_argument("--generator", metavar="PATH",
                     help="a trained generator (.h5 or .keras): sample from it instead of training")
    run.add_argument("--evaluate", action="store_true",
                     help="with --generator: print label accuracy, Frechet distances, precision, recall, "
                          "diversity and (for digits) shape against real ones")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue the training run in RUN_DIR from its newest checkpoint")
    run.add_argument("--plot-losses", metavar="RUN_DIR",
                     help="redraw RUN_DIR/loss_curve.png from RUN_DIR/losses.csv and exit")
    run.add_argument("--plot-architecture", nargs="?", const="architecture", metavar="DIR",
                     help="write generator.png, discriminator.png and adversarial.png to DIR "
                          "(default: architecture) and exit; with training flags, of those networks "
                          "(--dataset colour: the RGB ones)")
    run.add_argument("--dry-run", action="store_true",
                     help="train 2 steps on 256 images in a temporary folder, to check the set-up")
    run.add_argument("--serve", action="store_true",
                     help="serve the page that draws digits in the browser, for --generator (default: cgan_mnist.h5)")
    run.add_argument("--export-web", metavar="DIR",
                     help="write that page and its model to DIR, for any static web host, and exit")

    page = p.add_argument_group("the page (with --serve)")
    page.add_argument("--host", default="127.0.0.1",
                      help="address to listen on; 0.0.0.0 opens the page to other machines (default: 127.0.0.1)")
    page.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default: 8000)")

    sample = p.add_argument_group("sampling (with --generator)")
    sample_command.add_arguments(sample)

    train_group = p.add_argument_group("training")
    config_flags.add_arguments(train_group)
    training.add_arguments(train_group)

    common = p.add_argument_group("common")
    common.add_argument("--out-dir", metavar="DIR",
                        help="output folder (default: runs/train-TIMESTAMP for training, samples for sampling)")
    common.add_argument("--condition", metavar="C",
                        help="training: shape (digits conditioned on their measured thickness, slant, width and "
                             "height too), or with --dataset pairs number (default) or below50; sampling a below50 "
                             "pairs generator: 1 (numbers up to 49) or 0 (50 and over)")
    common.add_argument("--seed", type=int, default=None,
                        help="random seed; the same seed gives the same images "
                             "(default: 0 for training, random for sampling)")
    return p


def _check_flags(parser: ArgumentParser, args) -> None:
    """UserError for a flag given that does not apply to what the command does (rather than ignore it)."""
    groups = {g.title: {a.dest for a in g._group_actions} for g in parser._action_groups}
    options = {a.dest: flag_name(a) for a in parser._actions if a.option_strings}

    def refuse(dests: set[str], why: str) -> None:
        hit = [dest for dest in options if dest in args.given & dests]
        if hit:
            raise UserError(f"{options[hit[0]]} {why}")

    training, page = groups["training"], groups["the page (with --serve)"]
    if not args.serve:
        refuse(page, "is for the page: it needs --serve")
    if args.generator or args.serve or args.export_web:
        what = "--evaluate" if args.evaluate else "--generator" if args.generator else "--serve or --export-web"
        refuse(training - ({"data"} if args.evaluate else set()), f"is a training flag; it does not apply with {what}")
        refuse({"resume", "dry_run"}, f"does not go with {what}")
    elif args.resume:
        refuse(training - {"tensorboard", "distribute"} | {"out_dir", "seed", "condition"},
               f"cannot change a resumed run: --resume {args.resume} continues with the settings it recorded "
               "(start a new run to change them)")
    if not (args.generator or args.serve or args.export_web or args.evaluate):
        refuse(groups["sampling (with --generator)"] - {"export_onnx", "json"},
               "is for sampling: it needs --generator PATH")


def _say_sample(path: Path | None) -> None:
    """How to sample the generator just trained (a worker of a cluster other than the chief saved none)."""
    if path is not None:
        print(f"sample it: python cgan_mnist.py --generator={path} {sample_command.sample_hint(path)}")


def config_from_args(args) -> Config:
    """The Config the command line asks for."""
    overrides = {"seed": 0 if args.seed is None else args.seed, **folders.overrides(args)}
    if args.condition is not None:
        overrides["condition"] = args.condition  # checked against --dataset by Config.validate
    if args.minutes is not None and ("train_steps" in getattr(args, "given", ()) or args.dry_run):
        raise UserError(f"--minutes sets the number of steps: it does not go with "
                        f"{'--dry-run' if args.dry_run else '--train-steps'}")
    if args.dry_run:  # two steps, after --precision auto says what it takes here (seconds, once per machine)
        overrides.update(train_steps=2, save_interval=1)
    return config_flags.from_args(args, **overrides)


def main(argv=None) -> int:
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, KeyboardInterrupt is handled below
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_flags(parser, args)
        if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
            raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
        if args.plot_architecture:  # the networks the training flags given ask for (--dataset colour: RGB)
            for path in plot_architecture(args.plot_architecture, config_from_args(args)):
                print(f"wrote {path}")
        elif args.plot_losses:
            from cgan import training_log

            try:
                print(f"wrote {training_log.plot_losses(args.plot_losses)}")
            except (OSError, ValueError, KeyError) as exc:
                raise InputError(f"{args.plot_losses}: no readable losses.csv ({type(exc).__name__})") from None
        elif args.serve or args.export_web:
            from cgan import web_app

            generator = args.generator or web_app.DEFAULT_GENERATOR
            if args.export_web:
                print(f"wrote {web_app.export_web(generator, args.export_web)}")
            if args.serve:
                web_app.serve(generator, args.host, args.port)
        elif args.export_onnx and not args.generator:
            raise UserError("--export-onnx needs --generator PATH")
        elif args.evaluate:
            if not args.generator:
                raise UserError("--evaluate needs --generator PATH")
            from cgan import evaluation

            if args.count is not None and not 2 <= args.count <= sample_command.MAX_COUNT:
                raise UserError(f"--count must be between 2 and {sample_command.MAX_COUNT} with --evaluate, "
                                f"got {args.count}")
            evaluation.evaluate(args.generator, data=args.data, per_digit=args.count, seed=args.seed or 0,
                                as_json=args.json)
        elif args.generator and args.export_onnx:
            from cgan.export import export_onnx

            print(f"wrote {export_onnx(load_generator(args.generator), args.export_onnx)}")
        elif args.generator:
            sample_command.sample(args)
        elif args.resume:
            path = resume(args.resume, tensorboard=args.tensorboard, distribute=args.distribute)
            _say_sample(path)
        elif args.dry_run:
            config = config_from_args(args)
            with tempfile.TemporaryDirectory() as tmp:  # 256 images, or the few batches a step takes
                train(config, out_dir=tmp, data=args.data, limit=max(256, config.batch_size * config.critic_steps),
                      model_name="dry_run.h5")
            print("dry run ok")
        else:
            out_dir = args.out_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}"
            path = train(config_from_args(args), out_dir=out_dir, data=args.data, limit=args.limit,
                         model_name=args.model_name, tensorboard=args.tensorboard, distribute=args.distribute,
                         minutes=args.minutes)
            _say_sample(path)
        return 0
    except UserError as exc:
        print(f"cgan_mnist.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except TrainingStopped as exc:
        print(f"cgan_mnist.py: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # outside training (which checkpoints and stops itself)
        print("cgan_mnist.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
