"""Fidelity of the computed energy backend against Rosetta's own per-residue table.

For every design model under ``../shared/data/structures/designed/`` that carries
a Rosetta energy table (ref2015), compute per-residue totals with the tmol
backend (beta_nov2016) and report the Spearman correlation with the table's
per-residue totals, then the minimum, median and maximum over all models.

Usage::

    python benchmarks/energy_fidelity.py [--data DIR] [--device cpu] [--threshold 0.85]

Exit status 1 when any model falls below the threshold.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from protscramble.structures.energies import TableBackend, TmolBackend, has_energy_table
from protscramble.structures.io import load_structure

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures" / "designed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder searched for *.pdb (recursively)"
    )
    parser.add_argument("--device", default="cpu", help="torch device for tmol (default cpu)")
    parser.add_argument("--threshold", type=float, default=0.85, help="required Spearman on every model")
    args = parser.parse_args(argv)

    files = sorted(p for p in args.data.rglob("*.pdb") if has_energy_table(p))
    skipped = sorted(p for p in args.data.rglob("*.pdb") if not has_energy_table(p))
    if not files:
        print(f"no PDB with a Rosetta energy table under {args.data}", file=sys.stderr)
        return 2
    tmol_backend, table_backend = TmolBackend(args.device), TableBackend()
    rows = []
    start = time.perf_counter()
    for path in files:
        structure = load_structure(path)
        reference = table_backend.compute(structure).total
        t0 = time.perf_counter()
        computed = tmol_backend.compute(structure).total
        seconds = time.perf_counter() - t0
        ok = np.isfinite(computed)
        rho = spearmanr(computed[ok], reference[ok])[0]
        r = pearsonr(computed[ok], reference[ok])[0]
        rows.append((path, len(reference), rho, r, seconds))
        print(
            f"{path.parent.name}/{path.name}\tresidues={len(reference)}\tspearman={rho:.3f}\tpearson={r:.3f}"
        )
    rhos = np.array([row[2] for row in rows])
    print()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, device {args.device}")
    without = ", ".join(p.name for p in skipped) or "none"
    print(f"models with a ref2015 table: {len(rows)}; without (not scored): {without}")
    print("tmol (beta2016) vs ref2015 table, per-residue totals, Spearman:")
    print(
        f"  min {rhos.min():.3f}  median {np.median(rhos):.3f}  mean {rhos.mean():.3f}  max {rhos.max():.3f}"
    )
    worst = rows[int(np.argmin(rhos))]
    below = int((rhos < args.threshold).sum())
    print(f"  lowest: {worst[0].name} ({worst[2]:.3f}); models below {args.threshold}: {below}")
    print(f"  total time {time.perf_counter() - start:.1f} s (first model includes tmol start-up)")
    return 0 if (rhos >= args.threshold).all() else 1


if __name__ == "__main__":
    sys.exit(main())
