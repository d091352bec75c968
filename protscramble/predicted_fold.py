"""A coarse 3D model of the fold trRosetta predicts, for when no structure is given.

trRosetta's ``dist`` output is a distribution over 37 bins of the Cβ–Cβ
distance (Cα for glycine) of every residue pair: bin 0 means "no contact"
(beyond 20 Å), bins 1..36 cover 2–20 Å in 0.5 Å steps (centres 2.25 … 19.75 Å,
as in trRosetta's folding scripts). From it we take, per pair, the expected
distance around the most likely bin and its confidence (the probability of
contact), fill
the unknown pairs by shortest paths, embed with classical MDS, and refine the
coordinates by minimising a confidence-weighted stress with a "beyond 20 Å"
lower bound for pairs predicted apart. Distances cannot tell a fold from its
mirror image, so the hand is chosen so that helix-like stretches turn
right-handed.

The result is one point per residue, written as a Cα trace. It is a rough
picture of the predicted topology — not a structure prediction (no side
chains, no backbone geometry, Cβ distances standing in for Cα) — and every
output says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import biotite.structure as struc
import numpy as np
from scipy.optimize import minimize
from scipy.sparse.csgraph import shortest_path

from .alphabet import AMINO_ACIDS
from .errors import InputFileError, InvalidParameterError
from .io import atomic_write_text

#: Centres (Å) of trRosetta's distance bins 1..36; bin 0 is "beyond 20 Å".
DIST_BIN_CENTRES = 2.25 + 0.5 * np.arange(36)
#: Distance (Å) above which trRosetta's bin 0 ("no contact") starts.
CONTACT_CUTOFF = 20.0
ROUGH_MODEL_NOTE = (
    "ROUGH MODEL: one point per residue embedded from trRosetta's expected Cb-Cb distances "
    "(classical MDS + confidence-weighted refinement); not a structure prediction"
)

_ONE_TO_THREE = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY",
    "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER",
    "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL",
}  # fmt: skip


@dataclass
class PredictedFold:
    """Residue coordinates embedded from predicted distances.

    Attributes
    ----------
    coords
        ``(L, 3)`` coordinates in Å, one point per residue.
    expected
        ``(L, L)`` expected distance given contact (Å).
    confidence
        ``(L, L)`` probability that the pair is within 20 Å.
    rmse
        Root-mean-square deviation (Å) of the model's distances from the
        expected ones over confident pairs (confidence >= 0.5).
    mirrored
        Whether the MDS solution was reflected to make helices right-handed.
    notes
        What a reader should know about the model.
    """

    coords: np.ndarray
    expected: np.ndarray
    confidence: np.ndarray
    rmse: float
    mirrored: bool
    notes: list[str] = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(self.coords.shape[0])


# ------------------------------------------------------------------ distances


def check_distogram(dist: np.ndarray, length: int | None = None) -> np.ndarray:
    """Validate a trRosetta ``dist`` array and return it as ``(L, L, 37)`` float64 probabilities.

    Accepts the ``(1, L, L, 37)`` layout of the original trRosetta output too.
    """
    p = np.asarray(dist, dtype=float)
    if p.ndim == 4 and p.shape[0] == 1:
        p = p[0]
    if p.ndim != 3 or p.shape[0] != p.shape[1] or p.shape[2] != 37:
        raise InputFileError(f"expected trRosetta distance probabilities shaped (L, L, 37), got {p.shape}")
    if length is not None and p.shape[0] != length:
        raise InputFileError(
            f"the predictions are for a protein of {p.shape[0]} residues, the importance for {length}"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise InputFileError("distance probabilities must be finite and non-negative")
    total = p.sum(-1, keepdims=True)
    if np.any(total <= 0):
        raise InputFileError("some residue pairs have an all-zero distance distribution")
    return p / total


def expected_distances(
    dist: np.ndarray, window: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected distance given contact, its standard deviation and the contact probability.

    Parameters
    ----------
    dist
        ``(L, L, 37)`` trRosetta distance probabilities.
    window
        ``None``: expectation over all bins below 20 Å. ``k``: expectation over
        the bins within ``k`` of the most likely one (``k = 3``: ±1.5 Å), which
        ignores the long flat tails the network gives uncertain pairs.

    Returns
    -------
    expected, spread, confidence
        ``(L, L)`` arrays: E[d | d < 20 Å] (or within the window), its standard
        deviation (Å) and P(d < 20 Å), symmetrised over (i, j) and (j, i).
    """
    p = check_distogram(dist)
    p = 0.5 * (p + p.transpose(1, 0, 2))  # the network's two triangles differ slightly
    near = p[..., 1:].sum(-1)
    q = p[..., 1:]
    if window is not None:
        if window < 0:
            raise InvalidParameterError(f"window must be >= 0 bins, got {window}")
        peak = q.argmax(-1)
        q = q * (np.abs(np.arange(36) - peak[..., None]) <= window)
    cond = q / np.maximum(q.sum(-1), 1e-12)[..., None]
    expected = cond @ DIST_BIN_CENTRES
    spread = np.sqrt(np.maximum(cond @ DIST_BIN_CENTRES**2 - expected**2, 0.0))
    np.fill_diagonal(expected, 0.0)
    np.fill_diagonal(spread, 0.0)
    np.fill_diagonal(near, 1.0)
    return expected, spread, near


