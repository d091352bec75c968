"""Per-residue Rosetta energies behind one interface, three backends.

``table``
    Rosetta's own per-residue table that Rosetta appends to the PDBs it writes
    (``#BEGIN_POSE_ENERGIES_TABLE`` ... ``#END_POSE_ENERGIES_TABLE``), read
    exactly. The values in that table are weighted (each row's terms add up to
    its ``total``).
``tmol``
    Computed with tmol (Rosetta's energy function in PyTorch, CPU or GPU) and
    its beta_nov2016 weights: per-residue totals and weighted per-term values,
    pair energies split half and half between the two residues as Rosetta does.
``pyrosetta``
    ref2015 through PyRosetta, when it is installed.

Energies are always computed on the whole model (all protein chains) so that
interface contacts count; ``chains`` only selects which rows are returned.
"""

from __future__ import annotations

import math
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, InvalidParameterError, StructureError
from . import _tmol
from .io import ResidueId, Structure, check_chains, load_structure

BACKENDS = ("auto", "table", "tmol", "pyrosetta")
TABLE_BEGIN = "#BEGIN_POSE_ENERGIES_TABLE"
TABLE_END = "#END_POSE_ENERGIES_TABLE"


@dataclass
class EnergyTable:
    """Per-residue energies.

    Attributes
    ----------
    residues
        One entry per row.
    terms
        Score-term names, in column order.
    values
        ``(n_residues, n_terms)`` weighted per-term energies (NaN where a
        backend could not score a residue).
    total
        ``(n_residues,)`` per-residue totals.
    backend
        ``table``, ``tmol`` or ``pyrosetta``.
    score_function
        Name of the weights used (``ref2015``, ``beta2016``...).
    exact
        The numbers are copied from text (written back without rounding).
    notes
        Anything a reader should know (skipped residues...).
    """

    residues: list[ResidueId]
    terms: list[str]
    values: np.ndarray
    total: np.ndarray
    backend: str
    score_function: str
    exact: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=float).reshape(len(self.residues), len(self.terms))
        self.total = np.asarray(self.total, dtype=float).reshape(len(self.residues))

    def __len__(self) -> int:
        return len(self.residues)

    def term(self, name: str) -> np.ndarray:
        """Column of one score term."""
        if name == "total":
            return self.total
        try:
            return self.values[:, self.terms.index(name)]
        except ValueError:
            raise InvalidParameterError(f"no score term {name!r}; terms: {', '.join(self.terms)}") from None

    def select_chains(self, chains: Sequence[str] | None) -> EnergyTable:
        """Rows of ``chains`` only (all rows when ``None``)."""
        if chains is None:
            return self
        keep = [i for i, r in enumerate(self.residues) if r.chain in set(chains)]
        return EnergyTable(
            [self.residues[i] for i in keep],
            list(self.terms),
            self.values[keep],
            self.total[keep],
            self.backend,
            self.score_function,
            self.exact,
            list(self.notes),
        )

    def lookup(self, residues: Sequence[ResidueId | None]) -> tuple[np.ndarray, np.ndarray]:
        """Totals and per-term rows for ``residues`` (NaN for ``None`` or absent residues)."""
        where = {r.key: i for i, r in enumerate(self.residues)}
        total = np.full(len(residues), np.nan)
        values = np.full((len(residues), len(self.terms)), np.nan)
        for k, r in enumerate(residues):
            i = where.get(r.key) if r is not None else None
            if i is not None:
                total[k] = self.total[i]
                values[k] = self.values[i]
        return total, values

    def to_tsv(self) -> str:
        """TSV: chain, residue_number, insertion_code, residue_name, total, then one column per term."""
        fmt = _format_exact if self.exact else _format_computed
        lines = [
            "\t".join(["chain", "residue_number", "insertion_code", "residue_name", "total", *self.terms])
        ]
        for r, tot, row in zip(self.residues, self.total, self.values, strict=True):
            cells = [r.chain, str(r.number), r.insertion_code, r.name, fmt(tot), *(fmt(v) for v in row)]
            lines.append("\t".join(cells))
        return "\n".join(lines) + "\n"


def _format_exact(value: float) -> str:
    # repr is the shortest string that reads back as the same float, so numbers
    # copied from Rosetta's table come out as Rosetta wrote them
    if math.isnan(value):
        return "nan"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text  # Rosetta writes whole numbers without ".0"


