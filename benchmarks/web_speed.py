"""The page's speed in a real browser: ready time, and redraw times as the latent sliders move.

    python benchmarks/web_speed.py                      # 50 changes of each kind, the shipped model
    python benchmarks/web_speed.py --screenshot assets/web_page.png

Serves the page (`cgan.web_app`) on 127.0.0.1, opens it in Debian's Chromium
(`/usr/bin/chromium`, or $CHROMIUM) driven by Playwright, and measures:

- ready: from navigation start to the model loaded and the first grid drawn (the page's
  own clock), and the same seen from Python (`goto` to ready);
- the first 80 moves of a fresh page (one image per class), while Chromium's JIT settles;
- then, one per class: all ten digits, one image each; a slider moves, the grid is redrawn;
- a 16-image grid: one digit, 16 images; a slider moves, the grid is redrawn.

The server isolates the page (COOP/COEP), so onnxruntime-web runs a WebAssembly thread per
core, up to 4; `--threads 1` serves it without isolation, as a plain static host would, for
the one-thread figures.

A redraw is timed by the page from the slider's input event to the pixels on the canvas
(the figure the page shows). Each change waits for the previous redraw, as a hand would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@contextlib.contextmanager
def running_server(files, *, isolate: bool = True):
    """Serve `files` (cgan.web_app.site) on a free loopback port in a thread; yield the page's URL."""
    from cgan.web_app import make_server

    server = make_server(files, "127.0.0.1", 0, isolate=isolate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM)


class PageLog:
    """Everything a page said and asked for: console messages by type, uncaught errors, requested URLs."""

    def __init__(self, page):
        self.console, self.errors, self.requests = [], [], []
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def problems(self) -> list[str]:
        return [f"{kind}: {text}" for kind, text in self.console if kind in ("error", "warning")] + self.errors

    def foreign_requests(self) -> list[str]:
        """Requests for anything not on 127.0.0.1 (data: and blob: URLs stay in the page)."""
        return [url for url in self.requests
                if not (url.startswith("http://127.0.0.1:") or url.startswith(("data:", "blob:")))]


def open_page(browser, url, *, width=1280, height=900, accept_downloads=False):
    """A new page at `url`, waited until ready; returns (page, log, wall-clock ms from goto to ready)."""
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=accept_downloads)
    log = PageLog(page)
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    return page, log, 1000 * (time.perf_counter() - started)


def settle(page):
    """Wait until the page has no generation running or queued."""
    page.evaluate("() => window.cganDemo.idle()")


def move_slider(page, k: int, value: float) -> float:
    """Set latent slider k as a drag would (an input event), wait for the redraw; its time in ms."""
    return page.evaluate("""async ([k, value]) => {
        const input = document.getElementById(`direction-${k}`);
        input.value = value;
        input.dispatchEvent(new Event("input", { bubbles: true }));
        await window.cganDemo.idle();
        return window.cganDemo.timings.at(-1);
    }""", [k, value])


def show(page, digits: list[int], count: int):
    """Set the digits and the count through the page's own controls."""
    page.evaluate("""async ([digits, count]) => {
        document.getElementById("all-digits").click();
        for (const button of document.querySelectorAll("#digits .digit")) {
            if (!digits.includes(Number(button.dataset.digit))) button.click();
        }
        const range = document.getElementById("count");
        range.value = count;
        range.dispatchEvent(new Event("input", { bubbles: true }));
        await window.cganDemo.idle();
    }""", [digits, count])


def slider_timings(page, changes: int) -> list[float]:
    """`changes` slider moves across the sliders, each waited for; the page's redraw times in ms."""
    sliders = page.locator("#sliders input[type=range]").count()
    times = [move_slider(page, i % sliders, round(2.5 * np.sin(0.7 * i + 0.3), 2)) for i in range(changes)]
    page.evaluate("() => document.getElementById('reset-sliders').click()")
    settle(page)
    return times


def summary(times) -> dict:
    times = np.asarray(times, float)
    return {"changes": len(times), "median_ms": round(float(np.median(times)), 1),
            "p95_ms": round(float(np.percentile(times, 95)), 1), "max_ms": round(float(times.max()), 1)}


# The redraw aim (p95 under 30 ms for one digit of each class) was set and met on a machine where
# one WebAssembly thread ran the generator shipped then for those 10 images in 21.2 ms
# (benchmarks/README.md). Today's shipped generator ran them 3.3x faster than that one on one
# machine in the same session (8.6 against 28.3 ms), so there it would take 6.4 ms.
AIM_MS, AIM_MODEL_MS = 30.0, 6.4


def model_ms(page, *, images: int = 10, runs: int = 30) -> float:
    """Median ms of the page's bare `session.run` for `images` one-per-class images: the machine's pace, no
    page around it."""
    return page.evaluate("""async ([n, runs]) => {
        const s = window.cganDemo.state, dim = s.meta.latent_dim, k = Math.max(1, s.meta.classes.length);
        const times = [];
        for (let r = 0; r < runs + 3; r++) {
            const feeds = { noise: new ort.Tensor("float32",
                Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i + r)), [n, dim]) };
            if (s.meta.conditional) {
                const label = new Float32Array(n * k);
                for (let i = 0; i < n; i++) label[i * k + (i % k)] = 1;
                feeds.label = new ort.Tensor("float32", label, [n, k]);
            }
            const started = performance.now();
            await s.session.run(feeds);
            if (r >= 3) times.push(performance.now() - started); // 3 warm-up runs
        }
        times.sort((a, b) => a - b);
        return times[Math.floor(times.length / 2)];
    }""", [images, runs])