def distogram_from_distances(distances: np.ndarray) -> np.ndarray:
    """One-hot ``(L, L, 37)`` distogram of exact distances (for tests and sanity checks)."""
    d = np.asarray(distances, dtype=float)
    idx = np.clip(np.floor((d - 2.0) / 0.5).astype(int) + 1, 1, 36)
    idx[d >= CONTACT_CUTOFF] = 0
    out = np.zeros((*d.shape, 37))
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out


# ---------------------------------------------------------------- embedding


def classical_mds(distances: np.ndarray, dim: int = 3) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling of a full distance matrix.

    Exact for distances between points in ``dim`` dimensions (up to rotation,
    translation and reflection).
    """
    d = np.asarray(distances, dtype=float)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise InvalidParameterError(f"expected a square distance matrix, got shape {d.shape}")
    n = d.shape[0]
    centre = np.eye(n) - 1.0 / n
    gram = -0.5 * centre @ (d**2) @ centre
    values, vectors = np.linalg.eigh(0.5 * (gram + gram.T))
    order = np.argsort(values)[::-1][:dim]
    return vectors[:, order] * np.sqrt(np.maximum(values[order], 0.0))


def _initial_distances(expected: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Full matrix for MDS: confident pairs as predicted, the rest by shortest paths (>= 20 Å)."""
    known = confidence >= 0.5
    graph = np.where(known, np.maximum(expected, 1e-3), 0.0)
    np.fill_diagonal(graph, 0.0)
    paths = shortest_path(graph, method="D", directed=False)
    finite = np.isfinite(paths)
    fill = 1.2 * paths[finite].max() if finite.any() else CONTACT_CUTOFF
    paths = np.where(finite, paths, max(fill, CONTACT_CUTOFF))
    full = np.where(known, expected, np.maximum(paths, CONTACT_CUTOFF))
    np.fill_diagonal(full, 0.0)
    return 0.5 * (full + full.T)


def _stress(flat: np.ndarray, target: np.ndarray, w_near: np.ndarray, w_far: np.ndarray):
    """Weighted stress and its gradient (all pairs counted twice, which only scales it)."""
    x = flat.reshape(-1, 3)
    diff = x[:, None, :] - x[None, :, :]
    r = np.sqrt((diff**2).sum(-1) + 1e-9)
    near_res = r - target
    far_res = np.minimum(r - CONTACT_CUTOFF, 0.0)
    energy = float((w_near * near_res**2).sum() + (w_far * far_res**2).sum())
    coef = 2.0 * (w_near * near_res + w_far * far_res) / r
    np.fill_diagonal(coef, 0.0)
    grad = 2.0 * (coef[..., None] * diff).sum(1)
    return energy, grad.ravel()


def pseudo_torsions(coords: np.ndarray) -> np.ndarray:
    """Dihedral angles (degrees, IUPAC sign) of every four consecutive points."""
    c = np.asarray(coords, dtype=float)
    return np.degrees(struc.dihedral(c[:-3], c[1:-2], c[2:-1], c[3:]))


def _left_handed(coords: np.ndarray) -> bool:
    """True when helix-like stretches (|torsion| < 100°) turn mostly left-handed (α: about +50°)."""
    if len(coords) < 4:
        return False
    tors = pseudo_torsions(coords)
    helical = tors[np.abs(tors) < 100.0]
    return bool(helical.size) and float(np.sign(helical).sum()) < 0


def embed_distogram(
    dist: np.ndarray, max_iterations: int = 1000, seed: int = 0, window: int | None = 3
) -> PredictedFold:
    """Embed residue coordinates in 3D from trRosetta distance probabilities.

    Parameters
    ----------
    dist
        ``(L, L, 37)`` (or ``(1, L, L, 37)``) distance probabilities.
    max_iterations
        L-BFGS iterations of the refinement.
    window
        Bins around the most likely distance that form each restraint (see
        :func:`expected_distances`; ``None``: all bins below 20 Å). On Top7's
        single-sequence prediction the model is 2.5 Å from the crystal Cβ
        atoms with ``3`` and 2.7 Å with ``None``.
    seed
        Seed of the tiny jitter that breaks exact symmetries of the MDS start.

    Returns
    -------
    PredictedFold
        Coordinates centred at the origin, with the fit's RMSE.
    """
    if max_iterations < 0:
        raise InvalidParameterError(f"max_iterations must be >= 0, got {max_iterations}")
    expected, spread, confidence = expected_distances(dist, window)
    n = expected.shape[0]
    if n < 2:
        raise InvalidParameterError("a fold needs at least two residues")
    start = classical_mds(_initial_distances(expected, confidence))
    start = start + np.random.default_rng(seed).normal(scale=1e-3, size=start.shape)
    # Pairs more likely within 20 Å are restrained to their expected distance, weighted by
    # P(contact) / variance so that sharp, likely restraints dominate; the others only push
    # beyond 20 Å (a weak pull of every unlikely contact would crush elongated folds).
    near = confidence >= 0.5
    w_near = np.where(near, confidence / (spread**2 + 1.0), 0.0)
    w_far = np.where(near, 0.0, 0.5 * (1.0 - confidence))
    np.fill_diagonal(w_near, 0.0)
    np.fill_diagonal(w_far, 0.0)
    coords = start
    if max_iterations:
        result = minimize(
            _stress,
            start.ravel(),
            args=(expected, w_near, w_far),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iterations},
        )
        coords = result.x.reshape(n, 3)
    coords = coords - coords.mean(0)
    mirrored = _left_handed(coords)
    if mirrored:
        coords = coords * np.array([-1.0, 1.0, 1.0])
    r = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    confident = np.triu(confidence >= 0.5, 1)
    rmse = float(np.sqrt(np.mean((r - expected)[confident] ** 2))) if confident.any() else float("nan")
    notes = [
        ROUGH_MODEL_NOTE,
        "hand chosen so that helix-like stretches are right-handed" + (" (mirrored)" if mirrored else ""),
    ]
    return PredictedFold(coords, expected, confidence, rmse, mirrored, notes)


