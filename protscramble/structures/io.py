"""Reading protein structures and lining their residues up with a sequence.

Structures are read with biotite (PDB, mmCIF, BinaryCIF). One model is kept
(model 1 by default), alternate locations are resolved to the conformer with
the highest occupancy, and everything that is not an amino acid (waters,
ions, ligands) is dropped. Residues are identified by chain, author residue
number and insertion code, so numbering gaps (unresolved loops or termini)
and insertion codes survive. :func:`map_sequence_to_structure` aligns an
explained sequence onto a chain so an importance vector lines up with the
right residues even when the numbering does not start at 1 or has gaps.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import biotite.structure as struc
import numpy as np
from biotite.sequence import ProteinSequence
from biotite.sequence.align import SubstitutionMatrix, align_optimal
from biotite.structure.io import pdb as biotite_pdb
from biotite.structure.io import pdbx as biotite_pdbx

from ..errors import InputFileError, StructureError

#: Three-letter codes read as a standard amino acid. Besides the 20 standard
#: residues this covers protonation/tautomer names written by MD and modelling
#: tools, and selenomethionine, so those structures keep their sequence.
THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
    "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
    "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
    "MSE": "M", "HID": "H", "HIE": "H", "HIP": "H", "HSD": "H", "HSE": "H", "HSP": "H",
    "CYX": "C", "CYM": "C", "ASH": "D", "GLH": "E", "LYN": "K",
}  # fmt: skip

#: Main-chain atom names (PDB and Rosetta spellings); every other atom is side chain.
BACKBONE_ATOMS = frozenset("N CA C O OXT H H1 H2 H3 1H 2H 3H HA HA2 HA3 1HA 2HA HXT".split())

_PDB_SUFFIXES = {".pdb", ".ent", ".pdb1"}
_CIF_SUFFIXES = {".cif", ".mmcif", ".pdbx"}
_BCIF_SUFFIXES = {".bcif"}


@dataclass(frozen=True, order=True)
class ResidueId:
    """A residue as the structure file names it.

    Attributes
    ----------
    chain
        Author chain identifier.
    number
        Author residue number.
    insertion_code
        Insertion code, ``""`` when there is none.
    name
        Three-letter residue name.
    """

    chain: str
    number: int
    insertion_code: str = ""
    name: str = ""

    @property
    def key(self) -> tuple[str, int, str]:
        """``(chain, number, insertion_code)``: the part that identifies the residue."""
        return (self.chain, self.number, self.insertion_code)

    @property
    def one_letter(self) -> str:
        return THREE_TO_ONE.get(self.name, "X")

    @property
    def label(self) -> str:
        """Short human-readable label such as ``A45`` or ``B100A``."""
        return f"{self.chain}{self.number}{self.insertion_code}"


@dataclass
class Structure:
    """One cleaned model of a protein structure.

    Attributes
    ----------
    atoms
        Amino-acid atoms of the selected model and chains (biotite ``AtomArray``).
    path
        File the structure was read from.
    model
        1-based model number that was read.
    n_models
        Number of models in the file.
    notes
        What cleaning removed or resolved, for reports.
    """

    atoms: struc.AtomArray
    path: Path
    model: int = 1
    n_models: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def residues(self) -> list[ResidueId]:
        """Residues in file order."""
        starts = struc.get_residue_starts(self.atoms)
        a = self.atoms
        return [
            ResidueId(str(a.chain_id[s]), int(a.res_id[s]), str(a.ins_code[s]), str(a.res_name[s]))
            for s in starts
        ]

    @property
    def chains(self) -> list[str]:
        """Chain identifiers in order of first appearance."""
        ids = self.atoms.chain_id
        _, first = np.unique(ids, return_index=True)
        return [str(ids[i]) for i in sorted(first)]

    @property
    def has_hydrogens(self) -> bool:
        return bool(np.any(np.isin(self.atoms.element, ("H", "D"))))

    def sequence(self, chain: str | None = None) -> str:
        """One-letter sequence of the resolved residues (``X`` for unknown names)."""
        return "".join(r.one_letter for r in self.residues if chain is None or r.chain == chain)

    def select_chains(self, chains: Iterable[str] | None) -> Structure:
        """A copy holding only ``chains`` (all when ``None``); unknown chains raise."""
        if chains is None:
            return self
        wanted = check_chains(self, chains)
        atoms = self.atoms[np.isin(self.atoms.chain_id, wanted)]
        return Structure(atoms, self.path, self.model, self.n_models, list(self.notes))

    def residue_atom_slices(self) -> list[slice]:
        """Atom index range of every residue, in the order of :attr:`residues`."""
        starts = struc.get_residue_starts(self.atoms, add_exclusive_stop=True)
        return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]


def check_chains(structure: Structure, chains: Iterable[str]) -> list[str]:
    """Return ``chains`` as a list, raising :class:`StructureError` for any the structure lacks."""
    wanted = [c for c in chains]
    present = structure.chains
    missing = [c for c in wanted if c not in present]
    if missing:
        raise StructureError(
            f"chain {', '.join(missing)} not found in {structure.path.name}; "
            f"protein chains present: {', '.join(present) or 'none'}"
        )
    return wanted


def parse_interface(text: str) -> tuple[str, str]:
    """Parse ``A_B`` into ``("A", "B")`` (Rosetta's interface notation, one chain per side)."""
    parts = text.split("_") if isinstance(text, str) else []
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise StructureError(f"interface must look like A_B (two different chains), got {text!r}")
    return parts[0], parts[1]


def parse_residue_spec(text: str) -> tuple[str, int, str]:
    """Parse ``A45``, ``A45B`` (insertion code B) or ``A:45`` into ``(chain, number, insertion_code)``."""
    spec = text.strip()
    match = re.fullmatch(r"([^:\s]+):(-?\d+)([A-Za-z]?)", spec) or re.fullmatch(
        r"([A-Za-z]+)(-?\d+)([A-Za-z]?)", spec
    )
    if not match:
        raise StructureError(
            f"cannot read residue {text!r}; write it like A45, A45B (insertion code) or A:45"
        )
    return match.group(1), int(match.group(2)), match.group(3)


# ------------------------------------------------------------------ loading


def _check_input_file(path: Path) -> bytes:
    if not path.exists():
        raise InputFileError(f"structure file not found: {path}")
    if not path.is_file():
        raise InputFileError(f"structure path is not a regular file: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(f"structure file {path} is empty")
    return data


def _detect_format(path: Path, data: bytes) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _BCIF_SUFFIXES:
        return "bcif"
    if b"\x00" in data[:65536]:
        raise InputFileError(f"{path} is a binary file, not a PDB or mmCIF structure")
    if suffix in _PDB_SUFFIXES:
        return "pdb"
    if suffix in _CIF_SUFFIXES:
        return "cif"
    head = data[:65536].decode("utf-8", "replace")
    if head.lstrip().startswith("data_"):
        return "cif"
    if any(line.startswith(("ATOM  ", "HETATM", "MODEL ", "HEADER")) for line in head.splitlines()):
        return "pdb"
    raise InputFileError(f"{path} is not a PDB or mmCIF structure (no ATOM records or data_ block)")


def _read_atoms(path: Path, fmt: str, model: int) -> tuple[struc.AtomArray, int]:
    """Read one model with biotite; any parser failure becomes an InputFileError."""
    try:
        with warnings.catch_warnings():
            # biotite warns about every residue without a CCD entry; cleaning reports those instead
            warnings.simplefilter("ignore")
            if fmt == "pdb":
                handle = biotite_pdb.PDBFile.read(str(path))
                n_models = handle.get_model_count()
                if n_models == 0:
                    raise InputFileError(
                        f"{path} is not a PDB or mmCIF structure: it holds no ATOM/HETATM records"
                    )
                _check_model(path, model, n_models)
                atoms = handle.get_structure(
                    model=model, altloc="occupancy", extra_fields=["occupancy", "b_factor"]
                )
            else:
                reader = biotite_pdbx.BinaryCIFFile if fmt == "bcif" else biotite_pdbx.CIFFile
                handle = reader.read(str(path))
                n_models = biotite_pdbx.get_model_count(handle)
                _check_model(path, model, n_models)
                atoms = biotite_pdbx.get_structure(
                    handle, model=model, altloc="occupancy", extra_fields=["occupancy", "b_factor"]
                )
    except (InputFileError, StructureError):
        raise
    except Exception as err:  # biotite raises many types on malformed input
        raise InputFileError(f"cannot read {path} as a {fmt.upper()} structure: {err}") from None
    if atoms.array_length() == 0:
        raise InputFileError(f"{path} holds no atoms")
    return atoms, n_models


def _pdb_has_altlocs(data: bytes) -> bool:
    """True when any ATOM/HETATM record fills the alt-loc column (17)."""
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith(("ATOM  ", "HETATM")) and len(line) > 16 and line[16] != " ":
            return True
    return False


def _check_model(path: Path, model: int, n_models: int) -> None:
    if not 1 <= model <= n_models:
        raise StructureError(f"model {model} does not exist in {path.name}, which has {n_models} model(s)")


def _clean(atoms: struc.AtomArray, keep_hydrogens: bool, notes: list[str]) -> struc.AtomArray:
    """Keep amino-acid residues only; note what was dropped."""
    protein = struc.filter_amino_acids(atoms) | np.isin(atoms.res_name, list(THREE_TO_ONE))
    water = struc.filter_solvent(atoms)
    if water.any():
        notes.append(f"removed {struc.get_residue_count(atoms[water])} water molecule(s)")
    ions = struc.filter_monoatomic_ions(atoms)
    if ions.any():
        names = sorted(set(atoms.res_name[ions].tolist()))
        notes.append(f"removed {int(ions.sum())} ion(s) ({', '.join(names)})")
    other = ~(protein | water | ions)
    if other.any():
        names = sorted(set(atoms.res_name[other].tolist()))
        notes.append(
            f"removed {struc.get_residue_count(atoms[other])} hetero residue(s) ({', '.join(names)})"
        )
    atoms = atoms[protein]
    if not keep_hydrogens:
        atoms = atoms[~np.isin(atoms.element, ("H", "D"))]
    return atoms


def load_structure(
    path: str | os.PathLike,
    model: int = 1,
    chains: Sequence[str] | None = None,
    keep_hydrogens: bool = True,
) -> Structure:
    """Read one model of a PDB/mmCIF file as a cleaned protein structure.

    Parameters
    ----------
    path
        PDB (``.pdb``, ``.ent``), mmCIF (``.cif``) or BinaryCIF (``.bcif``) file;
        other names are recognised by content.
    model
        1-based model number (NMR ensembles hold several).
    chains
        Chains to keep; all protein chains when ``None``.
    keep_hydrogens
        Keep hydrogen atoms present in the file (Rosetta models carry them).

    Returns
    -------
    Structure
        Amino-acid atoms only; alternate locations resolved by highest occupancy.

    Raises
    ------
    InputFileError
        Missing, empty, binary or unparseable file.
    StructureError
        Model or chain that does not exist, or no protein residues.
    """
    p = Path(path)
    data = _check_input_file(p)
    fmt = _detect_format(p, data)
    atoms, n_models = _read_atoms(p, fmt, model)
    notes: list[str] = []
    if len(set(atoms.ins_code.tolist()) - {""}):
        notes.append("insertion codes present; residues are identified by number and insertion code")
    if fmt == "pdb" and _pdb_has_altlocs(data):
        notes.append("alternate locations resolved to the highest-occupancy conformer")
    atoms = _clean(atoms, keep_hydrogens, notes)
    if atoms.array_length() == 0:
        raise StructureError(f"{p.name} (model {model}) holds no amino-acid residues")
    structure = Structure(atoms, p, model, n_models, notes)
    if chains is not None:
        structure = structure.select_chains(chains)
    return structure


# ---------------------------------------------------------- sequence mapping


@dataclass(frozen=True)
class Mismatch:
    """An aligned pair whose letters differ."""

    position: int  # 1-based position in the sequence
    sequence_letter: str
    residue: ResidueId

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "sequence": self.sequence_letter,
            "structure": self.residue.one_letter,
            "residue": self.residue.label,
        }


@dataclass(frozen=True)
class SequenceMapping:
    """Where each sequence position sits in the structure.

    Attributes
    ----------
    sequence
        The explained sequence.
    residues
        Structure residues the sequence was aligned to.
    index
        ``index[i]`` is the position in ``residues`` of sequence position ``i``
        (0-based), or -1 when the structure does not resolve it.
    mismatches
        Aligned pairs with different letters.
    """

    sequence: str
    residues: tuple[ResidueId, ...]
    index: np.ndarray
    mismatches: tuple[Mismatch, ...]

    @property
    def n_aligned(self) -> int:
        return int(np.count_nonzero(self.index >= 0))

    @property
    def identity(self) -> float:
        """Fraction of aligned pairs with the same letter."""
        return 1.0 - len(self.mismatches) / self.n_aligned if self.n_aligned else 0.0

    @property
    def unresolved_positions(self) -> list[int]:
        """1-based sequence positions with no structure residue."""
        return [int(i) + 1 for i in np.flatnonzero(self.index < 0)]

    @property
    def extra_residues(self) -> list[ResidueId]:
        """Structure residues that no sequence position maps to."""
        used = set(self.index[self.index >= 0].tolist())
        return [r for k, r in enumerate(self.residues) if k not in used]

    def residue_at(self, position: int) -> ResidueId | None:
        """Structure residue of 1-based sequence ``position`` (``None`` if unresolved)."""
        k = int(self.index[position - 1])
        return self.residues[k] if k >= 0 else None

    def summary(self) -> dict:
        return {
            "sequence_length": len(self.sequence),
            "structure_residues": len(self.residues),
            "aligned": self.n_aligned,
            "identity": round(self.identity, 4),
            "mismatches": [m.as_dict() for m in self.mismatches],
            "unresolved_positions": self.unresolved_positions,
            "extra_structure_residues": [r.label for r in self.extra_residues],
        }


def _alignment_trace(sequence: str, target: str) -> np.ndarray:
    """Global alignment without end-gap penalties (BLOSUM62, affine gaps)."""
    matrix = SubstitutionMatrix.std_protein_matrix()
    try:
        seq_a, seq_b = ProteinSequence(sequence), ProteinSequence(target)
    except Exception as err:  # letters biotite's protein alphabet lacks
        raise StructureError(f"cannot align sequence: {err}") from None
    alignment = align_optimal(
        seq_a, seq_b, matrix, gap_penalty=(-10, -1), terminal_penalty=False, max_number=1
    )[0]
    return alignment.trace


def map_sequence_to_structure(
    sequence: str,
    structure: Structure,
    chain: str,
    min_identity: float = 0.9,
    min_coverage: float = 0.5,
) -> SequenceMapping:
    """Align ``sequence`` onto the resolved residues of ``chain``.

    The sequence is aligned to the chain's resolved residues (in file order)
    with biotite's optimal global alignment, free end gaps, BLOSUM62. Missing
    residues (numbering gaps) become gaps in the alignment, so every sequence
    position lands on the right residue whatever the numbering.

    Parameters
    ----------
    sequence
        One-letter sequence that the importance vector refers to.
    structure
        Structure holding ``chain``.
    chain
        Chain to map onto.
    min_identity
        Minimum fraction of aligned pairs with identical letters.
    min_coverage
        Minimum fraction of the shorter of the two that must align.

    Raises
    ------
    StructureError
        Unknown chain, or a sequence that does not match the chain.
    """
    check_chains(structure, [chain])
    residues = tuple(r for r in structure.residues if r.chain == chain)
    target = "".join(r.one_letter for r in residues)
    seq = sequence.upper()
    if seq == target:  # the common case needs no alignment
        index = np.arange(len(seq))
    else:
        trace = _alignment_trace(seq, target)
        index = np.full(len(seq), -1, dtype=int)
        both = (trace[:, 0] >= 0) & (trace[:, 1] >= 0)
        index[trace[both, 0]] = trace[both, 1]
    mismatches = tuple(
        Mismatch(i + 1, seq[i], residues[k]) for i, k in enumerate(index) if k >= 0 and seq[i] != target[k]
    )
    mapping = SequenceMapping(seq, residues, index, mismatches)
    shorter = min(len(seq), len(target))
    coverage = (mapping.n_aligned - len(mismatches)) / shorter if shorter else 0.0
    if mapping.identity < min_identity or coverage < min_coverage:
        raise StructureError(
            f"the sequence ({len(seq)} residues) does not match chain {chain} of {structure.path.name} "
            f"({len(target)} resolved residues): {mapping.identity:.0%} identity over "
            f"{mapping.n_aligned} aligned residues, {coverage:.0%} of the shorter sequence identical "
            f"(need >= {min_identity:.0%} identity and >= {min_coverage:.0%} coverage)"
        )
    return mapping
