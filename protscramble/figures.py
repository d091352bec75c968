"""Publication figures of an explanation (matplotlib; vector PDF and PNG).

* :func:`track_figure` — secondary structure, importance and per-residue
  energy on one position axis (H-bond-network residues marked);
* :func:`logo_figure` — information-content logo of the scrambled PSSM (logomaker);
* :func:`distogram_figure` — trRosetta's expected distances on the original
  sequence and on the scrambled PSSM, and their per-pair KL divergence;
* :func:`scatter_figure` — importance against per-residue energy and its
  absolute value, with Spearman's rho and permutation p-values.

Every builder returns a bare :class:`~matplotlib.figure.Figure` (no pyplot
state, no display needed); :func:`save_figure` writes PDF and PNG atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .alphabet import AMINO_ACIDS
from .errors import InvalidParameterError
from .io import atomic_write_bytes
from .predicted_fold import CONTACT_CUTOFF, DIST_BIN_CENTRES, check_distogram
from .structure_export import NETWORK_COLOUR
from .structures.compare import spearman_permutation_test
from .structures.io import SequenceMapping, Structure

#: Colours of the secondary-structure strip (biotite's P-SEA letters).
SSE_COLOURS = {"a": "#d62728", "b": "#1f77b4", "c": "#dddddd", "-": "#ffffff"}
SSE_NAMES = {"a": "helix", "b": "strand", "c": "coil", "-": "not resolved"}
IMPORTANCE_COLOUR = "#3b6fb6"
_RC = {
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays editable in Illustrator/Inkscape
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _width(length: int) -> float:
    return float(min(18.0, max(6.5, 0.09 * length + 2.0)))


def _style():
    import matplotlib

    return matplotlib.rc_context(_RC)


# ------------------------------------------------------------- saving


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 200) -> bytes:
    """Render ``fig`` to PDF/PNG/SVG bytes."""
    buf = io.BytesIO()
    with _style():
        fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, stem: str | os.PathLike, formats: Sequence[str] = ("pdf", "png")) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` (each atomically, both rendered before either is written)."""
    stem = Path(stem)
    data = {fmt: figure_bytes(fig, fmt) for fmt in formats}
    paths = []
    for fmt, payload in data.items():
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write_bytes(path, payload)
        paths.append(path)
    return paths


# ------------------------------------------------------ secondary structure


def secondary_structure(structure: Structure, mapping: SequenceMapping) -> str:
    """DSSP-like secondary structure per sequence position (biotite's P-SEA ``annotate_sse``).

    Returns one letter per position of ``mapping.sequence``: ``a`` helix,
    ``b`` strand, ``c`` coil, ``-`` where the structure has no residue.
    """
    import biotite.structure as struc

    chain = mapping.residues[0].chain if mapping.residues else None
    atoms = structure.atoms[structure.atoms.chain_id == chain]
    try:
        sse = [str(s) or "c" for s in struc.annotate_sse(atoms)]
    except Exception:  # P-SEA needs CA atoms; odd chains get coil rather than a failure
        sse = ["c"] * len(mapping.residues)
    if len(sse) != len(mapping.residues):
        sse = ["c"] * len(mapping.residues)
    return "".join(sse[k] if k >= 0 else "-" for k in mapping.index)


# ------------------------------------------------------------------ tracks


