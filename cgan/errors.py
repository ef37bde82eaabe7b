"""The two ways a run ends early that the user should hear about in one line, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


class TrainingStopped(Exception):
    """Training ended before its last step; `exit_code` is what the command line returns."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
