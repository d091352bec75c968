"""Side-chain hydrogen-bond networks, as HBNet defines them.

A network is a connected group of at least ``min_size`` (3) residues joined by
hydrogen bonds in which side chains take part. Following HBNet's default, an
edge is a side chain–side chain H-bond; with ``include_backbone=True`` side
chain–backbone H-bonds join residues too. Backbone–backbone H-bonds (secondary
structure) never do. An interface network must hold residues of both chains.

H-bonds are detected geometrically:

* with hydrogens (Rosetta models, NMR): biotite's Baker–Hubbard criterion,
  H···A <= 2.5 Å and D–H···A >= 120°;
* without hydrogens (most X-ray structures): donor and acceptor heavy atoms
  within 3.5 Å, with both X–D···A and Y–A···D angles >= 90° (X, Y: the heavy
  atoms bonded to D and A), so that contacts behind an atom are not counted.

Only chemically sensible partners count: acceptors are carbonyl/carboxyl/
hydroxyl oxygens and His ring nitrogens; donors are N–H and O–H groups.

Backends: ``geometric`` (the above), ``tmol`` (the same geometric H-bonds,
kept only when tmol's hbond energy between the two residues is at most
``energy_cutoff``, HBNet's -0.5 REU by default) and ``pyrosetta`` (Rosetta's
own HBondSet from ref2015 scoring, same network rule).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import biotite.structure as struc
import numpy as np

from ..errors import InvalidParameterError
from . import _tmol
from .io import BACKBONE_ATOMS, ResidueId, Structure, check_chains, load_structure

HBNET_BACKENDS = ("geometric", "tmol", "pyrosetta")

#: Side-chain acceptor atoms by residue.
SIDECHAIN_ACCEPTORS = {
    "ASP": ("OD1", "OD2"), "GLU": ("OE1", "OE2"), "ASN": ("OD1",), "GLN": ("OE1",),
    "HIS": ("ND1", "NE2"), "SER": ("OG",), "THR": ("OG1",), "TYR": ("OH",),
}  # fmt: skip
#: Side-chain donor heavy atoms by residue (used when the structure has no hydrogens).
SIDECHAIN_DONORS = {
    "ARG": ("NE", "NH1", "NH2"), "ASN": ("ND2",), "GLN": ("NE2",), "HIS": ("ND1", "NE2"),
    "LYS": ("NZ",), "SER": ("OG",), "THR": ("OG1",), "TYR": ("OH",), "TRP": ("NE1",),
}  # fmt: skip
BACKBONE_ACCEPTORS = ("O", "OXT")
BACKBONE_DONORS = ("N",)

HEAVY_ATOM_CUTOFF = 3.5  # Å, donor-acceptor
HYDROGEN_CUTOFF = 2.5  # Å, H-acceptor
HYDROGEN_ANGLE = 120.0  # degrees, D-H...A
ANTECEDENT_ANGLE = 90.0  # degrees, X-D...A and Y-A...D


@dataclass(frozen=True)
class HBond:
    """One donor–acceptor pair."""

    donor: ResidueId
    donor_atom: str
    acceptor: ResidueId
    acceptor_atom: str
    distance: float  # donor-acceptor heavy-atom distance, Å
    energy: float | None = None  # REU, when a backend scored it

    @property
    def donor_sidechain(self) -> bool:
        return self.donor_atom not in BACKBONE_ATOMS

    @property
    def acceptor_sidechain(self) -> bool:
        return self.acceptor_atom not in BACKBONE_ATOMS

    def label(self) -> str:
        return f"{self.donor.label}:{self.donor_atom}->{self.acceptor.label}:{self.acceptor_atom}"


@dataclass
class HBondNetwork:
    """A connected group of residues joined by side-chain H-bonds."""

    index: int
    residues: list[ResidueId]
    hbonds: list[HBond]

    @property
    def size(self) -> int:
        return len(self.residues)

    @property
    def chains(self) -> list[str]:
        return sorted({r.chain for r in self.residues})


@dataclass
class HBNetResult:
    """H-bond networks of one structure and each residue's membership."""

    residues: list[ResidueId]
    networks: list[HBondNetwork]
    hbonds: list[HBond]
    backend: str
    include_backbone: bool
    interface: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)

    def network_of(self) -> dict[tuple[str, int, str], int]:
        """Residue key -> network index (1-based), for residues in a network."""
        return {r.key: net.index for net in self.networks for r in net.residues}

    def membership(self, residues: Sequence[ResidueId | None]) -> np.ndarray:
        """Boolean per residue: does it belong to a network? (``None`` -> False)."""
        member = self.network_of()
        return np.array([r is not None and r.key in member for r in residues], dtype=bool)

    def to_tsv(self) -> str:
        """One row per (network, residue)."""
        head = [
            "network", "chain", "residue_number", "insertion_code", "residue_name",
            "network_size", "network_chains", "n_hbonds", "hbonds",
        ]  # fmt: skip
        lines = ["\t".join(head)]
        for net in self.networks:
            for r in net.residues:
                own = [h for h in net.hbonds if r.key in (h.donor.key, h.acceptor.key)]
                cells = [
                    str(net.index), r.chain, str(r.number), r.insertion_code, r.name, str(net.size),
                    ",".join(net.chains), str(len(own)), ";".join(h.label() for h in own),
                ]  # fmt: skip
                lines.append("\t".join(cells))
        return "\n".join(lines) + "\n"

    def summary(self) -> dict:
        return {
            "backend": self.backend,
            "include_backbone": self.include_backbone,
            "interface": "_".join(self.interface) if self.interface else None,
            "n_hbonds": len(self.hbonds),
            "n_networks": len(self.networks),
            "networks": [
                {
                    "index": n.index,
                    "size": n.size,
                    "chains": n.chains,
                    "residues": [r.label for r in n.residues],
                }
                for n in self.networks
            ],
        }


