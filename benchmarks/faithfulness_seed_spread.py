"""Spread of the faithfulness areas over evaluation seeds, from a finished benchmark's importances.

A method "wins" a protein in `benchmark trrosetta` by its area at one evaluation seed. This script
redraws the curves of the cached importance vectors (``OUT/method_cache/PROTEIN/METHOD.json``) with
other seeds, on exactly the inputs the harness used (same predictor settings, background, fractions and
samples per point), and prints each method's area per seed, the mean and the standard deviation, so a
small gap between two methods can be read against the seed-to-seed noise.

    python benchmarks/faithfulness_seed_spread.py --out bench/quick --protein sh3_r1_110_r2_15 \\
        --methods scrambler_inclusion scrambler_occlusion --seeds 1 2 --mode occlusion

On a CPU one seed of two methods at L = 95 and 32 samples per point takes about 15 minutes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from protscramble.benchmark import resolve_proteins
from protscramble.benchmark.metrics import auc_rows, faithfulness_rows
from protscramble.benchmark.runner import CACHE, protein_inputs
from protscramble.predictors.trrosetta import TrRosetta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a benchmark trrosetta output directory")
    ap.add_argument("--protein", required=True)
    ap.add_argument("--methods", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--mode", choices=("inclusion", "occlusion", "both"), default="both")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    entries = {
        m: json.loads((Path(args.out) / CACHE / args.protein / f"{m}.json").read_text()) for m in args.methods
    }
    settings = next(iter(entries.values()))["settings"]
    protocol = settings["protocol"]
    (protein,) = resolve_proteins(args.protein, args.data_dir)
    predictor = TrRosetta(
        settings["models"],
        device=torch.device(args.device),
        precision=protocol["precision"],
        compile=protocol["compile"],
    )
    pred, x, bg, reference = protein_inputs(protein, predictor)
    modes = ("inclusion", "occlusion") if args.mode == "both" else (args.mode,)
    # the harness's own seed: its areas are in the cache, recomputing them would only check reproduction
    areas = {
        (m, r["mode"]): {protocol["seed"]: r["auc"]}
        for m, e in entries.items()
        for r in auc_rows(e["faithfulness"])
        if r["mode"] in modes
    }
    for seed in args.seeds:
        # seed = the harness's seed recomputes its areas: a check that these inputs reproduce them
        rows = faithfulness_rows(
            pred,
            x,
            {m: np.asarray(e["importance"]) for m, e in entries.items()},
            bg,
            reference,
            protocol["fractions"],
            protocol["faithfulness_samples"],
            seed,
            modes,
        )
        for r in auc_rows(rows):
            areas[(r["method"], r["mode"])][seed] = r["auc"]
        print(f"seed {seed} done", flush=True)
    seeds = list(dict.fromkeys([protocol["seed"], *args.seeds]))
    print("method\tmode\t" + "\t".join(f"seed_{s}" for s in seeds) + "\tmean\tsd")
    for (m, mode), per in areas.items():
        v = np.array([per[s] for s in seeds])
        cells = "\t".join(f"{a:.3f}" for a in v)
        print(f"{m}\t{mode}\t{cells}\t{v.mean():.3f}\t{v.std(ddof=1) if v.size > 1 else float('nan'):.3f}")


if __name__ == "__main__":
    main()
