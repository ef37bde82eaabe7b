"""benchmarks/: every measurement script imports and explains its flags.

Their quick modes, which train and time at the default sizes, run with `python -m pytest benchmarks`
(benchmarks/test_quick_modes.py); their figures are in benchmarks/results/.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT

SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("test_"))


def load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_imports_and_explains_its_flags(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_benchmark(name).main(["--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")