# ------------------------------------------------------------- detection


def _residue_index(atoms: struc.AtomArray) -> np.ndarray:
    """Index of each atom's residue."""
    starts = struc.get_residue_starts(atoms)
    index = np.zeros(atoms.array_length(), dtype=int)
    index[starts[1:]] = 1
    return np.cumsum(index)


def _acceptor_mask(atoms: struc.AtomArray) -> np.ndarray:
    names, res = atoms.atom_name, atoms.res_name
    mask = np.isin(names, BACKBONE_ACCEPTORS)
    for rname, anames in SIDECHAIN_ACCEPTORS.items():
        mask |= (res == rname) & np.isin(names, anames)
    return mask


def _donor_mask(atoms: struc.AtomArray) -> np.ndarray:
    names, res = atoms.atom_name, atoms.res_name
    mask = np.isin(names, BACKBONE_DONORS) & (res != "PRO")
    for rname, anames in SIDECHAIN_DONORS.items():
        mask |= (res == rname) & np.isin(names, anames)
    return mask


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle a-b-c in degrees (row-wise)."""
    u, v = a - b, c - b
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _antecedents(atoms: struc.AtomArray, heavy: np.ndarray, res_index: np.ndarray) -> np.ndarray:
    """For each atom, the nearest other heavy atom of its residue within 1.9 Å (-1 if none)."""
    coord = atoms.coord
    out = np.full(atoms.array_length(), -1, dtype=int)
    for r in np.unique(res_index):
        idx = np.flatnonzero((res_index == r) & heavy)
        if len(idx) < 2:
            continue
        d = np.linalg.norm(coord[idx, None] - coord[None, idx], axis=-1)
        np.fill_diagonal(d, np.inf)
        near = np.argmin(d, axis=1)
        ok = d[np.arange(len(idx)), near] <= 1.9
        out[idx[ok]] = idx[near[ok]]
    return out


def _hbonds_with_hydrogens(atoms: struc.AtomArray) -> list[tuple[int, int]]:
    with warnings.catch_warnings():
        # without a BondList biotite finds each donor's hydrogens by distance, which is what we want
        warnings.simplefilter("ignore", UserWarning)
        triplets = struc.hbond(
            atoms, cutoff_dist=HYDROGEN_CUTOFF, cutoff_angle=HYDROGEN_ANGLE, donor_elements=("N", "O")
        )
    acceptors = _acceptor_mask(atoms)
    return [(int(d), int(a)) for d, _, a in triplets if acceptors[a]]


def _hbonds_heavy_atoms(atoms: struc.AtomArray, res_index: np.ndarray) -> list[tuple[int, int]]:
    donors, acceptors = _donor_mask(atoms), _acceptor_mask(atoms)
    heavy = ~np.isin(atoms.element, ("H", "D"))
    ante = _antecedents(atoms, heavy, res_index)
    cells = struc.CellList(atoms, cell_size=HEAVY_ATOM_CUTOFF, selection=acceptors)
    pairs = []
    for d in np.flatnonzero(donors):
        for a in cells.get_atoms(atoms.coord[d], HEAVY_ATOM_CUTOFF):
            if a == d or a < 0 or res_index[a] == res_index[d]:
                continue
            x, y = ante[d], ante[a]
            if x >= 0 and _angle(atoms.coord[x], atoms.coord[d], atoms.coord[a]) < ANTECEDENT_ANGLE:
                continue
            if y >= 0 and _angle(atoms.coord[y], atoms.coord[a], atoms.coord[d]) < ANTECEDENT_ANGLE:
                continue
            pairs.append((int(d), int(a)))
    return pairs


def find_hbonds(structure: Structure) -> list[HBond]:
    """Inter-residue H-bonds of a structure (hydrogen criterion if it has H, else heavy-atom)."""
    atoms = structure.atoms
    res_index = _residue_index(atoms)
    residues = structure.residues
    pairs = (
        _hbonds_with_hydrogens(atoms) if structure.has_hydrogens else _hbonds_heavy_atoms(atoms, res_index)
    )
    seen, out = set(), []
    for d, a in pairs:
        if res_index[d] == res_index[a] or (d, a) in seen:
            continue
        seen.add((d, a))
        dist = float(np.linalg.norm(atoms.coord[d] - atoms.coord[a]))
        out.append(
            HBond(
                residues[res_index[d]],
                str(atoms.atom_name[d]),
                residues[res_index[a]],
                str(atoms.atom_name[a]),
                dist,
            )
        )
    return out


# ------------------------------------------------------------- networks


def _counts_as_edge(h: HBond, include_backbone: bool) -> bool:
    if h.donor_sidechain and h.acceptor_sidechain:
        return True
    return include_backbone and (h.donor_sidechain or h.acceptor_sidechain)


def build_networks(
    hbonds: Sequence[HBond],
    include_backbone: bool = False,
    min_size: int = 3,
    interface: tuple[str, str] | None = None,
) -> list[HBondNetwork]:
    """Connected components of the side-chain H-bond graph with at least ``min_size`` residues."""
    edges = [h for h in hbonds if _counts_as_edge(h, include_backbone)]
    parent: dict[tuple, tuple] = {}

    def find(k: tuple) -> tuple:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    residue_of: dict[tuple, ResidueId] = {}
    for h in edges:
        residue_of[h.donor.key], residue_of[h.acceptor.key] = h.donor, h.acceptor
        parent[find(h.donor.key)] = find(h.acceptor.key)
    groups: dict[tuple, list[tuple]] = {}
    for key in residue_of:
        groups.setdefault(find(key), []).append(key)
    networks = []
    for keys in groups.values():
        members = sorted(residue_of[k] for k in keys)
        if len(members) < min_size:
            continue
        chains = {r.chain for r in members}
        if interface is not None and not set(interface) <= chains:
            continue
        keyset = set(keys)
        bonds = [h for h in edges if h.donor.key in keyset]
        networks.append(HBondNetwork(0, members, bonds))
    networks.sort(key=lambda n: (-n.size, n.residues[0]))
    for i, net in enumerate(networks, start=1):
        net.index = i
    return networks


def _tmol_confirmed(structure: Structure, hbonds: list[HBond], cutoff: float, device) -> list[HBond]:
    """Keep H-bonds whose residue pair has tmol hbond energy <= ``cutoff``; attach that energy."""
    dev = _tmol.resolve_device(device)
    built = _tmol.build_pose(structure.atoms, dev)
    sfxn = _tmol.score_function(dev)
    names = _tmol.term_names(sfxn)
    pair = _tmol.block_pair_energies(built.pose, sfxn)[names.index("hbond"), 0]
    pair = pair + pair.T - np.diag(np.diag(pair))
    block = {k: b for b, k in enumerate(built.keys)}
    kept = []
    for h in hbonds:
        i, j = block.get(h.donor.key), block.get(h.acceptor.key)
        if i is None or j is None or pair[i, j] > cutoff:
            continue
        kept.append(HBond(h.donor, h.donor_atom, h.acceptor, h.acceptor_atom, h.distance, float(pair[i, j])))
    return kept


def _pyrosetta_hbonds(structure: Structure, cutoff: float) -> list[HBond]:
    """Rosetta's HBondSet after ref2015 scoring (PyRosetta's documented API)."""
    from .energies import import_pyrosetta, pyrosetta_pose, pyrosetta_residue_ids

    pyrosetta = import_pyrosetta()
    pose = pyrosetta_pose(structure)
    pyrosetta.create_score_function("ref2015")(pose)
    ids = pyrosetta_residue_ids(pose)
    hbset = pose.get_hbonds()
    out = []
    for n in range(1, hbset.nhbonds() + 1):
        hb = hbset.hbond(n)
        if hb.energy() > cutoff:
            continue
        dres, ares = hb.don_res(), hb.acc_res()
        donor, acceptor = pose.residue(dres), pose.residue(ares)
        heavy = donor.atom_base(hb.don_hatm())  # the donor heavy atom the hydrogen sits on
        donor_atom, acc_atom = donor.atom_name(heavy).strip(), acceptor.atom_name(hb.acc_atm()).strip()
        dist = donor.xyz(heavy).distance(acceptor.xyz(hb.acc_atm()))
        out.append(HBond(ids[dres - 1], donor_atom, ids[ares - 1], acc_atom, float(dist), float(hb.energy())))
    return out


def find_hbond_networks(
    structure: str | os.PathLike | Structure,
    interface: tuple[str, str] | None = None,
    chains: Sequence[str] | None = None,
    backend: str = "geometric",
    include_backbone: bool = False,
    min_size: int = 3,
    energy_cutoff: float = -0.5,
    model: int = 1,
    device=None,
) -> HBNetResult:
    """Find side-chain H-bond networks.

    Parameters
    ----------
    structure
        Path or loaded :class:`Structure`.
    interface
        ``("A", "B")``: keep only networks with residues in both chains.
    chains
        Restrict the search to these chains (default: all, or the interface chains).
    backend
        ``geometric``, ``tmol`` or ``pyrosetta`` (see module docstring).
    include_backbone
        Let side chain–backbone H-bonds join residues (HBNet's default: no).
    min_size
        Smallest network, in residues (HBNet: 3).
    energy_cutoff
        REU threshold of the energy-based backends.
    model
        Model to read when ``structure`` is a path.
    device
        Torch device for the tmol backend.
    """
    if backend not in HBNET_BACKENDS:
        raise InvalidParameterError(
            f"unknown H-bond backend {backend!r}; choose from {', '.join(HBNET_BACKENDS)}"
        )
    if min_size < 2:
        raise InvalidParameterError(f"min_size must be at least 2, got {min_size}")
    if not isinstance(structure, Structure):
        structure = load_structure(structure, model=model)
    if interface is not None:
        check_chains(structure, interface)
        chains = list(interface) if chains is None else chains
    if chains is not None:
        structure = structure.select_chains(chains)
    if backend == "pyrosetta":
        hbonds = _pyrosetta_hbonds(structure, energy_cutoff)
    else:
        hbonds = find_hbonds(structure)
        if backend == "tmol":
            hbonds = _tmol_confirmed(structure, hbonds, energy_cutoff, device)
    notes = list(structure.notes)
    if backend != "pyrosetta":
        notes.append(
            "H-bonds from hydrogen positions (H...A <= 2.5 A, D-H...A >= 120 deg)"
            if structure.has_hydrogens
            else "no hydrogens in the file: H-bonds from donor/acceptor heavy atoms within 3.5 A"
        )
    networks = build_networks(hbonds, include_backbone, min_size, interface)
    return HBNetResult(structure.residues, networks, hbonds, backend, include_backbone, interface, notes)
