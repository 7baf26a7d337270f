"""An argparse parser whose errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import sys


class UsageExit(Exception):
    """Raised instead of argparse's print-usage-and-exit, so ``main`` returns 2 (callable from tests)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageExit(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def int_at_least(minimum: int):
    """An argparse ``type`` for integers ``>= minimum`` whose errors name the bad text."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


positive_int = int_at_least(1)
