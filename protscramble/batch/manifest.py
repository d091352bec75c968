"""Reading a design manifest: one row per design, validated row by row.

A manifest is a tab-separated file with a header line. Columns:

``id``
    Unique design name (required); it names the design's output folder.
``sequence`` | ``fasta`` | ``a3m``
    Exactly one source of the sequence per row, unless ``structure`` is
    given, in which case the sequence may be read from the structure chain.
    A multi-record FASTA file is allowed: the record whose first word is the
    design id is used.
``structure``, ``chain``
    Optional design model and the chain the sequence belongs to; when given,
    importance is compared with the model's per-residue energies.
``interface``
    Optional ``A_B``: interface ddG and interface H-bond networks.

Relative paths are resolved against the manifest's folder. Lines that are
blank or start with ``#`` are skipped. A bad row never aborts the batch: it
becomes an :class:`InvalidRow` with a reason; only a manifest that cannot be
read at all (missing file, no ``id`` column, unknown column) raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..alphabet import validate_sequence
from ..errors import InputFileError
from ..io import MSA, read_a3m, read_fasta
from ..structures.io import load_structure, parse_interface
from .status import describe

COLUMNS = ("id", "sequence", "fasta", "a3m", "structure", "chain", "interface")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class DesignInput:
    """One valid manifest row, with everything a worker needs to explain it.

    Attributes
    ----------
    id
        Design name from the manifest.
    folder
        Output folder name under ``designs/`` (see :func:`folder_name`).
    row
        1-based line number in the manifest.
    sequence
        Validated sequence to explain.
    msa
        Alignment when the row gives an ``a3m`` (its query is ``sequence``).
    structure
        Absolute path of the design model, or ``None``.
    chain, interface
        Chain of the sequence in ``structure``; optional interface chains.
    input_hash
        Digest of the inputs that shape the result (sequence, alignment,
        structure file content and path, chain, interface): a finished design
        is redone when its row changes.
    """

    id: str
    folder: str
    row: int
    sequence: str
    msa: MSA | None = None
    structure: str | None = None
    chain: str | None = None
    interface: tuple[str, str] | None = None
    input_hash: str = ""

    @property
    def length(self) -> int:
        return len(self.sequence)


@dataclass(frozen=True)
class InvalidRow:
    """A manifest row that cannot be run, and why."""

    id: str
    row: int
    reason: str


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: valid designs and rejected rows, in file order."""

    path: Path
    designs: list[DesignInput]
    invalid: list[InvalidRow]

    @property
    def ids(self) -> list[str]:
        """Every row's id (valid or not) in file order, without repeats."""
        rows = sorted([(d.row, d.id) for d in self.designs] + [(r.row, r.id) for r in self.invalid])
        return list(dict.fromkeys(i for _, i in rows))


def folder_name(design_id: str) -> str:
    """A file-system-safe, injective folder name for a design id.

    Ids made only of ``A-Za-z0-9_.-`` are used as they are; other ids are
    sanitised and suffixed with a digest so two ids never share a folder.

    Examples
    --------
    >>> folder_name("pd1_r1_10")
    'pd1_r1_10'
    >>> folder_name("design 7/b")
    'design_7_b-9c69667d'
    """
    safe = _UNSAFE.sub("_", design_id).strip("._")[:80] or "design"
    if safe == design_id:
        return safe
    return f"{safe}-{hashlib.sha256(design_id.encode()).hexdigest()[:8]}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _input_hash(sequence: str, msa: MSA | None, structure: Path | None, chain, interface) -> str:
    parts = {
        "sequence": sequence,
        "msa": None if msa is None else [list(msa.codes.shape), _digest(msa.codes.tobytes())],
        "structure": None if structure is None else [str(structure), _digest(structure.read_bytes())],
        "chain": chain,
        "interface": None if interface is None else "_".join(interface),
    }
    return _digest(json.dumps(parts, sort_keys=True).encode())[:16]


