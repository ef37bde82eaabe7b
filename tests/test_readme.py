"""README.md and docs/flags.md: the flags table is the command line's own, every command parses, the package never
imports the script."""

from __future__ import annotations

import ast
import os
import re
import shlex

import pytest
from conftest import ROOT

import cgan_mnist
from cgan.cli import flags_markdown  # noqa: E402
from cgan.config import Config  # noqa: E402

README = (ROOT / "README.md").read_text()
FLAGS_DOC = ROOT / "docs" / "flags.md"
START, END = "<!-- flags: made from the help texts -->\n", "<!-- end of flags -->\n"


def flags_table() -> str:
    """The Markdown table of the `training` argument group of cgan_mnist.py."""
    group = next(g for g in cgan_mnist.build_parser()._action_groups if g.title == "training")
    return flags_markdown(group)


def with_current_table(text: str) -> str:
    head, rest = text.split(START, 1)
    return head + START + flags_table() + END + rest.split(END, 1)[1]


def test_the_flags_table_is_made_from_the_help_texts():
    text = FLAGS_DOC.read_text()
    if os.environ.get("UPDATE_DOCS"):
        FLAGS_DOC.write_text(with_current_table(text))
        text = FLAGS_DOC.read_text()
    assert with_current_table(text) == text, "run UPDATE_DOCS=1 python -m pytest tests/test_readme.py"
    assert f"| `--train-steps N` | {Config().train_steps};" in text and "| `--loss` | hinge |" in text


def test_a_stale_table_is_told_apart_and_rewritten():
    text = FLAGS_DOC.read_text()
    stale = text.replace("| images per step |", "| images in a step |")
    assert stale != text and with_current_table(stale) == text


def test_every_command_in_the_readme_parses():
    commands = re.findall(r"`((?:python cgan_mnist\.py|\.\.\.)[^`]*)`",
                          README + (ROOT / "docs" / "models.md").read_text())
    assert len(commands) >= 10
    parser = cgan_mnist.build_parser()
    for command in commands:
        if command.endswith("--help"):
            continue
        words = shlex.split(command.replace("...", "python cgan_mnist.py --generator=cgan_mnist.h5", 1))
        args = parser.parse_args(words[2:])  # argparse exits on an unknown or malformed flag
        cgan_mnist._check_flags(parser, args)  # and no flag is one the command would refuse


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