def _format_computed(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


class EnergyBackend(ABC):
    """A way to obtain per-residue energies of a whole structure."""

    name: str = ""

    @classmethod
    @abstractmethod
    def available(cls) -> bool:
        """Whether this backend can run here."""

    @abstractmethod
    def compute(self, structure: Structure) -> EnergyTable:
        """Per-residue energies of every residue in ``structure``."""


# -------------------------------------------------------------- table backend


def has_energy_table(path: str | os.PathLike) -> bool:
    """Whether a file carries a Rosetta per-residue energy table."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(line.startswith(TABLE_BEGIN) for line in fh)
    except OSError:
        return False


@dataclass(frozen=True)
class RosettaTable:
    """Rosetta's energy table as written in the file."""

    terms: list[str]
    weights: dict[str, float]
    pose_totals: dict[str, float]
    labels: list[str]  # e.g. "ASP:NtermProteinFull_1"
    values: np.ndarray  # (n_residues, n_terms), the term columns
    total: np.ndarray  # (n_residues,)


def _float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise StructureError(f"{where}: {text!r} is not a number") from None


def parse_rosetta_table(text: str, source: str = "<text>") -> RosettaTable:
    """Parse the ``#BEGIN_POSE_ENERGIES_TABLE`` block of a Rosetta PDB.

    Raises
    ------
    StructureError
        No table, or a malformed one.
    """
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_BEGIN))
    except StopIteration:
        raise StructureError(
            f"{source} has no Rosetta energy table ({TABLE_BEGIN}); use --backend tmol or pyrosetta"
        ) from None
    block = []
    for line in lines[start + 1 :]:
        if line.startswith(TABLE_END):
            break
        if line.strip():
            block.append(line.split())
    else:
        raise StructureError(f"{source}: energy table has no {TABLE_END} line")
    if len(block) < 3 or block[0][0] != "label" or block[0][-1] != "total":
        raise StructureError(f"{source}: energy table header must start with 'label' and end with 'total'")
    header = block[0][1:]
    rows = {cells[0]: cells[1:] for cells in block[1:3]}
    if set(rows) != {"weights", "pose"}:
        raise StructureError(f"{source}: energy table lacks its 'weights' and 'pose' lines")
    weights = {t: _float(w, source) for t, w in zip(header, rows["weights"], strict=False) if w != "NA"}
    pose_totals = {t: _float(v, source) for t, v in zip(header, rows["pose"], strict=False)}
    labels, data = [], []
    for cells in block[3:]:
        if len(cells) != len(header) + 1:
            raise StructureError(
                f"{source}: energy table row {cells[0]!r} has {len(cells) - 1} values, expected {len(header)}"
            )
        labels.append(cells[0])
        data.append([_float(v, f"{source} row {cells[0]}") for v in cells[1:]])
    if not labels:
        raise StructureError(f"{source}: energy table has no residue rows")
    arr = np.asarray(data, dtype=float)
    return RosettaTable(header[:-1], weights, pose_totals, labels, arr[:, :-1], arr[:, -1])


def _label_parts(label: str, source: str) -> tuple[str, int]:
    """``ASP:NtermProteinFull_1`` -> (``ASP``, 1); ``HIS_D_45`` -> (``HIS``, 45)."""
    name, _, index = label.rpartition("_")
    if not name or not index.isdigit():
        raise StructureError(f"{source}: cannot read residue label {label!r} in the energy table")
    return name.split(":")[0].split("_")[0], int(index)


class TableBackend(EnergyBackend):
    """Rosetta's per-residue table, read exactly from a Rosetta-written PDB."""

    name = "table"

    @classmethod
    def available(cls) -> bool:
        return True

    def compute(self, structure: Structure) -> EnergyTable:
        source = structure.path.name
        table = parse_rosetta_table(structure.path.read_text(encoding="utf-8", errors="replace"), source)
        residues = structure.residues
        if len(table.labels) != len(residues):
            raise StructureError(
                f"{source}: the energy table has {len(table.labels)} residues but the structure has "
                f"{len(residues)} protein residues; cannot line them up"
            )
        for k, (label, res) in enumerate(zip(table.labels, residues, strict=True)):
            name, index = _label_parts(label, source)
            if index != k + 1 or name != res.name:
                raise StructureError(
                    f"{source}: energy-table row {label!r} does not match residue {k + 1} "
                    f"of the structure ({res.name} {res.label})"
                )
        return EnergyTable(residues, table.terms, table.values, table.total, self.name, "ref2015", exact=True)


# --------------------------------------------------------------- tmol backend


class TmolBackend(EnergyBackend):
    """tmol beta_nov2016 energies; per-residue = one-body + half of each pair."""

    name = "tmol"

    def __init__(self, device=None):
        self.device = device

    @classmethod
    def available(cls) -> bool:
        return _tmol.tmol_available()

    def compute(self, structure: Structure) -> EnergyTable:
        device = _tmol.resolve_device(self.device)
        notes: list[str] = []
        built = _tmol.build_pose(structure.atoms, device, notes=notes)
        sfxn = _tmol.score_function(device)
        pairs = _tmol.block_pair_energies(built.pose, sfxn)[:, 0]  # (terms, blocks, blocks)
        per_term = _tmol.split_pairs(pairs).T  # (blocks, terms)
        residues = structure.residues
        row_of = {r.key: i for i, r in enumerate(residues)}
        values = np.full((len(residues), per_term.shape[1]), np.nan)
        for b, key in enumerate(built.keys):
            i = row_of.get(key)
            if i is not None:
                values[i] = per_term[b]
        scored = set(built.keys)
        missing = [r.label for r in residues if r.key not in scored]
        if missing:
            notes.append(f"tmol did not score {len(missing)} residue(s): {', '.join(missing)}")
        total = values.sum(axis=1)
        return EnergyTable(
            residues, _tmol.term_names(sfxn), values, total, self.name, _tmol.SCORE_FUNCTION, False, notes
        )


