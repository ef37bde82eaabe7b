"""cgan/export.py: the ONNX file draws what Keras draws, for conditional and unconditional generators."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_main

import cgan_mnist
from cgan import conditions
from cgan.sampling import load_generator, noise


def onnx_and_keras(generator, path, count=64):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {"noise": noise(generator, count, seed=0)}
    if "label" in generator.input:
        inputs["label"] = (np.arange(count) % 10).astype(np.int32).reshape(-1, 1)
    inputs = conditions.complete(generator, inputs, np.random.default_rng(0))  # a colour or shape generator's too
    assert {i.name for i in session.get_inputs()} == set(inputs)
    return session.run(None, inputs)[0], np.asarray(generator(inputs, training=False))


@pytest.mark.slow
def test_the_shipped_generator_in_onnx_runtime_matches_keras(tmp_path, capsys):
    path = tmp_path / "cgan_mnist.onnx"
    assert cgan_mnist.main([f"--generator={ROOT / 'cgan_mnist.h5'}", "--export-onnx", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    ours, keras_images = onnx_and_keras(load_generator(ROOT / "cgan_mnist.h5"), path)
    assert ours.shape == (64, 28, 28, 1)
    assert float(np.max(np.abs(ours - keras_images))) <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["cgan_mnist.onnx"]  # no temporary file left


@pytest.mark.slow
def test_an_unconditional_generator_exports_too(tiny_unconditional_generator_file, tmp_path):
    path = tmp_path / "any.onnx"
    assert cgan_mnist.main([f"--generator={tiny_unconditional_generator_file}", "--export-onnx", str(path)]) == 0
    ours, keras_images = onnx_and_keras(load_generator(tiny_unconditional_generator_file), path, count=5)
    assert float(np.max(np.abs(ours - keras_images))) <= 1e-4


@pytest.mark.parametrize("argv, message", [
    (["--export-onnx", "g.onnx"], "--export-onnx needs --generator"),
    (["--generator=GEN", "--export-onnx", "g.txt"], "must name a .onnx file"),
    (["--generator=nope.h5", "--export-onnx", "g.onnx"], "no such model file"),
])
def test_bad_export_requests_get_one_line(tiny_generator_file, tmp_path, capsys, argv, message):
    argv = [a.replace("GEN", str(tiny_generator_file)).replace("g.", str(tmp_path / "g.")) for a in argv]
    assert_one_line_error(run_main(argv), capsys, message)
    assert list(tmp_path.iterdir()) == []
