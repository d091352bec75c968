"""trRosetta explanation benchmark: scramblers against attribution baselines.

``protscramble benchmark trrosetta`` runs :func:`run_benchmark`: for every
protein of a set (:mod:`.proteins`) and every method (:mod:`.methods`) it
computes an importance map, then the faithfulness curves (:mod:`.metrics`),
the published evaluation KL of the scrambler, and agreement with Rosetta
energies on the design models; :mod:`.summary` writes the tables, a
markdown summary and figures. Results are written per protein, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

from .methods import METHODS
from .metrics import curve_auc
from .proteins import PROTEIN_SETS, BenchmarkProtein, resolve_proteins
from .protocols import PROTOCOLS, Protocol
from .runner import run_benchmark

__all__ = [
    "METHODS",
    "PROTEIN_SETS",
    "PROTOCOLS",
    "BenchmarkProtein",
    "Protocol",
    "curve_auc",
    "resolve_proteins",
    "run_benchmark",
]
