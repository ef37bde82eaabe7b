"""Rivals on the same bench: a conditional VAE and a conditional flow-matching model beside the project's GAN,
each trained for the same minutes on this CPU and scored by the same judges.

    python benchmarks/rivals.py --minutes 3 10      # each contender, each budget, one after the other
    python benchmarks/rivals.py --quick             # a few steps each: checks that it runs
    python benchmarks/rivals.py --tune --seed 0 --minutes 3 --per-digit 200   # the rivals' settings, tried

The rivals are written here, in Keras 3, from their papers (no code of theirs is used):

- `cvae`: the conditional VAE of Sohn, Lee and Yan (NeurIPS 2015). The encoder q(z | x, y): two
  4x4 stride-2 convolutions (32, 64 filters, LeakyReLU) of the image, flattened, joined to the
  one-hot label, a Dense to the mean and log-variance of z; the decoder p(x | z, y) is the
  project's own generator (`cgan_mnist.build_generator`, the default widths) with z as its noise,
  so the two generators have the same size. The loss is the pixels' binary cross-entropy (the
  decoder's tanh read as a probability, (x + 1) / 2) plus the KL divergence to N(0, I).
  Sampling: z ~ N(0, I), decoded.
- `flow`: conditional flow matching (Lipman, Chen, Ben-Hamu, Nickel and Le, ICLR 2023) on the
  straight path x_t = (1 - t) x0 + t x1 from noise x0 to an image x1, the network regressing the
  velocity x1 - x0; the label is dropped 10% of the time (a null class), and sampling mixes the
  two velocities with guidance w (classifier-free guidance, Ho and Salimans, 2022):
  v = v(x, t, null) + w (v(x, t, y) - v(x, t, null)), integrated by Euler steps from t = 0 to 1.
  The network is a small U-Net (`unet`): 28 -> 14 -> 7 and back, skips, the time's sinusoidal
  features and the label's embedding added to every stage; its width is chosen so that one pass
  costs about what the generator's does (`cgan.flops`). `--flow-ema` draws with a moving average
  of the weights, as Ho et al. did (0.9999 over 800k steps); `--tune` tries it.
- `gan`: this project's default recipe through `--minutes` (`benchmarks/peers.py`).

Every contender draws 1,000 digits of each class (`--per-digit`), saved as
`<out>/<contender>_<minutes>min.npz` (`images` uint8 (n, 28, 28), `labels`: the layout of
`--save-npz`); both judges score them beside the real line, and the shape section measures them.
Anyone can score a saved file again: `python -m cgan.evaluation --samples <out>/flow_10min.npz`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers import StopAfter, train_project  # noqa: E402

import cgan_mnist  # noqa: E402
from cgan import evaluation, shape  # noqa: E402
from cgan import images as image_files  # noqa: E402
from cgan.backend import keras, tf  # noqa: E402
from cgan.config import Config  # noqa: E402
from cgan.data import MNIST, postprocess, preprocess  # noqa: E402
from cgan.flops import backward_flops, forward_flops  # noqa: E402
from cgan.precision import cpu_description  # noqa: E402

layers = keras.layers
CLASSES = 10
CONTENDERS = ("cvae", "flow", "gan")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a rival is trained and drawn with (each tuned on one seed, reported on another: docs)."""

    seed: int = 1
    batch_size: int = 128
    vae_latent: int = 16
    vae_lr: float = 4e-3  # tuned on seed 0 (docs/experiments.md): 1e-3, 2e-3 and 4e-3 tried; 8e-3 diverged
    vae_ema: float = 0.0  # the weights' moving average's momentum (0: none)
    flow_width: int = 10  # a U-Net pass of 19.6 MFLOP, the default generator's 18.4
    flow_lr: float = 4e-3  # tuned the same way: 1e-3, 2e-3, 4e-3
    flow_ema: float = 0.99
    guidance: float = 2.0  # chosen among 1, 2, 3 and 4
    sampler_steps: int = 16  # chosen between 8 and 16 (8 scores as well within 1%, in half the time)