def track_figure(
    importance: Sequence[float],
    sequence: str,
    *,
    energy: Sequence[float] | None = None,
    energy_label: str = "energy (REU)",
    sse: str | None = None,
    in_network: Sequence[bool] | None = None,
    title: str = "",
) -> Figure:
    """Importance aligned with secondary structure and per-residue energy.

    Panels, top to bottom: secondary structure (when ``sse``), importance
    (H-bond-network residues marked with triangles), energy (when ``energy``).
    """
    values = np.asarray(importance, dtype=float)
    length = len(sequence)
    if values.shape != (length,):
        raise InvalidParameterError(f"{values.size} importance values for a sequence of {length}")
    for name, arr in (("energy", energy), ("in_network", in_network), ("sse", sse)):
        if arr is not None and len(arr) != length:
            raise InvalidParameterError(f"{name} has {len(arr)} entries, the sequence {length}")
    pos = np.arange(1, length + 1)
    heights = ([0.35] if sse is not None else []) + [2.0] + ([1.6] if energy is not None else [])
    with _style():
        fig = _figure(_width(length), 0.9 + sum(heights))
        axes = list(np.atleast_1d(fig.subplots(len(heights), 1, sharex=True, height_ratios=heights)))
        k = 0
        if sse is not None:
            ax = axes[k]
            ax.bar(pos, np.ones(length), width=1.0, color=[SSE_COLOURS.get(s, "#dddddd") for s in sse])
            ax.set_yticks([])
            ax.tick_params(bottom=False)
            ax.set_ylabel("SSE", rotation=0, ha="right", va="center")
            ax.spines[["left", "bottom"]].set_visible(False)
            present = [s for s in "abc-" if s in sse]
            ax.legend(
                handles=[Patch(color=SSE_COLOURS[s], label=SSE_NAMES[s]) for s in present],
                loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=6,
                ncol=len(present), handlelength=1.0, columnspacing=0.8,
            )  # fmt: skip
            ax.set_gid("sse")
            k += 1
        ax = axes[k]
        ax.bar(pos, values, width=0.85, color=IMPORTANCE_COLOUR)
        ax.set_ylabel("importance")
        ax.set_gid("importance")
        if in_network is not None and np.any(in_network):
            hits = pos[np.asarray(in_network, dtype=bool)]
            top = float(np.nanmax(values)) if values.size else 1.0
            ax.plot(
                hits, np.full(len(hits), top * 1.08), "v", color=NETWORK_COLOUR, ms=4, label="H-bond network"
            )
            ax.set_ylim(top=top * 1.2 if top > 0 else None)
            ax.legend(loc="upper right", frameon=False, fontsize=7)
        if title:
            axes[0].set_title(title, loc="left")
        if energy is not None:
            k += 1
            ax = axes[k]
            e = np.asarray(energy, dtype=float)
            ax.bar(pos, np.nan_to_num(e), width=0.85, color=np.where(e < 0, "#2ca02c", "#ff7f0e"))
            ax.axhline(0, color="black", lw=0.5)
            ax.set_ylabel(energy_label)
            ax.set_gid("energy")
        axes[-1].set_xlim(0.4, length + 0.6)
        axes[-1].set_xlabel("position")
        if length <= 120:  # letters stay readable up to about this length
            axes[-1].set_xticks(pos, list(sequence), fontsize=5, family="monospace")
    return fig


# -------------------------------------------------------------------- logo


def logo_figure(pssm: np.ndarray, alphabet: str = AMINO_ACIDS, title: str = "") -> Figure:
    """Information-content sequence logo (bits) of a PSSM ``(L, A)``."""
    import logomaker
    import pandas as pd

    p = np.asarray(pssm, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(alphabet):
        raise InvalidParameterError(f"PSSM must be (L, {len(alphabet)}), got {p.shape}")
    p = np.clip(p, 1e-12, None)
    p = p / p.sum(1, keepdims=True)
    info = np.log2(len(alphabet)) + (p * np.log2(p)).sum(1, keepdims=True)
    with _style():
        fig = _figure(_width(p.shape[0]), 2.2)
        ax = fig.subplots()
        logomaker.Logo(pd.DataFrame(p * info, columns=list(alphabet)), ax=ax, color_scheme="chemistry")
        ax.set_ylabel("bits")
        ax.set_xlabel("position (0-based)")
        ax.set_xlim(-0.6, p.shape[0] - 0.4)
        ax.set_gid("logo")
        if title:
            ax.set_title(title, loc="left")
    return fig


# --------------------------------------------------------------- distograms


def mean_distance(dist: np.ndarray) -> np.ndarray:
    """Expected Cβ distance (Å) with "beyond 20 Å" counted as 20 Å, symmetrised."""
    p = check_distogram(dist)
    centres = np.concatenate([[CONTACT_CUTOFF], DIST_BIN_CENTRES])
    d = p @ centres
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, np.nan)  # a residue with itself is no pair; drawn blank
    return d


