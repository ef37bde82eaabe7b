"""The `keras.Model` that trains a generator and a discriminator together, and its generator weight average.

The networks come from builders passed in as `Networks` (the script
`cgan_mnist.py` defines them), so this package never imports the script.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Callable

import numpy as np

from cgan import augment, conditions, distribute, losses
from cgan.backend import keras, tf
from cgan.config import Config, compute_policy, data_of, output_dtype
from cgan.layers import drawn_numbers
from cgan.losses import LOSSES, Loss
from cgan.sampling import class_count, latent_dim


@dataclasses.dataclass(frozen=True)
class Networks:
    """How to build a run's networks from its Config: the builders of the script that defines them.

    `generator(config, dtype=..., distributed=...)` and `discriminator(config,
    dtype=..., distributed=...)` return the named functional models (with
    `distributed`, any batch normalisation takes its statistics over the global
    batch, across replicas); `adversarial(generator, discriminator)` stacks them
    (for the diagram).
    """

    generator: Callable[..., keras.Model]
    discriminator: Callable[..., keras.Model]
    adversarial: Callable[[keras.Model, keras.Model], keras.Model]

    def for_diagrams(self, config: Config) -> list[keras.Model]:
        """The generator, the discriminator and the stacked model of `config`, for plot_model."""
        generator, discriminator = self.generator(config), self.discriminator(config)
        return [generator, discriminator, self.adversarial(generator, discriminator)]


# Under a distribution strategy, each draw of random numbers in a step has its own number below
# DRAWS_PER_STEP (see `ConditionalGAN._random`): the noise and penalty draws from 0 (at most 2
# --critic-steps + 1 of them), the D calls' --augment shifts from AUGMENT_DRAWS (4 a D update).
DRAWS_PER_STEP = 1024
AUGMENT_DRAWS = 512

FEATURE_GAP = "feature_gap"  # the figure of the feature matching term


def steps_per_call(config: Config, start_step: int) -> int:
    """The most steps per compiled call (up to 10) that keeps every dump, and the last step, on a call boundary."""
    remaining = config.train_steps - start_step
    return next(k for k in (10, 5, 4, 2, 1) if not (start_step % k or remaining % k or config.save_interval % k))


class ConditionalGAN(keras.Model):
    """Trains a generator and a discriminator (or critic) together: one generator update per step.

    With one discriminator update per step and no critic (the hinge and
    cross-entropy losses by default), each step draws one batch of fakes,
    passes real and fake through the discriminator, and updates both networks
    from that single forward pass (D against its loss, G against its own through
    D), which saves the second generator pass of alternating updates. With
    `critic_steps` above one, or a Wasserstein critic, the step first updates D
    `critic_steps` times, each on its own real batch and fresh fakes, then G once.
    Unconditional networks (no `label` input) get no labels. Four optional terms:
    `aux_weight` (D has a class head that learns real labels, G is pushed towards
    fakes it reads as theirs; with `twin_classifier` a twin head learns the fakes' labels and G is
    pushed against it), `mode_seeking` (fakes drawn in pairs of one label,
    G pushed to make each pair differ as its noises do), `feature_matching` (G pushed to
    bring each class's mean of D's last features over the fakes to the real images')
    and `r1_weight` (D's gradient at real images penalised, on every fourth group of
    them). With `augment`, D sees a share of its images, real and fake alike, moved by a
    few pixels (`cgan.augment`).

    Also keeps `ema_generator`, an exponential moving average of the generator's
    weights: it draws cleaner digits than the raw generator and is what gets
    saved. Take it through `averaged_generator()`, which first sets its
    batch-norm statistics for its own weights.
    """

    def __init__(self, generator, discriminator, ema_generator, *, config: Config, strategy=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = ema_generator
        self.config = config
        self.conditional = "label" in generator.input
        if config.aux_target == "number":  # the data gives numbers; G and D are conditioned on their labels
            self.number_members = tf.constant(data_of(config).number_members())
        self.strategy = strategy  # the tf.distribute strategy it was built under, if any
        self.seed_generator = keras.random.SeedGenerator(config.seed)
        # (first step whose loss was not finite, which loss), set by the NaN guard: nothing from that step on
        # is logged or drawn.
        self.diverged_at: tuple[int, str] | None = None

    def compile(self, d_optimizer, g_optimizer, loss: Loss = LOSSES["hinge"]):
        """`loss` is the objective (`cgan.losses.LOSSES`); its `figures` are what each step reports."""
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss = loss
        self.trackers = [keras.metrics.Mean(name=name) for name in self.figure_names]
        self.set_steps_per_call(1)
        # Its networks are built; `fit` under a distribution strategy would otherwise build this
        # model by calling it on a batch of real images, which a generator does not take.
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 builds a model under a strategy by averaging a first batch over the replicas; under
        # MultiWorkerMirroredStrategy that fails on the per-replica batch. Everything is built by `make_gan`.
        return

    def set_steps_per_call(self, steps: int) -> None:
        """Run `steps` training steps per call of the compiled function (Keras' `steps_per_execution`).

        Callbacks then run once per `steps` steps; `recent_steps()` still gives
        them every step's figures, which `train_step` keeps in `step_history`.
        Saves the per-step round trip between Python and the graph.
        """
        self.steps_per_execution = steps
        self.step_history = keras.Variable(np.zeros((steps, len(self.figure_names)), np.float32), trainable=False,
                                           name="step_history")
        self.train_function = None  # traced again with the new count

    def recent_steps(self) -> list[tuple[int, dict[str, float]]]:
        """(step, figures) for each step run since callbacks last ran, oldest first; none from `diverged_at` on."""
        step = int(self.g_optimizer.iterations.numpy())
        steps = self.steps_per_execution
        last = step if self.diverged_at is None else min(step, self.diverged_at[0] - 1)
        history = self.step_history.numpy()
        return [(s, dict(zip(self.figure_names, map(float, history[(s - 1) % steps]))))
                for s in range(step - steps + 1, last + 1)]

    @property
    def loss_fn(self):
        """(real_logits, fake_logits) -> (D loss, G loss) of the run's objective."""
        return self.loss.losses

    @property
    def figure_names(self) -> tuple[str, ...]:
        """What each step reports, in the order of `step_history`'s columns."""
        return (self.loss.figures + (losses.CLASS_FIGURES if self.config.aux_weight else ())
                + (losses.ATTRIBUTE_FIGURES if "attribute_predictions" in self._d_outputs else ())
                + ((losses.TWIN_FIGURE,) if self.config.twin_classifier else ())
                + (("mode_ratio",) if self.config.mode_seeking else ())
                + (("r1_penalty",) if self.config.r1_weight else ())
                + ((FEATURE_GAP,) if self.config.feature_matching else ()))

    @property
    def metrics(self):
        return self.trackers

    @property
    def _d_outputs(self) -> tuple[str, ...]:
        outputs = self.discriminator.output
        return tuple(outputs) if isinstance(outputs, dict) else ("logit",)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @staticmethod
    def _inputs(model, given: dict) -> dict:
        """The entries of `given` that `model` takes: an unconditional network takes no label, and so on."""
        return {name: value for name, value in given.items() if name in model.input}

    def _g(self, noise, conditions):
        """G's fakes for `conditions` ({"label": (b, 1)[, "shape": (b, k)]}: see `cgan.conditions`)."""
        return self.generator(self._inputs(self.generator, {"noise": noise, **conditions}), training=True)

    def _fake_conditions(self, noise, asked):
        """What D is conditioned on for fakes drawn for `asked`: those, or with --number-code the numbers
        G drew in place of their classes."""
        if not self.config.number_code:
            return asked
        return {**asked, "label": drawn_numbers(self.generator, noise, asked["label"])}

    def _d(self, images, conditions, draw: int):
        """D's real/fake logits (b, 1), and its class heads (b, classes) by name: "class_logits" with an
        auxiliary classifier, "twin_logits" with its twin; {} without.

        With --augment, D sees `images` moved (`cgan.augment`), by random numbers of
        `draw`: each call of a step passes its own.
        """
        if self.config.augment:
            uniform = self._random(keras.random.uniform, tf.random.stateless_uniform,
                                   (tf.shape(images)[0], augment.RANDOMS), AUGMENT_DRAWS + draw)
            images = augment.augment(images, uniform, self.config.augment)
        out = self.discriminator(self._inputs(self.discriminator, {"image": images, **conditions}), training=True)
        if not isinstance(out, dict):
            return out, {}
        return out["logit"], {name: value for name, value in out.items() if name != "logit"}

    def _with_classes(self, d_loss, g_loss, real_heads, real_targets, fake_heads, fake_labels, figures):
        """The losses with the auxiliary classifier's terms (if D has one), and `figures` with their values.

        D learns the classes of real images only (`real_targets`: their labels, or with
        --aux-target number their numbers); G is pushed towards fakes that D's classifier
        reads as the label they were drawn for, or as a number of that label (the AC-GAN
        terms, the fake images not taught to D as their label). With the twin classifier
        (TAC-GAN), D's twin also learns the labels the fakes were drawn for, and G is
        pushed away from fakes the twin reads right: G's classifier term becomes the
        difference of the two cross-entropies.
        """
        if "class_logits" not in real_heads:
            return d_loss, g_loss, figures
        d_class = losses.class_loss(real_heads["class_logits"], real_targets)
        if self.config.aux_target == "number":
            g_class = losses.class_set_loss(fake_heads["class_logits"], fake_labels, self.number_members)
        else:
            g_class = losses.class_loss(fake_heads["class_logits"], fake_labels)
        weight = self.config.aux_weight
        figures = {**figures, **dict(zip(losses.CLASS_FIGURES, (d_class, g_class)))}
        if "twin_logits" in fake_heads:
            twin = losses.class_loss(fake_heads["twin_logits"], fake_labels)
            d_class, g_class = d_class + twin, g_class - twin
            figures[losses.TWIN_FIGURE] = twin
        return d_loss + weight * d_class, g_loss + weight * g_class, figures

    def _paired(self, conditions):
        """The conditions to draw fakes for: `conditions`, or with --mode-seeking, their first half twice (pairs
        of one label)."""
        if not self.config.mode_seeking:
            return conditions
        batch = tf.shape(conditions["label"])[0]
        return {name: tf.concat([t[: batch // 2], t[: batch - batch // 2]], 0) for name, t in conditions.items()}

    def _with_attributes(self, d_loss, g_loss, real_heads, real_conditions, fake_heads, fake_conditions, figures):
        """The losses with the attribute regression's terms (if D has the head: a continuous condition's
        --shape-weight).

        D learns the measured attributes of real images; G is pushed towards fakes that D
        reads as the attributes they were drawn for; both in the attributes' standard scores.
        """
        if "attribute_predictions" not in real_heads:
            return d_loss, g_loss, figures
        scores, name = self.generator.get_layer(conditions.LAYER), conditions.kind_of(self.generator).name
        d_term = losses.attribute_loss(real_heads["attribute_predictions"], scores(real_conditions[name]))
        g_term = losses.attribute_loss(fake_heads["attribute_predictions"], scores(fake_conditions[name]))
        weight = self.config.shape_weight
        return (d_loss + weight * d_term, g_loss + weight * g_term,
                {**figures, **dict(zip(losses.ATTRIBUTE_FIGURES, (d_term, g_term)))})

    def _with_mode_seeking(self, g_loss, fake, noise, figures):
        """G's loss with the mode-seeking term (for fakes drawn for `_paired` labels), and `figures` with its ratio."""
        if not self.config.mode_seeking:
            return g_loss, figures
        loss, ratio = losses.mode_seeking(fake, noise)
        return g_loss + self.config.mode_seeking * loss, {**figures, "mode_ratio": ratio}

    def _noise(self, batch, draw: int = 0):
        """Noise for `batch` fakes; `draw` numbers the draws of a step (see `_random`)."""
        return self._random(keras.random.normal, tf.random.stateless_normal, (batch, self.config.latent_dim), draw)

    def _random(self, stateful, stateless, shape, draw: int):
        """Random numbers of `shape` for this replica's slice of the batch.

        On one device, from the run's seed generator (its state is in the checkpoint).
        Under a distribution strategy, each replica takes its rows of the global batch's
        numbers, drawn from (seed, step, draw) alone: the run then gets the same numbers
        whatever the number of replicas, as the data (split the same way) does.
        """
        if self.strategy is None:
            return stateful(shape, seed=self.seed_generator, dtype="float32")
        context = tf.distribute.get_replica_context()
        replicas, replica = context.num_replicas_in_sync, context.replica_id_in_sync_group
        step = self.g_optimizer.iterations
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(step, tf.int64) * DRAWS_PER_STEP + draw])
        batch = shape[0]
        every = stateless(tf.concat([[batch * replicas], shape[1:]], 0), seed=seed, dtype="float32")
        return every[replica * batch : (replica + 1) * batch]

    def train_step(self, data):
        # (k b, h, w, 1) in [-1, 1] and {"label": (k b, 1) int32[, "shape": (k b, 4)]}: one real batch per D update
        real, given = data
        real = tf.cast(real, self.generator.outputs[0].dtype)  # float32, but float64 in a float64 run
        # real: what D is conditioned on for the real images; targets: what its classifier learns of
        # them; asked: what G draws fakes for.
        labels = given["label"]
        targets = asked = labels
        if self.config.aux_target == "number" or self.config.number_code:  # the data gives numbers
            numbers = tf.cast(labels, tf.int32)
            asked = data_of(self.config).label(numbers // 10, numbers % 10)
            if not self.config.number_code:
                labels = asked
        real_conditions, asked = {**given, "label": labels}, {**given, "label": asked}
        if self.config.critic_steps == 1 and not self.loss.critic:
            figures = self._joint_step(real, real_conditions, targets, asked)
        else:
            figures = self._critic_then_generator_step(real, real_conditions, targets, asked)
        self._update_ema()
        figures = self._global(figures)
        for tracker, name in zip(self.trackers, self.figure_names):
            tracker.update_state(figures[name])
        row = (tf.cast(self.g_optimizer.iterations, tf.int32) - 1) % self.steps_per_execution
        values = tf.stack([tf.cast(figures[name], tf.float32) for name in self.figure_names])
        self.step_history.assign(tf.tensor_scatter_nd_update(self.step_history.value, [[row]], [values]))
        # Per-step values (not running means) so logs and the CSV show each step.
        if distribute.is_multi_worker(self.strategy):
            # Keras 3.15 averages a multi-worker step's outputs along their first axis, which a scalar has not.
            return {name: tf.reshape(value, [1]) for name, value in figures.items()}
        return figures

    @staticmethod
    def _global(figures: dict) -> dict:
        """The figures of the global batch: under a strategy each replica has its own batch's.

        The losses and the penalty are replica means already divided by the number of
        replicas (`losses.replica_mean`), so their sum is the global mean; the others are
        plain means, averaged.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return figures
        summed = ("d_loss", "g_loss", "gradient_penalty", "r1_penalty", *losses.CLASS_FIGURES, losses.TWIN_FIGURE,
                  *losses.ATTRIBUTE_FIGURES, FEATURE_GAP)
        return {name: context.all_reduce("SUM" if name in summed else "MEAN", value)
                for name, value in figures.items()}

    def _with_feature_matching(self, g_loss, real_heads, real_labels, fake_heads, fake_labels, figures):
        """G's loss with the feature matching term (if --feature-matching), and `figures` with its value.

        Its classes are what D is conditioned on: labels, or numbers with --number-code; one class without.
        """
        if not self.config.feature_matching:
            return g_loss, figures
        real, fake = real_heads["features"], fake_heads["features"]
        if self.conditional:
            classes = self.discriminator.get_layer("class_projection").units
        else:
            classes = 1
            real_labels, fake_labels = (tf.zeros((tf.shape(t)[0], 1), tf.int32) for t in (real, fake))
        gap = losses.feature_matching(real, real_labels, fake, fake_labels, classes)
        return g_loss + self.config.feature_matching * gap, {**figures, FEATURE_GAP: gap}

    def _joint_step(self, real, real_conditions, targets, asked):
        d_weights, g_weights = self.discriminator.trainable_weights, self.generator.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            noise, fake_asked = self._noise(tf.shape(real)[0]), self._paired(asked)
            fake = self._g(noise, fake_asked)  # (b, h, w, 1)
            fake_conditions = self._fake_conditions(noise, fake_asked)
            # Two calls rather than one on the stacked batch (D has no batch statistics, so the logits
            # are the same): G's backward pass then runs through D for the fakes only.
            real_logits, real_heads = self._d(real, real_conditions, draw=0)  # (b, 1)
            fake_logits, fake_heads = self._d(tf.cast(fake, real.dtype), fake_conditions, draw=1)
            d_loss, g_loss = self.loss_fn(real_logits, fake_logits)
            d_loss, g_loss, figures = self._with_classes(d_loss, g_loss, real_heads, targets, fake_heads,
                                                         fake_conditions["label"],
                                                         self._accuracies(real_logits, fake_logits))
            d_loss, g_loss, figures = self._with_attributes(d_loss, g_loss, real_heads, real_conditions, fake_heads,
                                                            fake_conditions, figures)
            g_loss, figures = self._with_mode_seeking(g_loss, fake, noise, figures)
            g_loss, figures = self._with_feature_matching(g_loss, real_heads, real_conditions["label"], fake_heads,
                                                          fake_conditions["label"], figures)
            d_loss, figures = self._with_r1(d_loss, real, real_conditions, figures, draw=2)
        d_grads, g_grads = tape.gradient(d_loss, d_weights), tape.gradient(g_loss, g_weights)
        self.d_optimizer.apply_gradients(zip(d_grads, d_weights))
        self.g_optimizer.apply_gradients(zip(g_grads, g_weights))
        return {"d_loss": d_loss, "g_loss": g_loss, **figures}

    def _critic_then_generator_step(self, real, real_conditions, targets, asked):
        steps = self.config.critic_steps
        batch = tf.shape(real)[0] // steps
        d_weights, g_weights = self.discriminator.trainable_weights, self.generator.trainable_weights

        def critic_update(i):
            """D's update on the i-th real batch of the step; what G's update and the figures read of it."""
            rows = slice(i * batch, (i + 1) * batch)
            x, t = real[rows], targets[rows]
            y, a = ({name: value[rows] for name, value in c.items()} for c in (real_conditions, asked))
            noise = self._noise(batch, draw=2 * i)
            fake, fake_conditions = tf.cast(self._g(noise, a), x.dtype), self._fake_conditions(noise, a)
            with tf.GradientTape() as tape:
                real_logits, real_heads = self._d(x, y, draw=4 * i)
                fake_logits, fake_heads = self._d(fake, fake_conditions, draw=4 * i + 1)
                d_loss, _ = self.loss_fn(real_logits, fake_logits)
                d_loss, _, _ = self._with_classes(d_loss, 0.0, real_heads, t, fake_heads, fake_conditions["label"], {})
                d_loss, _, _ = self._with_attributes(d_loss, 0.0, real_heads, y, fake_heads, fake_conditions, {})
                penalty = None
                if self.loss.critic:
                    penalty = self.gradient_penalty(x, fake, y, draw=2 * i + 1, augment_draw=4 * i + 2)
                    d_loss += self.config.gp_weight * penalty
                d_loss, r1_figures = self._with_r1(d_loss, x, y, {}, draw=4 * i + 3)
            self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_weights), d_weights))
            return x, t, y, a, d_loss, real_logits, real_heads, fake_logits, penalty, r1_figures

        def earlier_update(i):
            critic_update(i)
            return (i + 1,)

        first = 0
        if steps > 1 and self.strategy is None:
            # All but the last update in a loop, traced once instead of unrolled (WGAN-GP's five: a start
            # seconds shorter). Under a strategy they stay unrolled: the optimizer's cross-replica sums
            # cannot sit in a loop.
            tf.while_loop(lambda i: i < steps - 1, earlier_update, (tf.constant(0),))
            first = steps - 1
        for i in range(first, steps):
            x, t, y, a, d_loss, real_logits, real_heads, fake_logits, penalty, r1_figures = critic_update(i)
        with tf.GradientTape() as tape:
            noise, fake_asked = self._noise(batch, draw=2 * steps), self._paired(a)
            fake = self._g(noise, fake_asked)
            fake_conditions = self._fake_conditions(noise, fake_asked)
            g_logits, g_heads = self._d(tf.cast(fake, x.dtype), fake_conditions, draw=4 * steps)
            _, g_loss = self.loss_fn(tf.stop_gradient(real_logits), g_logits)
            _, g_loss, class_figures = self._with_classes(0.0, g_loss, real_heads, t, g_heads,
                                                          fake_conditions["label"], {})
            _, g_loss, class_figures = self._with_attributes(0.0, g_loss, real_heads, y, g_heads, fake_conditions,
                                                             class_figures)
            g_loss, class_figures = self._with_mode_seeking(g_loss, fake, noise, class_figures)
            # the real images' features from D's last update (constants to G)
            g_loss, class_figures = self._with_feature_matching(g_loss, real_heads, y["label"], g_heads,
                                                                fake_conditions["label"], class_figures)
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_weights), g_weights))
        # D's figures are those of its last update
        figures = {"d_loss": d_loss, "g_loss": g_loss, **class_figures, **r1_figures}
        if self.loss.critic:
            wasserstein = tf.reduce_mean(losses.wide(real_logits)) - tf.reduce_mean(losses.wide(fake_logits))
            return {**figures, "wasserstein": wasserstein, "gradient_penalty": penalty}
        return {**figures, **self._accuracies(real_logits, fake_logits)}

    @staticmethod
    def _accuracies(real_logits, fake_logits):
        return {"d_acc_real": tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)),
                "d_acc_fake": tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))}

    def gradient_penalty(self, real, fake, conditions, draw: int = 1, augment_draw: int = 2):
        """mean((||grad_x D(x_hat)||_2 - 1)^2) at x_hat = e x + (1 - e) G(z), one uniform e per image.

        `draw` numbers the draw of e, `augment_draw` that of --augment's shifts (see `_d`).

        The norm is sqrt(sum of squares + 1e-12), so that its gradient stays finite
        where D's gradient is zero (the plain norm's gradient is 0/0 there).
        """
        e = tf.cast(self._random(keras.random.uniform, tf.random.stateless_uniform, (tf.shape(real)[0], 1, 1, 1), draw),
                    real.dtype)
        norms = tf.sqrt(self._squared_input_gradients(e * real + (1 - e) * fake, conditions, augment_draw) + 1e-12)
        return losses.replica_mean(tf.square(norms - 1.0))

    def _squared_input_gradients(self, images, conditions, draw: int):
        """||grad_x D(x)||_2^2 (b,) float32 (float64 in a float64 run) for each image x: what both gradient penalties
        are made of.

        With --augment, the gradient at the image before it is moved (`_d`'s `draw`)."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits, _ = self._d(images, conditions, draw)
        grads = losses.wide(tape.gradient(logits, images))
        return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])

    def _with_r1(self, d_loss, real, conditions, figures, *, draw: int):
        """D's loss with the R1 penalty (if --r1-weight; `draw` as in `_d`), and `figures` with the penalty."""
        if not self.config.r1_weight:
            return d_loss, figures
        penalty = self.r1_penalty(real, conditions, draw=draw)
        return d_loss + self.config.r1_weight / 2 * penalty, {**figures, "r1_penalty": penalty}

    def r1_penalty(self, real, conditions, *, draw: int = 2):
        """mean(||grad_x D(x)||_2^2) over real images x: every fourth --minibatch-std group of the batch (or image).

        Its own D forward pass on those rows, so that the penalty's double backward
        pass costs a quarter of what it would on the whole batch. Every fourth group
        of the global batch, whether one device takes it or replicas take their slices
        of it in order (`cgan.distribute.replica_rows`): each replica picks the groups
        of its slice that are fourth groups of the whole, and divides its sum by the
        whole's count, so that the replicas' terms add up to one device's mean.
        """
        group = max(self.config.minibatch_std, 1)
        context, replicas = losses.replica_context()
        replica = context.replica_id_in_sync_group if replicas > 1 else 0
        groups = tf.shape(real)[0] // group  # this replica's
        picked = tf.range((-replica * groups) % 4, groups, 4)  # its groups that are fourth groups of the whole
        def rows(t):  # the picked groups' rows of t
            grouped = tf.reshape(t, tf.concat([[groups, group], tf.shape(t)[1:]], 0))
            return tf.reshape(tf.gather(grouped, picked), tf.concat([[-1], tf.shape(t)[1:]], 0))

        squares = self._squared_input_gradients(rows(real), tf.nest.map_structure(rows, conditions), draw)
        return tf.reduce_sum(squares) / tf.cast((groups * replicas + 3) // 4 * group, squares.dtype)

    def _update_ema(self):
        # Warm-up: the average follows the raw weights closely while they move fast.
        dtype = self.ema_generator.trainable_weights[0].dtype
        step = tf.cast(self.g_optimizer.iterations, dtype)
        decay = tf.minimum(tf.cast(self.config.ema_decay, dtype), (1.0 + step) / (self.config.ema_warmup + step))
        for ema_w, w in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))

    def averaged_generator(self, *, statistics_from: int = 4096) -> keras.Model:
        """`ema_generator` with batch-norm statistics measured for its own weights, ready to sample.

        The statistics are those of `statistics_from` samples; the saved generator uses the default.
        """
        set_batch_norm_statistics(self.ema_generator, seed=self.config.seed, count=statistics_from)
        return self.ema_generator


# The sub-models from a generator's inputs to each of its batch normalisations, kept while it lives: the
# weight average's statistics are set at every dump, and building them each time cost more than a tiny
# network's passes.
_PREFIXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Samples a chunk holds: at least 512, more while one layer's input stays within 2**21 numbers (8 MB in
# float32), so that a small network takes a few large passes instead of many small ones.
_CHUNK_NUMBERS = 2**21


def _to_batch_norms(generator: keras.Model) -> list[tuple[keras.layers.BatchNormalization, keras.Model]]:
    prefixes = _PREFIXES.get(generator)
    if prefixes is None:
        prefixes = [(layer, keras.Model(generator.input, layer.input)) for layer in generator.layers
                    if isinstance(layer, keras.layers.BatchNormalization)]
        _PREFIXES[generator] = prefixes
    return prefixes


def set_batch_norm_statistics(generator: keras.Model, *, seed: int = 0, count: int = 4096,
                              chunk: int | None = None) -> None:
    """Set the moving mean and variance of every BatchNormalization layer to their values over `count` samples.

    An averaged generator's weights differ from those the running statistics
    were gathered with; these are the statistics of `count` samples (labels
    cycling through the classes) drawn with the averaged weights themselves,
    layer by layer as in training. Each layer's figures are summed over chunks
    of `chunk` samples (default: 512, or more for a small layer), with the layers
    before it already set: what one training-mode pass over all the samples gives,
    without holding all their activations at once (the peak memory of a whole
    run, when it did).
    """
    rng = np.random.default_rng(seed)
    inputs = {"noise": rng.standard_normal((count, latent_dim(generator))).astype(np.float32)}
    classes = class_count(generator)
    if classes:
        inputs["label"] = (np.arange(count) % classes).astype(np.int32).reshape(-1, 1)
        inputs = conditions.complete(generator, inputs, rng)  # real digits' shapes, for a --condition shape one
    for layer, to_layer in _to_batch_norms(generator):  # the earlier layers' statistics are already set
        size = chunk or max(512, _CHUNK_NUMBERS // int(np.prod(layer.input.shape[1:])))
        rows, total, squares = 0, 0.0, 0.0
        for start in range(0, count, size):
            x = to_layer({name: value[start : start + size] for name, value in inputs.items()}, training=False)
            x = tf.reshape(tf.cast(x, tf.float64), (-1, x.shape[-1]))  # channels last: one column per channel
            rows += int(x.shape[0])
            total, squares = total + tf.reduce_sum(x, 0).numpy(), squares + tf.reduce_sum(x * x, 0).numpy()
        mean = total / rows
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(squares / rows - mean * mean, 0.0).astype(np.float32))


def learning_rate_schedule(config: Config, initial: float, *, updates_per_step: int = 1):
    """Linear decay from `initial` to `initial * final_lr_fraction` over the run's steps.

    The schedule counts optimizer updates: the discriminator makes `critic_steps` of them
    a step, so its schedule is that many times longer (else its rate reached the end
    value a `critic_steps`-th of the way through, and a Wasserstein critic stopped
    learning while the generator went on).
    """
    return keras.optimizers.schedules.PolynomialDecay(
        initial, decay_steps=config.train_steps * updates_per_step, end_learning_rate=initial * config.final_lr_fraction
    )


def adam(config: Config, learning_rate) -> keras.optimizers.Adam:
    """Adam with the run's betas; `learning_rate` is a number or a schedule."""
    return keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)


def make_gan(config: Config, networks: Networks, *, strategy=None) -> ConditionalGAN:
    """A compiled ConditionalGAN for `config`, ready for `fit`; built in `strategy`'s scope if one is given."""
    keras.utils.set_random_seed(config.seed)
    # Grappler's remapper fails on this step's graph and logs an error line at the first step
    # ("remapper failed: ... Mutation::Apply error"); without it the step runs as fast (measured).
    tf.config.optimizer.set_experimental_options({"remapping": False})
    policy = compute_policy(config.precision)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        # D before G: the order in which the weights draw from the seeded initializers (runs stay reproducible).
        distributed = strategy is not None
        discriminator = networks.discriminator(config, dtype=policy, distributed=distributed)
        generator = networks.generator(config, dtype=policy, distributed=distributed)
        # never trained: no statistics to share; float32 but in a float64 run
        ema_generator = networks.generator(config, dtype=output_dtype(policy))
        ema_generator.set_weights(generator.get_weights())
        gan = ConditionalGAN(generator, discriminator, ema_generator, config=config, strategy=strategy, name="cgan")
        gan.compile(
            d_optimizer=adam(config, learning_rate_schedule(config, config.d_lr, updates_per_step=config.critic_steps)),
            g_optimizer=adam(config, learning_rate_schedule(config, config.g_lr)),
            loss=LOSSES[config.loss],
        )
        # Built here, not lazily at the first step: a step that creates variables is traced twice (the
        # first trace lifted out, then again), which doubled the compile time of every run (12.1 s
        # against 7.5 s for a tiny WGAN-GP dry run); inside a replica they also fail under fit ("You
        # must feed a value for placeholder tensor").
        gan.d_optimizer.build(discriminator.trainable_variables)
        gan.g_optimizer.build(generator.trainable_variables)
    return gan
