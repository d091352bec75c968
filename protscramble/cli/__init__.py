"""The ``protscramble`` command line: a thin layer over the Python API.

Each sub-command lives in its own module with a ``register(subparsers)``
function that adds its parser and sets ``func``. User errors
(:class:`~protscramble.errors.ProtscrambleError`) become one line on stderr
and exit status 2; nothing half-written is left behind because every command
writes through :mod:`protscramble.io`'s atomic helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from ..errors import DeviceMemoryError, ProtscrambleError

#: Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES = [
    "predict",
    "explain",
    "demo",
    "energies",
    "hbnets",
    "ddg",
    "compare",
    "heterodimer",
    "benchmark",
    "batch",
    "view",
    "report",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"protscramble: error: {message}\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the run is, so it stops the way Ctrl-C stops it."""


@contextlib.contextmanager
def _sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a scheduler's time limit) into :class:`Terminated` while a command runs.

    The default action would end the process at once; raised as an exception, the scramblers save their
    checkpoint and temporary files are removed, so a rerun resumes. Left alone where SIGTERM is
    ignored or where handlers cannot be set (not the main thread).
    """
    ignored = signal.getsignal(signal.SIGTERM) in (signal.SIG_IGN, None)
    if ignored or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="protscramble", description="Scrambling attribution for protein structure predictors."
    )
    parser.add_argument("--version", action="version", version=f"protscramble {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors and --help/--version: return the status, don't raise
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        with _sigterm_stops_like_ctrl_c():
            result = args.func(args)
    except ProtscrambleError as err:
        print(f"protscramble: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print("protscramble: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("protscramble: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as err:  # torch reports allocation failures as RuntimeError
        if "out of memory" in str(err).lower() or "DefaultCPUAllocator" in str(err):
            print(f"protscramble: error: {DeviceMemoryError(str(err).splitlines()[0])}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
