"""Held-out rule on the two restart runs recorded before restarts kept their importance (bf16, quick)."""

import csv
import json

import numpy as np
import torch

from protscramble.benchmark import PROTOCOLS, resolve_proteins
from protscramble.benchmark.metrics import curve_auc, faithfulness_rows, heldout_occlusion_area
from protscramble.benchmark.runner import protein_inputs
from protscramble.predictors.trrosetta import TrRosetta

R = "benchmarks/results/"


def tsv_imp(path):
    return np.array([float(r["scrambler_occlusion"]) for r in csv.DictReader(open(path), delimiter="\t")])


parts = json.load(open(R + "2026-11-30/h0685_occlusion_fractions/scrambler_occlusion_parts.json"))
comp = parts.get("components") or parts["settings"].get("components")
imp0685 = np.array(next(c["importance"] for c in comp if abs(c["fraction"] - 0.4) < 1e-9))
cases = {
    "hallucinated_0685": {
        "seed0": imp0685,
        "seed1": tsv_imp(
            R + "2026-12-02/restarts2_hallucinated_0685/proteins/hallucinated_0685/importance.tsv"
        ),
    },
    "pd1_r1_10_r2_8": {
        "seed0": tsv_imp(
            R + "2026-11-30/heldout_designs_occlusion_0.4/proteins/pd1_r1_10_r2_8/importance.tsv"
        ),
        "seed1": tsv_imp(R + "2026-12-02/restarts2_pd1_r1_10_r2_8/proteins/pd1_r1_10_r2_8/importance.tsv"),
    },
}
q = PROTOCOLS["quick"]
pred0 = TrRosetta("xaa", device=torch.device("cpu"), precision="bf16", compile="auto")
for p in resolve_proteins(",".join(cases)):
    pred, x, bg, ref = protein_inputs(p, pred0)
    curves = faithfulness_rows(
        pred, x, cases[p.name], bg, ref, q.fractions, q.faithfulness_samples, 0, modes=("occlusion",)
    )
    for name, imp in cases[p.name].items():
        kl = [r["kl"] for r in curves if r["method"] == name]
        ho = heldout_occlusion_area(pred, x, imp, bg, ref, q.fractions, q.heldout_samples, 0)
        print(p.name, name, f"auc={curve_auc(q.fractions, kl):.4f}", f"heldout_auc={ho:.4f}", flush=True)
