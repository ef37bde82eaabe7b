"""The `keras.Model` that trains a generator and a discriminator together, and its generator weight average.

The networks come from builders passed in as `Networks` (the script
`cgan_mnist.py` defines them), so this package never imports the script.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from cgan.backend import keras, tf
from cgan.config import Config
from cgan.losses import hinge_losses
from cgan.precision import compute_policy
from cgan.sampling import class_count, latent_dim

STEP_FIGURES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")  # what each training step reports


@dataclasses.dataclass(frozen=True)
class Networks:
    """How to build a run's networks from its Config: the builders of the script that defines them.

    `generator(config, dtype=...)` and `discriminator(config, dtype=...)` return
    the named functional models; `adversarial(generator, discriminator)` stacks
    them (for the diagram).
    """

    generator: Callable[..., keras.Model]
    discriminator: Callable[..., keras.Model]
    adversarial: Callable[[keras.Model, keras.Model], keras.Model]

    def for_diagrams(self, config: Config) -> list[keras.Model]:
        """The generator, the discriminator and the stacked model of `config`, for plot_model."""
        generator, discriminator = self.generator(config), self.discriminator(config)
        return [generator, discriminator, self.adversarial(generator, discriminator)]


def steps_per_call(config: Config, start_step: int) -> int:
    """The most steps per compiled call (up to 10) that keeps every dump, and the last step, on a call boundary."""
    remaining = config.train_steps - start_step
    return next(k for k in (10, 5, 4, 2, 1) if not (start_step % k or remaining % k or config.save_interval % k))


class ConditionalGAN(keras.Model):
    """Trains a generator and a discriminator together, one update of each per step.

    Each step draws one batch of fakes, passes real and fake through the
    discriminator, and updates both networks from that single forward pass
    (D against its loss, G against its own through D). This saves the second
    generator pass of alternating updates, about a tenth of a step.

    Also keeps `ema_generator`, an exponential moving average of the generator's
    weights: it draws cleaner digits than the raw generator and is what gets
    saved. Take it through `averaged_generator()`, which first sets its
    batch-norm statistics for its own weights.
    """

    def __init__(self, generator, discriminator, ema_generator, *, config: Config, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = ema_generator
        self.config = config
        self.seed_generator = keras.random.SeedGenerator(config.seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_acc_tracker = keras.metrics.Mean(name="d_acc_real")
        self.fake_acc_tracker = keras.metrics.Mean(name="d_acc_fake")
        # (first step whose loss was not finite, which loss), set by the NaN guard: nothing from that step on
        # is logged or drawn.
        self.diverged_at: tuple[int, str] | None = None
        self.set_steps_per_call(1)

    def set_steps_per_call(self, steps: int) -> None:
        """Run `steps` training steps per call of the compiled function (Keras' `steps_per_execution`).

        Callbacks then run once per `steps` steps; `recent_steps()` still gives
        them every step's figures, which `train_step` keeps in `step_history`.
        Saves the per-step round trip between Python and the graph.
        """
        self.steps_per_execution = steps
        self.step_history = keras.Variable(np.zeros((steps, len(STEP_FIGURES)), np.float32), trainable=False,
                                           name="step_history")
        self.train_function = None  # traced again with the new count

    def recent_steps(self) -> list[tuple[int, dict[str, float]]]:
        """(step, figures) for each step run since callbacks last ran, oldest first; none from `diverged_at` on."""
        step = int(self.g_optimizer.iterations.numpy())
        steps = self.steps_per_execution
        last = step if self.diverged_at is None else min(step, self.diverged_at[0] - 1)
        history = self.step_history.numpy()
        return [(s, dict(zip(STEP_FIGURES, map(float, history[(s - 1) % steps])))) for s in range(step - steps + 1, last + 1)]

    def compile(self, d_optimizer, g_optimizer, loss_fn=hinge_losses):
        """`loss_fn(real_logits, fake_logits)` returns (discriminator loss, generator loss)."""
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_acc_tracker, self.fake_acc_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        real, labels = data  # (b, h, w, 1) in [-1, 1]; (b, 1) int32
        batch = tf.shape(real)[0]
        noise = keras.random.normal((batch, self.config.latent_dim), seed=self.seed_generator)
        d_weights, g_weights = self.discriminator.trainable_weights, self.generator.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator({"noise": noise, "label": labels}, training=True)  # (b, h, w, 1)
            # Two calls rather than one on the stacked batch (D has no batch statistics, so the logits
            # are the same): G's backward pass then runs through D for the fakes only.
            real_logits = self.discriminator({"image": real, "label": labels}, training=True)  # (b, 1)
            fake_logits = self.discriminator({"image": tf.cast(fake, real.dtype), "label": labels}, training=True)
            d_loss, g_loss = self.loss_fn(real_logits, fake_logits)
        d_grads, g_grads = tape.gradient(d_loss, d_weights), tape.gradient(g_loss, g_weights)
        self.d_optimizer.apply_gradients(zip(d_grads, d_weights))
        self.g_optimizer.apply_gradients(zip(g_grads, g_weights))
        self._update_ema()

        real_acc = tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))
        fake_acc = tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.real_acc_tracker.update_state(real_acc)
        self.fake_acc_tracker.update_state(fake_acc)
        figures = {"d_loss": d_loss, "g_loss": g_loss, "d_acc_real": real_acc, "d_acc_fake": fake_acc}
        row = (tf.cast(self.g_optimizer.iterations, tf.int32) - 1) % self.steps_per_execution
        values = tf.stack([tf.cast(figures[name], tf.float32) for name in STEP_FIGURES])
        self.step_history.assign(tf.tensor_scatter_nd_update(self.step_history.value, [[row]], [values]))
        # Per-step values (not running means) so logs and the CSV show each step.
        return figures

    def _update_ema(self):
        # Warm-up: the average follows the raw weights closely while they move fast.
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_w, w in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))

    def averaged_generator(self, *, statistics_from: int = 4096) -> keras.Model:
        """`ema_generator` with batch-norm statistics measured for its own weights, ready to sample.

        The statistics are those of `statistics_from` samples; the saved generator uses the default.
        """
        set_batch_norm_statistics(self.ema_generator, seed=self.config.seed, count=statistics_from)
        return self.ema_generator


def set_batch_norm_statistics(generator: keras.Model, *, seed: int = 0, count: int = 4096, chunk: int = 512) -> None:
    """Set the moving mean and variance of every BatchNormalization layer to their values over `count` samples.

    An averaged generator's weights differ from those the running statistics
    were gathered with; these are the statistics of `count` samples (labels
    cycling through the classes) drawn with the averaged weights themselves,
    layer by layer as in training. Each layer's figures are summed over chunks
    of `chunk` samples, with the layers before it already set: what one
    training-mode pass over all the samples gives, without holding all their
    activations at once (the peak memory of a whole run, when it did).
    """
    rng = np.random.default_rng(seed)
    inputs = {"noise": rng.standard_normal((count, latent_dim(generator))).astype(np.float32)}
    classes = class_count(generator)
    if classes:
        inputs["label"] = (np.arange(count) % classes).astype(np.int32).reshape(-1, 1)
    for layer in generator.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        to_layer = keras.Model(generator.input, layer.input)  # the earlier layers, statistics already set
        rows, total, squares = 0, 0.0, 0.0
        for start in range(0, count, chunk):
            x = to_layer({name: value[start : start + chunk] for name, value in inputs.items()}, training=False)
            x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])  # channels last: one column per channel
            rows, total, squares = rows + len(x), total + x.sum(0), squares + (x * x).sum(0)
        mean = total / rows
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(squares / rows - mean * mean, 0.0).astype(np.float32))


def learning_rate_schedule(config: Config, initial: float):
    """Linear decay from `initial` to `initial * final_lr_fraction` over the run's steps."""
    return keras.optimizers.schedules.PolynomialDecay(
        initial, decay_steps=config.train_steps, end_learning_rate=initial * config.final_lr_fraction
    )


def adam(config: Config, learning_rate) -> keras.optimizers.Adam:
    """Adam with the run's betas; `learning_rate` is a number or a schedule."""
    return keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)


def make_gan(config: Config, networks: Networks, *, loss_fn=hinge_losses) -> ConditionalGAN:
    """A compiled ConditionalGAN for `config`, ready for `fit`; `loss_fn` as in `ConditionalGAN.compile`."""
    keras.utils.set_random_seed(config.seed)
    # Grappler's remapper fails on this step's graph and logs an error line at the first step
    # ("remapper failed: ... Mutation::Apply error"); without it the step runs as fast (measured).
    tf.config.optimizer.set_experimental_options({"remapping": False})
    policy = compute_policy(config.precision)
    # D before G: the order in which the weights draw from the seeded initializers (runs stay reproducible).
    discriminator = networks.discriminator(config, dtype=policy)
    generator = networks.generator(config, dtype=policy)
    ema_generator = networks.generator(config, dtype="float32")
    ema_generator.set_weights(generator.get_weights())
    gan = ConditionalGAN(generator, discriminator, ema_generator, config=config, name="cgan")
    gan.compile(
        d_optimizer=adam(config, learning_rate_schedule(config, config.d_lr)),
        g_optimizer=adam(config, learning_rate_schedule(config, config.g_lr)),
        loss_fn=loss_fn,
    )
    return gan
