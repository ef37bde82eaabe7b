// The page: draws a trained generator's images with onnxruntime-web, from model.json and model.onnx
// beside it. Everything runs here; the server only hands out files.
"use strict";

(() => {
  const SCALE = 3; // screen pixels per model pixel in the grid (and in the downloaded PNG)
  const GAP = 3; // white pixels between images, as in the command line's grids
  const MORPH_SCALE = 4;
  const MORPH_FRAMES = 32; // one loop: A to B and back, or once round the walk's circle
  const SLIDER_LIMIT = 3; // offsets in standard deviations of the noise
  const MAX_COUNT = 64;

  const $ = (id) => document.getElementById(id);
  const ortBase = new URL(".", document.querySelector("script[data-ort]").src).href;

  const state = {
    meta: null,
    session: null,
    threads: 1, // WebAssembly threads of the session
    digits: [7],
    count: 8,
    seed: 0,
    offsets: [],
    shape: [], // per attribute of a continuous condition (shape, colour): a value in its unit, or null (the class's default)
    morph: { mode: "label", from: 3, to: 8, frames: null, frame: 0, timer: null, dirty: true },
  };
  const timings = []; // ms of each finished grid draw, for the tests and the curious
  window.cganDemo = { state, timings, ready: null, idle: () => queue.idle(), noise: (seed, j) => baseNoise(seed, j) };

  // ---------------------------------------------------------------------------
  // Noise: the page's own seeded generator (mulberry32 + Box-Muller), one vector per (seed, index).

  function hash32(x) {
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
    return (x ^ (x >>> 16)) >>> 0;
  }

  function uniforms(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const noiseCache = new Map();
  function baseNoise(seed, index) {
    const key = `${seed}:${index}`;
    let z = noiseCache.get(key);
    if (!z) {
      const next = uniforms(hash32(hash32(seed) ^ Math.imul(index + 1, 0x9e3779b9)));
      const dim = state.meta.latent_dim;
      z = new Float32Array(dim);
      for (let i = 0; i < dim; i += 2) {
        const r = Math.sqrt(-2 * Math.log(1 - next())), angle = 2 * Math.PI * next();
        z[i] = r * Math.cos(angle);
        if (i + 1 < dim) z[i + 1] = r * Math.sin(angle);
      }
      if (noiseCache.size > 4096) noiseCache.clear();
      noiseCache.set(key, z);
    }
    return z;
  }

  function shifted(z) { // z moved along the latent directions by the sliders' offsets
    const out = Float32Array.from(z);
    const vectors = state.meta.directions.vectors;
    state.offsets.forEach((offset, k) => {
      if (offset !== 0) for (let i = 0; i < out.length; i++) out[i] += offset * vectors[k][i];
    });
    return out;
  }

  // ---------------------------------------------------------------------------
  // The generator

  async function generate(noises, labels) { // noises: Float32Array[]; labels: Float32Array[] (class weights) or null
    const n = noises.length, dim = state.meta.latent_dim;
    const noise = new Float32Array(n * dim);
    noises.forEach((z, i) => noise.set(z, i * dim));
    const feeds = { noise: new ort.Tensor("float32", noise, [n, dim]) };
    if (state.meta.conditional) {
      const classes = state.meta.classes.length;
      const label = new Float32Array(n * classes);
      labels.forEach((weights, i) => label.set(weights, i * classes));
      feeds.label = new ort.Tensor("float32", label, [n, classes]);
      const attributes = state.meta.attributes || [];
      if (attributes.length) { // a value asked, or each image's class's default (blended, in a morph)
        const k = attributes.length, values = new Float32Array(n * k);
        labels.forEach((weights, i) => attributes.forEach((a, j) => {
          values[i * k + j] = state.shape[j] ?? a.defaults.reduce((sum, m, c) => sum + weights[c] * m, 0);
        }));
        feeds[state.meta.condition] = new ort.Tensor("float32", values, [n, k]);
      }
    }
    const result = await state.session.run(feeds);
    return result[state.session.outputNames[0]].data; // n * h * w (* 3, RGB) values in [-1, 1]
  }

  function oneHot(c) {
    const v = new Float32Array(state.meta.classes.length);
    v[c] = 1;
    return v;
  }

  // One generation at a time; requests that arrive meanwhile collapse into one more run.
  const queue = (() => {
    let running = null, again = false, requestedAt = null;
    async function loop() {
      while (again) {
        again = false;
        const started = requestedAt;
        requestedAt = null;
        await drawGrid(started);
      }
      running = null;
    }
    return {
      request() {
        if (requestedAt === null) requestedAt = performance.now();
        again = true;
        if (!running) running = loop();
        return running;
      },
      idle() { return running || Promise.resolve(); },
    };
  })();

  // ---------------------------------------------------------------------------
  // The grid

  function gridLayout() {
    const { height: h, width: w } = state.meta;
    const bands = state.meta.conditional ? state.digits.length : 1;
    const count = state.count;
    let cols;
    if (bands === 1) { // near square: the most rows up to the square root that divide the count
      let rows = 1;
      for (let r = 1; r * r <= count; r++) if (count % r === 0) rows = r;
      cols = count / rows;
      if (cols > 16) cols = Math.ceil(Math.sqrt(count));
    } else {
      cols = Math.min(count, 16);
    }
    const rowsPerBand = Math.ceil(count / cols);
    const rows = bands * rowsPerBand;
    return {
      cols, rows, rowsPerBand, scale: SCALE, gap: GAP, cellWidth: w * SCALE, cellHeight: h * SCALE,
      width: cols * (w * SCALE + GAP) + GAP, height: rows * (h * SCALE + GAP) + GAP,
    };
  }

  function paint(image, pixels, rowStride, left, top, index, h, w, scale) {
    // The index-th generated image (values in [-1, 1], grey or RGB) into RGBA `pixels`, scaled up `scale` times.
    const channels = state.meta.channels || 1, offset = index * h * w * channels;
    const level = (i) => Math.max(0, Math.min(255, Math.round(image[i] * 127.5 + 127.5)));
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = offset + (y * w + x) * channels;
        const r = level(at), g = channels === 3 ? level(at + 1) : r, b = channels === 3 ? level(at + 2) : r;
        for (let sy = 0; sy < scale; sy++) {
          let p = ((top + y * scale + sy) * rowStride + left + x * scale) * 4;
          for (let sx = 0; sx < scale; sx++, p += 4) {
            pixels[p] = r;
            pixels[p + 1] = g;
            pixels[p + 2] = b;
          }
        }
      }
    }
  }

  async function drawGrid(requestedAt) {
    const started = requestedAt ?? performance.now();
    const { meta } = state;
    const L = gridLayout();
    const noises = [], labels = [], cells = [];
    const bands = meta.conditional ? state.digits : [null];
    bands.forEach((digit, band) => {
      for (let j = 0; j < state.count; j++) { // column j uses noise j in every band: one style, many digits
        noises.push(shifted(baseNoise(state.seed, j)));
        if (digit !== null) labels.push(oneHot(digit));
        cells.push([band * L.rowsPerBand + Math.floor(j / L.cols), j % L.cols]);
      }
    });
    const images = await generate(noises, meta.conditional ? labels : null);
    const canvas = $("grid");
    if (canvas.width !== L.width || canvas.height !== L.height) {
      canvas.width = L.width;
      canvas.height = L.height;
      canvas.style.maxWidth = `${2 * L.width}px`; // shown up to twice its size, smaller on a narrow screen
    }
    const context = canvas.getContext("2d");
    const picture = context.createImageData(L.width, L.height);
    picture.data.fill(255);
    cells.forEach(([r, c], i) => {
      paint(images, picture.data, L.width, GAP + c * (L.cellWidth + GAP), GAP + r * (L.cellHeight + GAP),
            i, meta.height, meta.width, SCALE);
    });
    context.putImageData(picture, 0, 0);
    Object.assign(canvas.dataset, {
      cols: L.cols, rows: L.rows, rowsPerBand: L.rowsPerBand, scale: SCALE, gap: GAP,
      digits: meta.conditional ? state.digits.join(",") : "", count: state.count,
    });
    const ms = performance.now() - started;
    timings.push(ms);
    const word = meta.class_word || "digit";
    const what = meta.conditional ? (state.digits.length === 1 ? `× ${meta.classes[state.digits[0]]}` : plural(word)) : "images";
    $("status").textContent = `${cells.length} ${what} in ${ms.toFixed(1)} ms`;
    $("seed-shown").textContent = state.seed;
    saveToLink();
  }

  // ---------------------------------------------------------------------------
  // The morph

  function morphInputs() {
    const { mode, from, to } = state.morph;
    const z0 = shifted(baseNoise(state.seed, 0));
    const noises = [], labels = [];
    if (mode === "walk") { // round a great circle through z0 and a second noise vector, at |z0|
      const z1 = shifted(baseNoise(state.seed, 1));
      let dot = 0, norm0 = 0;
      for (let i = 0; i < z0.length; i++) { dot += z0[i] * z1[i]; norm0 += z0[i] * z0[i]; }
      const across = z1.map((v, i) => v - (dot / norm0) * z0[i]);
      let norm1 = 0;
      for (const v of across) norm1 += v * v;
      const ratio = Math.sqrt(norm0 / Math.max(norm1, 1e-12));
      for (let k = 0; k < MORPH_FRAMES; k++) {
        const angle = (2 * Math.PI * k) / MORPH_FRAMES;
        noises.push(z0.map((v, i) => Math.cos(angle) * v + Math.sin(angle) * across[i] * ratio));
        labels.push(oneHot(from));
      }
    } else { // one noise, the label blended from A to B and back, eased at both ends
      for (let k = 0; k < MORPH_FRAMES; k++) {
        const t = (1 - Math.cos((2 * Math.PI * k) / MORPH_FRAMES)) / 2;
        const weights = new Float32Array(state.meta.classes.length);
        weights[from] += 1 - t;
        weights[to] += t;
        noises.push(z0);
        labels.push(weights);
      }
    }
    return [noises, labels];
  }

  async function computeMorph() {
    await queue.idle();
    const [noises, labels] = morphInputs();
    state.morph.frames = await generate(noises, state.meta.conditional ? labels : null);
    state.morph.dirty = false;
    drawMorphFrame();
  }

  function drawMorphFrame() {
    const { height: h, width: w } = state.meta;
    const canvas = $("morph-canvas");
    canvas.width = w * MORPH_SCALE;
    canvas.height = h * MORPH_SCALE;
    const context = canvas.getContext("2d");
    const picture = context.createImageData(canvas.width, canvas.height);
    picture.data.fill(255);
    paint(state.morph.frames, picture.data, canvas.width, 0, 0, state.morph.frame, h, w, MORPH_SCALE);
    context.putImageData(picture, 0, 0);
    canvas.dataset.frame = state.morph.frame;
  }

  let morphRefresh = null;
  function morphChanged({ soon = false } = {}) { // recompute the frames; after the grid has settled, when `soon`
    state.morph.dirty = true;
    clearTimeout(morphRefresh);
    morphRefresh = setTimeout(() => computeMorph().catch(fail), soon ? 250 : 0);
  }

  function fps() { return Number($("morph-speed").value); }

  function setPlaying(playing) {
    clearInterval(state.morph.timer);
    state.morph.timer = null;
    $("morph-play").textContent = playing ? "pause" : "play";
    $("morph-play").setAttribute("aria-pressed", String(playing));
    if (!playing) return;
    state.morph.timer = setInterval(() => {
      if (!state.morph.frames || state.morph.dirty) return;
      state.morph.frame = (state.morph.frame + 1) % MORPH_FRAMES;
      drawMorphFrame();
    }, 1000 / fps());
  }

  // ---------------------------------------------------------------------------
  // The controls

  function plural(word) { return word + (word.endsWith("s") ? "es" : "s"); }

  function buildControls() {
    const { meta } = state;
    const word = meta.class_word || "digit";
    $("digit-legend").textContent = plural(word)[0].toUpperCase() + plural(word).slice(1);
    $("digits").classList.toggle("many", meta.classes.length > 10);
    $("digits").classList.toggle("named", meta.classes.some((name) => name.length > 2));
    if (!meta.conditional) {
      $("digit-field").hidden = true;
      $("count-label").textContent = "Images";
      $("morph-mode").value = "walk";
      $("morph-mode").disabled = true;
      state.morph.mode = "walk";
    }
    const picker = $("digits");
    meta.classes.forEach((name, c) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name;
      button.dataset.digit = c;
      button.className = "digit";
      button.addEventListener("click", () => { // a click toggles the digit; the last one stays
        const on = state.digits.includes(c);
        if (on && state.digits.length > 1) state.digits = state.digits.filter((d) => d !== c);
        else if (!on) state.digits = [...state.digits, c].sort((a, b) => a - b);
        showDigits();
        queue.request();
      });
      picker.appendChild(button);
      for (const id of ["morph-from", "morph-to"]) $(id).add(new Option(name, c));
    });
    $("all-digits").addEventListener("click", () => { state.digits = meta.classes.map((_, c) => c); showDigits(); queue.request(); });
    $("one-digit").addEventListener("click", () => { state.digits = [state.digits[0]]; showDigits(); queue.request(); });

    $("count").max = MAX_COUNT;
    $("count").addEventListener("input", () => {
      state.count = Number($("count").value);
      $("count-value").textContent = state.count;
      queue.request();
    });
    $("seed").addEventListener("change", () => {
      const value = Number($("seed").value);
      if (!Number.isInteger(value) || value < 0 || value > 4294967295) { $("seed").value = state.seed; return; }
      state.seed = value;
      queue.request();
      morphChanged({ soon: true });
    });
    $("new-noise").addEventListener("click", () => {
      state.seed = crypto.getRandomValues(new Uint32Array(1))[0];
      $("seed").value = state.seed;
      queue.request();
      morphChanged({ soon: true });
    });

    buildShapeControls();
    const sliders = $("sliders");
    meta.directions.names.forEach((name, k) => {
      const share = (100 * meta.directions.variance_share[k]).toFixed(1);
      const label = document.createElement("label");
      label.className = "slider";
      label.title = `${share}% of the first layer's variance under the noise`;
      label.innerHTML = `<span class="name"></span><input type="range" min="${-SLIDER_LIMIT}" max="${SLIDER_LIMIT}" step="0.05" value="0"><output>0.00</output>`;
      label.querySelector(".name").textContent = name;
      const input = label.querySelector("input");
      input.id = `direction-${k}`;
      input.setAttribute("aria-label", name);
      input.addEventListener("input", () => {
        state.offsets[k] = Number(input.value);
        label.querySelector("output").textContent = state.offsets[k].toFixed(2);
        queue.request();
        morphChanged({ soon: true });
      });
      sliders.appendChild(label);
    });
    $("reset-sliders").addEventListener("click", () => {
      state.offsets = state.offsets.map(() => 0);
      showSliders();
      queue.request();
      morphChanged({ soon: true });
    });

    $("morph-mode").addEventListener("change", () => { state.morph.mode = $("morph-mode").value; showMorph(); morphChanged(); });
    $("morph-from").addEventListener("change", () => { state.morph.from = Number($("morph-from").value); morphChanged(); });
    $("morph-to").addEventListener("change", () => { state.morph.to = Number($("morph-to").value); morphChanged(); });
    $("morph-play").addEventListener("click", () => setPlaying(state.morph.timer === null));
    $("morph-speed").addEventListener("input", () => {
      $("morph-speed-value").textContent = `${fps()} fps`;
      if (state.morph.timer !== null) setPlaying(true);
    });
    $("download").addEventListener("click", () => download($("grid"), pictureName("digits")));
    $("morph-download").addEventListener("click", () => download($("morph-canvas"), pictureName(`morph-frame${state.morph.frame}`)));
  }

  // A shape slider shows its attribute in the unit people read: pixels, and degrees for the slant (radians in the model).
  const shown = (a) => (a.unit === "rad" ? { unit: "°", scale: 180 / Math.PI, step: 0.5 } : { unit: a.unit, scale: 1, step: 0.05 });

  // A colour model's two colours: a picker each, for three attributes each (stroke_*, background_*), RGB in 0-1.
  const COLOURS = [["stroke", "Stroke"], ["background", "Background"]];
  const toHex = (rgb) => "#" + rgb.map((v) => Math.round(255 * Math.min(1, Math.max(0, v))).toString(16).padStart(2, "0")).join("");
  const colourOf = (part) => { // [first attribute, its three values (asked, or the first digit's default)]
    const first = state.meta.attributes.findIndex((a) => a.name === `${part}_red`);
    return [first, [0, 1, 2].map((c) => state.shape[first + c] ?? state.meta.attributes[first + c].defaults[state.digits[0]])];
  };

  function buildColourControls() {
    $("shape-legend").textContent = "Colours";
    $("shape-hint").textContent = "What this generator was trained to take beside the digit. Until a colour is picked, each digit takes a pair from its training data.";
    COLOURS.forEach(([part, title]) => {
      const label = document.createElement("label");
      label.className = "colour";
      label.innerHTML = `<span class="name"></span><input type="color"><output></output>`;
      label.querySelector(".name").textContent = title;
      const input = label.querySelector("input");
      input.id = `colour-${part}`;
      input.setAttribute("aria-label", `${title} colour`);
      input.addEventListener("input", () => {
        const [first] = colourOf(part);
        [1, 3, 5].forEach((at, c) => setAttribute(first + c, parseInt(input.value.slice(at, at + 2), 16) / 255));
        showShape();
        queue.request();
        morphChanged({ soon: true });
      });
      $("shape-sliders").appendChild(label);
    });
  }

  // An attribute's value as the link keeps it (inside the range of real data, 4 decimals), so that a page opened
  // from the link feeds the model the very numbers this one did.
  function setAttribute(j, value) {
    const { low, high } = state.meta.attributes[j];
    state.shape[j] = +Math.min(Math.max(value, low), high).toFixed(4);
  }

  function buildShapeControls() {
    const attributes = state.meta.attributes || [];
    $("shape-field").hidden = !attributes.length;
    if (state.meta.condition === "colour") buildColourControls();
    else attributes.forEach((a, j) => {
      const { unit, scale, step } = shown(a);
      const label = document.createElement("label");
      label.className = "slider";
      label.title = `real digits: ${(a.low * scale).toFixed(1)} to ${(a.high * scale).toFixed(1)} ${unit}`;
      label.innerHTML = `<span class="name"></span><input type="range" step="${step}"><output></output>`;
      label.querySelector(".name").textContent = `${a.name} (${unit})`;
      const input = label.querySelector("input");
      input.id = `shape-${a.name}`;
      input.min = Math.floor(a.low * scale / step) * step; // on the step's grid, so round values can be set
      input.max = Math.ceil(a.high * scale / step) * step;
      input.setAttribute("aria-label", `${a.name} in ${unit}`);
      input.addEventListener("input", () => {
        setAttribute(j, Number(input.value) / scale);
        showShape();
        queue.request();
        morphChanged({ soon: true });
      });
      $("shape-sliders").appendChild(label);
    });
    $("reset-shape").addEventListener("click", () => {
      state.shape = state.shape.map(() => null);
      showShape();
      queue.request();
      morphChanged({ soon: true });
    });
  }

  function showShape() { // a slider not moved sits at the first digit's default and reads "own"
    if (state.meta.condition === "colour") {
      COLOURS.forEach(([part]) => {
        const [first, rgb] = colourOf(part);
        const input = $(`colour-${part}`);
        input.value = toHex(rgb);
        input.parentElement.querySelector("output").textContent = state.shape[first] === null ? "own" : toHex(rgb);
      });
      return;
    }
    (state.meta.attributes || []).forEach((a, j) => {
      const { scale } = shown(a);
      const label = $(`shape-${a.name}`).parentElement;
      const value = state.shape[j];
      label.querySelector("input").value = (value ?? a.defaults[state.digits[0]]) * scale;
      label.querySelector("output").textContent = value === null ? "own" : (value * scale).toFixed(scale === 1 ? 2 : 1);
    });
  }

  function showDigits() {
    for (const button of document.querySelectorAll("#digits .digit")) {
      const on = state.digits.includes(Number(button.dataset.digit));
      button.classList.toggle("on", on);
      button.setAttribute("aria-pressed", String(on));
    }
    $("count-label").textContent = state.meta.conditional ? `Per ${state.meta.class_word || "digit"}` : "Images";
    if ((state.meta.attributes || []).length) showShape(); // an untouched slider shows the first digit's median
  }

  function showSliders() {
    document.querySelectorAll("#sliders .slider").forEach((label, k) => {
      label.querySelector("input").value = state.offsets[k];
      label.querySelector("output").textContent = state.offsets[k].toFixed(2);
    });
  }

  function showMorph() {
    const walk = state.morph.mode === "walk";
    $("morph-to-label").hidden = walk;
    $("morph-from-label").hidden = !state.meta.conditional;
    $("morph-from").value = state.morph.from;
    $("morph-to").value = state.morph.to;
  }

  function pictureName(what) {
    const digits = state.meta.conditional ? `_${state.digits.join("")}` : "";
    return `cgan_${what}${digits}_seed${state.seed}.png`;
  }

  function download(canvas, name) {
    canvas.toBlob((blob) => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }, "image/png");
  }

  // ---------------------------------------------------------------------------
  // The link holds the picture: #d=3,7&n=8&seed=42&z=0,1.5,...&m=label&a=3&b=8

  function saveToLink() {
    const parts = [];
    if (state.meta.conditional) parts.push(`d=${state.digits.join(",")}`);
    parts.push(`n=${state.count}`, `seed=${state.seed}`);
    if (state.offsets.some((v) => v !== 0)) parts.push(`z=${state.offsets.join(",")}`);
    if (state.shape.some((v) => v !== null)) parts.push(`s=${state.shape.map((v) => (v === null ? "" : v)).join(",")}`);
    parts.push(`m=${state.morph.mode}`, `a=${state.morph.from}`, `b=${state.morph.to}`);
    history.replaceState(null, "", `#${parts.join("&")}`);
  }

  function loadFromLink() {
    const params = new URLSearchParams(location.hash.slice(1));
    const classes = state.meta.classes.length;
    const integer = (text, lo, hi) => {
      const v = Number(text);
      return text !== null && text !== "" && Number.isInteger(v) && v >= lo && v <= hi ? v : null;
    };
    const digits = (params.get("d") || "").split(",").map((t) => integer(t, 0, classes - 1));
    if (digits.length && digits.every((d) => d !== null)) state.digits = [...new Set(digits)].sort((a, b) => a - b);
    state.count = integer(params.get("n"), 1, MAX_COUNT) ?? state.count;
    state.seed = integer(params.get("seed"), 0, 4294967295) ?? state.seed;
    const offsets = (params.get("z") || "").split(",").map(Number);
    if (offsets.length <= state.offsets.length && offsets.every((v) => Number.isFinite(v) && Math.abs(v) <= SLIDER_LIMIT)) {
      offsets.forEach((v, k) => { state.offsets[k] = v; });
    }
    const shape = (params.get("s") || "").split(",");
    const attributes = state.meta.attributes || [];
    if (shape.length === attributes.length && shape.every((t) => t === "" || Number.isFinite(Number(t)))) {
      shape.forEach((t, j) => (t === "" ? (state.shape[j] = null) : setAttribute(j, Number(t))));
    }
    if (["label", "walk"].includes(params.get("m")) && state.meta.conditional) state.morph.mode = params.get("m");
    state.morph.from = integer(params.get("a"), 0, classes - 1) ?? state.morph.from;
    state.morph.to = integer(params.get("b"), 0, classes - 1) ?? state.morph.to;
  }

  // ---------------------------------------------------------------------------

  function fail(error) {
    $("status").textContent = `Something went wrong: ${error.message || error}`;
    $("status").classList.add("error");
    console.error(error);
  }

  async function start() {
    const response = await fetch("model.json");
    if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
    state.meta = await response.json();
    window.cganDemo.phases = { meta: performance.now() };
    $("model-name").textContent = state.meta.name;
    if (state.meta.title && state.meta.title !== "MNIST") { // the page's words follow what the model draws
      document.title = $("title").textContent = `Conditional GAN: ${state.meta.title}`;
      $("lede").textContent = `A generator trained on ${state.meta.title}, running in your browser. ` +
        "Pick classes, move the sliders, play a morph.";
    }
    const classes = state.meta.classes.length || 1;
    state.digits = [Math.min(7, classes - 1)];
    state.morph.from = Math.min(3, classes - 1);
    state.morph.to = Math.min(8, classes - 1);
    state.offsets = state.meta.directions.names.map(() => 0);
    state.shape = (state.meta.attributes || []).map(() => null);
    ort.env.wasm.wasmPaths = ortBase; // an absolute URL: the .mjs is imported relative to it
    // Threads share memory only on a cross-origin-isolated page (the project's server sends the
    // headers; a plain static host does not): then one thread per core, up to 4.
    state.threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
    ort.env.wasm.numThreads = state.threads;
    $("threads").textContent = state.threads === 1 ? "1 thread" : `${state.threads} threads`;
    state.session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
    window.cganDemo.phases.session = performance.now();
    buildControls();
    loadFromLink();
    $("count").value = state.count;
    $("count-value").textContent = state.count;
    $("seed").value = state.seed;
    $("morph-mode").value = state.morph.mode;
    showDigits();
    showSliders();
    showShape();
    showMorph();
    await queue.request();
    const readyMs = performance.now();
    window.cganDemo.ready = readyMs;
    $("status").textContent += ` · ready in ${readyMs.toFixed(0)} ms`;
    document.body.dataset.ready = "true";
    await computeMorph();
  }

  start().catch(fail);
})();
