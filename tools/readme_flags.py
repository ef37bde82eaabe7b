"""Write the README's table of training flags from the command line's own help texts.

    python tools/readme_flags.py          # rewrite the table in README.md
    python tools/readme_flags.py --check  # exit 1 if README.md is out of date (tests/test_readme.py runs this check)

Each training setting is described once, as a `cgan.config.Config` field's help;
the script's other training flags by their argparse help. The table sits in
README.md between the START and END markers below.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START, END = "<!-- flags: made by tools/readme_flags.py -->\n", "<!-- end of flags -->\n"


def flags_table() -> str:
    """The Markdown table of the `training` argument group of cgan_mnist.py."""
    import cgan_mnist
    from cgan.cli import flags_markdown

    parser = cgan_mnist.build_parser()
    group = next(g for g in parser._action_groups if g.title == "training")
    return flags_markdown(group)


def updated_readme(text: str) -> str:
    """README text with the table between the markers replaced by the current one."""
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START.strip()} ... {END.strip()} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + flags_table() + END + tail


def main(argv=None, *, path: Path = ROOT / "README.md") -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = path.read_text()
    new = updated_readme(text)
    if "--check" in argv:
        if new != text:
            print("README.md's flags table is out of date: run python tools/readme_flags.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new)
        print(f"updated the flags table in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
