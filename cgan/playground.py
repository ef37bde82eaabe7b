"""Notebook controls for a trained generator: pick digits, reseed, steer the noise, animate morphs.

    from cgan.playground import Playground
    Playground("cgan_mnist.h5")  # as the last line of a notebook cell: shows the controls

The grid tab draws `count` samples of each chosen digit; the morph tab animates a
label morph between two digits or a latent walk for one. Both share the seed and
the latent sliders, which move the noise along the generator's principal
directions (`cgan.directions`). Each control's callback calls a plain method
(`draw`, `morph_frame`, `new_noise`, `reset_sliders`), so the behaviour can be
tested without a browser. Pictures reach the browser as PNG bytes in an
`ipywidgets.Image`. This module needs ipywidgets; the rest of `cgan` does not.
"""

from __future__ import annotations

import contextlib
import io
import os

import ipywidgets as widgets
import numpy as np
from PIL import Image as PILImage

from cgan import colour, conditions
from cgan.backend import keras
from cgan.data import postprocess
from cgan.directions import latent_directions, shift
from cgan.images import tile, upscale
from cgan.morphs import slerp, soft_label_generator
from cgan.sampling import class_count, latent_dim, load_generator, noise, picture_shape

MAX_COUNT = 64  # samples per digit in the grid
COLUMNS = 16  # a digit's samples wrap onto more rows after this many
SLIDER_RANGE = 3.0  # latent sliders run from -3 to 3 standard deviations
MAX_SEED = 2**31 - 1
MAX_FRAMES, MAX_FPS = 96, 30  # the animation's controls
MORPH, WALK = "morph", "walk"
GAP = 2  # pixels between images in a grid (as cgan.images.tile)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A uint8 grey image (h, w) as the bytes of a PNG file."""
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class Playground:
    """Widgets that draw from `generator` (a keras.Model or the path of a saved one).

    Keyword settings give the controls' first values: `digits` (default: all),
    `count` per digit (1-64; for a generator without labels, the number of
    images), `seed`, `sliders` (how many latent sliders, 0 for none), `frames`
    and `fps` of the animation, and the zoom of the grid (`scale`) and of the
    animation (`frame_scale`). `widget` is the whole panel; a Playground as the
    last expression of a notebook cell shows it.
    """

    def __init__(self, generator, *, digits=None, count: int = 8, seed: int = 0, sliders: int = 5, frames: int = 24,
                 fps: int = 12, scale: int = 2, frame_scale: int = 6):
        if isinstance(generator, (str, os.PathLike)):
            self.path = str(generator)
            generator = load_generator(generator)
        else:
            self.path = None
        self.generator: keras.Model = generator
        self.classes = class_count(generator)
        self.conditional = self.classes is not None
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}, got {count}")
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        if not 2 <= frames <= MAX_FRAMES or not 1 <= fps <= MAX_FPS:
            raise ValueError(f"frames must be 2-{MAX_FRAMES} and fps 1-{MAX_FPS}, got {frames} and {fps}")
        chosen = list(range(self.classes)) if self.conditional and digits is None else list(digits or ())
        if self.conditional and any(not 0 <= d < self.classes for d in chosen):
            raise ValueError(f"digits must be 0-{self.classes - 1}, got {chosen}")
        self.scale, self.frame_scale = scale, frame_scale
        self.soft = soft_label_generator(generator) if self.conditional else None
        slider_count = min(sliders, latent_dim(generator))
        self.directions = latent_directions(generator, count=slider_count) if slider_count > 0 else None
        self._rng = np.random.default_rng()  # for "new noise": a fresh seed each click, shown in the box
        self._held = 0
        self._frames_key = None
        self._frames = np.zeros((0, *picture_shape(generator)), np.uint8)
        self._frame_png: list[bytes | None] = []
        self._build_widgets(chosen, count, seed, frames, fps)
        self.draw()
        self.morph_frame(0)

    # ------------------------------------------------------------------
    # Widgets and their callbacks

    def _build_widgets(self, chosen, count, seed, frames, fps):
        w = widgets
        small = w.Layout(width="2.8em")
        self.digit_buttons = [w.ToggleButton(value=d in chosen, description=str(d), layout=small)
                              for d in range(self.classes or 0)]
        self.count = w.IntSlider(value=count, min=1, max=MAX_COUNT,
                                 description="per digit" if self.conditional else "images", continuous_update=False)
        self.seed = w.BoundedIntText(value=seed, min=0, max=MAX_SEED, description="seed", layout=w.Layout(width="14em"))
        self.new_noise_button = w.Button(description="new noise", icon="refresh", tooltip="draw a new random seed")
        names = self.directions.names if self.directions is not None else []
        self.latent = [w.FloatSlider(value=0.0, min=-SLIDER_RANGE, max=SLIDER_RANGE, step=0.1, description=name,
                                     readout_format="+.1f", style={"description_width": "9em"},
                                     layout=w.Layout(width="30em")) for name in names]
        self.reset_button = w.Button(description="centre sliders", tooltip="set every latent slider back to 0")
        # A --condition shape generator: a slider per attribute, in its unit (degrees for the slant), used once
        # its box is ticked; unticked, each digit takes a real digit's value, as `generate` does.
        self.shape, self.colours = [], []
        described = conditions.describe(self.generator)
        if conditions.kind_of(self.generator) is conditions.KINDS[colour.NAME]:  # a colour picker each, not 6 sliders
            first = chosen[0] if chosen else 0
            for part, offset in (("stroke", 0), ("background", 3)):
                default = colour.hex_of([a["defaults"][first] for a in described[offset : offset + 3]])
                picker = w.ColorPicker(value=default, description=part, style={"description_width": "9em"})
                self.colours.append((part, w.Checkbox(value=False, description="ask"), picker))
            described = []
        for attribute in described:
            degrees = attribute["unit"] == "rad"
            scale = 180 / np.pi if degrees else 1.0
            slider = w.FloatSlider(value=float(np.median(attribute["defaults"])) * scale, min=attribute["low"] * scale,
                                   max=attribute["high"] * scale, step=0.5 if degrees else 0.05,
                                   description=f"{attribute['name']} ({'deg' if degrees else attribute['unit']})",
                                   style={"description_width": "9em"}, layout=w.Layout(width="30em"))
            self.shape.append((attribute["name"], scale, w.Checkbox(value=False, description="ask"), slider))
        self.grid_image = w.Image(format="png")
        self.status = w.HTML()

        options = [("label morph", MORPH), ("latent walk", WALK)] if self.conditional else [("latent walk", WALK)]
        self.mode = w.ToggleButtons(options=options, value=options[0][1])
        digit_options = list(range(self.classes or 1))
        self.morph_from = w.Dropdown(options=digit_options, value=chosen[0] if chosen else 0, description="from",
                                     layout=w.Layout(width="10em"))
        self.morph_to = w.Dropdown(options=digit_options,
                                   value=chosen[-1] if len(chosen) > 1 else (self.classes or 1) - 1,
                                   description="to", layout=w.Layout(width="10em"))
        self.frames = w.IntSlider(value=frames, min=2, max=MAX_FRAMES, description="frames", continuous_update=False)
        self.play = w.Play(value=0, min=0, max=frames - 1, interval=round(1000 / fps), repeat=True)
        self.frame = w.IntSlider(value=0, min=0, max=frames - 1, description="frame")
        widgets.link((self.play, "value"), (self.frame, "value"))  # in the kernel, so it holds without a browser too
        self.fps = w.IntSlider(value=fps, min=1, max=MAX_FPS, description="frames/s")
        self.morph_image = w.Image(format="png")
        self.strip = w.Image(format="png")
        self.morph_status = w.HTML()

        for control in [*self.digit_buttons, self.count, self.seed, *self.latent,
                        *(c for _, _, box, slider in self.shape for c in (box, slider)),
                        *(c for _, box, picker in self.colours for c in (box, picker))]:
            control.observe(self._on_sample_control, names="value")
        for control in (self.mode, self.morph_from, self.morph_to, self.frames):
            control.observe(self._on_morph_control, names="value")
        self.frame.observe(lambda change: self.morph_frame(change["new"]), names="value")
        self.fps.observe(lambda change: setattr(self.play, "interval", round(1000 / change["new"])), names="value")
        self.new_noise_button.on_click(self.new_noise)
        self.reset_button.on_click(self.reset_sliders)
        self._show_morph_controls()

        rows = []
        if self.conditional:
            rows.append(w.HBox([w.Label("digits", layout=w.Layout(width="5em")), *self.digit_buttons]))
        rows.append(w.HBox([self.count, self.seed, self.new_noise_button]))
        if self.shape:
            rows.append(w.HTML("Shape, as Morpho-MNIST measures it (ticked: asked; unticked: each digit a real "
                               "digit's):"))
            rows.extend(w.HBox([slider, box]) for _, _, box, slider in self.shape)
        if self.colours:
            rows.append(w.HTML("Colours (ticked: asked; unticked: each image a pair drawn as training drew them):"))
            rows.extend(w.HBox([picker, box]) for _, box, picker in self.colours)
        if self.latent:
            rows.append(w.HTML("Latent directions, in standard deviations of the noise "
                               "(the generator's principal directions; names say what they change most):"))
            rows.append(w.HBox([w.VBox(self.latent), self.reset_button]))
        grid_tab = w.VBox([self.grid_image, self.status])
        morph_tab = w.VBox([w.HBox([self.mode, self.morph_from, self.morph_to]),
                            w.HBox([self.play, self.frame, self.fps]), self.frames,
                            self.morph_image, self.strip, self.morph_status])
        tabs = w.Tab(children=[grid_tab, morph_tab], titles=("grid", "morph" if self.conditional else "walk"))
        self.widget = w.VBox([*rows, tabs])

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"Playground({self.path or self.generator.name}): widgets, live in a running notebook"
        return bundle

    def _on_sample_control(self, change=None):
        if not self._held:
            self.draw()
            self.morph_frame(self.frame.value)

    def _on_morph_control(self, change=None):
        self._show_morph_controls()
        last = self.frames.value - 1
        self.play.max = self.frame.max = last  # lowering max moves a later frame back to it
        if not self._held:
            self.morph_frame(self.frame.value)

    def _show_morph_controls(self):
        walk = self.mode.value == WALK
        self.morph_from.description = "digit" if walk else "from"
        self.morph_from.layout.display = None if self.conditional else "none"
        self.morph_to.layout.display = "none" if walk else None
        self.mode.layout.display = None if self.conditional else "none"

    @contextlib.contextmanager
    def hold(self):
        """Change several controls at once, with one redraw at the end instead of one per control."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if not self._held:
                self._on_sample_control()

    def new_noise(self, button=None) -> int:
        """Put a fresh random seed in the seed box (which redraws everything); return it."""
        seed = int(self._rng.integers(MAX_SEED + 1))
        self.seed.value = seed
        return seed

    def reset_sliders(self, button=None) -> None:
        """Set every latent slider back to 0: the noise the seed gives, unchanged."""
        with self.hold():
            for slider in self.latent:
                slider.value = 0.0

    # ------------------------------------------------------------------
    # What the controls ask for

    def digits(self) -> list[int]:
        """The digits picked, in order; [] for a generator without labels."""
        return [d for d, button in enumerate(self.digit_buttons) if button.value]

    def asked_shape(self) -> dict[str, float]:
        """The attributes ticked, {name: value in the generator's unit}; {} for a generator without them."""
        asked = {name: slider.value / scale for name, scale, box, slider in self.shape if box.value}
        for part, box, picker in self.colours:
            if box.value:
                asked.update(zip((f"{part}_{c}" for c in ("red", "green", "blue")), colour.parse(picker.value, part)))
        return asked

    def offsets(self) -> np.ndarray:
        """The latent sliders' values, float32 (sliders,), in standard deviations."""
        return np.array([slider.value for slider in self.latent], np.float32)

    def _steer(self, z: np.ndarray) -> np.ndarray:
        """Noise z (n, latent_dim) moved along the latent directions by the sliders."""
        return z if self.directions is None else shift(z, self.directions, self.offsets())

    def images(self) -> np.ndarray:
        """The grid's samples, uint8 (n, h, w): `count` of each picked digit in turn (any digits without labels).

        With the sliders at 0 these are exactly `generate(generator, np.repeat(digits, count), seed)`,
        which is what the command line draws for `--digits ... --count ... --seed ...`.
        """
        count = self.count.value
        inputs = {}
        if self.conditional:
            labels = np.repeat(np.array(self.digits(), np.int32), count)
            if not len(labels):
                return np.zeros((0, *picture_shape(self.generator)), np.uint8)
            inputs["label"] = labels.reshape(-1, 1)
            count = len(labels)
        inputs["noise"] = self._steer(noise(self.generator, count, self.seed.value))
        # a --condition shape generator: real digits' shapes, as `generate` draws them for this seed
        if self.shape or self.colours:
            inputs[conditions.kind_of(self.generator).name] = conditions.fill(
                self.generator, inputs["label"], self.asked_shape(), conditions.shape_rng(self.seed.value))
        return postprocess(self.generator(inputs, training=False))

    def draw(self) -> np.ndarray:
        """Redraw the grid from the controls into `grid_image`; return its pixels, uint8 (h, w).

        A row (or, past 16 samples, a block of rows) per digit.
        """
        images = self.images()
        count = self.count.value
        if len(images):
            rows = -(-count // COLUMNS)
            blocks = [tile(images[i : i + count], rows, scale=self.scale, gap=GAP)
                      for i in range(0, len(images), count)]
            pixels = np.vstack([blocks[0], *(block[GAP:] for block in blocks[1:])])  # one gap between blocks, not two
        else:
            pixels = np.full((GAP * 2 + 1, GAP * 2 + 1), 255, np.uint8)
        self.grid_image.value = png_bytes(pixels)
        self.status.value = self._describe()
        return pixels

    def _describe(self) -> str:
        seed, count = self.seed.value, self.count.value
        if self.conditional and not self.digits():
            return "Pick at least one digit."
        what = (f"digits {' '.join(map(str, self.digits()))}, {count} of each" if self.conditional
                else f"{count} images")
        text = f"seed <b>{seed}</b>: {what}"
        moved = [f"{slider.description.split(' ·')[0]} {slider.value:+.1f}" for slider in self.latent if slider.value]
        if moved:
            return f"{text}; noise moved along {', '.join(moved)}"
        flags = (f"--digits {' '.join(map(str, self.digits()))} --count {count}" if self.conditional
                 else f"--count {count}")
        flags += "".join(f" --{name} {value:.4g}" for name, value in self.asked_shape().items() if name in
                         conditions.KINDS[conditions.SHAPE].attributes)
        flags += "".join(f" --{'color' if part == 'stroke' else part} '{picker.value}'"
                         for part, box, picker in self.colours if box.value)
        return (f"{text}. The same digits from the command line: "
                f"<code>python cgan_mnist.py --generator={self.path or 'MODEL'} {flags} --seed {seed}</code>")

    def morph_frames(self) -> np.ndarray:
        """The animation for the current controls, uint8 (frames, h, w); computed once per setting.

        A label morph keeps the seed's first noise vector and blends the label from one
        digit to the other (as `cgan.morphs.interpolate`); a latent walk keeps the digit
        and moves the noise along the great circle from the seed's vector to seed+1's
        (as `cgan.morphs.walk`). The latent sliders move the noise of every frame.
        """
        mode, count, seed = self.mode.value, self.frames.value, self.seed.value
        a, b = self.morph_from.value, self.morph_to.value
        key = (mode, a, b, count, seed, tuple(self.offsets().tolist()), tuple(self.asked_shape().items()))
        if key == self._frames_key:
            return self._frames
        g = self.generator
        if mode == MORPH:
            t = np.linspace(0.0, 1.0, count, dtype=np.float32)[:, None]
            eye = np.eye(self.classes, dtype=np.float32)
            z = np.repeat(self._steer(noise(g, 1, seed)), count, axis=0)
            inputs = conditions.held(g, {"noise": z, "label": (1 - t) * eye[a] + t * eye[b]}, a,
                                     conditions.shape_rng(seed), self.asked_shape())
            frames = postprocess(self.soft(inputs, training=False))
        else:
            path = slerp(noise(g, 1, seed)[0], noise(g, 1, seed + 1)[0], np.linspace(0.0, 1.0, count))
            inputs = {"noise": self._steer(path)}
            if self.conditional:
                inputs = conditions.held(g, {**inputs, "label": np.full((count, 1), a, np.int32)}, a,
                                         conditions.shape_rng(seed), self.asked_shape())
            frames = postprocess(g(inputs, training=False))
        self._frames_key, self._frames = key, frames
        self._frame_png = [None] * count
        self.strip.value = png_bytes(tile(frames, 1, scale=1, gap=1))
        return frames

    def morph_frame(self, index: int) -> np.ndarray:
        """Show frame `index` of the animation in `morph_image` (the Play button steps it); return it, uint8 (h, w)."""
        frames = self.morph_frames()
        index = min(max(int(index), 0), len(frames) - 1)
        if self._frame_png[index] is None:
            self._frame_png[index] = png_bytes(upscale(frames[index], self.frame_scale))
        self.morph_image.value = self._frame_png[index]
        t = index / (len(frames) - 1)
        seed, a = self.seed.value, self.morph_from.value
        if self.mode.value == MORPH:
            self.morph_status.value = (f"frame {index + 1}/{len(frames)}: label {1 - t:.2f} x digit {a} + "
                                       f"{t:.2f} x digit {self.morph_to.value}, noise of seed {seed}")
        else:
            what = f"digit {a}, " if self.conditional else ""
            self.morph_status.value = (f"frame {index + 1}/{len(frames)}: {what}noise {100 * t:.0f}% of the way "
                                       f"from seed {seed} to seed {seed + 1}")
        return frames[index]
