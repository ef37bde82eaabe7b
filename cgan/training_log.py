"""Watching a run: per-step losses to CSV and a loss-curve PNG, TensorBoard scalars and images, progress.

`RUN_DIR/losses.csv` has one row per step: the step, then the figures the loss
reports (`cgan.losses.Loss.figures`: the two losses and D's accuracies, or for a
Wasserstein critic its distance estimate and the gradient penalty; with an
auxiliary classifier, its losses on real and fake images);
`RUN_DIR/loss_curve.png` is drawn from it at a dump (at most every `CURVE_GAP_S`
seconds) and at the end, and `python cgan_mnist.py --plot-losses RUN_DIR` draws it again.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

from cgan.backend import keras, tf
from cgan.files import atomic_path, kill_point

CSV_NAME, CURVE_NAME = "losses.csv", "loss_curve.png"
# A drawing takes about 0.15 s: a run that dumps every few steps redraws its curve at most this often (a dump of the
# default run comes every 50 s or so), and always at its end.
CURVE_GAP_S = 15.0
LOSS_COLUMNS = ("d_loss", "g_loss")  # every loss reports these two first; the curve draws them on top


def read_losses(run_dir) -> dict[str, np.ndarray]:
    """The columns of RUN_DIR/losses.csv as float arrays (step as int)."""
    path = Path(run_dir) / CSV_NAME
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = tuple(reader.fieldnames or ())
        if columns[:3] != ("step", *LOSS_COLUMNS):
            raise ValueError(f"{path}: expected columns step,{','.join(LOSS_COLUMNS)},...")
        rows = list(reader)
    if rows and (None in rows[-1].values() or "" in rows[-1].values()):
        rows.pop()  # torn by a kill mid-append (see `LossLog.flush`): the run's resume writes it again
    out = {c: np.array([float(r[c]) for r in rows]) for c in columns}
    out["step"] = out["step"].astype(np.int64)
    return out


def plot_losses(run_dir) -> Path:
    """Draw RUN_DIR/loss_curve.png from RUN_DIR/losses.csv: losses above, the loss's other figures below."""
    # A bare Figure, not pyplot: no window, and no backend switch under a notebook that trains.
    from matplotlib.figure import Figure

    data = read_losses(run_dir)
    fig = Figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    window = max(1, len(data["step"]) // 100)  # smooth over ~1% of the run; the raw values are faint behind
    losses = [name for name in data if name.endswith("_loss")]  # with --aux-weight, the class losses too
    others = [name for name in data if name not in ("step", *losses)]
    for ax, names in ((top, losses), (bottom, others)):
        for name in names:
            (line,) = ax.plot(data["step"], data[name], alpha=0.25, linewidth=0.6)
            ax.plot(data["step"], _smooth(data[name], window), color=line.get_color(), label=name)
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    top.set_ylabel("loss")
    if all(name.startswith("d_acc") for name in others):
        bottom.set_ylabel("discriminator accuracy")
        bottom.set_ylim(-0.02, 1.02)
    else:
        bottom.set_ylabel("critic")
    bottom.set_xlabel("step")
    # Fixed margins: tight_layout measured every label at each dump, a third of the plot's time.
    fig.subplots_adjust(left=0.1, right=0.98, top=0.98, bottom=0.09, hspace=0.06)
    path = Path(run_dir) / CURVE_NAME
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    return path


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.array([values[: i + 1].mean() for i in range(window - 1)])
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


class LossLog(keras.callbacks.Callback):
    """Appends each step's losses to losses.csv (flushed every `interval` steps) and redraws the curve."""

    def __init__(self, gan, run_dir, *, interval: int, start_step: int = 0):
        super().__init__()
        self.gan, self.run_dir, self.interval = gan, Path(run_dir), interval
        self.path = self.run_dir / CSV_NAME
        self.columns = ("step", *gan.figure_names)
        self.rows: list[tuple] = []
        self.last_step = start_step  # the newest step taken into `rows`
        self.drawn_at = -float("inf")  # time.monotonic() of this process's last drawing
        self._truncate(start_step)

    def _truncate(self, start_step: int) -> None:
        """Keep the rows up to `start_step` (a resumed run redoes the steps after its checkpoint)."""
        kept = io.StringIO()
        writer = csv.writer(kept)
        writer.writerow(self.columns)
        if start_step and self.path.is_file():
            last = 0
            with open(self.path, newline="") as f:
                for row in csv.DictReader(f):
                    # A kill mid-append can leave a cut last line ("1" of "12,0.5,..."): only whole rows of
                    # increasing steps count.
                    try:
                        values = [float(row[c]) for c in self.columns]
                    except (TypeError, ValueError, KeyError):
                        continue
                    step = int(values[0])
                    if last < step <= start_step:
                        writer.writerow([row[c] for c in self.columns])
                        last = step
        with atomic_path(self.path) as tmp:
            tmp.write_text(kept.getvalue())

    def _collect(self) -> None:
        """Take the steps of the last compiled call into `rows`, once each."""
        for at, figures in self.gan.recent_steps():
            if at > self.last_step:
                self.rows.append((at, *(figures[c] for c in self.columns[1:])))
                self.last_step = at

    def draw_if_missing(self) -> None:
        """Draw the loss curve of the rows on disk if it is missing (a kill before it was drawn)."""
        if len(read_losses(self.run_dir)["step"]) and not (self.run_dir / CURVE_NAME).is_file():
            plot_losses(self.run_dir)

    def on_train_batch_end(self, batch, logs=None):
        recent = self.gan.recent_steps()
        # At a dump (the checkpointer may have written the rows already): the rest of the rows, and the curve.
        if recent and recent[-1][0] % self.interval == 0:
            self.flush(draw=time.monotonic() - self.drawn_at >= CURVE_GAP_S)
        else:
            self._collect()

    def on_train_end(self, logs=None):
        self.flush(draw=True)

    def write_rows(self) -> None:
        """Append every step so far to losses.csv now: the checkpointer calls this before it saves, so a
        checkpoint never gets ahead of the rows on disk (a resume keeps the rows up to its checkpoint)."""
        self.flush(draw=False)

    def flush(self, *, draw: bool) -> None:
        # Appending whole rows: a kill mid-write can cost the last line, which the next resume rewrites.
        self._collect()
        if self.rows:
            text = io.StringIO()
            csv.writer(text).writerows([row[0], *(f"{v:.6g}" for v in row[1:])] for row in self.rows)
            text = text.getvalue()
            with open(self.path, "a", newline="") as f:
                f.write(text[: len(text) // 2])
                f.flush()
                kill_point(self.path)
                f.write(text[len(text) // 2 :])
            self.rows.clear()
        if draw:
            plot_losses(self.run_dir)
            self.drawn_at = time.monotonic()


class TensorBoardLog(keras.callbacks.Callback):
    """Writes the per-step scalars and, from `grid_source`, the fixed-noise grid for `tensorboard --logdir`."""

    def __init__(self, gan, log_dir, *, interval: int, grid_source=None):
        super().__init__()
        self.gan, self.interval, self.grid_source = gan, interval, grid_source
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def on_train_batch_end(self, batch, logs=None):
        for at, figures in self.gan.recent_steps():
            with self.writer.as_default(step=at):
                for name, value in figures.items():
                    tf.summary.scalar(name, value)
        step = int(self.gan.g_optimizer.iterations.numpy())
        with self.writer.as_default(step=step):
            if self.grid_source is not None and step % self.interval == 0 and self.gan.diverged_at is None:
                grid = self.grid_source(step)  # uint8 (h, w)
                tf.summary.image("fixed_noise_samples", grid[None, :, :, None], max_outputs=1)

    def on_train_end(self, logs=None):
        self.writer.flush()


class Progress(keras.callbacks.Callback):
    """A progress bar with steps/s and ETA on a terminal; a plain line every `every` steps otherwise."""

    def __init__(self, gan, total: int, *, every: int, stream=None):
        super().__init__()
        self.gan, self.total, self.every = gan, total, every
        self.stream = stream or sys.stdout
        self.bar = None

    def on_train_begin(self, logs=None):
        self.step0 = int(self.gan.g_optimizer.iterations.numpy())
        self.t0 = time.perf_counter()
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.step0, unit="step", file=self.stream, dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.gan.g_optimizer.iterations.numpy())
        logs = logs or {}
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if step % 10 == 0:
                self.bar.set_postfix(d_loss=f"{float(logs['d_loss']):.3f}", g_loss=f"{float(logs['g_loss']):.3f}")
            return
        if step % self.every and step != self.total:
            return
        rate = (step - self.step0) / max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        print(f"step {step}/{self.total}  d_loss {float(logs['d_loss']):.3f}  g_loss {float(logs['g_loss']):.3f}  "
              f"{rate:.1f} steps/s  eta {eta / 60:.1f} min", file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