# What `--tune` tries on its seed: each rival's training settings in turn (the others as given), and every
# sampler (guidance, Euler steps) on each trained flow. The U-Net's width stays at the generator's FLOPs.
TUNING = {
    "cvae": [{}, {"vae_lr": 2e-3}, {"vae_lr": 2e-3, "vae_latent": 8}, {"vae_lr": 2e-3, "vae_ema": 0.999},
             {"vae_lr": 4e-3}, {"vae_lr": 8e-3}],
    "flow": [{}, {"flow_ema": 0.999}, {"flow_lr": 2e-3}, {"flow_lr": 2e-3, "flow_ema": 0.99},
             {"flow_lr": 4e-3, "flow_ema": 0.99}],
}
SAMPLERS = [(guidance, steps) for steps in (8, 16) for guidance in (1.0, 2.0, 3.0, 4.0)]


def adam(lr: float, ema: float) -> keras.optimizers.Adam:
    """Adam; with `ema` > 0 it keeps a moving average of the weights, which `fit` swaps in when it ends."""
    return keras.optimizers.Adam(lr, use_ema=ema > 0, ema_momentum=ema or 0.99)


# ---------------------------------------------------------------------------
# The conditional VAE


def vae_networks(latent: int) -> tuple[keras.Model, keras.Model]:
    """(encoder: image, label -> mean and log-variance of z; decoder: the project's generator with z as its noise)."""
    image, label = keras.Input((28, 28, 1), name="image"), keras.Input((1,), dtype="int32", name="label")
    x = image
    for filters in (32, 64):  # 14x14x32, 7x7x64
        x = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 4, strides=2, padding="same")(x))
    one_hot = layers.Flatten()(layers.CategoryEncoding(CLASSES, "one_hot")(label))
    x = layers.Concatenate()([layers.Flatten()(x), one_hot])
    moments = layers.Dense(2 * latent)(x)
    encoder = keras.Model({"image": image, "label": label}, moments, name="cvae_encoder")
    decoder = cgan_mnist.config_generator(dataclasses.replace(Config(), latent_dim=latent))  # the default G
    return encoder, decoder


class ConditionalVAE(keras.Model):
    """One step: encode, draw z by the reparameterisation, decode; loss = pixels' cross-entropy + KL (per image)."""

    def __init__(self, encoder, decoder, latent: int, seed: int):
        super().__init__()
        self.encoder, self.decoder, self.latent = encoder, decoder, latent
        self.seeds = keras.random.SeedGenerator(seed)

    def train_step(self, data):
        image, label = data  # [-1, 1] (b, 28, 28, 1), (b, 1)
        with tf.GradientTape() as tape:
            mean, log_var = tf.split(self.encoder({"image": image, "label": label}, training=True), 2, axis=-1)
            z = mean + tf.exp(0.5 * log_var) * keras.random.normal(tf.shape(mean), seed=self.seeds)
            drawn = self.decoder({"noise": z, "label": label}, training=True)
            p = tf.clip_by_value((drawn + 1) / 2, 1e-6, 1 - 1e-6)
            x = (image + 1) / 2
            reconstruction = -tf.reduce_sum(x * tf.math.log(p) + (1 - x) * tf.math.log(1 - p), axis=[1, 2, 3])
            kl = 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1 - log_var, axis=-1)
            loss = tf.reduce_mean(reconstruction + kl)
        weights = self.encoder.trainable_weights + self.decoder.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return {"loss": loss, "kl": tf.reduce_mean(kl)}


