"""Command-line pieces shared by `cgan_mnist.py` and the package's own entry points."""

from __future__ import annotations

import argparse


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, not the usage block plus the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        """The parsed arguments, with `given`: the dests of the options the command line named.

        Lets a command refuse flags that do not apply to what it does, rather than ignore them.
        """
        saved = {action: action.default for action in self._actions}
        try:
            for action in self._actions:
                action.default = argparse.SUPPRESS
            given = set(vars(super().parse_args(args)))
        finally:
            for action, default in saved.items():
                action.default = default
        parsed = super().parse_args(args, namespace)
        parsed.given = given
        return parsed


def flag_name(action: argparse.Action) -> str:
    """How a message names a flag: its long form (`--g-class-norm`, not `--no-g-class-norm`)."""
    longs = [o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")]
    return longs[0] if longs else action.option_strings[-1]


def flags_markdown(group: argparse._ArgumentGroup) -> str:
    """A Markdown table (flag, default, meaning) of an argparse group, from each flag's own help text.

    A help text ends in "(default: X)" where the flag has a default worth saying.
    """
    lines = ["| flag | default | meaning |", "|---|---|---|"]
    for action in group._group_actions:
        name = flag_name(action) + (f" {action.metavar}" if isinstance(action.metavar, str) else "")
        if isinstance(action, argparse.BooleanOptionalAction):
            name = " / ".join(action.option_strings)
        meaning, _, default = (action.help or "").partition(" (default: ")
        choices = f" (one of {', '.join(action.choices)})" if action.choices else ""
        lines.append(f"| `{name}` | {default.removesuffix(')')} | {meaning}{choices} |")
    return "\n".join(lines) + "\n"
