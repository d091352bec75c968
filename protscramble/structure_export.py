"""Importance on a structure file: B-factor column (PDB, mmCIF) and a PyMOL script.

PyMOL, ChimeraX and Mol* users get the same picture as the 3D view: the
explained chain's residues carry their importance in the B-factor column
(other residues get ``fill``, 0 by default), and the ``.pml`` script colours
the cartoon with exactly the colours of :class:`ColourScale` (the 3D view and
the report use the same scale), shows the top residues as sticks, marks the
H-bond-network residues and draws their H-bonds.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import biotite.structure as struc
import numpy as np
from biotite.structure.io import pdb as biotite_pdb
from biotite.structure.io import pdbx as biotite_pdbx

from .errors import InvalidParameterError, StructureError
from .io import atomic_write_text
from .structures.compare import Importance, read_importance_tsv
from .structures.hbnets import HBNetResult
from .structures.io import ResidueId, SequenceMapping, Structure, load_structure, map_sequence_to_structure

#: Colour of H-bond-network residues' carbons and of H-bond dashes (not in viridis).
NETWORK_COLOUR = "#ff3fb4"
#: Colour of residues the importance does not cover (other chains, unresolved or unmapped).
OTHER_COLOUR = "#b4b4b4"
_LEVELS = 256  # colours of the scale; residues of one level share a colour command


# -------------------------------------------------------------- colour scale


@dataclass(frozen=True)
class ColourScale:
    """Map importance to colours (matplotlib colour map, clipped to ``[vmin, vmax]``).

    Attributes
    ----------
    vmin, vmax
        Values mapped to the two ends of the colour map.
    cmap
        Matplotlib colour-map name.
    """

    vmin: float
    vmax: float
    cmap: str = "viridis"

    @classmethod
    def from_values(
        cls,
        values: Sequence[float],
        vmin: float | None = None,
        vmax: float | None = None,
        cmap: str = "viridis",
    ) -> ColourScale:
        """Scale spanning ``values``: from 0 (or the minimum, if negative) to the maximum."""
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        lo = float(vmin) if vmin is not None else (min(0.0, float(v.min())) if v.size else 0.0)
        hi = float(vmax) if vmax is not None else (float(v.max()) if v.size else 1.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InvalidParameterError(f"colour range must be finite, got {lo}..{hi}")
        if hi <= lo and vmin is None and vmax is None:
            hi = lo + 1.0  # constant importance: any non-empty range shows it
        if hi <= lo:
            raise InvalidParameterError(f"colour range is empty: vmin {lo} >= vmax {hi}")
        _colormap(cmap)  # fail early on an unknown name
        return cls(lo, hi, cmap)

    def level(self, value: float) -> int:
        """Index (0..255) of the colour of ``value``."""
        t = (float(value) - self.vmin) / (self.vmax - self.vmin)
        return int(round(min(max(t, 0.0), 1.0) * (_LEVELS - 1)))

    def level_hex(self, level: int) -> str:
        r, g, b, _ = _colormap(self.cmap)(level / (_LEVELS - 1))
        return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"

    def hex(self, value: float) -> str:
        """``#rrggbb`` colour of ``value``."""
        return self.level_hex(self.level(value))

    def stops(self, n: int = 11) -> list[tuple[float, str]]:
        """``n`` evenly spaced ``(value, colour)`` pairs from vmin to vmax (for colour bars)."""
        return [(float(v), self.hex(v)) for v in np.linspace(self.vmin, self.vmax, n)]


def _colormap(name: str):
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise InvalidParameterError(f"unknown colour map {name!r}") from None