def train_vae(settings: Settings, minutes: float, images, labels, *, max_steps: int | None = None) -> dict:
    keras.utils.set_random_seed(settings.seed)
    encoder, decoder = vae_networks(settings.vae_latent)
    model = ConditionalVAE(encoder, decoder, settings.vae_latent, settings.seed)
    model.compile(optimizer=adam(settings.vae_lr, settings.vae_ema))
    clock = _fit(model, images, labels, settings, minutes, max_steps)
    rng = np.random.default_rng(settings.seed)

    def draw(wanted: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500].reshape(-1, 1).astype(np.int32)
            z = rng.standard_normal((len(chunk), settings.vae_latent)).astype(np.float32)
            out.append(postprocess(decoder({"noise": z, "label": chunk}, training=False)))
        return np.concatenate(out)

    step = settings.batch_size * (forward_flops(encoder) + backward_flops(encoder, inputs=False)
                                  + forward_flops(decoder) + backward_flops(decoder))
    return {"draw": draw, "steps": clock.steps, "minutes": clock.trained / 60, "tflop": clock.steps * step / 1e12,
            "draw_flop_per_image": forward_flops(decoder)}


# ---------------------------------------------------------------------------
# Conditional flow matching with classifier-free guidance


def time_features(t, size: int = 32):
    """Sinusoidal features (b, size) of times t (b, 1) in [0, 1]."""
    frequencies = tf.exp(tf.linspace(0.0, math.log(1000.0), size // 2))  # 1 to 1,000 turns over t's range
    angles = 2 * math.pi * t * frequencies[None, :]
    return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)


def unet(width: int) -> keras.Model:
    """v(x_t, t, label) -> velocity (b, 28, 28, 1); label CLASSES is the null class (guidance's unconditional)."""
    x_in, t_in = keras.Input((28, 28, 1), name="x"), keras.Input((1,), name="t")
    label = keras.Input((1,), dtype="int32", name="label")
    t_features = layers.Lambda(time_features, output_shape=(32,))(t_in)
    condition = layers.Add()([layers.Dense(4 * width)(t_features),
                              layers.Flatten()(layers.Embedding(CLASSES + 1, 4 * width)(label))])
    condition = layers.Activation("silu")(layers.Dense(4 * width, activation="silu")(condition))

    def block(x, filters):
        """Two 3x3 convolutions (group-free: the maps are small), the condition added between them as a bias."""
        x = layers.Activation("silu")(layers.Conv2D(filters, 3, padding="same")(x))
        x = layers.Add()([x, layers.Reshape((1, 1, filters))(layers.Dense(filters)(condition))])
        return layers.Activation("silu")(layers.Conv2D(filters, 3, padding="same")(x))

    h28 = block(x_in, width)  # 28x28xw
    h14 = block(layers.Conv2D(2 * width, 3, strides=2, padding="same")(h28), 2 * width)  # 14x14x2w
    h7 = block(layers.Conv2D(4 * width, 3, strides=2, padding="same")(h14), 4 * width)  # 7x7x4w
    u14 = layers.Conv2DTranspose(2 * width, 4, strides=2, padding="same")(h7)
    u14 = block(layers.Concatenate()([u14, h14]), 2 * width)
    u28 = layers.Conv2DTranspose(width, 4, strides=2, padding="same")(u14)
    u28 = block(layers.Concatenate()([u28, h28]), width)
    velocity = layers.Conv2D(1, 3, padding="same", kernel_initializer="zeros")(u28)
    return keras.Model({"x": x_in, "t": t_in, "label": label}, velocity, name="flow_unet")


class FlowMatching(keras.Model):
    """One step: x_t on the straight path between noise and the batch at uniform t; MSE to the velocity x1 - x0."""

    def __init__(self, network, seed: int, drop: float = 0.1):
        super().__init__()
        self.network, self.drop = network, drop
        self.seeds = keras.random.SeedGenerator(seed)

    def train_step(self, data):
        x1, label = data
        b = tf.shape(x1)[0]
        x0 = keras.random.normal(tf.shape(x1), seed=self.seeds)
        t = keras.random.uniform((b, 1), seed=self.seeds)
        dropped = keras.random.uniform((b, 1), seed=self.seeds) < self.drop
        label = tf.where(dropped, tf.fill(tf.shape(label), CLASSES), label)
        x_t = (1 - t[:, :, None, None]) * x0 + t[:, :, None, None] * x1
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.network({"x": x_t, "t": t, "label": label}, training=True)
                                            - (x1 - x0)))
        weights = self.network.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return {"loss": loss}