def scaled_aim(one_thread_model_ms: float) -> float:
    """The 30 ms aim on this machine: scaled by how much slower than the aim's machine it runs the model on one thread.

    Never tighter than 30 ms: a faster machine keeps the aim as the issue set it.
    """
    return AIM_MS * max(1.0, one_thread_model_ms / AIM_MODEL_MS)


# Chromium compiles the WebAssembly's hot functions again, optimized, in the background while the
# page runs: on 2 cores the first moves of a fresh page include three or so redraws of 30-35 ms
# (the 17th, 21st and 68th session runs, on every page load) that the rest never see.
WARMUP_CHANGES = 80


def show_one_per_class(page) -> int:
    """Show one image of each class (one image for an unconditional generator); the number of classes."""
    classes = page.evaluate("() => window.cganDemo.state.meta.classes.length") or 1
    show(page, list(range(classes)), 1)
    return classes


def warm_up(page, changes: int = WARMUP_CHANGES) -> dict:
    """The first `changes` slider moves of a fresh page, one image per class: the redraws while the JIT settles."""
    show_one_per_class(page)
    return summary(slider_timings(page, changes))


def measure(page, *, changes: int = 50) -> dict:
    """Slider redraw times for one image per class and for a 16-image grid of one digit, on a warmed-up page."""
    classes = show_one_per_class(page)
    per_class = summary(slider_timings(page, changes))
    show(page, [min(7, classes - 1)], 16)
    grid16 = summary(slider_timings(page, changes))
    return {"one_per_class": {"images": classes, **per_class}, "grid16": {"images": 16, **grid16}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default=str(ROOT / "cgan_mnist.h5"))
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="fresh page loads (default: 3)")
    parser.add_argument("--threads", choices=["auto", "1"], default="auto",
                        help="auto: the isolated page, a thread per core (default); 1: no isolation, one thread")
    parser.add_argument("--screenshot", help="also save a screenshot of the page here")
    parser.add_argument("--out", help="write the figures to OUT.txt and OUT.json")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from cgan.web_app import site

    files = site(args.generator)
    rounds = []
    # --threads 1: served as a plain static host serves it, without isolation headers
    with running_server(files, isolate=args.threads != "1") as url, sync_playwright() as playwright:
        browser = launch(playwright)
        for _ in range(args.rounds):
            page, log, wall_ms = open_page(browser, url)
            ready_ms, threads = page.evaluate("() => [window.cganDemo.ready, window.cganDemo.state.threads]")
            rounds.append({"ready_ms": round(ready_ms), "ready_wall_ms": round(wall_ms), "threads": threads,
                           "warmup": warm_up(page), **measure(page, changes=args.changes),
                           "problems": log.problems(), "foreign_requests": log.foreign_requests()})
            page.close()
        if args.screenshot:
            page, _, _ = open_page(browser, url + "#d=2,5,8&n=8&seed=2026&z=1,0,-1&m=label&a=3&b=8",
                                   width=1280, height=920)
            page.evaluate("() => document.getElementById('morph-play').click()")
            page.wait_for_timeout(700)
            page.evaluate("() => document.getElementById('morph-play').click()")
            page.screenshot(path=args.screenshot)
            print(f"wrote {args.screenshot}")
        # the machine's pace, for the aim's scaled limit: the bare model on one thread
        with running_server(files, isolate=False) as plain_url:
            page, _, _ = open_page(browser, plain_url)
            one_thread_ms = model_ms(page)
            page.close()
        version = browser.version
        browser.close()

    from cgan.precision import cpu_description

    result = {"cpu": cpu_description(), "chromium": version, "generator": Path(args.generator).name,
              "one_thread_model_ms": round(one_thread_ms, 1), "scaled_aim_ms": round(scaled_aim(one_thread_ms), 1),
              "rounds": rounds}
    threads = sorted({r["threads"] for r in rounds})
    lines = [f"web_speed: {result['generator']} in Chromium {version} (headless), onnxruntime-web wasm, "
             f"{'/'.join(map(str, threads))} thread(s); CPU: {result['cpu']}"]
    for i, r in enumerate(rounds, 1):
        one, grid = r["one_per_class"], r["grid16"]
        warm = r["warmup"]
        lines.append(f"round {i}: ready {r['ready_ms']} ms (page) / {r['ready_wall_ms']} ms (goto to ready); "
                     f"first {warm['changes']} moves (JIT warm-up), 10 images: median {warm['median_ms']} "
                     f"p95 {warm['p95_ms']} max {warm['max_ms']} ms; then "
                     f"slider, {one['images']} images: median {one['median_ms']} p95 {one['p95_ms']} "
                     f"max {one['max_ms']} ms; "
                     f"slider, 16-image grid: median {grid['median_ms']} p95 {grid['p95_ms']} max {grid['max_ms']} ms "
                     f"({one['changes']} changes each); console problems {len(r['problems'])}, "
                     f"requests off 127.0.0.1 {len(r['foreign_requests'])}")
    lines.append(f"the model alone, 10 images on 1 thread: {result['one_thread_model_ms']} ms "
                 f"({AIM_MODEL_MS} ms where the 30 ms aim was set): "
                 f"the aim scaled to this machine is {result['scaled_aim_ms']} ms")
    text = "\n".join(lines)
    print(text)
    if args.out:
        from cgan.files import write_text

        write_text(f"{args.out}.txt", text + "\n")
        write_text(f"{args.out}.json", json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
