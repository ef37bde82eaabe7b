"""cgan/web_app.py and cgan/directions.py: the page's files, the server's safety, the export, the sliders'
directions."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
from conftest import ROOT, assert_one_line_error, run_main

from cgan import web_app
from cgan.directions import first_layer_response, latent_directions, names_for, shift
from cgan.sampling import generate, load_generator, noise

sys.path.insert(0, str(ROOT / "benchmarks"))
from web_speed import running_server  # noqa: E402


@pytest.fixture(scope="module")
def tiny_site(tiny_generator_file):
    return web_app.site(tiny_generator_file)


def get(url: str, path: str, method: str = "GET"):
    """(status, headers, body) of one raw request; `path` is sent exactly as given."""
    host, port = url.removeprefix("http://").strip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def listening_addresses(port: int) -> list[str]:
    """The IPv4 addresses with a socket listening on `port`, from /proc/net/tcp (state 0A)."""
    found = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_the_page_model_draws_what_the_generator_draws(tiny_generator_file, tiny_site):
    generator = load_generator(tiny_generator_file)
    session = onnxruntime.InferenceSession(tiny_site["model.onnx"], providers=["CPUExecutionProvider"])
    labels = np.arange(10) % 10
    z = noise(generator, 10, seed=3)
    page_images = session.run(None, {"noise": z, "label": np.eye(10, dtype=np.float32)[labels]})[0]
    keras_images = np.asarray(generator({"noise": z, "label": labels.reshape(-1, 1).astype(np.int32)}, training=False))
    assert float(np.max(np.abs(page_images - keras_images))) <= 1e-4
    meta = json.loads(tiny_site["model.json"])
    assert meta["conditional"] and meta["classes"] == list("0123456789")
    assert (meta["latent_dim"], meta["height"], meta["width"]) == (8, 28, 28)
    assert len(meta["directions"]["vectors"]) == len(meta["directions"]["names"]) == 8


def test_an_unconditional_generator_gets_a_page_without_labels(tiny_unconditional_generator_file):
    files = web_app.model_files(tiny_unconditional_generator_file)
    meta = json.loads(files["model.json"])
    assert not meta["conditional"] and meta["classes"] == []
    session = onnxruntime.InferenceSession(files["model.onnx"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["noise"]


def test_the_server_serves_the_page_files_with_their_types_and_nothing_else(tiny_site):
    with running_server(tiny_site) as url:
        expected = {"/": "text/html", "/app.js": "text/javascript", "/style.css": "text/css",
                    "/model.json": "application/json", "/model.onnx": "application/octet-stream",
                    f"/{web_app.VENDOR}/ort-wasm-simd-threaded.wasm": "application/wasm",
                    f"/{web_app.VENDOR}/ort-wasm-simd-threaded.mjs": "text/javascript",
                    f"/{web_app.VENDOR}/ort.wasm.min.js": "text/javascript"}
        for path, mime in expected.items():
            status, headers, body = get(url, path)
            assert status == 200 and headers["Content-Type"].split(";")[0] == mime, (path, headers)
            assert int(headers["Content-Length"]) == len(body) > 0
            assert headers["Cross-Origin-Opener-Policy"] == "same-origin", path  # isolation: WebAssembly threads
            assert headers["Cross-Origin-Embedder-Policy"] == "require-corp", path
        status, _, body = get(url, "/app.js?v=1")
        assert status == 200 and body == (web_app.PAGE / "app.js").read_bytes()
        assert get(url, "/", "HEAD")[0] == 200
        for path in ["/../cgan_mnist.py", "/..%2Fcgan_mnist.py", "//etc/passwd", "/etc/passwd",
                     "/%2e%2e/%2e%2e/etc/passwd",
                     f"/{web_app.VENDOR}/../../app.js", "/vendor/", "/web_app.py", "/../web/index.html",
                     f"http://127.0.0.1/{web_app.VENDOR}/LICENSE", "/index.html/", "/.git/config"]:
            assert get(url, path)[0] == 404, path


def test_a_browser_dropping_a_download_prints_nothing(tiny_site, capsys):
    """A reload or a closed tab resets the connection mid-answer; the terminal stays quiet and the server serves on."""
    import struct
    import time

    with running_server(tiny_site) as url:
        host, port = url.removeprefix("http://").strip("/").split(":")
        for _ in range(3):
            with socket.create_connection((host, int(port))) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset
                sock.sendall(f"GET /{web_app.VENDOR}/ort-wasm-simd-threaded.wasm HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                sock.recv(1024)  # the answer has begun
        time.sleep(0.5)  # let the server's threads meet the reset
        assert get(url, "/model.json")[0] == 200
    assert capsys.readouterr().err == ""


def test_a_port_in_use_gets_one_line(tiny_site, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(web_app.UserError, match=f"port {port} on 127.0.0.1 is in use"):
            web_app.make_server(tiny_site, "127.0.0.1", port)


@pytest.mark.slow
def test_serve_from_the_command_line_binds_to_loopback_and_refuses_bad_input(tiny_generator_file,
                                                                              tiny_discriminator_file, tmp_path,
                                                                              capsys):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not a model")
    for argv, message, code in [([f"--generator={tmp_path / 'missing.h5'}"], "no such model file", 1),
                                ([f"--generator={broken}"], "not a loadable Keras model", 1),
                                ([f"--generator={tiny_discriminator_file}"], "not a generator", 1),
                                (["--port", "70000"], "--port must be between 0 and 65535", 2)]:
        assert run_main(["--serve", *argv]) == code  # in this process: the CLI's own exits are tested below
        out, err = capsys.readouterr()
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert "serving" not in out

    server = subprocess.Popen([sys.executable, str(ROOT / "cgan_mnist.py"), "--serve",
                               f"--generator={tiny_generator_file}",
                               "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("serving tiny.h5 at http://127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert get(f"http://127.0.0.1:{port}", "/")[0] == 200
        assert listening_addresses(port) == ["127.0.0.1"]
        capsys.readouterr()
        taken = run_main(["--serve", f"--generator={tiny_generator_file}", "--port", str(port)])
        assert taken == 1
        assert_one_line_error(taken, capsys, f"port {port} on 127.0.0.1 is in use")
        server.send_signal(2)  # Ctrl-C stops it cleanly
        assert server.wait(timeout=30) == 0
        assert "Traceback" not in server.stderr.read()
    finally:
        server.kill()


def test_export_web_writes_a_whole_folder_and_replaces_only_an_earlier_export(tiny_generator_file, tmp_path, capsys):
    out = tmp_path / "site"
    assert run_main([f"--generator={tiny_generator_file}", "--export-web", str(out)]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted([*web_app.PAGE_FILES, *web_app.MODEL_FILES])
    assert (out / "app.js").read_bytes() == (web_app.PAGE / "app.js").read_bytes()
    (out / "model.json").write_text("{}")  # an earlier export is replaced whole
    assert run_main([f"--generator={tiny_generator_file}", "--export-web", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["latent_dim"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging folder left

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code = run_main([f"--generator={tiny_generator_file}", "--export-web", str(other)])
    assert_one_line_error(code, capsys, "is not empty and holds no earlier export")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    code = run_main([f"--generator={tmp_path / 'missing.h5'}", "--export-web", str(tmp_path / "new")])
    assert_one_line_error(code, capsys, "no such model file")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_one_line_error(run_main([f"--generator={tiny_generator_file}", "--export-web", str(a_file)]), capsys,
                          "exists and is not a folder")
    assert_one_line_error(run_main([f"--generator={tiny_generator_file}", "--export-web", str(a_file / "site")]),
                          capsys, "cannot write there")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "other", "site"]


def test_the_directions_are_the_first_layers_principal_axes(tiny_generator_file):
    generator = load_generator(tiny_generator_file)
    directions = latent_directions(generator, 5)
    vectors = directions.vectors
    assert vectors.shape == (5, 8)
    assert np.allclose(vectors @ vectors.T, np.eye(5), atol=1e-5)
    shares = directions.variance_share
    assert np.all(np.diff(shares) <= 1e-9) and 0 < shares.sum() <= 1 + 1e-9
    # Each direction moves the first layer by its singular value per unit step, orthogonal to the others.
    response = first_layer_response(generator)
    moved = response @ vectors.T
    gram = moved.T @ moved
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-3 * gram.max())
    assert np.allclose(np.diag(gram) / np.sum(response**2), shares, rtol=1e-3)
    z = noise(generator, 3, seed=0)
    assert np.allclose(shift(z, directions, [0, 2.0]), z + 2.0 * vectors[1])
    assert np.array_equal(shift(z, directions, []), z)


@pytest.mark.slow
def test_the_shipped_models_sliders_change_the_pixels_they_are_named_for():
    generator = load_generator(ROOT / "cgan_mnist.h5")
    directions = latent_directions(generator, 8)
    assert directions.names[0].startswith("PC1")
    effects = [name.split(" · ")[1] if " · " in name else "" for name in directions.names]
    assert len(set(filter(None, effects))) == len(list(filter(None, effects))) >= 3, directions.names  # none shared
    from cgan.directions import EFFECTS, _statistics

    word = {w: (statistic, sign) for statistic, words in EFFECTS.items() for w, sign in zip(words, (1, -1))}
    z = noise(generator, 200, seed=11)
    labels = np.repeat(np.arange(10), 20).reshape(-1, 1).astype(np.int32)
    for k, effect in enumerate(effects):  # measured on other noise than the names were chosen on
        if not effect:
            continue
        lo, hi = (_statistics(generate_with(generator, shift(z, directions, [0] * k + [s]), labels))
                  for s in (-2.0, 2.0))
        for part in effect.split(", "):
            statistic, sign = word[part]
            assert np.mean(sign * hi[statistic] > sign * lo[statistic]) > 0.7, (k, part, directions.names)


def generate_with(generator, z, labels):
    from cgan.data import postprocess

    return postprocess(generator({"noise": z, "label": labels}, training=False))


def test_generate_agrees_with_shift_at_zero(tiny_generator_file):
    generator = load_generator(tiny_generator_file)
    directions = latent_directions(generator, 3)
    z = noise(generator, 4, seed=5)
    assert np.array_equal(generate(generator, [1, 2, 3, 4], seed=5),
                          generate_with(generator, shift(z, directions, [0, 0, 0]),
                                        np.array([[1], [2], [3], [4]], np.int32)))


def test_a_pairs_or_fashion_generator_gets_its_own_classes_on_the_page(tmp_path):
    import cgan_mnist
    from cgan.data import FASHION, PAIRS_NUMBER
    from cgan.sampling import load_generator, save_generator

    for dataset in (PAIRS_NUMBER, FASHION):
        generator = cgan_mnist.build_generator(latent_dim=8, width=8, num_classes=dataset.num_classes,
                                               image_shape=dataset.image_shape, name=dataset.generator_name)
        # as saved and loaded (the page's ONNX graph is checked with the digit, shape and colour models)
        meta = web_app.model_meta(load_generator(save_generator(generator, tmp_path / f"{dataset.key}.h5")), "x.h5")
        assert meta["classes"] == list(dataset.class_names) and meta["class_word"] == dataset.class_word
        assert (meta["height"], meta["width"]) == dataset.image_shape[:2]


def test_no_two_sliders_share_a_name():
    """Directions with the same clearest effect are told apart by their second, or by their number alone."""
    found = [
        {"ink": 1.5, "slant": 0.1, "width": 0.2, "height": 0.1},   # bolder
        {"ink": -1.2, "slant": 0.0, "width": 0.1, "height": 0.9},  # thinner, shorter: turned round
        {"ink": 1.1, "slant": -0.7, "width": 0.0, "height": 0.0},  # bolder again, and slants left
        {"ink": 0.9, "slant": 0.1, "width": 0.1, "height": 0.2},   # bolder, nothing else clear
        {"ink": 0.2, "slant": 0.1, "width": 0.1, "height": 0.3},   # nothing clear
    ]
    names, signs = names_for(found)
    assert names == ["PC1 · bolder", "PC2 · bolder, shorter", "PC3 · bolder, slant left", "PC4", "PC5"]
    assert signs == [1, -1, 1, 1, 1]
    assert len(set(names)) == len(names)
