"""Computational alanine scanning: per-residue interface and monomer ddG.

For every scanned residue the side chain is truncated to alanine (N, CA, C,
O and CB kept, the residue renamed ALA, its hydrogens rebuilt by tmol) and

* interface ddG = (E_complex_mut - E_separated_mut) - (E_complex_wt - E_separated_wt)
* monomer ddG   = E_chain_mut - E_chain_wt (the residue's chain on its own).

Positive ddG: the wild-type side chain stabilises the complex (or the chain).

tmol backend. The separated state is the chains pulled apart without moving
(rigid unbound state). Because every tmol term is a sum of one-body and
residue-pair energies, a chain scored alone has exactly the energy of the
intra-chain part of the complex's residue-pair matrix, so one scoring of each
mutant complex gives E_complex, E_separated and E_chain at once (the tests
check this against scoring the chain alone). By default nothing else moves
(Kortemme & Baker's alanine scan); with ``repack_radius > 0`` the side chains
within that distance of the mutated residue are repacked by tmol's packer
(seeded), in the mutant and, with the same task, in a wild-type reference, so
packer bias cancels. No minimisation is done.

PyRosetta backend (when installed): ref2015, ``MutateResidue`` (or
``toolbox.mutants.mutate_residue`` with a pack radius) and
``InterfaceAnalyzerMover`` for the interface dG.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import biotite.structure as struc
import numpy as np

from ..errors import InputFileError, InvalidParameterError, StructureError
from . import _tmol
from .io import ResidueId, Structure, check_chains, load_structure

DDG_BACKENDS = ("auto", "tmol", "pyrosetta")
#: Atoms an alanine keeps: backbone, CB and the hydrogens of those (PDB and Rosetta names).
ALANINE_ATOMS = frozenset("N CA C O OXT CB H H1 H2 H3 1H 2H 3H HA HXT".split())
DDG_COLUMNS = ("chain", "residue_number", "insertion_code", "residue_name", "interface_ddg", "monomer_ddg")


@dataclass
class DdgTable:
    """Alanine-scan result, one row per scanned residue.

    Attributes
    ----------
    residues
        Scanned residues.
    interface_ddg, monomer_ddg
        REU; NaN where not computed (glycine, or no interface given).
    interface
        The two chains of the interface, if any.
    """

    residues: list[ResidueId]
    interface_ddg: np.ndarray
    monomer_ddg: np.ndarray
    interface: tuple[str, str] | None
    backend: str
    score_function: str
    repack_radius: float = 0.0
    notes: list[str] = field(default_factory=list)

    def lookup(self, residues: Sequence[ResidueId | None], kind: str = "interface") -> np.ndarray:
        """ddG of ``residues`` (``kind``: ``interface`` or ``monomer``); NaN where absent."""
        if kind not in ("interface", "monomer"):
            raise InvalidParameterError(f"ddG kind must be interface or monomer, got {kind!r}")
        column = self.interface_ddg if kind == "interface" else self.monomer_ddg
        where = {r.key: i for i, r in enumerate(self.residues)}
        out = np.full(len(residues), np.nan)
        for k, r in enumerate(residues):
            if r is not None and r.key in where:
                out[k] = column[where[r.key]]
        return out

    def to_tsv(self) -> str:
        lines = ["\t".join(DDG_COLUMNS)]
        for r, a, b in zip(self.residues, self.interface_ddg, self.monomer_ddg, strict=True):
            lines.append("\t".join([r.chain, str(r.number), r.insertion_code, r.name, _fmt(a), _fmt(b)]))
        return "\n".join(lines) + "\n"

    def summary(self) -> dict:
        return {
            "backend": self.backend,
            "score_function": self.score_function,
            "interface": "_".join(self.interface) if self.interface else None,
            "repack_radius": self.repack_radius,
            "n_residues": len(self.residues),
            "notes": self.notes,
        }


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def read_ddg_tsv(path: str | os.PathLike) -> DdgTable:
    """Read a ``ddg.tsv`` written by :meth:`DdgTable.to_tsv` / ``protscramble ddg``."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"ddG file not found: {p}")
    lines = [line for line in p.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if not lines or tuple(lines[0].split("\t")) != DDG_COLUMNS:
        raise InputFileError(f"{p} is not a ddG table: the header must be {' '.join(DDG_COLUMNS)}")
    residues, iface, mono = [], [], []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        try:
            residues.append(ResidueId(cells[0], int(cells[1]), cells[2], cells[3]))
            iface.append(float(cells[4]))
            mono.append(float(cells[5]))
        except (IndexError, ValueError):
            raise InputFileError(f"{p} line {n}: expected {len(DDG_COLUMNS)} tab-separated fields") from None
    return DdgTable(
        residues, np.array(iface), np.array(mono), None, "file", "unknown", notes=[f"read from {p}"]
    )


# ------------------------------------------------------------- truncation


def truncate_to_alanine(atoms: struc.AtomArray, residue: slice) -> struc.AtomArray:
    """Copy of ``atoms`` with the residue at atom range ``residue`` cut back to alanine."""
    keep = np.ones(atoms.array_length(), dtype=bool)
    names = atoms.atom_name[residue]
    keep[residue] = np.isin(names, list(ALANINE_ATOMS))
    mutant = atoms[keep].copy()
    start = residue.start
    stop = start + int(keep[residue].sum())
    mutant.res_name[start:stop] = "ALA"
    return mutant


# ------------------------------------------------------------- tmol engine


def _block_sums(pair: np.ndarray, chain_of_block: np.ndarray, interface) -> tuple[float, dict[str, float]]:
    """Cross-interface energy and per-chain energies of one pair matrix (upper triangle filled)."""
    per_chain = {}
    for c in np.unique(chain_of_block):
        sel = chain_of_block == c
        per_chain[str(c)] = float(pair[np.ix_(sel, sel)].sum())
    inter = float("nan")
    if interface is not None:
        a, b = (chain_of_block == interface[0]), (chain_of_block == interface[1])
        inter = float(pair[np.ix_(a, b)].sum() + pair[np.ix_(b, a)].sum())
    return inter, per_chain


def _neighbour_mask(structure: Structure, keys: list[tuple], target: ResidueId, radius: float) -> np.ndarray:
    """Blocks (other than ``target``) whose CB (CA for Gly) lies within ``radius`` Å of the target's."""
    atoms = structure.atoms
    centre = {}
    for r, sl in zip(structure.residues, structure.residue_atom_slices(), strict=True):
        names = atoms.atom_name[sl]
        pick = np.flatnonzero(names == "CB")
        if not len(pick):
            pick = np.flatnonzero(names == "CA")
        if len(pick):
            centre[r.key] = atoms.coord[sl][pick[0]]
    mask = np.zeros(len(keys), dtype=bool)
    origin = centre.get(target.key)
    if origin is None:
        return mask
    for b, key in enumerate(keys):
        if key != target.key and key in centre and np.linalg.norm(centre[key] - origin) <= radius:
            mask[b] = True
    return mask


def _repack(stack, masks: np.ndarray, seed: int):
    """Repack (no design) the blocks in ``masks`` (n_poses x n_blocks) with tmol's packer."""
    import torch
    from tmol.database import ParameterDatabase
    from tmol.pack import PackerPalette, PackerTask, pack_rotamers
    from tmol.pack.rotamer import FixedAAChiSampler, IncludeCurrentSampler
    from tmol.pack.rotamer.dunbrack import create_dunbrack_sampler_from_database

    device = stack.device
    full = torch.zeros((stack.n_poses, stack.max_n_blocks), dtype=torch.bool, device=device)
    full[:, : masks.shape[1]] = torch.as_tensor(masks, device=device)
    task = PackerTask(stack, PackerPalette())
    task.restrict_to_repacking()
    task.disable_packing_by_block_mask(~full)
    task.add_conformer_sampler(create_dunbrack_sampler_from_database(ParameterDatabase.get_default(), device))
    task.add_conformer_sampler(FixedAAChiSampler())
    task.add_conformer_sampler(IncludeCurrentSampler())
    with _tmol.captured_logs(None):
        return pack_rotamers(stack, _tmol.score_function(device), task, seed=seed)


def _summed_pairs(pose, sfxn) -> np.ndarray:
    import torch

    module = sfxn.render_block_pair_scoring_module(pose)
    with torch.no_grad():
        return module(pose.coords).detach().cpu().double().numpy()  # (n_poses, blocks, blocks)


def _protonated_atoms(structure: Structure, device) -> struc.AtomArray:
    """Input atoms if they carry hydrogens, else tmol's protonated model (built once, seeded).

    Building hydrogens separately for every mutant would re-optimise them
    everywhere and add noise unrelated to the mutation.
    """
    if structure.has_hydrogens:
        return structure.atoms
    from tmol.io import atom_array_from_pose_stack

    built = _tmol.build_pose(structure.atoms, device)
    with _tmol.captured_logs(None):
        atoms = atom_array_from_pose_stack(built.pose)
    return atoms[0] if isinstance(atoms, struc.AtomArrayStack) else atoms


@dataclass
class _WildType:
    """The wild-type pose the mutants are compared with."""

    base: Structure  # protonated input: what every mutant is cut from
    built: _tmol.BuiltPose
    chain_of_block: np.ndarray
    interface_energy: float
    chain_energy: dict[str, float]


def _prepare_wild_type(structure: Structure, interface, dev, sfxn, notes: list[str]) -> _WildType:
    base = Structure(_protonated_atoms(structure, dev), structure.path, structure.model, structure.n_models)
    built = _tmol.build_pose(base.atoms, dev, notes=notes)
    chain_of_block = np.array([k[0] for k in built.keys])
    inter, per_chain = _block_sums(_summed_pairs(built.pose, sfxn)[0], chain_of_block, interface)
    return _WildType(base, built, chain_of_block, inter, per_chain)


def _score_batch(
    wt: _WildType,
    targets: list[ResidueId],
    slices: dict,
    interface,
    repack_radius: float,
    seed: int,
    dev,
    sfxn,
) -> list[tuple[float, float]]:
    """(interface ddG, monomer ddG) of each target, mutants scored as one stacked pose batch."""
    poses, masks = [], []
    for target in targets:
        mutant = truncate_to_alanine(wt.base.atoms, slices[target.key])
        built = _tmol.build_pose(mutant, dev, context=wt.built.context)
        if built.keys != wt.built.keys:
            raise StructureError(f"tmol changed the residue list when mutating {target.label} to Ala")
        poses.append(built.pose)
        if repack_radius > 0:
            masks.append(_neighbour_mask(wt.base, wt.built.keys, target, repack_radius))
    if repack_radius > 0:
        # wild-type copies repacked with the same task, so packer bias cancels in the difference
        stack = _tmol.stack_poses([wt.built.pose] * len(targets) + poses, dev)
        pairs = _summed_pairs(_repack(stack, np.concatenate([masks, masks]), seed), sfxn)
        references = [_block_sums(p, wt.chain_of_block, interface) for p in pairs[: len(targets)]]
        mutants = pairs[len(targets) :]
    else:
        references = [(wt.interface_energy, wt.chain_energy)] * len(targets)
        mutants = _summed_pairs(_tmol.stack_poses(poses, dev), sfxn)
    out = []
    for target, (ref_inter, ref_chain), pair in zip(targets, references, mutants, strict=True):
        mut_inter, mut_chain = _block_sums(pair, wt.chain_of_block, interface)
        iface = mut_inter - ref_inter if interface else float("nan")
        out.append((iface, mut_chain[target.chain] - ref_chain[target.chain]))
    return out


def _scan_tmol(
    structure: Structure,
    targets: list[ResidueId],
    interface: tuple[str, str] | None,
    repack_radius: float,
    device,
    batch_size: int,
    progress: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from tqdm.auto import tqdm

    dev = _tmol.resolve_device(device)
    notes: list[str] = []
    sfxn = _tmol.score_function(dev)
    wt = _prepare_wild_type(structure, interface, dev, sfxn, notes)
    slices = dict(zip((r.key for r in wt.base.residues), wt.base.residue_atom_slices(), strict=True))
    scored = set(wt.built.keys)
    iface = np.full(len(targets), np.nan)
    mono = np.full(len(targets), np.nan)
    todo = []
    for i, r in enumerate(targets):
        if r.name == "ALA":  # nothing to truncate: zero by definition
            iface[i], mono[i] = (0.0 if interface else np.nan), 0.0
        elif r.name != "GLY" and r.key in slices and r.key in scored:
            todo.append(i)
    with tqdm(total=len(todo), desc="alanine scan", unit="res", file=sys.stderr, disable=not progress) as bar:
        for begin in range(0, len(todo), batch_size):
            batch = todo[begin : begin + batch_size]
            results = _score_batch(
                wt, [targets[i] for i in batch], slices, interface, repack_radius, seed, dev, sfxn
            )
            for i, (a, b) in zip(batch, results, strict=True):
                iface[i], mono[i] = a, b
            bar.update(len(batch))
    return iface, mono, notes


# -------------------------------------------------------- PyRosetta engine


def _scan_pyrosetta(
    structure: Structure,
    targets: list[ResidueId],
    interface: tuple[str, str] | None,
    repack_radius: float,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ref2015 alanine scan with PyRosetta's documented movers."""
    from tqdm.auto import tqdm

    from .energies import import_pyrosetta, pyrosetta_pose, pyrosetta_residue_ids

    pyrosetta = import_pyrosetta()
    from pyrosetta.rosetta.protocols.analysis import InterfaceAnalyzerMover
    from pyrosetta.rosetta.protocols.simple_moves import MutateResidue
    from pyrosetta.toolbox.mutants import mutate_residue

    sfxn = pyrosetta.create_score_function("ref2015")
    wt = pyrosetta_pose(structure)
    index = {r.key: i for i, r in enumerate(pyrosetta_residue_ids(wt), start=1)}

    def interface_dg(pose) -> float:
        mover = InterfaceAnalyzerMover("_".join(interface))
        mover.set_scorefunction(sfxn)
        mover.set_pack_separated(repack_radius > 0)
        mover.apply(pose)
        return float(mover.get_interface_dG())

    def chain_energy(pose, seqpos: int) -> float:
        alone = pose.split_by_chain(pose.chain(seqpos))
        return float(sfxn(alone))

    wt_dg = interface_dg(wt.clone()) if interface else float("nan")
    iface = np.full(len(targets), np.nan)
    mono = np.full(len(targets), np.nan)
    for i, r in enumerate(
        tqdm(targets, desc="alanine scan", unit="res", file=sys.stderr, disable=not progress)
    ):
        seqpos = index.get(r.key)
        if seqpos is None or r.name == "GLY":
            continue
        mut = wt.clone()
        if repack_radius > 0:
            mutate_residue(mut, seqpos, "A", pack_radius=repack_radius, pack_scorefxn=sfxn)
        else:
            MutateResidue(seqpos, "ALA").apply(mut)
        mono[i] = chain_energy(mut, seqpos) - chain_energy(wt, seqpos)
        if interface:
            iface[i] = interface_dg(mut) - wt_dg
    return iface, mono, []


# --------------------------------------------------------------- front end


def _scan_targets(structure: Structure, chains: Sequence[str], residues: Iterable | None) -> list[ResidueId]:
    pool = [r for r in structure.residues if r.chain in set(chains)]
    if residues is None:
        return pool
    wanted = set()
    for item in residues:
        key = item.key if isinstance(item, ResidueId) else tuple(item)
        if len(key) == 2:
            key = (key[0], int(key[1]), "")
        wanted.add((str(key[0]), int(key[1]), str(key[2])))
    chosen = [r for r in pool if r.key in wanted]
    missing = wanted - {r.key for r in chosen}
    if missing:
        labels = ", ".join(f"{c}{n}{i}" for c, n, i in sorted(missing))
        raise StructureError(
            f"residue(s) {labels} not found among the scanned chains of {structure.path.name}"
        )
    return chosen


def alanine_scan(
    structure: str | os.PathLike | Structure,
    interface: tuple[str, str] | None = None,
    chains: Sequence[str] | None = None,
    residues: Iterable | None = None,
    backend: str = "auto",
    repack_radius: float = 0.0,
    model: int = 1,
    device=None,
    batch_size: int = 16,
    progress: bool = False,
    seed: int = 0,
) -> DdgTable:
    """Per-residue alanine-scan ddG (interface and monomer).

    Parameters
    ----------
    structure
        Path or loaded :class:`Structure`.
    interface
        ``("A", "B")``: compute interface ddG across these two chains; other
        chains are left out of the complex.
    chains
        Chains whose residues are scanned (default: the interface chains, or
        every chain).
    residues
        Optional subset to scan: :class:`ResidueId` objects or
        ``(chain, number[, insertion_code])`` tuples.
    backend
        ``auto`` (tmol, else PyRosetta), ``tmol`` or ``pyrosetta``.
    repack_radius
        Repack side chains within this many Å of the mutated residue (0: none).
    model
        Model to read when ``structure`` is a path.
    device
        Torch device for tmol.
    batch_size
        Mutants scored together by tmol.
    progress
        Show a tqdm progress bar on stderr.
    seed
        Packer seed (only used when repacking).

    Returns
    -------
    DdgTable
        Alanine rows are 0 by definition; glycine rows are NaN (nothing to truncate).
    """
    if backend not in DDG_BACKENDS:
        raise InvalidParameterError(f"unknown ddG backend {backend!r}; choose from {', '.join(DDG_BACKENDS)}")
    if repack_radius < 0 or not math.isfinite(repack_radius):
        raise InvalidParameterError(f"repack radius must be >= 0, got {repack_radius}")
    if batch_size < 1:
        raise InvalidParameterError(f"batch size must be at least 1, got {batch_size}")
    if not isinstance(structure, Structure):
        structure = load_structure(structure, model=model)
    if interface is not None:
        check_chains(structure, interface)
        structure = structure.select_chains(list(interface))
    if chains is None:
        chains = list(interface) if interface is not None else structure.chains
    check_chains(structure, chains)
    targets = _scan_targets(structure, chains, residues)
    if backend == "auto":
        backend = "tmol" if _tmol.tmol_available() else "pyrosetta"
    if backend == "tmol":
        _tmol.import_tmol()
        iface, mono, notes = _scan_tmol(
            structure, targets, interface, repack_radius, device, batch_size, progress, seed
        )
        score_function = _tmol.SCORE_FUNCTION
    else:
        iface, mono, notes = _scan_pyrosetta(structure, targets, interface, repack_radius, progress)
        score_function = "ref2015"
    skipped = [r.label for r, m in zip(targets, mono, strict=True) if math.isnan(m) and r.name != "GLY"]
    notes = list(structure.notes) + notes
    if any(r.name == "GLY" for r in targets):
        notes.append("glycines are not scanned (no side chain to truncate): ddG NaN")
    if skipped:
        notes.append(f"not scanned (residue not usable by the backend): {', '.join(skipped)}")
    notes.append(
        f"side chains within {repack_radius:g} A repacked around each mutation"
        if repack_radius > 0
        else "no repacking or minimisation: other side chains keep their input conformations"
    )
    return DdgTable(targets, iface, mono, interface, backend, score_function, repack_radius, notes)
