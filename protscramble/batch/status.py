"""The status file: one JSON line per finished or failed design, the truth for resuming.

Each outcome is appended with a single ``write`` on a file opened in append
mode and flushed to disk, so a kill leaves at most one torn last line, which
the reader skips. The last record of an id wins. At the end of a run the file
is compacted (one record per id, rewritten atomically) so that it never grows
with reruns.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputFileError, ProtscrambleError
from ..io import atomic_write_text

DONE, FAILED = "done", "failed"


@dataclass(frozen=True)
class StatusRecord:
    """The outcome of one design.

    Attributes
    ----------
    id
        Design id.
    state
        ``done`` or ``failed``.
    error
        Why it failed (``None`` when done).
    stage
        Where: ``manifest``, ``explain``, ``compare``, ``write`` or ``worker``.
    time
        UTC time of the outcome (ISO 8601).
    settings_hash, input_hash
        Digests of the shared settings and of the design's inputs; a done
        design counts as finished only while both still match.
    folder
        Output folder relative to the batch folder (``None`` when failed).
    seconds
        Wall time of the design's bucket share.
    """

    id: str
    state: str
    error: str | None = None
    stage: str | None = None
    time: str = ""
    settings_hash: str | None = None
    input_hash: str | None = None
    folder: str | None = None
    seconds: float | None = None

    def same_outcome(self, other: StatusRecord | None) -> bool:
        """Equal up to time and duration (used to avoid re-recording a known failure)."""
        if other is None:
            return False
        a, b = asdict(self), asdict(other)
        return all(a[k] == b[k] for k in a if k not in ("time", "seconds"))


def describe(err: BaseException) -> str:
    """One-line message: user errors as they are, anything else with its type and origin."""
    if isinstance(err, ProtscrambleError):
        return str(err)
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    first = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {first}{where}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class StatusLog:
    """Append-only JSON-lines status file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, record: StatusRecord) -> None:
        line = json.dumps(asdict(record), sort_keys=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def records(self) -> Iterator[StatusRecord]:
        """Every readable record in file order (a torn or foreign line is skipped)."""
        if not self.path.exists():
            return
        names = set(StatusRecord.__dataclass_fields__)
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                data = json.loads(line)
                yield StatusRecord(**{k: v for k, v in data.items() if k in names})
            except (ValueError, TypeError):
                continue

    def latest(self) -> dict[str, StatusRecord]:
        """The last record of each id."""
        out: dict[str, StatusRecord] = {}
        for rec in self.records():
            out[rec.id] = rec
        return out

    def compact(self, order: Iterable[str] = ()) -> dict[str, StatusRecord]:
        """Rewrite the file with one record per id: ``order`` first, then the others as found."""
        latest = self.latest()
        ids = [i for i in dict.fromkeys(order) if i in latest] + [i for i in latest if i not in set(order)]
        text = "".join(json.dumps(asdict(latest[i])) + "\n" for i in ids)
        atomic_write_text(self.path, text)
        return latest


@contextlib.contextmanager
def batch_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so two batches never write into it at once.

    The lock is released by the kernel if the process dies, so a killed run
    never blocks the rerun.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    fh = open(folder / ".batch.lock", "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputFileError(f"another protscramble batch is running on {folder}") from None
        except OSError:  # a file system without locks (some network mounts): run unlocked
            pass
        yield
    finally:
        fh.close()
