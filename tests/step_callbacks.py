"""Keras callbacks for the training tests that act when a run reaches a given step."""

from __future__ import annotations

import signal

import numpy as np

from cgan.backend import keras


class AtStep(keras.callbacks.Callback):
    """Does `act(model)` once, when training has run `step` steps."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.step:
            self.act(self.model)

    def act(self, model):
        raise NotImplementedError


class StopAt(AtStep):
    """Sends this process SIGINT at `step`, as Ctrl-C would."""

    def act(self, model):
        signal.raise_signal(signal.SIGINT)


class PoisonWeights(AtStep):
    """Writes NaN into a discriminator weight after `step`, so the next step's loss is NaN."""

    def act(self, model):
        w = model.discriminator.trainable_weights[0]
        w.assign(np.full(w.shape, np.nan, "float32"))
