"""Figures of the importance-versus-structure comparison (matplotlib, Agg canvas)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:  # pragma: no cover
    from .compare import ComparisonResult


def _save(fig: Figure, path: Path) -> None:
    # a bare Figure on an Agg canvas: no pyplot state, works without a display
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120)


def plot_tracks(result: ComparisonResult, path: Path) -> None:
    """Importance track over the per-residue energy track (and ddG when present)."""
    pos = np.arange(1, len(result.importance.sequence) + 1)
    rows = 3 if result.ddg is not None else 2
    fig = Figure(figsize=(max(8.0, len(pos) * 0.06), 1.9 * rows + 0.6))
    axes = fig.subplots(rows, 1, sharex=True)
    ax = axes[0]
    ax.bar(pos, result.importance.values, width=1.0, color="tab:blue")
    if result.in_network is not None and result.in_network.any():
        hits = pos[result.in_network]
        top = float(np.max(result.importance.values, initial=0.0))
        ax.plot(
            hits, np.full(len(hits), top * 1.08), "v", color="tab:red", markersize=4, label="H-bond network"
        )
        ax.set_ylim(top=top * 1.25 if top > 0 else None)
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    ax.set_ylabel("importance")
    energy = result.energy_total
    colours = np.where(energy < 0, "tab:green", "tab:orange")
    axes[1].bar(pos, np.nan_to_num(energy), width=1.0, color=colours)
    axes[1].axhline(0, color="black", lw=0.5)
    axes[1].set_ylabel(f"energy ({result.energies.score_function})\nREU")
    if result.ddg is not None:
        axes[2].bar(pos, np.nan_to_num(result.ddg), width=1.0, color="tab:purple")
        axes[2].axhline(0, color="black", lw=0.5)
        axes[2].set_ylabel(f"{result.ddg_kind} ddG\nREU")
    axes[-1].set_xlabel(f"position in the explained sequence (chain {result.chain})")
    fig.suptitle(Path(result.structure_path).name, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_scatter(result: ComparisonResult, path: Path) -> None:
    """Importance against per-residue energy, signed and absolute, with Spearman's rho."""
    spearman = result.stats["spearman"]
    fig = Figure(figsize=(8.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, values, key, label in (
        (axes[0], result.energy_total, "total", "per-residue energy (REU)"),
        (axes[1], np.abs(result.energy_total), "abs_total", "|per-residue energy| (REU)"),
    ):
        ok = np.isfinite(values)
        ax.scatter(values[ok], result.importance.values[ok], s=10, alpha=0.7, color="tab:blue")
        stat = spearman[key]
        rho = "n/a" if stat["rho"] is None else f"{stat['rho']:.3f}"
        p = "n/a" if stat["p_value"] is None else f"{stat['p_value']:.3g}"
        ax.set_title(f"Spearman rho = {rho} (permutation p = {p}, n = {stat['n']})", fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("importance")
    fig.tight_layout()
    _save(fig, path)
