"""Errors raised at the boundaries, where inputs and external tools enter the workflow."""

from __future__ import annotations

import shutil


class InputError(ValueError):
    """An input file is unusable; the message names the file, the line or record and what to do."""


class DownloadError(InputError):
    """An input could not be fetched, verified or converted; the message names its source."""


class QCError(InputError):
    """A QC input is unusable; the message names the file and what is wrong with it."""


def require(tool: str, error: type[InputError] = InputError) -> None:
    """Check that a command-line tool is on PATH.

    Args:
        tool: The command, which is also the name of its Debian package.
        error: The error class to raise.

    Raises:
        InputError: An instance of ``error`` naming the Debian package when the tool is missing.
    """
    if shutil.which(tool) is None:
        raise error(f"{tool} is not installed (Debian package {tool}; see envs/apt.txt)")