# ---------------------------------------------------------- PyRosetta backend


def pyrosetta_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyrosetta") is not None


_PYROSETTA_READY = False


def import_pyrosetta():
    """Import and initialise PyRosetta once (muted), or raise BackendUnavailableError."""
    global _PYROSETTA_READY
    try:
        import pyrosetta
    except ImportError:
        raise BackendUnavailableError(
            "the pyrosetta backend needs PyRosetta, which is not installed (see https://www.pyrosetta.org)"
        ) from None
    if not _PYROSETTA_READY:
        pyrosetta.init("-mute all -ignore_unrecognized_res true -ignore_zero_occupancy false", silent=True)
        _PYROSETTA_READY = True
    return pyrosetta


def pyrosetta_pose(structure: Structure):
    """A PyRosetta pose of the cleaned model (written to a temporary PDB first)."""
    import biotite.structure.io.pdb as biotite_pdb

    pyrosetta = import_pyrosetta()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pdb"
        handle = biotite_pdb.PDBFile()
        handle.set_structure(structure.atoms)
        handle.write(str(path))
        return pyrosetta.pose_from_file(str(path))


def pyrosetta_residue_ids(pose) -> list[ResidueId]:
    """PDB identity of every residue of a PyRosetta pose."""
    info = pose.pdb_info()
    return [
        ResidueId(
            str(info.chain(i)), int(info.number(i)), str(info.icode(i)).strip(), pose.residue(i).name3()
        )
        for i in range(1, pose.size() + 1)
    ]


class PyRosettaBackend(EnergyBackend):
    """ref2015 per-residue energies through PyRosetta's documented API."""

    name = "pyrosetta"

    def __init__(self, score_function: str = "ref2015"):
        self.score_function = score_function

    @classmethod
    def available(cls) -> bool:
        return pyrosetta_available()

    def compute(self, structure: Structure) -> EnergyTable:
        pyrosetta = import_pyrosetta()
        from pyrosetta.rosetta.core.scoring import name_from_score_type

        pose = pyrosetta_pose(structure)
        sfxn = pyrosetta.create_score_function(self.score_function)
        sfxn(pose)
        score_types = list(sfxn.get_nonzero_weighted_scoretypes())
        weights = sfxn.weights()
        energies = pose.energies()
        ids = pyrosetta_residue_ids(pose)
        row_of = {r.key: i for i, r in enumerate(structure.residues)}
        values = np.full((len(row_of), len(score_types)), np.nan)
        total = np.full(len(row_of), np.nan)
        for i, rid in enumerate(ids, start=1):
            row = row_of.get(rid.key)
            if row is None:
                continue
            emap = energies.residue_total_energies(i)
            values[row] = [emap[st] * weights[st] for st in score_types]
            total[row] = energies.residue_total_energy(i)
        names = [str(name_from_score_type(st)) for st in score_types]
        return EnergyTable(structure.residues, names, values, total, self.name, self.score_function)


# ------------------------------------------------------------------ front end


def select_backend(name: str, structure_path: str | os.PathLike | None = None, device=None) -> EnergyBackend:
    """Resolve a backend name; ``auto`` = table if the file has one, else tmol, else PyRosetta."""
    if name not in BACKENDS:
        raise InvalidParameterError(f"unknown energy backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name == "auto":
        if structure_path is not None and has_energy_table(structure_path):
            return TableBackend()
        if TmolBackend.available():
            return TmolBackend(device)
        if PyRosettaBackend.available():
            return PyRosettaBackend()
        raise BackendUnavailableError(
            "no energy backend available: the file has no Rosetta energy table and neither tmol "
            "(pip install 'protscramble[energies]') nor PyRosetta is installed"
        )
    if name == "table":
        return TableBackend()
    if name == "tmol":
        _tmol.import_tmol()
        return TmolBackend(device)
    import_pyrosetta()
    return PyRosettaBackend()


def per_residue_energies(
    structure: str | os.PathLike | Structure,
    chains: Sequence[str] | None = None,
    backend: str | EnergyBackend = "auto",
    model: int = 1,
    device=None,
) -> EnergyTable:
    """Per-residue energies of one model, scored whole, returned for ``chains``.

    Parameters
    ----------
    structure
        Path to a PDB/mmCIF file, or a loaded :class:`Structure` (all chains).
    chains
        Chains whose residues are returned (all when ``None``).
    backend
        ``auto``, ``table``, ``tmol``, ``pyrosetta`` or an :class:`EnergyBackend`.
    model
        Model to read when ``structure`` is a path.
    device
        Torch device for tmol (``None``/``auto``: CUDA when present).

    Returns
    -------
    EnergyTable
        Tidy table: one row per residue, weighted per-term columns and total.
    """
    if not isinstance(structure, Structure):
        structure = load_structure(structure, model=model)
    if chains is not None:
        check_chains(structure, chains)
    engine = (
        backend if isinstance(backend, EnergyBackend) else select_backend(backend, structure.path, device)
    )
    table = engine.compute(structure)
    table.notes = list(structure.notes) + list(table.notes)
    return table.select_chains(chains)
