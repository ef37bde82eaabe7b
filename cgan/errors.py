"""The ways a command ends early that the user should hear about in one line, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A usage error: a flag's value, or flags that do not go together. One line, exit status 2."""

    exit_code = 2


class InputError(UserError):
    """A file or folder the command was pointed at cannot serve: missing or broken data or model
    files, an output path that cannot be written, a run folder in use. One line, exit status 1."""

    exit_code = 1


class TrainingStopped(Exception):
    """Training ended before its last step; `exit_code` is what the command line returns."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
