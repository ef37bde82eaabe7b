"""cgan/gan.py: one real training step, a discriminator that wins early, the weight average's batch-norm statistics."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config

import cgan_mnist
from cgan import conditions, losses
from cgan.backend import keras, tf
from cgan.config import training_batches
from cgan.data import MNIST, preprocess
from cgan.gan import set_batch_norm_statistics, steps_per_call
from cgan.layers import MinibatchStd

# Each option of the step in at least one variant, the losses and precisions each with a critic and
# without; options share variants (one compile each), each variant a path through the step.
VARIANTS = {
    "hinge": {},
    "bce-unconditional-feature-matching": {"loss": "bce", "unconditional": True, "feature_matching": 0.1},
    "wgan-gp-aux-classifier-minibatch-std-augment-feature-matching": {
        "loss": "wgan-gp", "critic_steps": 3, "aux_weight": 1.0, "minibatch_std": 2, "augment": 0.5,
        "feature_matching": 1.0},
    "wgan-gp-bf16": {"loss": "wgan-gp", "critic_steps": 2, "precision": "bfloat16"},
    "shape-aux-classifier-mode-seeking": {"condition": "shape", "aux_weight": 1.0, "mode_seeking": 1.0},
    "shape-two-d-steps-mode-seeking-twin-classifier-r1-minibatch-std": {
        "condition": "shape", "critic_steps": 2, "mode_seeking": 1.0, "aux_weight": 0.5, "twin_classifier": True,
        "r1_weight": 1.0, "minibatch_std": 4},
    "bf16-minibatch-std-r1-augment-twin-classifier-g-class-norm-feature-matching": {
        "precision": "bfloat16", "minibatch_std": 4, "r1_weight": 1.0, "augment": 1.0, "aux_weight": 0.25,
        "twin_classifier": True, "g_class_norm": True, "feature_matching": 0.1},
    "float64-r1-feature-matching": {"precision": "float64", "r1_weight": 1.0, "feature_matching": 0.1},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_training_step_changes_both_networks(mnist_small, variant):
    config = tiny_config(**VARIANTS[variant])
    gan = cgan_mnist.make_gan(config)
    images, labels = MNIST.load(mnist_small)
    given = conditions.training_conditions(conditions.kind_for(config), images, labels)
    conditions.set_statistics((gan.generator, gan.ema_generator, gan.discriminator), given)
    ds = training_batches(config, images, given)
    before = {name: [w.numpy().copy() for w in m.trainable_weights]
              for name, m in (("g", gan.generator), ("d", gan.discriminator), ("ema", gan.ema_generator))}
    history = gan.fit(ds, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    for name, m in (("g", gan.generator), ("d", gan.discriminator), ("ema", gan.ema_generator)):
        # Every kernel moves. (A bias can sit still: under the hinge loss the gradient of the
        # discriminator's output bias is exactly zero while all logits are inside the margin.)
        kernels = [(a, w.numpy()) for a, w in zip(before[name], m.trainable_weights) if a.ndim >= 2]
        unchanged = sum(np.array_equal(a, b) for a, b in kernels)
        assert kernels and unchanged == 0, f"{name}: {unchanged} of {len(kernels)} kernels did not change"
    assert set(history.history) == set(gan.figure_names)
    assert all(np.isfinite(history.history[name][0]) for name in gan.figure_names)
    assert int(gan.d_optimizer.iterations.numpy()) == config.critic_steps * int(gan.g_optimizer.iterations.numpy())
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    assert ("label" in gan.generator.input) == (not config.unconditional)
    if config.unconditional:
        assert set(gan.discriminator.input) == {"image"}
    kind = conditions.kind_for(config)
    assert conditions.kind_of(gan.generator) == conditions.kind_of(gan.discriminator) == kind
    if conditions.input_sizes(config):
        assert set(losses.ATTRIBUTE_FIGURES) <= set(gan.figure_names)
    inputs = {"noise": np.zeros((3, config.latent_dim), "float32")}
    if not config.unconditional:
        inputs = conditions.complete(gan.generator, {**inputs, "label": np.zeros((3, 1), "int32")})
    fakes = gan.generator(inputs)
    assert tuple(fakes.shape) == (3, 28, 28, 1)


def test_the_critic_reports_its_wasserstein_estimate_and_penalty(mnist_small):
    config = tiny_config(loss="wgan-gp", critic_steps=2, r1_weight=0.0)  # as --loss wgan-gp sets it
    gan = cgan_mnist.make_gan(config)
    assert gan.figure_names == ("d_loss", "g_loss", "wasserstein", "gradient_penalty")
    images, labels = MNIST.load(mnist_small)
    gan.fit(MNIST.batches(images, labels, batch_size=32, seed=0), epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    [(step, figures)] = gan.recent_steps()
    assert step == 2 and figures["gradient_penalty"] >= 0
    # The critic's loss is mean(D(fake)) - mean(D(real)) + weight x penalty, from the same batch.
    expected = -figures["wasserstein"] + config.gp_weight * figures["gradient_penalty"]
    assert figures["d_loss"] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_the_r1_penalty_is_the_squared_gradient_norm_at_a_quarter_of_the_real_images(mnist_small):
    config = tiny_config(r1_weight=2.0)
    gan = cgan_mnist.make_gan(config)
    assert gan.figure_names[-1] == "r1_penalty"
    images, labels = MNIST.load(mnist_small)
    x, y = tf.constant(preprocess(images[:32])), tf.constant(labels[:32].reshape(-1, 1).astype("int32"))
    # The same sum, image by image, for every fourth group of 4 (D's spread channel groups them):
    # images 0-3 and 16-19 of 32.
    assert config.minibatch_std == 4
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = gan.discriminator({"image": x, "label": y}, training=True)
    grads = tape.gradient(logits, x).numpy()
    expected = np.mean([np.sum(grads[i] ** 2) for i in (0, 1, 2, 3, 16, 17, 18, 19)])
    assert expected > 0
    assert float(gan.r1_penalty(x, {"label": y})) == pytest.approx(expected, rel=1e-4)
    gan.fit(MNIST.batches(images, labels, batch_size=config.batch_size, seed=0), epochs=1, steps_per_epoch=1,
            verbose=0, shuffle=False)
    [(_, figures)] = gan.recent_steps()
    assert figures["r1_penalty"] > 0


def test_the_auxiliary_classifier_learns_the_labels_of_real_digits(mnist_small):
    config = tiny_config(aux_weight=1.0, train_steps=60, save_interval=60)
    gan = cgan_mnist.make_gan(config)
    assert set(gan.discriminator.output) == {"logit", "class_logits"}
    assert gan.figure_names[4:6] == losses.CLASS_FIGURES  # after the losses and accuracies
    images, labels = MNIST.load(mnist_small)
    gan.fit(MNIST.batches(images, labels, batch_size=config.batch_size, seed=0), epochs=1, steps_per_epoch=60,
            verbose=0, shuffle=False)
    # Read by D's classifier, the test digits (never trained on) are their label well above chance (0.1)
    # after 60 steps of tiny networks (0.30 measured).
    test_images, test_labels = MNIST.load(mnist_small, split="test")
    out = gan.discriminator({"image": preprocess(test_images), "label": test_labels.reshape(-1, 1)}, training=False)
    accuracy = np.mean(np.argmax(out["class_logits"], axis=1) == test_labels)
    assert accuracy > 0.2, accuracy


def test_the_twin_classifier_learns_the_fakes_labels_and_g_is_pushed_against_it():
    gan = cgan_mnist.make_gan(tiny_config(aux_weight=0.5, twin_classifier=True))
    assert set(gan.discriminator.output) == {"logit", "class_logits", "twin_logits"}
    assert gan.figure_names[4:7] == (*losses.CLASS_FIGURES, "twin_class_loss")
    labels = tf.constant([[0], [1], [2]])
    right, wrong = tf.one_hot([0, 1, 2], 10) * 5.0, tf.one_hot([3, 4, 5], 10) * 5.0
    real_heads = {"class_logits": right}
    # D's classifier reads the fakes right, its twin wrongly: D's loss has the twin's error, G's loses it.
    fake_heads = {"class_logits": right, "twin_logits": wrong}
    d_loss, g_loss, figures = gan._with_classes(1.0, 2.0, real_heads, labels, fake_heads, labels, {})
    assert figures["twin_class_loss"] > 4 > 0.1 > figures["g_class_loss"]
    assert float(d_loss) == pytest.approx(1.0 + 0.5 * (figures["d_class_loss"] + figures["twin_class_loss"]), rel=1e-5)
    assert float(g_loss) == pytest.approx(2.0 + 0.5 * (figures["g_class_loss"] - figures["twin_class_loss"]), rel=1e-5)
    # Without the twin, G's class term is the classifier's alone and the figure is not there.
    plain = cgan_mnist.make_gan(tiny_config(aux_weight=0.5))
    _, g_plain, figures = plain._with_classes(1.0, 2.0, real_heads, labels, {"class_logits": right}, labels, {})
    assert "twin_class_loss" not in figures and float(g_plain) == pytest.approx(2.0 + 0.5 * figures["g_class_loss"])


def test_with_augment_d_sees_the_images_moved_and_without_it_as_they_are(mnist_small):
    images, labels = MNIST.load(mnist_small)
    x, y = tf.constant(preprocess(images[:16])), tf.constant(labels[:16].reshape(-1, 1).astype("int32"))
    plain = cgan_mnist.make_gan(tiny_config())
    as_they_are = plain.discriminator({"image": x, "label": y}, training=True)  # tiny D: no classifier, one output
    np.testing.assert_allclose(plain._d(x, {"label": y}, draw=0)[0], as_they_are, rtol=1e-6)
    moved = cgan_mnist.make_gan(tiny_config(augment=1.0))
    moved.discriminator.set_weights(plain.discriminator.get_weights())
    logits = moved._d(x, {"label": y}, draw=0)[0].numpy()
    # Up to 4 pixels each way, 81 shifts: a few of 16 images may draw (0, 0) and keep their logit.
    assert (np.abs(logits - as_they_are.numpy()) > 1e-4).sum() >= 8


def test_class_norms_start_as_plain_batch_norms_and_then_let_the_label_act_at_every_stage():
    plain, conditioned = (cgan_mnist.build_generator(latent_dim=8, width=8, class_norm=c) for c in (False, True))
    # The same layers plus a gain and a bias (zero kernels, from the label's 32-number embedding) per BatchNorm.
    extra = [layer.kernel for layer in conditioned.layers
             if isinstance(layer, keras.layers.Dense) and layer.input.shape[-1] == 32]
    norms = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    assert len(extra) == 2 * norms and not any(np.any(w.numpy()) for w in extra)
    shared = [w for w in conditioned.weights if all(w is not e for e in extra)]
    assert [w.shape for w in shared] == [w.shape for w in plain.weights]
    for w, v in zip(shared, plain.weights):
        w.assign(v.numpy())
    inputs = {"noise": np.random.default_rng(0).normal(size=(4, 8)).astype("float32"),
              "label": np.array([[0], [3], [3], [9]], "int32")}
    np.testing.assert_allclose(conditioned(inputs, training=False), plain(inputs, training=False), atol=1e-6)
    for w in extra:
        w.assign(np.full(w.shape, 0.1, "float32"))
    assert np.abs(np.asarray(conditioned(inputs, training=False))
                  - np.asarray(plain(inputs, training=False))).max() > 1e-3


@pytest.mark.parametrize("warmup, decay, step, expected", [(10.0, 0.999, 90, 91 / 100), (4.0, 0.9999, 96, 97 / 100),
                                                           (4.0, 0.95, 96, 0.95)])
def test_the_weight_average_follows_its_warm_up_until_its_decay_binds(warmup, decay, step, expected):
    gan = cgan_mnist.make_gan(tiny_config(ema_warmup=warmup, ema_decay=decay))
    for w in gan.ema_generator.trainable_weights:
        w.assign(np.zeros(w.shape, "float32"))
    for w in gan.generator.trainable_weights:
        w.assign(np.ones(w.shape, "float32"))
    gan.g_optimizer.iterations.assign(step)
    gan._update_ema()
    # Each averaged weight moves from 0 towards 1 by 1 - decay at this step: (1 + s) / (W + s), or the decay.
    for w in gan.ema_generator.trainable_weights:
        np.testing.assert_allclose(w.numpy(), 1 - expected, rtol=1e-5)


def test_the_mode_seeking_term_is_one_over_the_image_to_noise_distance_ratio():
    fake = np.concatenate([np.zeros((2, 4, 4, 1)), np.full((2, 4, 4, 1), 0.5)]).astype("float32")
    noise = np.concatenate([np.zeros((2, 8)), np.full((2, 8), -2.0)]).astype("float32")
    loss, ratio = losses.mode_seeking(tf.constant(fake), tf.constant(noise))
    assert float(ratio) == pytest.approx(0.25) and float(loss) == pytest.approx(1 / (0.25 + 1e-5))
    # Pairs of one label: the second half of the fakes' labels repeats the first half's (an odd batch too).
    gan = cgan_mnist.make_gan(tiny_config(mode_seeking=1.0))
    paired = gan._paired({"label": tf.constant([[1], [2], [3], [4], [5]])})["label"].numpy()[:, 0]
    assert list(paired) == [1, 2, 1, 2, 3]
    assert "mode_ratio" in gan.figure_names
    unpaired = cgan_mnist.make_gan(tiny_config())._paired({"label": tf.constant([[1], [2]])})
    assert unpaired["label"].numpy()[:, 0].tolist() == [1, 2]


def test_the_minibatch_std_channel_is_the_spread_of_each_group_of_images():
    features = np.random.default_rng(0).normal(size=(8, 7, 7, 3)).astype("float32")
    features[4:] *= 0.01  # the second group's images nearly alike: a collapsed batch
    out = np.asarray(MinibatchStd(4)(features))
    assert out.shape == (8, 7, 7, 4)
    np.testing.assert_array_equal(out[..., :3], features)  # the features pass unchanged
    for group in (slice(0, 4), slice(4, 8)):
        spread = np.sqrt(features[group].var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[group, ..., 3], spread, rtol=1e-5)  # every image and position of the group
    assert out[0, 0, 0, 3] > 50 * out[4, 0, 0, 3]


def test_the_same_seed_builds_the_same_networks():
    a, b = cgan_mnist.make_gan(tiny_config(seed=3)), cgan_mnist.make_gan(tiny_config(seed=3))
    c = cgan_mnist.make_gan(tiny_config(seed=4))
    for net in ("generator", "discriminator"):
        wa, wb, wc = (getattr(x, net).get_weights() for x in (a, b, c))
        assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
        assert not all(np.array_equal(x, y) for x, y in zip(wa, wc))
    # The average starts as a float32 copy of the generator.
    assert all(np.array_equal(x, y) for x, y in zip(a.generator.get_weights(), a.ema_generator.get_weights()))


def _margin_hinge(real_logits, fake_logits):
    """The slip: G's hinge loss with D's margin, -mean(relu(1 + D(G(z)))), flat once every fake is below -1."""
    d_loss, _ = losses.hinge_losses(real_logits, fake_logits)
    return d_loss, -losses.replica_mean(tf.nn.relu(1.0 + fake_logits))


def _g_gradient_after_d_wins(mnist_small, loss: losses.Loss) -> tuple[float, list[float]]:
    """G's gradient norm, and D's last losses, after 20 steps in which D learns fast and nothing holds it back
    (R1, feature matching and the spread channel off): D separates real from fake within about 10 steps."""
    config = cgan_mnist.Config(g_width=16, d_width=48, latent_dim=16, batch_size=32, d_lr=2e-3, aux_weight=0.0,
                               r1_weight=0.0, feature_matching=0.0, minibatch_std=0, train_steps=20,
                               precision="float32", seed=0)
    gan = cgan_mnist.make_gan(config)
    gan.compile(d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer, loss=loss)
    gan.set_steps_per_call(10)
    images, labels = MNIST.load(mnist_small)
    gan.fit(MNIST.batches(images, labels, batch_size=config.batch_size, seed=0),
            epochs=1, steps_per_epoch=config.train_steps, verbose=0, shuffle=False)
    noise = tf.random.normal((64, config.latent_dim), seed=1)
    digits = tf.constant(labels[:64].reshape(-1, 1).astype("int32"))
    with tf.GradientTape() as tape:
        fake = gan.generator({"noise": noise, "label": digits}, training=True)
        logits, _ = gan._d(fake, {"label": digits}, draw=0)
        g_loss = gan.loss_fn(logits, logits)[1]
    norm = float(tf.linalg.global_norm(tape.gradient(g_loss, gan.generator.trainable_weights)))
    return norm, [figures["d_loss"] for _, figures in gan.recent_steps()]


@pytest.mark.slow
def test_training_does_not_stall_when_the_discriminator_wins_early(mnist_small):
    # With the margin, D pushes every fake below -1 and from there both networks get exactly zero gradient:
    # D's loss stuck at 0.0, G's gradient 0.0 (measured at seeds 0, 1 and 2). The default loss keeps G
    # learning in the same run (gradient norm 24 to 55). The default recipe's R1, feature matching and
    # spread channel keep D from winning this way at all: with them, the margin did not stall 60 steps.
    slipped, d_losses = _g_gradient_after_d_wins(mnist_small, losses.Loss(_margin_hinge))
    assert slipped == 0.0 and max(d_losses) == 0.0, (slipped, d_losses)  # the stall this test is about
    norm, d_losses = _g_gradient_after_d_wins(mnist_small, losses.LOSSES["hinge"])
    assert max(d_losses) < 0.5  # D wins here too
    assert norm > 1.0, norm


@pytest.mark.parametrize("critic_steps", [1, 5])
def test_both_learning_rates_anneal_over_the_whole_run(critic_steps):
    config = tiny_config(train_steps=100, critic_steps=critic_steps, final_lr_fraction=0.0)
    gan = cgan_mnist.make_gan(config)
    gan.g_optimizer.iterations.assign(50)  # half way: G has made 50 updates and D 50 x critic_steps
    gan.d_optimizer.iterations.assign(50 * critic_steps)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(config.g_lr / 2)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(config.d_lr / 2)


def test_steps_per_call_keeps_every_dump_on_a_call_boundary():
    assert steps_per_call(tiny_config(train_steps=8000, save_interval=500), 0) == 10
    assert steps_per_call(tiny_config(train_steps=20, save_interval=5), 0) == 5
    assert steps_per_call(tiny_config(train_steps=10, save_interval=4), 0) == 2
    assert steps_per_call(tiny_config(train_steps=8000, save_interval=500), 7) == 1  # resumed at an odd step
    assert steps_per_call(tiny_config(train_steps=7, save_interval=7), 0) == 1


def test_batch_norm_statistics_in_chunks_match_one_training_pass_over_all_samples():
    generator = cgan_mnist.build_generator(latent_dim=8, width=8)
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 3
    # The definition: one training-mode pass over all 300 samples, each layer's moving statistics
    # replaced by that batch's (momentum 0).
    rng = np.random.default_rng(0)
    inputs = {"noise": rng.standard_normal((300, 8)).astype(np.float32),
              "label": (np.arange(300) % 10).astype(np.int32).reshape(-1, 1)}
    for layer in norms:
        layer.momentum = 0.0
    generator(inputs, training=True)
    expected = [(layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy()) for layer in norms]
    for layer in norms:
        layer.momentum = 0.99
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape))

    for chunk in (128, None):  # 128 + 128 + 44; then the default, one chunk for layers this small
        set_batch_norm_statistics(generator, seed=0, count=300, chunk=chunk)
        for layer, (mean, variance) in zip(norms, expected):
            np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-4, atol=1e-6)
    assert not np.allclose(expected[1][1], 1.0)  # the statistics were really set, not left at their start
    # New weights, new statistics: the sub-models kept from the last call read the generator's weights.
    dense = next(layer for layer in generator.layers if isinstance(layer, keras.layers.Dense))
    dense.kernel.assign(2 * dense.kernel)
    set_batch_norm_statistics(generator, seed=0, count=300)
    np.testing.assert_allclose(norms[0].moving_variance.numpy(), 4 * expected[0][1], rtol=1e-3, atol=1e-6)


def test_batch_norm_statistics_of_an_unconditional_generator():
    generator = cgan_mnist.build_generator(latent_dim=8, width=8, num_classes=None)
    set_batch_norm_statistics(generator, count=64, chunk=32)
    first = next(layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert not np.allclose(first.moving_variance.numpy(), 1.0)
