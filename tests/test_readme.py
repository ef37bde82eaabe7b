"""README.md and the layout it describes: the flags table is the command line's own, the package never imports the script."""

from __future__ import annotations

import ast
import re
import shlex
import sys

import pytest
from conftest import ROOT

import cgan_mnist

sys.path.insert(0, str(ROOT / "tools"))
import readme_flags  # noqa: E402

README = (ROOT / "README.md").read_text()


def test_the_flags_table_is_made_from_the_help_texts():
    assert readme_flags.updated_readme(README) == README, "run python tools/readme_flags.py"
    assert readme_flags.main(["--check"]) == 0


def test_a_stale_table_fails_the_check_and_is_rewritten(tmp_path, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(README.replace("| images per step |", "| images in a step |"))
    assert readme_flags.main(["--check"], path=stale) == 1
    assert "out of date" in capsys.readouterr().err
    assert readme_flags.main([], path=stale) == 0 and stale.read_text() == README


def test_every_command_in_the_readme_parses():
    commands = re.findall(r"`((?:python cgan_mnist\.py|\.\.\.)[^`]*)`", README)
    assert len(commands) >= 10
    parser = cgan_mnist.build_parser()
    for command in commands:
        if command.endswith("--help"):
            continue
        words = shlex.split(command.replace("...", "python cgan_mnist.py --generator=cgan_mnist.h5", 1))
        parser.parse_args(words[2:])  # argparse exits on an unknown or malformed flag


def test_the_package_never_imports_the_script():
    for path in sorted((ROOT / "cgan").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "cgan_mnist" or n.startswith("cgan_mnist.") for n in names), path.name


@pytest.mark.parametrize("name", ["build_generator", "build_discriminator", "build_adversarial", "main",
                                  "load_generator", "generate", "plot_architecture"])
def test_the_script_keeps_its_public_names(name):
    assert callable(getattr(cgan_mnist, name))
