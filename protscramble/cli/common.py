"""Argument helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

import torch

from ..errors import InvalidParameterError


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda[:N]`` into a torch device, checking it exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InvalidParameterError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("--device cuda was asked for but no CUDA GPU is available")
    return dev


def parse_methods(values: str | Iterable[str], choices: Sequence[str]) -> list[str]:
    """Method names given comma-separated, space-separated (``nargs="+"``) or both, checked.

    Repeats are dropped, the order given is kept; ``none`` alone means no method.
    """
    items = [values] if isinstance(values, str) else list(values)
    names = [m.strip() for item in items for m in item.split(",") if m.strip()]
    if names == ["none"]:
        return []
    unknown = [m for m in names if m not in choices]
    if unknown:
        raise InvalidParameterError(
            f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(choices)}"
        )
    return list(dict.fromkeys(names))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0, got 0")
    return value


def progress_enabled(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr is not None
