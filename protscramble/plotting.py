"""Figures of an explanation: importance track and sequence logo of the PSSM."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import logomaker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_write_bytes  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    buf = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or "png"
    fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _width(length: int) -> float:
    return float(min(40.0, max(6.0, 0.14 * length)))


def plot_importance(importance: np.ndarray, sequence: str, path: str | Path, title: str = "") -> None:
    """Bar plot of per-residue importance with the residue letters on the x axis."""
    length = len(sequence)
    fig, ax = plt.subplots(figsize=(_width(length), 2.6))
    ax.bar(np.arange(length), importance, color="#3b6fb6", width=0.85)
    ax.set_xlim(-0.6, length - 0.4)
    ax.set_ylabel("importance")
    ax.set_xticks(np.arange(length))
    ax.set_xticklabels(list(sequence), fontsize=6, family="monospace")
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)


def plot_logo(pssm: np.ndarray, alphabet: str, path: str | Path, title: str = "") -> None:
    """Information-content sequence logo (bits) of a PSSM (L, A)."""
    length = pssm.shape[0]
    p = np.clip(pssm, 1e-12, 1.0)
    p = p / p.sum(1, keepdims=True)
    info = np.log2(len(alphabet)) + (p * np.log2(p)).sum(1, keepdims=True)
    df = pd.DataFrame(p * info, columns=list(alphabet))
    fig, ax = plt.subplots(figsize=(_width(length), 2.2))
    logomaker.Logo(df, ax=ax, color_scheme="chemistry", font_name="DejaVu Sans")
    ax.set_ylabel("bits")
    ax.set_xlim(-0.6, length - 0.4)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)