def _resolve(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return (p if p.is_absolute() else base / p).resolve()


def _fasta_sequence(path: Path, design_id: str) -> str:
    records = read_fasta(path)
    if len(records) == 1:
        return records[0].sequence
    matches = [r for r in records if r.name.split() and r.name.split()[0] == design_id]
    if len(matches) != 1:
        raise InputFileError(
            f"{path} holds {len(records)} records and {len(matches) or 'none'} named {design_id!r}; "
            "use a single-record file or name the record after the design id"
        )
    return matches[0].sequence


def _parse_row(cells: dict[str, str], row: int, base: Path) -> DesignInput:
    """Turn one row into a design, raising ProtscrambleError with the reason."""
    design_id = cells["id"]
    sources = [k for k in ("sequence", "fasta", "a3m") if cells.get(k)]
    structure_text, chain = cells.get("structure", ""), cells.get("chain", "") or None
    if len(sources) > 1:
        raise InputFileError(f"give one of sequence, fasta or a3m, not {' and '.join(sources)}")
    if not sources and not structure_text:
        raise InputFileError("no sequence: give a sequence, fasta, a3m or structure")
    if (chain or cells.get("interface")) and not structure_text:
        raise InputFileError("chain/interface given without a structure")
    if structure_text and not chain:
        raise InputFileError("a structure needs its chain (the chain the sequence belongs to)")
    interface = parse_interface(cells["interface"]) if cells.get("interface") else None
    if interface is not None and chain not in interface:
        raise InputFileError(f"chain {chain} is not one of the interface chains {cells['interface']}")
    structure = None
    if structure_text:
        structure = _resolve(base, structure_text)
        if not structure.is_file():
            raise InputFileError(f"structure file not found: {structure}")
    msa = None
    if sources == ["sequence"]:
        sequence = validate_sequence(cells["sequence"], name="sequence")
    elif sources == ["fasta"]:
        sequence = _fasta_sequence(_resolve(base, cells["fasta"]), design_id)
    elif sources == ["a3m"]:
        msa = read_a3m(_resolve(base, cells["a3m"]))
        sequence = msa.query
    else:  # sequence of the structure's chain
        assert structure is not None and chain is not None
        sequence = validate_sequence(
            load_structure(structure, chains=[chain]).sequence(chain),
            name=f"chain {chain} of {structure.name}",
        )
    return DesignInput(
        id=design_id,
        folder=folder_name(design_id),
        row=row,
        sequence=sequence,
        msa=msa,
        structure=None if structure is None else str(structure),
        chain=chain,
        interface=interface,
        input_hash=_input_hash(sequence, msa, structure, chain, interface),
    )


def _header(line: str, path: Path) -> list[str]:
    columns = [c.strip().lower() for c in line.split("\t")]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise InputFileError(
            f"{path}: unknown manifest column(s) {', '.join(map(repr, unknown))}; "
            f"expected a tab-separated header with {', '.join(COLUMNS)}"
        )
    if "id" not in columns:
        raise InputFileError(f"{path}: the manifest header has no 'id' column")
    if len(set(columns)) != len(columns):
        raise InputFileError(f"{path}: a manifest column is repeated")
    return columns


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Parse and validate a manifest; bad rows are returned, not raised.

    Raises
    ------
    InputFileError
        The file is missing or unreadable, or its header is unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"manifest not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text") from None
    lines = [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise InputFileError(f"manifest {path} is empty")
    columns = _header(lines[0][1], path)
    base = path.resolve().parent
    designs: list[DesignInput] = []
    invalid: list[InvalidRow] = []
    for n, line in lines[1:]:
        values = [c.strip() for c in line.split("\t")]
        cells = dict(zip(columns, values + [""] * (len(columns) - len(values)), strict=False))
        design_id = cells["id"] or f"<row {n}>"
        if len(values) > len(columns):
            invalid.append(InvalidRow(design_id, n, f"{len(values)} cells but {len(columns)} columns"))
            continue
        if not cells["id"]:
            invalid.append(InvalidRow(design_id, n, "the id cell is empty"))
            continue
        try:
            designs.append(_parse_row(cells, n, base))
        except Exception as err:  # any unreadable input is this row's problem, not the batch's
            invalid.append(InvalidRow(design_id, n, describe(err)))
    return _reject_duplicates(path, designs, invalid)


def _reject_duplicates(path: Path, designs: list[DesignInput], invalid: list[InvalidRow]) -> Manifest:
    """Rows sharing an id (or a folder, on case-insensitive disks) are all rejected."""
    rows: dict[str, list[int]] = defaultdict(list)
    for item in [*designs, *invalid]:
        rows[item.id].append(item.row)
    folders: dict[str, set[str]] = defaultdict(set)
    for d in designs:
        folders[d.folder.lower()].add(d.id)
    clash = {i for ids in folders.values() if len(ids) > 1 for i in ids}

    def reason(design_id: str) -> str | None:
        if len(rows[design_id]) > 1:
            return f"duplicate id {design_id!r} (rows {', '.join(map(str, rows[design_id]))})"
        if design_id in clash:
            others = sorted(i for ids in folders.values() if design_id in ids for i in ids if i != design_id)
            return f"output folder of {design_id!r} clashes with {', '.join(map(repr, others))}"
        return None

    kept, rejected = [], []
    for d in designs:
        why = reason(d.id)
        (kept.append(d) if why is None else rejected.append(InvalidRow(d.id, d.row, why)))
    for r in invalid:
        why = reason(r.id)
        rejected.append(
            r if why is None or r.reason.startswith("duplicate") else InvalidRow(r.id, r.row, why)
        )
    rejected.sort(key=lambda r: r.row)
    return Manifest(path, kept, rejected)
