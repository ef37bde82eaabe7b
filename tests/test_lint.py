"""The code passes the linter a reviewer would run: ruff, with pyproject.toml's rules."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                    reason="ruff is not installed: pip install -r requirements.txt")
def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_pyproject_names_the_command_and_every_pinned_package():
    """`pip install -e .` gives `cgan-mnist`, and asks for each package requirements*.txt pins (by range there)."""
    import importlib
    import re

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module, function = project["scripts"]["cgan-mnist"].split(":")
    assert callable(getattr(importlib.import_module(module), function))
    asked = {re.split(r"[<>=!;\[ ]", spec)[0].lower() for spec in
             [*project["dependencies"], *(s for extra in project["optional-dependencies"].values() for s in extra)]}
    pinned = {line.split("==")[0].lower() for name in ("requirements-common.txt", "requirements.txt")
              for line in (ROOT / name).read_text().splitlines() if "==" in line and not line.startswith("#")}
    assert pinned <= asked, sorted(pinned - asked)
