"""Shared by the command-line tools: turn a validator that raises ValueError into an argparse type."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def arg(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`type=arg(validate)`: the validator's message becomes argparse's usage error (exit 2)."""

    def convert(value: str) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value").lstrip("_")
    return convert
