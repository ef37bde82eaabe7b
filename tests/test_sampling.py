"""cgan/sampling.py: loading and saving generators, and `generate`, importable without any training code."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import cgan_mnist
from cgan.errors import UserError
from cgan.sampling import class_count, generate, image_size, latent_dim, load_generator, save_generator


def test_generate_contract_and_determinism(tiny_generator_file):
    g = load_generator(tiny_generator_file)
    digits = [0, 1, 2, 9, 9]
    a = generate(g, digits, seed=42)
    assert a.shape == (5, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, generate(g, digits, seed=42))
    assert not np.array_equal(a, generate(g, digits, seed=43))
    # An image depends on its position's noise, not on the batch it was drawn in.
    np.testing.assert_array_equal(generate(g, digits, seed=42, batch_size=2), a)
    assert generate(g, [], seed=0).shape == (0, 28, 28)
    for bad in ([10], [-1], [1.5]):
        with pytest.raises(UserError, match="integers 0-9"):
            generate(g, bad, seed=0)


def test_the_label_changes_the_image():
    g = cgan_mnist.build_generator(latent_dim=8, width=8)
    assert not np.array_equal(generate(g, [3], seed=1), generate(g, [7], seed=1))


def test_what_a_generator_tells_about_itself():
    g = cgan_mnist.build_generator(latent_dim=12, width=8, num_classes=100, image_shape=(28, 56, 1))
    assert (latent_dim(g), class_count(g), image_size(g)) == (12, 100, (28, 56))
    assert generate(g, [0, 99], seed=0).shape == (2, 28, 56)
    assert class_count(cgan_mnist.build_generator(latent_dim=8, width=8, num_classes=None)) is None


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_save_load_round_trip_gives_identical_output(tmp_path, suffix):
    g = cgan_mnist.build_generator(latent_dim=8, width=8)
    path = save_generator(g, tmp_path / f"g{suffix}")
    loaded = load_generator(path)
    np.testing.assert_array_equal(generate(g, range(10), seed=5), generate(loaded, range(10), seed=5))
    assert [p.name for p in tmp_path.iterdir()] == [f"g{suffix}"]  # no temporary file left


def test_saving_over_a_model_replaces_it_whole_or_not_at_all(tmp_path, tiny_generator_file, monkeypatch):
    target = tmp_path / "g.h5"
    target.write_bytes(tiny_generator_file.read_bytes())
    g = cgan_mnist.build_generator(latent_dim=8, width=8)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(g), "save", fail)
    with pytest.raises(OSError):
        save_generator(g, target)
    assert target.read_bytes() == tiny_generator_file.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["g.h5"]


def test_shipped_model_loads_and_draws():
    g = load_generator(ROOT / "cgan_mnist.h5")
    assert (latent_dim(g), class_count(g), image_size(g)) == (256, 10, (28, 28))
    images = generate(g, [6] * 4, seed=0)
    assert images.shape == (4, 28, 28)
    assert 20 < images.mean() < 120  # dark background, a bright stroke: not blank, not noise


def test_the_python_use_the_readme_shows():
    generator = cgan_mnist.load_generator(ROOT / "cgan_mnist.h5")
    images = cgan_mnist.generate(generator, [6, 6, 0, 1], seed=0)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, generate(generator, [6, 6, 0, 1], seed=0))


@pytest.mark.slow
def test_sampling_imports_no_training_code_and_not_the_script():
    code = ("import sys; from cgan.sampling import load_generator, generate; "
            "g = load_generator('cgan_mnist.h5'); generate(g, [1], seed=0); "
            "print(sorted(m for m in sys.modules if m == 'cgan_mnist' or m.startswith('cgan.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = eval(result.stdout.strip().splitlines()[-1])
    assert "cgan_mnist" not in loaded
    assert not ({"cgan.training", "cgan.gan", "cgan.checkpoints", "cgan.training_log", "cgan.config"}
                & set(loaded)), loaded
