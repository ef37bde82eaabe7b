"""The browser page: a trained generator as ONNX, drawn by onnxruntime-web, served or written to a folder.

`site(generator_path)` makes every file the page needs, as {url path: bytes or file}:
the page itself (`cgan/web/`), the vendored onnxruntime-web, `model.onnx` and
`model.json` (classes, sizes, latent directions, any shape attributes). `serve` hands exactly those
files out over HTTP (nothing else on disk is reachable) and `export_web` writes
them to a folder for any static web host.

The page's model is the soft-label copy of a conditional generator
(`cgan.morphs.soft_label_generator`): a one-hot label draws exactly what the
generator draws, and a blend of two draws the label morph.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cgan import ROOT
from cgan.errors import InputError, UserError

PAGE = Path(__file__).with_name("web")
ORT_VERSION = "1.30.0"
VENDOR = f"vendor/onnxruntime-web-{ORT_VERSION}"
PAGE_FILES = ("index.html", "app.js", "style.css", f"{VENDOR}/ort.wasm.min.js", f"{VENDOR}/ort-wasm-simd-threaded.mjs",
              f"{VENDOR}/ort-wasm-simd-threaded.wasm", f"{VENDOR}/LICENSE")
MODEL_FILES = ("model.onnx", "model.json")
DEFAULT_GENERATOR = ROOT / "cgan_mnist.h5"
MIME_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
              ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".wasm": "application/wasm",
              ".json": "application/json", ".onnx": "application/octet-stream", "": "text/plain; charset=utf-8"}
# The page loads only its own files; WebAssembly compiles need 'wasm-unsafe-eval'.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
                           "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'")
# Cross-origin isolation lets onnxruntime-web share memory between WebAssembly threads; the
# page uses a thread per core (up to 4) when it has it, one thread when it does not (a plain
# static host). Two threads redraw ten digits 1.6x faster (median) on 2 cores (docs/page.md).
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
SLIDERS = 8


def model_files(generator_path) -> dict[str, bytes]:
    """`model.onnx` and `model.json` for the generator at `generator_path`; InputError if it is not one."""
    from cgan.export import export_onnx
    from cgan.morphs import soft_label_generator
    from cgan.sampling import class_count, load_generator

    generator = load_generator(generator_path)
    page_model = generator if class_count(generator) is None else soft_label_generator(generator)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_onnx(page_model, Path(tmp) / "model.onnx").read_bytes()
    return {"model.onnx": onnx, "model.json": json.dumps(model_meta(generator, Path(generator_path).name)).encode()}


def model_meta(generator, name: str) -> dict:
    """What the page reads of a generator beside its ONNX graph (`model.json`): classes, sizes, sliders."""
    from cgan import conditions
    from cgan.data import dataset_of
    from cgan.directions import latent_directions
    from cgan.sampling import class_count, image_size, latent_dim

    classes = class_count(generator)
    height, width = image_size(generator)
    dataset = dataset_of(generator)
    names = list(dataset.class_names) if classes == dataset.num_classes else [str(c) for c in range(classes or 0)]
    return {
        "name": name, "conditional": classes is not None, "classes": names,
        "class_word": dataset.class_word, "title": dataset.title,
        "latent_dim": latent_dim(generator), "height": height, "width": width,
        "directions": latent_directions(generator, SLIDERS).to_json(),
        "channels": int(generator.output.shape[-1]),  # 1 (grey) or 3 (RGB)
        # a continuous condition's input ("shape": sliders; "colour": colour pickers) and its attributes
        "condition": conditions.kind_of(generator).name if conditions.kind_of(generator) else None,
        "attributes": conditions.describe(generator),
    }


def site(generator_path) -> dict[str, bytes | Path]:
    """Every file of the page, by its path in the URL."""
    missing = [name for name in PAGE_FILES if not (PAGE / name).is_file()]
    if missing:
        raise InputError(f"the page's files are incomplete (missing {', '.join(missing)}): "
                         "reinstall from the repository")
    return {**{name: PAGE / name for name in PAGE_FILES}, **model_files(generator_path)}


def _content(item: bytes | Path) -> bytes:
    return item if isinstance(item, bytes) else item.read_bytes()


def export_web(generator_path, out_dir) -> Path:
    """Write the page and its model to `out_dir`, a folder any static web host can publish.

    The folder appears whole or not at all. An existing folder is replaced only if it
    holds an earlier export (its `model.json` and `index.html`) and nothing else is in the way.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--export-web {out_dir}: exists and is not a folder")
    previous = out_dir.is_dir() and any(out_dir.iterdir())
    if previous and not ((out_dir / "model.json").is_file() and (out_dir / "index.html").is_file()):
        raise InputError(f"--export-web {out_dir}: folder is not empty and holds no earlier export; "
                         "choose a new folder")
    files = site(generator_path)  # before anything is written: a bad generator leaves no trace
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    except OSError as exc:
        raise InputError(f"--export-web {out_dir}: cannot write there ({exc.strerror})") from None
    try:
        for name, item in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(_content(item))
        os.chmod(staging, 0o755)
        if out_dir.exists():  # swap: the old export stays whole until the new one is in place
            old = staging.with_name(staging.name.replace(".tmp", ".old"))
            os.replace(out_dir, old)
            os.replace(staging, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the files of one site, by exact path; everything else is a 404."""

    files: dict[str, bytes | Path] = {}
    isolation_headers: dict[str, str] = ISOLATION_HEADERS
    server_version = "cgan"
    sys_version = ""

    def do_GET(self):
        self._respond(body=True)

    def do_HEAD(self):
        self._respond(body=False)

    def _respond(self, body: bool):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        name = "index.html" if path == "/" else path.removeprefix("/")
        if not path.startswith("/") or name not in self.files:
            self.send_error(404, "not one of the page's files")
            return
        content = _content(self.files[name])
        self.send_response(200)
        self.send_header("Content-Type", MIME_TYPES.get(Path(name).suffix, MIME_TYPES[""]))
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        for header, value in self.isolation_headers.items():
            self.send_header(header, value)
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format, *args):  # quiet: the terminal shows the address and errors only
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A browser that drops a connection mid-answer (a reload, a closed tab) is no error of ours."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(files: dict[str, bytes | Path], host: str = "127.0.0.1", port: int = 8000, *,
                isolate: bool = True) -> http.server.ThreadingHTTPServer:
    """An HTTP server for `files`, bound and listening; InputError if the address cannot be had.

    `isolate=False` leaves out the cross-origin isolation headers, as a plain static host does.
    """
    handler = type("Handler", (_Handler,),
                   {"files": dict(files), "isolation_headers": ISOLATION_HEADERS if isolate else {}})
    try:
        return _Server((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is in use: "
                             "stop what runs there or choose another with --port") from None
        reason = exc.strerror or str(exc)
        raise InputError(f"cannot listen on {host}:{port} ({reason})") from None


def serve(generator_path=DEFAULT_GENERATOR, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the page for `generator_path` until Ctrl-C."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {port}")
    server = make_server({}, host, port)  # the address first: a port in use is told at once, not after the export
    try:
        server.RequestHandlerClass.files = dict(site(generator_path))
    except BaseException:
        server.server_close()
        raise
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"serving {Path(generator_path).name} at http://{shown}:{bound_port}/ (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {host}: other machines that can reach this one can open the page", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