def pairwise_kl(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """KL(reference || other) of the distance distributions of every pair (nats)."""
    p, q = check_distogram(reference), check_distogram(other)
    if p.shape != q.shape:
        raise InvalidParameterError(f"distograms differ in shape: {p.shape} vs {q.shape}")
    return np.sum(p * (np.log(np.clip(p, 1e-12, None)) - np.log(np.clip(q, 1e-12, None))), axis=-1)


def distogram_figure(
    original: np.ndarray, scrambled: np.ndarray, title: str = "", scrambled_label: str = "scrambled"
) -> Figure:
    """Expected distance maps of the original and scrambled predictions, and their per-pair KL.

    Three image panels (with two colour bars): original, scrambled (same
    scale, 2–20 Å) and KL(original || scrambled) per pair.
    """
    d0, d1 = mean_distance(original), mean_distance(scrambled)
    kl = pairwise_kl(original, scrambled)
    np.fill_diagonal(kl, np.nan)
    with _style():
        fig = _figure(10.5, 3.6)
        axes = fig.subplots(1, 3)
        for ax, d, name in ((axes[0], d0, "original sequence"), (axes[1], d1, scrambled_label)):
            im = ax.imshow(
                d, cmap="viridis_r", vmin=2.0, vmax=CONTACT_CUTOFF, origin="upper", interpolation="nearest"
            )
            ax.set_title(f"{name}: E[distance]")
            ax.set_xlabel("residue j")
            ax.set_ylabel("residue i")
            ax.set_gid("distogram")
        fig.colorbar(im, ax=axes[:2], shrink=0.85, label="Cβ–Cβ distance (Å)")
        im2 = axes[2].imshow(kl, cmap="magma", vmin=0.0, origin="upper", interpolation="nearest")
        axes[2].set_title(f"KL(original ‖ {scrambled_label}), mean {np.nanmean(kl):.2f} nats")
        axes[2].set_xlabel("residue j")
        axes[2].set_gid("kl")
        fig.colorbar(im2, ax=axes[2], shrink=0.85, label="nats")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return fig


# ----------------------------------------------------------------- scatter


def scatter_figure(
    importance: Sequence[float],
    energy: Sequence[float],
    *,
    energy_label: str = "per-residue energy (REU)",
    n_permutations: int = 10_000,
    seed: int = 0,
    title: str = "",
) -> Figure:
    """Importance against per-residue energy and its absolute value, with Spearman's rho.

    Non-finite pairs (unresolved residues) are left out; the title of each
    panel gives rho, its two-sided permutation p-value and n.
    """
    imp = np.asarray(importance, dtype=float)
    e = np.asarray(energy, dtype=float)
    if imp.shape != e.shape:
        raise InvalidParameterError(f"{imp.size} importance values but {e.size} energies")
    with _style():
        fig = _figure(7.5, 3.3)
        axes = fig.subplots(1, 2)
        for ax, x, label in ((axes[0], e, energy_label), (axes[1], np.abs(e), f"|{energy_label}|")):
            ok = np.isfinite(x) & np.isfinite(imp)
            ax.scatter(x[ok], imp[ok], s=12, alpha=0.75, color=IMPORTANCE_COLOUR, edgecolors="none")
            stat = spearman_permutation_test(imp, x, n_permutations, seed)
            rho = "n/a" if not np.isfinite(stat.rho) else f"{stat.rho:.3f}"
            p = "n/a" if not np.isfinite(stat.p_value) else f"{stat.p_value:.3g}"
            ax.set_title(f"Spearman ρ = {rho} (p = {p}, n = {stat.n})")
            ax.set_xlabel(label)
            ax.set_ylabel("importance")
            ax.set_gid("scatter")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return fig
