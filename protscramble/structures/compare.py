"""Relating per-residue importance to structure: energies, ddG and H-bond networks.

Statistics (all permutation tests seeded, so reruns give the same numbers):

* Spearman correlation of importance with each per-residue energy column
  (total, every score term, and the absolute total, which is what the
  published comparison used: 0.25-0.33 on two natural proteins), with a
  two-sided permutation p-value;
* mean ddG of the ``k`` most important residues minus the mean of the rest,
  with a one-sided permutation p-value (10,000 shuffles of the importance);
* average precision of importance as a ranking of H-bond-network residues
  (random ranking scores the fraction of network residues, reported as the
  baseline).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from ..alphabet import AMINO_ACIDS
from ..errors import BackendUnavailableError, InputFileError, InvalidParameterError
from ..io import atomic_output_dir, atomic_write_json, atomic_write_text
from .ddg import DdgTable, alanine_scan
from .energies import EnergyTable, _format_exact, per_residue_energies
from .hbnets import HBNetResult, find_hbond_networks
from .io import ResidueId, SequenceMapping, Structure, load_structure, map_sequence_to_structure

IMPORTANCE_HEADER = ("position", "residue", "importance")
PUBLISHED_REFERENCE = (
    "Linder et al. 2022: Spearman of importance with absolute per-residue Rosetta energies 0.25-0.33 "
    "on two natural proteins"
)
_CHUNK = 2000  # permutations evaluated at once (bounds memory)


# ------------------------------------------------------------ importance file


@dataclass(frozen=True)
class Importance:
    """Per-position importance of an explained sequence."""

    sequence: str
    values: np.ndarray
    source: str = ""


def read_importance_tsv(path: str | os.PathLike) -> Importance:
    """Read ``importance.tsv`` (``position residue importance``, 1-based positions).

    Raises
    ------
    InputFileError
        Missing/empty/binary file, wrong header, non-consecutive positions,
        letters outside the amino-acid alphabet or non-finite importance.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"importance file not found: {p}")
    data = p.read_bytes()
    if b"\x00" in data[:65536]:
        raise InputFileError(f"{p} is a binary file, expected importance.tsv text")
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        raise InputFileError(f"importance file {p} is empty")
    if tuple(lines[0].split("\t")[:3]) != IMPORTANCE_HEADER:
        raise InputFileError(f"{p}: the header must be 'position<TAB>residue<TAB>importance'")
    letters, values = [], []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        try:
            position, letter, value = int(cells[0]), cells[1].strip().upper(), float(cells[2])
        except (IndexError, ValueError):
            raise InputFileError(f"{p} line {n}: expected position, residue and importance") from None
        if position != len(values) + 1:
            raise InputFileError(f"{p} line {n}: position {position}, expected {len(values) + 1}")
        if len(letter) != 1 or letter not in AMINO_ACIDS:
            raise InputFileError(f"{p} line {n}: residue {letter!r} is not one of {AMINO_ACIDS}")
        if not math.isfinite(value):
            raise InputFileError(f"{p} line {n}: importance {cells[2]!r} is not a finite number")
        letters.append(letter)
        values.append(value)
    if not values:
        raise InputFileError(f"{p} holds a header but no positions")
    return Importance("".join(letters), np.asarray(values, dtype=float), str(p))


# ----------------------------------------------------------------- statistics


@dataclass(frozen=True)
class SpearmanResult:
    rho: float
    p_value: float
    n: int

    def as_dict(self) -> dict:
        return {"rho": _num(self.rho), "p_value": _num(self.p_value), "n": self.n}


@dataclass(frozen=True)
class TopKResult:
    k: int
    mean_top: float
    mean_rest: float
    difference: float
    p_value: float
    n: int

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "mean_top": _num(self.mean_top),
            "mean_rest": _num(self.mean_rest),
            "difference": _num(self.difference),
            "p_value": _num(self.p_value),
            "n": self.n,
            "alternative": "top-k mean greater than the rest",
        }


