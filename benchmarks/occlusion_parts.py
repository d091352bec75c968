"""Which ranking to take from the fractions budget's occlusion scramblers (``--occlusion-budget fractions``).

A benchmark run at the fractions budget keeps each part's importance (one occlusion scrambler per
curve fraction X, destroying X of the sequence's bits) in ``method_cache/NAME/scrambler_occlusion.json``.
This script re-evaluates, on the same proteins, predictor, samples and seed as that run's curves,
the occlusion curve of:

- ``nested`` (the benchmark's ranking: small fractions first, each part adds its best untaken residues),
  recomputed to check that the curves reproduce the cached ones;
- ``nested_down``: nested from the largest fraction down (the largest part picks its top set, each
  smaller part picks its top set inside the next larger one), so a part that destroys more chooses
  the candidates a smaller one ranks;
- ``part_X``: each part's ranking on its own (one scrambler's cost instead of five).

A run with ``--occlusion-restarts N`` (N > 1) keeps every restart's importance instead; for it the
rankings are ``restart_seedS``, one per restart, the kept one first (its figures recomputed as a check), with
the restart's objective divergence and its evaluation KL (the run's evaluation samples and seed, at the
PSSM its importance makes) beside its area, so whether the objective chose the restart with the highest
curve, and whether the evaluation KL would have, is read off one table. Each restart's occlusion area under
held-out draws (``heldout_auc``: what ``--occlusion-restart-select heldout`` judges by, ``--heldout-samples``
per fraction, seeded apart from the curves) stands beside them, so that rule is measured on runs made
with the objective's, and checked against the areas a held-out run recorded.

It prints one line per protein and ranking (occlusion area, higher is better) and writes
``occlusion_parts.tsv`` (areas and curve points) into the benchmark folder (or ``--out``).

    python benchmarks/occlusion_parts.py BENCH_DIR PROTEIN [PROTEIN ...] [--device cpu] [--precision fp32]
        [--heldout-samples N] [--out TSV]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from protscramble.benchmark import PROTOCOLS, resolve_proteins
from protscramble.benchmark.metrics import curve_auc, faithfulness_rows, heldout_occlusion_area
from protscramble.benchmark.runner import protein_inputs, scrambler_eval_kl, write_tsv
from protscramble.explain import safe_name
from protscramble.faithfulness import top_count
from protscramble.masking import scramble_pssm
from protscramble.predictors.trrosetta import TrRosetta


def nested_down(importances: list[np.ndarray], fractions: list[float]) -> np.ndarray:
    """Nested sets chosen from the largest fraction down; scores in (0, 1], higher ranks first."""
    length = len(importances[0])
    candidates = np.arange(length)
    chosen: list[np.ndarray] = []  # the top set of each fraction, largest first
    for imp, frac in zip(importances[::-1], fractions[::-1], strict=True):
        k = top_count(frac, length)
        candidates = candidates[np.argsort(-imp[candidates], kind="stable")][:k]
        chosen.append(candidates)
    order: list[int] = []
    taken = np.zeros(length, dtype=bool)
    # smallest set first, each ordered by its own part; then each next ring; the rest by the largest part
    for imp, top in zip(importances, chosen[::-1], strict=True):
        for pos in top[np.argsort(-imp[top], kind="stable")]:
            if not taken[pos]:
                order.append(int(pos))
                taken[pos] = True
    order += [int(i) for i in np.argsort(-importances[-1], kind="stable") if not taken[i]]
    scores = np.empty(length)
    scores[order] = (length - np.arange(length)) / length
    return scores


#: the protocol settings that shape the occlusion curves and the evaluation KL
RUN_SETTINGS = ("faithfulness_samples", "eval_samples", "fractions", "seed", "compile", "heldout_samples")


def cached_rankings(entry: dict) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The rankings to re-evaluate from a cached occlusion scrambler (fractions parts or restarts), and
    per ranking the extra columns of its row. The benchmark's own ranking comes first: ``nested``, or the
    kept restart (marked ``kept``; its importance is the cached one)."""
    kept = np.asarray(entry["importance"], dtype=np.float64)
    if entry.get("restarts"):
        rankings, extra = {}, {}
        for r in entry["restarts"]:
            name = f"restart_seed{r['seed']}"
            rankings[name] = np.asarray(r["importance"], dtype=np.float64)
            extra[name] = {"objective_divergence": round(r["objective_divergence"], 4), "kept": r["kept"]}
            if "heldout_occlusion_area" in r:  # recorded by a run that judged its restarts so
                extra[name]["recorded_heldout_auc"] = round(r["heldout_occlusion_area"], 4)
            if r["kept"] and not np.array_equal(rankings[name], kept):
                raise ValueError("the kept restart's importance is not the cached importance")
        first = next(n for n in rankings if extra[n]["kept"])
        return {first: rankings.pop(first), **rankings}, extra
    parts = entry.get("components")
    if entry["settings"]["protocol"].get("occlusion_budget") != "fractions" or not parts:
        raise ValueError("the cached occlusion scrambler has neither fractions-budget parts nor restarts")
    fractions = [c["fraction"] for c in parts]
    imps = [np.asarray(c["importance"], dtype=np.float64) for c in parts]
    rankings = {"nested": kept, "nested_down": nested_down(imps, fractions)}
    rankings.update({f"part_{f:g}": imp for f, imp in zip(fractions, imps, strict=True)})
    return rankings, {name: {} for name in rankings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_dir", type=Path)
    ap.add_argument("proteins", nargs="+")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", help="precision of the curves (default: the one the run's curves used)")
    ap.add_argument(
        "--heldout-samples",
        type=int,
        help="samples per fraction of each restart's held-out curve (default: the run's, else 32)",
    )
    ap.add_argument("--out", type=Path, help="TSV to write (default BENCH_DIR/occlusion_parts.tsv)")
    args = ap.parse_args()
    predictors: dict[tuple[str, str], TrRosetta] = {}
    rows = []
    for p in resolve_proteins(",".join(args.proteins)):
        entry = json.loads(
            (args.bench_dir / "method_cache" / safe_name(p.name) / "scrambler_occlusion.json").read_text()
        )
        try:
            rankings, extra = cached_rankings(entry)
        except ValueError as e:
            raise SystemExit(f"{p.name}: {e}") from None
        # the run's own settings (samples, seed, fractions, precision), so its draws are repeated
        protocol = PROTOCOLS["quick"].with_overrides(**{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in entry["settings"]["protocol"].items()
            if k in RUN_SETTINGS
        })  # fmt: skip
        precision = args.precision or entry.get("faithfulness_precision") or protocol.precision
        key = (precision, protocol.compile)
        if key not in predictors:
            predictors[key] = TrRosetta(
                "xaa", device=torch.device(args.device), precision=precision, compile=protocol.compile
            )
        predictor = predictors[key]
        fractions = list(protocol.fractions)
        pred, x, bg, ref = protein_inputs(p, predictor)
        curves = faithfulness_rows(
            pred,
            x,
            rankings,
            bg,
            ref,
            fractions,
            protocol.faithfulness_samples,
            protocol.seed,
            modes=("occlusion",),
        )
        if entry.get("restarts"):
            # the evaluation KL the runner gives a scrambler, at the PSSM each restart's importance makes
            for name, imp in rankings.items():
                scores = torch.as_tensor(imp, dtype=torch.float32, device=x.device)[None]
                pssm = scramble_pssm(x, scores, bg, "occlusion")
                kl = scrambler_eval_kl(pred, ref, pssm, scores, "occlusion", protocol)
                extra[name]["eval_kl_mean"] = round(float(np.mean(kl)), 4)
                # the held-out area --occlusion-restart-select heldout judges by (its draws, not the curves')
                extra[name]["heldout_auc"] = round(
                    heldout_occlusion_area(
                        pred, x, imp, bg, ref, fractions, args.heldout_samples or protocol.heldout_samples,
                        protocol.seed,
                    ),
                    4,
                )  # fmt: skip
        cached = [r["kl"] for r in entry["faithfulness"] if r["mode"] == "occlusion"]
        first = next(iter(rankings))
        for name in rankings:
            kl = [r["kl"] for r in curves if r["method"] == name]
            area = curve_auc(fractions, kl)
            note = ""
            if name == first:  # the run's own ranking: its recomputed figures should equal the cached ones
                note = f" (cached: {curve_auc(fractions, cached):.3f}"
                if entry.get("eval"):
                    note += f", evaluation KL {entry['eval']['eval_kl_mean']:.4f}"
                note += ")"
            more = "".join(f" {k}={v}" for k, v in extra[name].items())
            print(
                f"{p.name}\t{name}\t{area:.3f}{note}{more}\t" + " ".join(f"{v:.2f}" for v in kl), flush=True
            )
            rows.append(
                {
                    "protein": p.name,
                    "ranking": name,
                    "auc": round(area, 4),
                    **{
                        k: extra[name].get(k, "")
                        for k in ("objective_divergence", "eval_kl_mean", "heldout_auc", "kept")
                    },
                    **{f"kl_{f:g}": v for f, v in zip(fractions, kl, strict=True)},
                }
            )
    write_tsv(args.out or args.bench_dir / "occlusion_parts.tsv", rows, list(rows[0]))


if __name__ == "__main__":
    main()
