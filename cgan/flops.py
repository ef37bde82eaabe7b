"""Floating-point operations of a training step, counted from the networks' layers.

Only the layers that multiply (Dense, Conv2D, Conv2DTranspose) are counted, a multiply-add
being two operations; normalisation, activations, the optimizers' updates and G's feature
matching term (class sums of D's features: 0.2% of a default step) are a few operations per
value and well under 1% of a step here. A layer's backward pass costs its forward operations
once for the weights' gradients and once more for its input's gradient (not needed by the
first layer of a network whose input is data).

What a step runs (`cgan.gan.ConditionalGAN.train_step`), per image of the batch:
- the joint step (one D update, no critic): G forward and backward, D forward and backward
  (weights only) on the real batch, D forward and backward (weights and input, for G) on the
  fakes;
- a critic step: each of `critic_steps` D updates draws fakes (G forward) and runs D forward
  and backward (weights) on real and fakes, plus the gradient penalty with a Wasserstein
  critic (D forward, a backward to the input, and the backward of that for the weights:
  about 5 D forwards); then G's update runs G and D forward and backward (D: input only);
- with `r1_weight`, each D update also runs the R1 penalty's passes (those of the gradient
  penalty) on a quarter of the real batch.
"""

from __future__ import annotations

from cgan.backend import keras


def layer_flops(layer) -> tuple[int, bool]:
    """(forward operations for one image, whether the layer has weights to count) of one layer."""
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(layer.input.shape[-1]) * layer.units, True
    if isinstance(layer, keras.layers.Conv2DTranspose):  # every input position spreads over a kernel
        _, h, w, c_in = layer.input.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * c_in * kh * kw * layer.filters, True
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, _ = layer.output.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * int(layer.input.shape[-1]) * kh * kw * layer.filters, True
    return 0, False


def forward_flops(model: keras.Model) -> int:
    """Operations of one image's forward pass through `model`."""
    return sum(layer_flops(layer)[0] for layer in model.layers)


def backward_flops(model: keras.Model, *, weights: bool = True, inputs: bool = True) -> int:
    """Operations of one image's backward pass: the weights' gradients and/or the input's."""
    total = 0
    for index, layer in enumerate(weighted for weighted in model.layers if layer_flops(weighted)[1]):
        forward = layer_flops(layer)[0]
        total += forward * weights + forward * (inputs and index > 0)
    return total


def step_flops(config, generator: keras.Model, discriminator: keras.Model) -> int:
    """Operations of one training step of `config` (batch included) with these networks."""
    g, d = forward_flops(generator), forward_flops(discriminator)
    g_back = backward_flops(generator)
    d_weights, d_input = backward_flops(discriminator, inputs=False), backward_flops(discriminator, weights=False)
    penalty = d + d_input + (d_input + d_weights)  # a gradient penalty: D forward, input gradient, its backward
    if config.critic_steps == 1 and config.loss != "wgan-gp":
        per_image = (g + g_back) + (d + d_weights) + (d + d_weights + d_input)
    else:
        critic = g + 2 * (d + d_weights)
        if config.loss == "wgan-gp":
            critic += penalty
        per_image = config.critic_steps * critic + (g + g_back) + (d + d_input)
    if config.r1_weight:  # each D update's R1 penalty, on a quarter of the batch
        per_image += config.critic_steps * penalty / 4
    return int(per_image * config.batch_size)


def config_step_flops(config, networks) -> int:
    """Operations of one training step of `config` with the networks `networks` builds."""
    return step_flops(config, networks.generator(config), networks.discriminator(config))


def matmul_gflops(dtype: str = "float32", *, size: int = 2048, repeats: int = 8) -> float:
    """This machine's pace at TensorFlow's square matmul in `dtype`, in GFLOP/s: the yardstick of a step's.

    The fastest of three rounds of `repeats` products of two `size` x `size` matrices.
    """
    import time

    from cgan.backend import tf

    a, b = (tf.cast(tf.random.stateless_normal((size, size), seed=(0, i)), dtype) for i in (1, 2))
    product = tf.function(tf.linalg.matmul, autograph=False)
    product(a, b).numpy()  # traced and warmed up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            c = product(a, b)
        c.numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9