def flow_sampler(network, *, guidance: float, steps: int, seed: int):
    """draw(wanted) -> uint8 images of classes `wanted` by `steps` Euler steps, guided: both velocities from one
    batched call, the step traced once for every draw."""
    rng = np.random.default_rng(seed)

    @tf.function(reduce_retracing=True)
    def step(x, t, labels):
        v = network({"x": tf.concat([x, x], 0), "t": tf.fill([2 * tf.shape(x)[0], 1], t), "label": labels},
                    training=False)
        v_asked, v_free = tf.split(v, 2)
        return x + (v_free + guidance * (v_asked - v_free)) / steps

    def draw(wanted: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500].reshape(-1, 1).astype(np.int32)
            x = tf.constant(rng.standard_normal((len(chunk), 28, 28, 1)).astype(np.float32))
            labels = tf.constant(np.concatenate([chunk, np.full_like(chunk, CLASSES)]))
            for k in range(steps):
                x = step(x, tf.constant(k / steps, tf.float32), labels)
            out.append(postprocess(np.clip(x.numpy(), -1, 1)))
        return np.concatenate(out)

    return draw


def train_flow(settings: Settings, minutes: float, images, labels, *, max_steps: int | None = None) -> dict:
    keras.utils.set_random_seed(settings.seed)
    network = unet(settings.flow_width)
    model = FlowMatching(network, settings.seed)
    model.compile(optimizer=adam(settings.flow_lr, settings.flow_ema))
    clock = _fit(model, images, labels, settings, minutes, max_steps)
    step_flop = settings.batch_size * (forward_flops(network) + backward_flops(network, inputs=False))
    draw = flow_sampler(network, guidance=settings.guidance, steps=settings.sampler_steps, seed=settings.seed)
    return {"draw": draw, "steps": clock.steps, "minutes": clock.trained / 60, "tflop": clock.steps * step_flop / 1e12,
            "draw_flop_per_image": 2 * settings.sampler_steps * forward_flops(network), "network": network}


# ---------------------------------------------------------------------------
# The bench


def _fit(model, images, labels, settings: Settings, minutes: float, max_steps: int | None) -> StopAfter:
    """Train `model` on shuffled batches of the digits in [-1, 1] until `minutes` (or `max_steps`) are spent."""
    x, y = preprocess(images), labels.astype(np.int32).reshape(-1, 1)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=settings.seed).repeat()
    clock = StopAfter(minutes * 60)
    model.fit(data.batch(settings.batch_size, drop_remainder=True).prefetch(2), epochs=1,
              steps_per_epoch=max_steps or 10_000_000, callbacks=[clock], verbose=0, shuffle=False)
    return clock


