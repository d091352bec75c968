"""Reading sequences and alignments, and writing outputs atomically."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from Bio import SeqIO

from .alphabet import AMINO_ACIDS, MSA_ALPHABET, validate_sequence
from .errors import InputFileError


@dataclass(frozen=True)
class NamedSequence:
    """A sequence with its FASTA name."""

    name: str
    sequence: str


def _read_text(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"file not found: {p}")
    if not p.is_file():
        raise InputFileError(f"not a regular file: {p}")
    data = p.read_bytes()
    if b"\x00" in data[:65536]:
        raise InputFileError(f"{p} is a binary file, expected text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{p} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _fasta_records(text: str, source: str) -> list[tuple[str, str]]:
    stripped = text.lstrip()
    if not stripped:
        raise InputFileError(f"{source} is empty")
    if not stripped.startswith(">"):
        raise InputFileError(f"{source} is not FASTA/A3M: the first record must start with '>'")
    records = [(r.description, str(r.seq)) for r in SeqIO.parse(io.StringIO(stripped), "fasta")]
    if not records:
        raise InputFileError(f"{source} holds no sequence records")
    return records


def read_fasta(path: str | os.PathLike, alphabet: str = AMINO_ACIDS) -> list[NamedSequence]:
    """Read every record of a FASTA file, validating each sequence.

    Raises
    ------
    InputFileError
        Missing, binary, empty or non-FASTA file.
    InvalidSequenceError
        A record with letters outside ``alphabet``.
    """
    records = _fasta_records(_read_text(path), str(path))
    return [
        NamedSequence(
            name or f"seq{i + 1}", validate_sequence(seq, alphabet, name=f"record {name!r} of {path}")
        )
        for i, (name, seq) in enumerate(records)
    ]


@dataclass(frozen=True)
class MSA:
    """A multiple sequence alignment in trRosetta's integer code.

    Attributes
    ----------
    name
        Name of the query (first) record.
    query
        The query sequence (gaps not allowed).
    codes
        (N, L) uint8 array in ``ARNDCQEGHILKMFPSTWYV-`` order; unknown letters are gaps.
    """

    name: str
    query: str
    codes: np.ndarray

    @property
    def depth(self) -> int:
        return int(self.codes.shape[0])

    @property
    def length(self) -> int:
        return int(self.codes.shape[1])


def parse_a3m_text(text: str, source: str = "<a3m>") -> MSA:
    """Parse A3M text: insertions (lower case, '.') are dropped, other unknown letters become gaps."""
    records = _fasta_records(text, source)
    rows = []
    for _, seq in records:
        row = "".join(c for c in "".join(seq.split()) if not (c.islower() or c == "."))
        rows.append(row.upper())
    length = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != length:
            raise InputFileError(
                f"{source}: aligned row {i + 1} has {len(row)} columns, the query has {length} "
                "(A3M rows must have equal length once insertions are removed)"
            )
    query = validate_sequence(rows[0], AMINO_ACIDS, name=f"query of {source}")
    lut = np.full(256, MSA_ALPHABET.index("-"), dtype=np.uint8)
    for k, c in enumerate(MSA_ALPHABET):
        lut[ord(c)] = k
    codes = np.stack([lut[np.frombuffer(r.encode("ascii", "replace"), dtype=np.uint8)] for r in rows])
    return MSA(name=records[0][0] or Path(source).stem, query=query, codes=codes)


def read_a3m(path: str | os.PathLike) -> MSA:
    """Read an A3M alignment file (first record = query)."""
    return parse_a3m_text(_read_text(path), str(path))


# ---------------------------------------------------------------- atomic output


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``path`` only if the block succeeds.

    On any exception the temporary folder is removed and ``path`` is left as it
    was, so a failed run never leaves half-written outputs behind.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputFileError(f"output path exists and is not a folder: {target}")
    if target.exists() and not overwrite:
        raise InputFileError(f"output folder already exists: {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give outputs the usual permissions (reports get served and shared).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` with an atomic rename."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, object]) -> None:
    """``torch.save`` to a temporary file and rename (tensors and plain Python values only)."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: str | os.PathLike,
    *,
    what: str = "protscramble checkpoint",
    missing_error: type[Exception] = InputFileError,
) -> dict[str, object]:
    """Load a dict saved by ``torch.save`` with ``weights_only=True``.

    ``what`` names the file in error messages; ``missing_error`` is raised when the file is absent
    (weights files raise :class:`~protscramble.errors.WeightsNotFoundError`).
    """
    source = Path(path)
    if not source.is_file():
        raise missing_error(f"{what} not found: {source}")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign files raise many types
        first_line = f"{err}".splitlines()[0] if str(err) else ""
        raise InputFileError(
            f"{source} is not a readable {what} ({type(err).__name__}: {first_line})"
        ) from None
    if not isinstance(state, dict):
        raise InputFileError(f"{source} does not hold a {what}")
    return state