def text_colour(background_hex: str) -> str:
    """Black or white, whichever reads better on ``background_hex``."""
    r, g, b = (int(background_hex[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


# ------------------------------------------------------ importance on residues


@dataclass
class ResidueImportance:
    """Importance of one explained chain laid onto a structure.

    Attributes
    ----------
    structure
        The structure (all chains of the model).
    chain
        Chain the importance refers to.
    importance
        The importance vector and its sequence.
    mapping
        Sequence-to-structure alignment.
    """

    structure: Structure
    chain: str
    importance: Importance
    mapping: SequenceMapping

    def by_residue(self) -> dict[tuple[str, int, str], float]:
        """Residue key -> importance, for every mapped sequence position."""
        out = {}
        for i, value in enumerate(self.importance.values):
            residue = self.mapping.residue_at(i + 1)
            if residue is not None:
                out[residue.key] = float(value)
        return out

    def residues(self) -> list[ResidueId | None]:
        """Structure residue of every sequence position (``None`` where unresolved)."""
        return [self.mapping.residue_at(i + 1) for i in range(len(self.importance.sequence))]

    def top(self, k: int) -> list[tuple[ResidueId, float]]:
        """The ``k`` most important mapped residues (ties broken by position)."""
        pairs = [(r, float(v)) for r, v in zip(self.residues(), self.importance.values, strict=True) if r]
        order = sorted(range(len(pairs)), key=lambda i: (-pairs[i][1], i))
        return [pairs[i] for i in order[: max(k, 0)]]


def lay_importance(
    importance: str | os.PathLike | Importance,
    structure: str | os.PathLike | Structure,
    chain: str | None = None,
    model: int = 1,
) -> ResidueImportance:
    """Read (if needed) and align an importance vector onto a chain of a structure.

    Parameters
    ----------
    importance
        ``importance.tsv`` path or :class:`Importance`.
    structure
        Structure path or loaded :class:`Structure`.
    chain
        Chain the importance refers to; when ``None`` the chain whose sequence
        matches best is used.
    model
        Model to read when ``structure`` is a path.

    Raises
    ------
    StructureError
        Unknown chain, or an importance file for another sequence.
    """
    imp = importance if isinstance(importance, Importance) else read_importance_tsv(importance)
    struct = structure if isinstance(structure, Structure) else load_structure(structure, model=model)
    if chain is not None:
        return ResidueImportance(struct, chain, imp, map_sequence_to_structure(imp.sequence, struct, chain))
    best, errors = None, []
    for c in struct.chains:
        try:
            mapping = map_sequence_to_structure(imp.sequence, struct, c)
        except StructureError as err:
            errors.append(str(err))
            continue
        score = (mapping.n_aligned - len(mapping.mismatches), mapping.identity)
        if best is None or score > best[0]:
            best = (score, c, mapping)
    if best is None:
        raise StructureError(
            f"the importance sequence ({len(imp.sequence)} residues) matches no chain of "
            f"{struct.path.name} (chains {', '.join(struct.chains)}); pass --chain to see why"
        )
    return ResidueImportance(struct, best[1], imp, best[2])


def bfactor_atoms(laid: ResidueImportance, fill: float = 0.0, hydrogens: bool = True) -> struc.AtomArray:
    """Copy of the structure's atoms with importance in the ``b_factor`` annotation.

    Residues the importance covers get their importance; every other atom
    (other chains, unmapped residues) gets ``fill``.
    """
    atoms = laid.structure.atoms.copy()
    if not hydrogens:
        atoms = atoms[~np.isin(atoms.element, ("H", "D"))]
    values = laid.by_residue()
    b = np.full(atoms.array_length(), float(fill))
    starts = struc.get_residue_starts(atoms, add_exclusive_stop=True)
    for a, z in zip(starts[:-1], starts[1:], strict=True):
        key = (str(atoms.chain_id[a]), int(atoms.res_id[a]), str(atoms.ins_code[a]))
        if key in values:
            b[a:z] = values[key]
    atoms.set_annotation("b_factor", b)
    if "occupancy" not in atoms.get_annotation_categories():
        atoms.set_annotation("occupancy", np.ones(atoms.array_length()))
    return atoms


def pdb_text(atoms: struc.AtomArray) -> str:
    """PDB text of ``atoms`` (B-factors rounded to 0.01 by the format)."""
    if any(len(c) > 1 for c in np.unique(atoms.chain_id)):
        raise StructureError(
            "chain identifiers longer than one character cannot be written to PDB; use mmCIF"
        )
    handle = biotite_pdb.PDBFile()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle.set_structure(_without_atom_ids(atoms))
    except Exception as err:  # biotite raises assorted errors for unrepresentable values
        raise StructureError(f"cannot write the structure as PDB: {err}") from None
    buf = io.StringIO()
    handle.write(buf)
    return buf.getvalue()


def cif_text(atoms: struc.AtomArray, name: str = "structure") -> str:
    """mmCIF text of ``atoms`` (B-factors written at full precision)."""
    handle = biotite_pdbx.CIFFile()
    block = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "structure"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        biotite_pdbx.set_structure(handle, _without_atom_ids(atoms), data_block=block)
    buf = io.StringIO()
    handle.write(buf)
    return buf.getvalue()


def _without_atom_ids(atoms: struc.AtomArray) -> struc.AtomArray:
    # serials are renumbered 1..N so the viewer and the files agree
    if "atom_id" in atoms.get_annotation_categories():
        atoms = atoms.copy()
        atoms.del_annotation("atom_id")
    return atoms


# ----------------------------------------------------------------- PyMOL


_PYMOL_SAFE = re.compile(r"[A-Za-z0-9]+")


def _pymol_chain(chain: str) -> str:
    if not _PYMOL_SAFE.fullmatch(chain):
        raise StructureError(f"chain {chain!r} cannot be named in a PyMOL selection")
    return chain


def _pymol_resi(r: ResidueId) -> str:
    number = f"\\{r.number}" if r.number < 0 else str(r.number)  # PyMOL reads "-5" as a range
    if r.insertion_code and not _PYMOL_SAFE.fullmatch(r.insertion_code):
        raise StructureError(f"insertion code {r.insertion_code!r} cannot be named in a PyMOL selection")
    return number + r.insertion_code


def _resi_selection(obj: str, chain: str, residues: Sequence[ResidueId]) -> str:
    return f"{obj} and chain {_pymol_chain(chain)} and resi {'+'.join(_pymol_resi(r) for r in residues)}"


def pymol_script(
    laid: ResidueImportance,
    structure_file: str,
    scale: ColourScale,
    top_k: int = 10,
    hbnets: HBNetResult | None = None,
    name: str = "importance",
) -> str:
    """PyMOL commands that colour ``structure_file`` (written next to the script) like the 3D view.

    Parameters
    ----------
    laid
        Importance on the structure.
    structure_file
        Base name of the B-factor file the script loads (same folder).
    scale
        Colour scale (the one the 3D view uses).
    top_k
        Residues shown as sticks.
    hbnets
        H-bond networks to mark (their residues' carbons pink, their H-bonds dashed).
    name
        PyMOL object name (made safe).
    """
    obj = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "importance"
    if obj[0].isdigit():
        obj = "m_" + obj
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", structure_file):
        raise InvalidParameterError(f"structure file name {structure_file!r} is not safe for a PyMOL script")
    chain = _pymol_chain(laid.chain)
    lines = [
        f"# protscramble: importance of chain {chain} in the B-factor column of {structure_file}.",
        f"# Colours: {scale.cmap} from {scale.vmin:.4g} to {scale.vmax:.4g}; other residues grey;",
        "# top residues as sticks; H-bond-network residues with pink carbons, H-bonds dashed.",
        f"# ChimeraX: open {structure_file}; color bfactor /{chain} palette {scale.cmap} "
        f"range {scale.vmin:.4g},{scale.vmax:.4g}",
        f"load {structure_file}, {obj}",
        f"hide everything, {obj}",
        f"show cartoon, {obj}",
        "set cartoon_transparency, 0.0",
        f"color 0x{OTHER_COLOUR[1:]}, {obj}",
    ]
    groups: dict[int, list[ResidueId]] = {}
    for residue, value in zip(laid.residues(), laid.importance.values, strict=True):
        if residue is not None:
            groups.setdefault(scale.level(value), []).append(residue)
    for level in sorted(groups):
        lines.append(f"set_color ps_imp_{level:03d}, [{_rgb_triplet(scale.level_hex(level))}]")
        lines.append(f"color ps_imp_{level:03d}, {_resi_selection(obj, chain, groups[level])}")
    top = [r for r, _ in laid.top(top_k)]
    if top:
        lines.append(f"show sticks, ({_resi_selection(obj, chain, top)}) and not name N+C+O")
    if hbnets is not None and hbnets.networks:
        members: dict[str, list[ResidueId]] = {}
        for net in hbnets.networks:
            for r in net.residues:
                members.setdefault(r.chain, []).append(r)
        for c, residues in members.items():
            sel = _resi_selection(obj, c, residues)
            lines.append(f"show sticks, ({sel}) and not name N+C+O")
            lines.append(f"color 0x{NETWORK_COLOUR[1:]}, ({sel}) and elem C and not name CA")
        for h in (h for net in hbnets.networks for h in net.hbonds):
            a = f"/{obj}//{_pymol_chain(h.donor.chain)}/{_pymol_resi(h.donor)}/{h.donor_atom}"
            b = f"/{obj}//{_pymol_chain(h.acceptor.chain)}/{_pymol_resi(h.acceptor)}/{h.acceptor_atom}"
            lines.append(f"distance ps_hbonds, {a}, {b}")
        lines += ["hide labels, ps_hbonds", f"color 0x{NETWORK_COLOUR[1:]}, ps_hbonds"]
    lines += [
        f"util.cnc {obj}",  # element colours for non-carbon atoms of the sticks
        f"hide everything, {obj} and hydro",
        f"orient {obj} and chain {chain}",
    ]
    return "\n".join(lines) + "\n"


def _rgb_triplet(hex_colour: str) -> str:
    return ", ".join(f"{int(hex_colour[i : i + 2], 16) / 255:.4f}" for i in (1, 3, 5))


# ------------------------------------------------------------------ writer


def importance_structure_files(
    laid: ResidueImportance,
    name: str,
    scale: ColourScale | None = None,
    top_k: int = 10,
    hbnets: HBNetResult | None = None,
    fill: float = 0.0,
    notes: list[str] | None = None,
) -> dict[str, str]:
    """Texts of ``NAME.pdb``, ``NAME.cif`` (importance as B-factors) and ``NAME.pml``, keyed by file name.

    ``name`` is made safe for PyMOL (letters, digits, ``_.-``). The PDB file is
    left out when the structure cannot be written as PDB (long chain names),
    the script then loads the mmCIF file; the script is left out when chain
    names cannot be written in a PyMOL selection. What was left out is
    appended to ``notes``.
    """
    notes = notes if notes is not None else []
    # the script names the structure file, so keep file names PyMOL can read unquoted
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".") or "importance"
    scale = scale or ColourScale.from_values(laid.importance.values)
    atoms = bfactor_atoms(laid, fill=fill)
    files = {f"{stem}.cif": cif_text(atoms, name=stem)}
    try:
        files[f"{stem}.pdb"] = pdb_text(atoms)
        target = f"{stem}.pdb"
    except StructureError as err:
        notes.append(f"no PDB file: {err}")
        target = f"{stem}.cif"
    try:
        files[f"{stem}.pml"] = pymol_script(laid, target, scale, top_k=top_k, hbnets=hbnets, name=stem)
    except StructureError as err:
        notes.append(f"no PyMOL script: {err}")
    return files


def export_importance_structure(
    laid: ResidueImportance,
    prefix: str | os.PathLike,
    scale: ColourScale | None = None,
    top_k: int = 10,
    hbnets: HBNetResult | None = None,
    fill: float = 0.0,
) -> list[Path]:
    """Write :func:`importance_structure_files` next to ``prefix`` (each file atomically).

    Every text is built before anything is written, so bad input leaves no file.

    Examples
    --------
    >>> export_importance_structure(lay_importance("importance.tsv", "design.pdb", "A"), "out/design")  # doctest: +SKIP
    [PosixPath('out/design.cif'), PosixPath('out/design.pdb'), PosixPath('out/design.pml')]
    """
    prefix = Path(prefix)
    files = importance_structure_files(laid, prefix.name, scale, top_k, hbnets, fill)
    paths = []
    for name, text in files.items():
        atomic_write_text(prefix.with_name(name), text)
        paths.append(prefix.with_name(name))
    return paths