def _num(value: float) -> float | None:
    """JSON-friendly number: NaN becomes null."""
    return None if value is None or not math.isfinite(value) else float(value)


def _check_permutations(n_permutations: int) -> None:
    if n_permutations < 1:
        raise InvalidParameterError(f"the number of permutations must be at least 1, got {n_permutations}")


def _finite_pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise InvalidParameterError(f"length mismatch: {x.shape} vs {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _standardised_ranks(v: np.ndarray) -> np.ndarray | None:
    r = rankdata(v)
    r = r - r.mean()
    norm = np.linalg.norm(r)
    return None if norm == 0 else r / norm


def spearman_permutation_test(
    x: Sequence[float], y: Sequence[float], n_permutations: int = 10_000, seed: int = 0
) -> SpearmanResult:
    """Spearman's rho with a two-sided permutation p-value.

    Pairs with a non-finite member are dropped. The p-value counts shuffles of
    ``x`` whose |rho| reaches the observed one: ``(1 + count) / (1 + n_permutations)``.
    Constant input (or fewer than 3 pairs) gives NaN.
    """
    _check_permutations(n_permutations)
    x, y = _finite_pairs(x, y)
    zx, zy = (_standardised_ranks(x), _standardised_ranks(y)) if len(x) >= 3 else (None, None)
    if zx is None or zy is None:
        return SpearmanResult(float("nan"), float("nan"), len(x))
    rho = float(zx @ zy)
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_permutations:
        m = min(_CHUNK, n_permutations - done)
        shuffled = rng.permuted(np.broadcast_to(zx, (m, len(zx))), axis=1)
        hits += int(np.count_nonzero(np.abs(shuffled @ zy) >= abs(rho) - 1e-12))
        done += m
    return SpearmanResult(rho, (hits + 1) / (n_permutations + 1), len(x))


def topk_permutation_test(
    importance: Sequence[float],
    values: Sequence[float],
    k: int = 10,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> TopKResult:
    """Mean of ``values`` over the ``k`` most important residues minus the mean over the rest.

    The p-value (one-sided: top-k higher) compares the observed difference with
    ``n_permutations`` random choices of ``k`` residues, i.e. shuffled importance.
    Ties in importance are broken by position. ``k`` is capped at ``n - 1``.
    """
    _check_permutations(n_permutations)
    if k < 1:
        raise InvalidParameterError(f"top-k needs k >= 1, got {k}")
    imp, val = _finite_pairs(importance, values)
    n = len(val)
    if n < 2:
        return TopKResult(k, float("nan"), float("nan"), float("nan"), float("nan"), n)
    k = min(k, n - 1)
    top = np.argsort(-imp, kind="stable")[:k]
    total = float(val.sum())
    top_sum = float(val[top].sum())
    observed = top_sum / k - (total - top_sum) / (n - k)
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_permutations:
        m = min(_CHUNK, n_permutations - done)
        picks = rng.permuted(np.broadcast_to(np.arange(n), (m, n)), axis=1)[:, :k]
        sums = val[picks].sum(axis=1)
        diffs = sums / k - (total - sums) / (n - k)
        hits += int(np.count_nonzero(diffs >= observed - 1e-12))
        done += m
    return TopKResult(
        k, top_sum / k, (total - top_sum) / (n - k), observed, (hits + 1) / (n_permutations + 1), n
    )


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Average precision of ``scores`` ranking the positive ``labels`` first (NaN without positives).

    AP = mean over positives of the precision among residues ranked at or above
    it; ties are broken by position.
    """
    s = np.asarray(scores, dtype=float)
    lab = np.asarray(labels, dtype=bool)
    if s.shape != lab.shape:
        raise InvalidParameterError(f"length mismatch: {s.shape} vs {lab.shape}")
    ok = np.isfinite(s)
    s, lab = s[ok], lab[ok]
    if not lab.any():
        return float("nan")
    ranked = lab[np.argsort(-s, kind="stable")]
    precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
    return float(precision[ranked].mean())


# ----------------------------------------------------------------- comparison


@dataclass
class ComparisonResult:
    """Importance of one chain set against its structure."""

    importance: Importance
    structure_path: str
    chain: str
    mapping: SequenceMapping
    residues: list[ResidueId | None]
    energies: EnergyTable
    energy_total: np.ndarray
    energy_terms: np.ndarray
    ddg: np.ndarray | None
    ddg_kind: str | None
    hbnets: HBNetResult | None
    in_network: np.ndarray | None
    stats: dict
    settings: dict
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "importance": self.importance.source,
            "structure": self.structure_path,
            "chain": self.chain,
            "mapping": self.mapping.summary(),
            "energy_backend": self.energies.backend,
            "score_function": self.energies.score_function,
            "ddg": self.ddg_kind,
            "statistics": self.stats,
            "published_reference": PUBLISHED_REFERENCE,
            "settings": self.settings,
            "notes": self.notes,
        }

    def to_tsv(self) -> str:
        terms = self.energies.terms
        head = [
            "position", "residue", "chain", "residue_number", "insertion_code", "residue_name",
            "importance", "energy_total", *terms, "ddg", "in_hbnet",
        ]  # fmt: skip
        lines = ["\t".join(head)]
        for i, letter in enumerate(self.importance.sequence):
            r = self.residues[i]
            where = [r.chain, str(r.number), r.insertion_code, r.name] if r else ["", "", "", ""]
            ddg = self.ddg[i] if self.ddg is not None else float("nan")
            member = "" if self.in_network is None or r is None else str(int(self.in_network[i]))
            energy = _format_exact if self.energies.exact else _cell
            cells = [
                str(i + 1),
                letter,
                *where,
                f"{self.importance.values[i]:.6g}",
                energy(self.energy_total[i]),
            ]
            cells += [energy(v) for v in self.energy_terms[i]] + [_cell(ddg), member]
            lines.append("\t".join(cells))
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write summary.json, per_residue.tsv, tracks.png and scatter.png atomically."""
        from .plots import plot_scatter, plot_tracks

        with atomic_output_dir(out_dir) as tmp:
            atomic_write_json(tmp / "summary.json", self.summary())
            atomic_write_text(tmp / "per_residue.tsv", self.to_tsv())
            plot_tracks(self, tmp / "tracks.png")
            plot_scatter(self, tmp / "scatter.png")
        return Path(out_dir)


def _cell(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4f}"


def _energy_statistics(
    imp: np.ndarray, total: np.ndarray, terms: np.ndarray, names: list[str], n_perm, seed
) -> dict:
    out = {
        "total": spearman_permutation_test(imp, total, n_perm, seed).as_dict(),
        "abs_total": spearman_permutation_test(imp, np.abs(total), n_perm, seed).as_dict(),
        "terms": {},
    }
    for j, name in enumerate(names):
        out["terms"][name] = spearman_permutation_test(imp, terms[:, j], n_perm, seed).as_dict()
    return out


def _ddg_values(
    ddg, structure: Structure, chain: str, interface, compute: bool, device, progress: bool, notes: list[str]
) -> tuple[DdgTable | None, str | None]:
    kind = "interface" if interface else "monomer"
    if ddg is not None:
        if not isinstance(ddg, DdgTable):
            from .ddg import read_ddg_tsv

            ddg = read_ddg_tsv(ddg)
        return ddg, kind
    if not compute:
        return None, None
    try:
        table = alanine_scan(structure, interface=interface, chains=[chain], device=device, progress=progress)
    except BackendUnavailableError as err:
        notes.append(f"ddG skipped: {err}")
        return None, None
    notes += [f"ddG: {n}" for n in table.notes if n not in notes]
    return table, kind


def compare_importance_with_structure(
    importance: str | os.PathLike | Importance,
    structure: str | os.PathLike | Structure,
    chain: str,
    model: int = 1,
    energy_backend: str = "auto",
    interface: tuple[str, str] | None = None,
    ddg: str | os.PathLike | DdgTable | None = None,
    compute_ddg: bool = True,
    hbnet_backend: str = "geometric",
    top_k: int = 10,
    n_permutations: int = 10_000,
    seed: int = 0,
    device=None,
    progress: bool = False,
) -> ComparisonResult:
    """Compare per-residue importance of ``chain`` with energies, ddG and H-bond networks.

    Parameters
    ----------
    importance
        ``importance.tsv`` path or an :class:`Importance`.
    structure
        Structure path or loaded :class:`Structure`.
    chain
        Chain the importance refers to; the sequence is aligned onto it.
    model
        Model to read when ``structure`` is a path.
    energy_backend
        Energy backend (see :func:`per_residue_energies`).
    interface
        ``("A", "B")``: use interface ddG and interface H-bond networks.
    ddg
        Precomputed ddG table (``ddg.tsv`` path or :class:`DdgTable`).
    compute_ddg
        Run an alanine scan of ``chain`` when ``ddg`` is not given.
    hbnet_backend
        H-bond backend (see :func:`find_hbond_networks`).
    top_k
        Residues in the top-k ddG test.
    n_permutations
        Shuffles per permutation test.
    seed
        Seed of the permutation tests.
    device
        Torch device for tmol.
    progress
        Progress bar for the alanine scan.
    """
    if interface is not None and chain not in interface:
        raise InvalidParameterError(f"chain {chain} is not one of the interface chains {'_'.join(interface)}")
    imp = importance if isinstance(importance, Importance) else read_importance_tsv(importance)
    if not isinstance(structure, Structure):
        structure = load_structure(structure, model=model)
    mapping = map_sequence_to_structure(imp.sequence, structure, chain)
    residues = [mapping.residue_at(i + 1) for i in range(len(imp.sequence))]
    notes = list(structure.notes)

    energies = per_residue_energies(structure, chains=[chain], backend=energy_backend, device=device)
    notes += [n for n in energies.notes if n not in notes]
    total, terms = energies.lookup(residues)
    stats = {"spearman": _energy_statistics(imp.values, total, terms, energies.terms, n_permutations, seed)}

    ddg_table, kind = _ddg_values(ddg, structure, chain, interface, compute_ddg, device, progress, notes)
    ddg_values = None
    if ddg_table is not None:
        ddg_values = ddg_table.lookup(residues, kind)
        if kind == "interface" and not np.isfinite(ddg_values).any():
            ddg_values = ddg_table.lookup(residues, "monomer")
            kind = "monomer"
            notes.append("the ddG table has no interface values; used monomer ddG")
        test = topk_permutation_test(imp.values, ddg_values, top_k, n_permutations, seed)
        stats["topk_ddg"] = {"kind": kind, **test.as_dict()}

    hbnets = find_hbond_networks(structure, interface=interface, backend=hbnet_backend, device=device)
    in_network = hbnets.membership(residues)
    mapped = np.array([r is not None for r in residues])
    ap = average_precision(np.where(mapped, imp.values, np.nan), in_network)
    n_pos = int(in_network.sum())
    stats["hbnet_average_precision"] = {
        "average_precision": _num(ap),
        "baseline": _num(n_pos / int(mapped.sum())) if mapped.any() else None,
        "n_network_residues": n_pos,
        "n_networks": len(hbnets.networks),
        "interface_only": interface is not None,
    }
    if n_pos == 0:
        notes.append("no residue of the chain is in an H-bond network: average precision undefined")

    settings = {
        "model": structure.model,
        "interface": "_".join(interface) if interface else None,
        "hbnet_backend": hbnet_backend,
        "top_k": top_k,
        "n_permutations": n_permutations,
        "seed": seed,
    }
    return ComparisonResult(
        imp, str(structure.path), chain, mapping, residues, energies, total, terms,
        ddg_values, kind if ddg_values is not None else None, hbnets, in_network, stats, settings, notes,
    )  # fmt: skip