def kabsch_rmsd(a: np.ndarray, b: np.ndarray, allow_reflection: bool = False) -> float:
    """RMSD (Å) between point sets after optimal superposition (optionally allowing a mirror)."""
    a = np.asarray(a, dtype=float) - np.mean(a, axis=0)
    b = np.asarray(b, dtype=float) - np.mean(b, axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    if not allow_reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
    rotated = a @ u @ vt
    return float(np.sqrt(np.mean(np.sum((rotated - b) ** 2, axis=1))))


# ------------------------------------------------------------------- output


def fold_pdb_text(fold: PredictedFold, sequence: str, bfactors: np.ndarray | None = None) -> str:
    """PDB text of the rough model: one ``CA`` atom per residue, chain A, REMARKs saying what it is.

    Parameters
    ----------
    fold
        The embedded fold.
    sequence
        Residue letters (length L).
    bfactors
        Per-residue values for the B-factor column (e.g. importance); 0 when ``None``.
    """
    if len(sequence) != fold.length:
        raise InvalidParameterError(
            f"the sequence has {len(sequence)} residues, the predicted fold {fold.length}"
        )
    bad = sorted(set(sequence.upper()) - set(AMINO_ACIDS))
    if bad:
        raise InvalidParameterError(f"sequence letters {''.join(bad)} are not standard amino acids")
    values = np.zeros(fold.length) if bfactors is None else np.asarray(bfactors, dtype=float)
    if values.shape != (fold.length,):
        raise InvalidParameterError(f"expected {fold.length} B-factors, got {values.shape}")
    lines = [
        "HEADER    ROUGH MODEL FROM PREDICTED DISTANCES",
        "REMARK   1 " + ROUGH_MODEL_NOTE[:58],
        "REMARK   1 " + ROUGH_MODEL_NOTE[58:116],
        "REMARK   1 " + ROUGH_MODEL_NOTE[116:],
        f"REMARK   1 FIT RMSE TO EXPECTED DISTANCES {fold.rmse:.2f} A; B-FACTOR = IMPORTANCE",
    ]
    for i, (letter, xyz, b) in enumerate(zip(sequence.upper(), fold.coords, values, strict=True)):
        x, y, z = (float(v) for v in xyz)
        lines.append(
            f"ATOM  {i + 1:5d}  CA  {_ONE_TO_THREE[letter]} A{i + 1:4d}    "
            f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{float(b):6.2f}           C"
        )
    lines += ["TER", "END"]
    return "\n".join(line.ljust(80) if line.startswith("ATOM") else line for line in lines) + "\n"


def write_fold_pdb(
    path: str | os.PathLike, fold: PredictedFold, sequence: str, bfactors: np.ndarray | None = None
) -> Path:
    """Write :func:`fold_pdb_text` atomically."""
    atomic_write_text(path, fold_pdb_text(fold, sequence, bfactors))
    return Path(path)


def distogram_for(predictions: dict[str, np.ndarray], sequence: str) -> np.ndarray:
    """The ``dist`` probabilities of ``predictions``, checked against the explained ``sequence``.

    Raises
    ------
    InputFileError
        The predictions hold another sequence (``sequence`` key) or another length.
    """
    if "sequence" in predictions and str(np.asarray(predictions["sequence"])) != sequence:
        raise InputFileError(
            f"the predictions were made for another sequence ({str(np.asarray(predictions['sequence']))[:30]}...) "
            "than the importance"
        )
    return check_distogram(predictions["dist"], len(sequence))


def read_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``predictions.npz`` (from ``protscramble predict`` or :mod:`protscramble.figures`).

    Raises
    ------
    InputFileError
        Missing file, not an npz archive, or no ``dist`` array.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"predictions file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as err:
        raise InputFileError(f"cannot read {p} as an .npz archive: {err}") from None
    if "dist" not in arrays:
        raise InputFileError(f"{p} holds no 'dist' array (keys: {', '.join(sorted(arrays)) or 'none'})")
    return arrays