def draw_seconds(draw, count: int = 1000) -> float:
    """Seconds to draw `count` digits (a tenth of them of each class), after a warm-up draw of as many."""
    draw(np.repeat(np.arange(CLASSES), count // CLASSES))
    start = time.perf_counter()
    draw(np.repeat(np.arange(CLASSES), count // CLASSES))
    return time.perf_counter() - start


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[3, 10], help="training budgets (default: 3 10)")
    p.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS),
                   help="which to train (default: all)")
    p.add_argument("--per-digit", type=int, default=1000, help="samples per digit to draw and score (default: 1000)")
    p.add_argument("--out", metavar="DIR", default=str(ROOT / "benchmarks" / "results" / "rivals"),
                   help="where the samples (npz), grids and the table go (default: benchmarks/results/rivals)")
    p.add_argument("--quick", action="store_true",
                   help="a few steps each and 10 samples per digit: checks that it runs")
    p.add_argument("--tune", action="store_true",
                   help="try each rival's settings (TUNING) and samplers for the first of --minutes, print which "
                        "scores best, save no samples")
    for field in dataclasses.fields(Settings):
        p.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
                       help=f"(default: {field.default})")
    args = p.parse_args(argv)
    settings = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})
    per_digit = 10 if args.quick else args.per_digit
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images, labels = MNIST.load()
    if args.quick:  # a shuffle buffer of 60,000 digits takes longer to fill than a few steps take
        images, labels = images[:1024], labels[:1024]
    evaluator = evaluation.Evaluator()
    real = evaluation.reference_scores(evaluator, per_digit=per_digit)
    wanted = np.repeat(np.arange(CLASSES), per_digit)
    gan_flop = forward_flops(cgan_mnist.config_generator(Config()))
    print(f"{cpu_description()}; {per_digit} samples per digit; seed {settings.seed}; generator {gan_flop / 1e6:.1f} "
          f"MFLOP a pass, U-Net (width {settings.flow_width}) {forward_flops(unet(settings.flow_width)) / 1e6:.1f}")
    if args.tune:
        return tune(settings, args, images, labels, evaluator, real, wanted)
    print(HEADER, flush=True)
    rows, shapes = [], {}
    for minutes in ([0.05] if args.quick else args.minutes):
        for name in args.contenders:
            limit = 4 if args.quick else None
            if name == "cvae":
                trained = train_vae(settings, minutes, images, labels, max_steps=limit)
            elif name == "flow":
                trained = train_flow(settings, minutes, images, labels, max_steps=limit)
            else:
                trained = train_project(minutes, ["--seed", str(settings.seed)], quick=args.quick)
                trained["draw_flop_per_image"] = gan_flop
            drawn = trained["draw"](wanted)
            tag = f"{name}_{minutes:g}min"
            image_files.save_npz(out / f"{tag}.npz", drawn, wanted)
            image_files.save_grid(out / f"{tag}.png", drawn.reshape(CLASSES, per_digit, 28, 28)[:, :10].reshape(
                -1, 28, 28), rows=CLASSES)
            s = evaluator.score(drawn, wanted)
            shapes[tag] = evaluation.shape_section(drawn, wanted, per_digit=per_digit)
            rows.append({"contender": name, "budget_minutes": minutes, "steps": trained["steps"],
                         "minutes": trained["minutes"], "tflop": trained["tflop"],
                         "draw_seconds_1000": draw_seconds(trained["draw"], 20 if args.quick else 1000)
                         * (50 if args.quick else 1),
                         "draw_gflop_per_image": trained["draw_flop_per_image"] / 1e9, **dataclasses.asdict(s)})
            print(format_row(rows[-1], real), flush=True)
    real_row = {"contender": "real digits", "budget_minutes": 0, "steps": 0, "minutes": 0, "tflop": 0,
                "draw_seconds_1000": 0, "draw_gflop_per_image": 0, **dataclasses.asdict(real)}
    table = "\n".join([HEADER, *(format_row(r, real) for r in rows), format_row(real_row, real)])
    print(table.splitlines()[-1])
    shape_text = "\n\n".join(f"{tag}\n{shape.format_comparisons(c)}" for tag, c in shapes.items())
    result = {"cpu": cpu_description(), "per_digit": per_digit, "settings": dataclasses.asdict(settings),
              "rows": rows, "real": dataclasses.asdict(real)}
    (out / "rivals.txt").write_text(f"{cpu_description()}; seed {settings.seed}\n{table}\n\n{shape_text}\n")
    (out / "rivals.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def tune(settings: Settings, args, images, labels, evaluator, real, wanted) -> dict:
    """Each rival trained with each of its TUNING settings (each flow drawn with every sampler), scored by both
    judges; the best is the lowest mean of the two Frechet distances as multiples of the real line's."""
    minutes, limit = (0.05, 4) if args.quick else (args.minutes[0], None)
    trainers = {"cvae": train_vae, "flow": train_flow}
    print(f"{'tried':<52}{'steps':>7}{'accuracy':>9}{'worst':>7}{'FD conv':>9}{'FD resn':>9}{'recall':>12}"
          f"{'draw 1k':>9}", flush=True)
    best, lines = {}, []
    for name in (c for c in args.contenders if c in trainers):
        for overrides in TUNING[name]:
            tried = dataclasses.replace(settings, **overrides)
            trained = trainers[name](tried, minutes, images, labels, max_steps=limit)
            samplers = SAMPLERS if name == "flow" else [(None, None)]
            for guidance, steps in samplers:
                label = ", ".join(f"{k}={v:g}" for k, v in overrides.items()) or "as given"
                draw = trained["draw"]
                if guidance is not None:
                    tried = dataclasses.replace(tried, guidance=guidance, sampler_steps=steps)
                    label += f"; w={guidance:g}, {steps} steps"
                    draw = flow_sampler(trained["network"], guidance=guidance, steps=steps, seed=tried.seed)
                started = time.perf_counter()
                s = evaluator.score(draw(wanted), wanted)
                seconds = (time.perf_counter() - started) * 1000 / len(wanted)  # drawing and scoring: an upper bound
                fd = np.mean([s.distances[j] / real.distances[j] for j in ("convnet", "resnet")])
                line = (f"{name + ': ' + label:<52}{trained['steps']:7d}{100 * s.accuracy:8.2f}%"
                        f"{100 * min(s.per_digit_accuracy):6.1f}%{s.distances['convnet']:9.3f}"
                        f"{s.distances['resnet']:9.3f}{s.recall['convnet']:6.3f}/{s.recall['resnet']:.3f}"
                        f"{seconds:8.2f}s")
                print(line, flush=True)
                lines.append(line)
                if name not in best or fd < best[name][0]:
                    best[name] = (fd, tried, line)
    summary = [f"best {name} (mean FD {fd:.2f}x real): {line.strip()}" for name, (fd, _, line) in best.items()]
    print("\n".join(summary))
    text = "\n".join([f"{cpu_description()}; seed {settings.seed}; {minutes:g} min; {len(wanted) // CLASSES} "
                      f"per digit; real line: FD {real.distances['convnet']:.3f}/{real.distances['resnet']:.3f}; "
                      "'draw 1k' includes scoring", *lines, "", *summary])
    Path(args.out, f"tuning_seed{settings.seed}_{minutes:g}min.txt").write_text(text + "\n")
    return {name: dataclasses.asdict(tried) for name, (_, tried, _) in best.items()}


HEADER = (f"{'contender':<12}{'budget':>7}{'steps':>7}{'min':>6}{'TFLOP':>7}{'accuracy':>9}{'worst':>7}"
          f"{'FD conv':>9}{'FD resn':>9}{'precision':>12}{'recall':>12}{'divers':>7}{'draw 1k':>9}")


def format_row(r: dict, real) -> str:
    pair = lambda d: f"{d['convnet']:.3f}/{d['resnet']:.3f}"  # noqa: E731
    return (f"{r['contender']:<12}{r['budget_minutes']:7g}{r['steps']:7d}{r['minutes']:6.1f}{r['tflop']:7.1f}"
            f"{100 * r['accuracy']:8.2f}%{100 * min(r['per_digit_accuracy']):6.1f}%"
            f"{r['distances']['convnet']:9.3f}{r['distances']['resnet']:9.3f}{pair(r['precision']):>12}"
            f"{pair(r['recall']):>12}{r['diversity']:7.3f}{r['draw_seconds_1000']:8.2f}s")


if __name__ == "__main__":
    main()
