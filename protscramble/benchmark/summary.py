"""Aggregate per-protein results into tables, a markdown summary and figures."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text
from .proteins import source_protein
from .protocols import Protocol
from .runner import (
    AUC_COLUMNS,
    EVAL_COLUMNS,
    FAITHFULNESS_COLUMNS,
    STRUCTURE_COLUMNS,
    TIMING_COLUMNS,
    read_tsv,
    write_tsv,
)

PUBLISHED_COLUMNS = (
    "protein", "background", "target_bits", "published_steps", "published_eval_kl_mean",
    "published_eval_kl_median", "our_steps", "our_bits", "our_eval_samples", "our_eval_kl_mean",
    "our_eval_kl_median", "our_eval_kl_sem", "at_or_below", "our_minus_published_in_sem",
)  # fmt: skip
# published_results.tsv averages over 512 sampled sequences (its README); a mean over fewer is too noisy
# to set beside it (hallucinated_0417's quick-protocol PSSM: 2.999 from 32 samples, 3.162 from 512)
PUBLISHED_EVAL_SAMPLES = 512


def _published_background(label: str) -> tuple[str, float | None]:
    if label.startswith("native"):
        return "native", None
    if label.startswith("msa_frequencies_pseudocount_"):
        return "msa", float(label.rsplit("_", 1)[1])
    return label, None


def _at_or_below(ours: dict[str, Any] | None, published_mean: float) -> str:
    """``yes``/``no``; ``n/a`` when our mean rests on fewer samples than the published one (older result
    files without the count are judged as they are)."""
    if ours is None:
        return ""
    n = ours.get("eval_samples")
    if n is not None and n < PUBLISHED_EVAL_SAMPLES:
        return f"n/a ({int(n)} samples; published {PUBLISHED_EVAL_SAMPLES})"
    return "yes" if ours["eval_kl_mean"] <= published_mean else "no"


def _in_sem(ours: dict[str, Any] | None, published_mean: float) -> float | None:
    """How many of our standard errors our mean lies above (negative: below) the published mean.

    Within about two, another draw of our evaluation samples could put the mean on either side. The
    published mean has a sampling error of its own, not known (its samples are not published) but
    presumably of the same size, so the difference's error is nearer sqrt(2) of ours."""
    if ours is None or not ours.get("eval_kl_sem"):
        return None
    return (ours["eval_kl_mean"] - published_mean) / ours["eval_kl_sem"]


def published_comparison(
    published: str | os.PathLike, evals: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every row of ``published_results.tsv`` with our scrambler-inclusion evaluation KL at the same settings."""
    ours = {
        (source_protein(str(e["protein"])), e["background"], float(e["target_bits"])): e
        for e in evals
        if e["method"] == "scrambler_inclusion"
    }
    rows = []
    for r in read_tsv(Path(published)):
        bg, pc = _published_background(str(r["background"]))
        e = ours.get((r["protein"], bg, float(r["target_bits"])))
        if e is not None and pc is not None and float(e["pseudocount"]) != pc:
            e = None
        rows.append({
            "protein": r["protein"] if e is None else e["protein"], "background": r["background"],
            "target_bits": float(r["target_bits"]),
            "published_steps": int(r["optimizer_updates"]),
            "published_eval_kl_mean": r["eval_kl_mean"], "published_eval_kl_median": r["eval_kl_median"],
            "our_steps": None if e is None else int(e["steps"]),
            "our_bits": None if e is None else e.get("bits"),
            "our_eval_kl_mean": None if e is None else e["eval_kl_mean"],
            "our_eval_kl_median": None if e is None else e["eval_kl_median"],
            "our_eval_samples": None if e is None else e.get("eval_samples"),
            "our_eval_kl_sem": None if e is None else e.get("eval_kl_sem"),
            "at_or_below": _at_or_below(e, r["eval_kl_mean"]),
            "our_minus_published_in_sem": _in_sem(e, r["eval_kl_mean"]),
        })  # fmt: skip
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e6 else f"{v:.3f}"
    return str(v)


def _markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _best_first(per: dict[str, float], mode: str) -> list[str]:
    """Methods ordered best first by area: inclusion ascending, occlusion descending (stable on ties)."""
    return sorted(per, key=per.__getitem__, reverse=mode == "occlusion")


def _auc_table(
    aucs: Sequence[dict[str, Any]], methods: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Wide table: one row per protein, inclusion and occlusion AUC per method; best marked."""
    proteins = list(dict.fromkeys(a["protein"] for a in aucs))
    rows, checks = [], []
    for prot in proteins:
        vals = {(a["method"], a["mode"]): a["auc"] for a in aucs if a["protein"] == prot}
        row: dict[str, Any] = {"protein": prot}
        for mode in ("inclusion", "occlusion"):
            for m in methods:
                row[f"{m} {mode[:3]}"] = vals.get((m, mode))
            per = {m: vals[(m, mode)] for m in methods if (m, mode) in vals}
            target = "scrambler_inclusion" if mode == "inclusion" else "scrambler_occlusion"
            if target in per and len(per) > 1:
                best = _best_first(per, mode)[0]
                checks.append(
                    f"{prot} {mode}: best {best} ({'aim met' if best == target else 'aim NOT met'})"
                )
        rows.append(row)
    return rows, checks


AUC_OVERVIEW_COLUMNS = ("method", "mode", "n_proteins", "mean_rank", "n_best", "mean_auc")
STRUCTURE_OVERVIEW_COLUMNS = (
    "method", "metric", "n_proteins", "mean", "median", "min", "max", "n_p_below_0.05", "wilcoxon_p",
)  # fmt: skip
#: Structure metrics summarised across proteins (the per-term Spearman rows stay in structure.tsv).
OVERVIEW_METRICS = ("spearman_total", "spearman_abs_total", "hbnet_average_precision")


def auc_overview(aucs: Sequence[dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    """Per method and mode: mean rank of its area among the methods run on each protein (1 = best).

    Inclusion ranks ascending (lower KL when keeping the top positions is better), occlusion
    descending. ``n_best`` counts the proteins where the method ranks first.

    Examples
    --------
    >>> rows = auc_overview([
    ...     {"protein": "a", "method": "m1", "mode": "inclusion", "auc": 1.0},
    ...     {"protein": "a", "method": "m2", "mode": "inclusion", "auc": 2.0},
    ... ], ["m1", "m2"])
    >>> [(r["method"], r["mean_rank"], r["n_best"]) for r in rows]
    [('m1', 1.0, 1), ('m2', 2.0, 0)]
    """
    ranks: dict[tuple[str, str], list[int]] = {}
    values: dict[tuple[str, str], list[float]] = {}
    for prot in dict.fromkeys(a["protein"] for a in aucs):
        for mode in ("inclusion", "occlusion"):
            per = {a["method"]: float(a["auc"]) for a in aucs if (a["protein"], a["mode"]) == (prot, mode)}
            for rank, m in enumerate(_best_first(per, mode), 1):
                ranks.setdefault((m, mode), []).append(rank)
                values.setdefault((m, mode), []).append(per[m])
    return [
        {
            "method": m,
            "mode": mode,
            "n_proteins": len(ranks[(m, mode)]),
            "mean_rank": float(np.mean(ranks[(m, mode)])),
            "n_best": sum(r == 1 for r in ranks[(m, mode)]),
            "mean_auc": float(np.mean(values[(m, mode)])),
        }  # fmt: skip
        for mode in ("inclusion", "occlusion")
        for m in methods
        if (m, mode) in ranks
    ]


def structure_overview(structure: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method and metric, the spread of the per-protein values and how many reached p < 0.05.

    ``wilcoxon_p`` tests the per-protein values against 0 (two-sided Wilcoxon signed-rank) for the
    signed metrics (Spearman, top-k ddG difference), given five proteins or more; average precision
    has no zero null (it sits at the protein's share of network residues) and gets none.
    """
    from scipy.stats import wilcoxon

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in structure:
        metric = str(r["metric"])
        if r["value"] is not None and (metric in OVERVIEW_METRICS or metric.endswith("_ddg_difference")):
            groups.setdefault((str(r["method"]), metric), []).append(r)
    rows = []
    for (method, metric), rs in groups.items():
        v = np.array([float(r["value"]) for r in rs])
        signed = metric != "hbnet_average_precision"
        rows.append({
            "method": method, "metric": metric, "n_proteins": len(v), "mean": float(v.mean()),
            "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()),
            "n_p_below_0.05": sum(r["p_value"] is not None and r["p_value"] < 0.05 for r in rs),
            "wilcoxon_p": float(wilcoxon(v).pvalue) if signed and len(v) >= 5 and np.any(v != 0) else None,
        })  # fmt: skip
    return rows


def _figures(out: Path, faith: Sequence[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for prot in dict.fromkeys(r["protein"] for r in faith):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
        for ax, mode in zip(axes, ("inclusion", "occlusion"), strict=True):
            rows = [r for r in faith if r["protein"] == prot and r["mode"] == mode]
            for m in dict.fromkeys(r["method"] for r in rows):
                pts = sorted((r["fraction"], r["kl"]) for r in rows if r["method"] == m)
                ax.plot([100 * f for f, _ in pts], [k for _, k in pts], marker="o", label=m)
            ax.set_title(f"{prot} — {mode} ({'lower' if mode == 'inclusion' else 'higher'} is better)")
            ax.set_xlabel("top X% positions " + ("kept" if mode == "inclusion" else "resampled"))
            ax.set_ylabel("KL (nats)")
        axes[1].legend(fontsize=7)
        name = f"faithfulness_{prot}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def write_summary(
    out: Path,
    protein_dirs: Sequence[Path],
    methods: Sequence[str],
    protocol: Protocol,
    *,
    figures: bool = True,
    published: str | os.PathLike | None = None,
) -> Path:
    """Combine the finished proteins' TSVs (requested methods only) and write ``summary.md``."""
    tables: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("faithfulness", "auc", "eval_kl", "structure", "timing")
    }
    runs = []
    for pdir in protein_dirs:
        if not (pdir / "done.json").exists():
            continue
        done = json.loads((pdir / "done.json").read_text())
        runs.append({"protein": done["settings"]["protein"], "device": done["device"],
                     "wall_seconds": done["wall_seconds"], "steps": done["settings"]["steps"]})  # fmt: skip
        # result folders from before eval_kl.tsv recorded it: their settings hold the count
        n_eval = done["settings"].get("protocol", {}).get("eval_samples")
        for key in tables:
            rows = [r for r in read_tsv(pdir / f"{key}.tsv") if r["method"] in methods or key == "timing"]
            if key == "eval_kl":
                rows = [
                    r if r.get("eval_samples") is not None else {**r, "eval_samples": n_eval} for r in rows
                ]
            tables[key] += rows
    write_tsv(out / "faithfulness.tsv", tables["faithfulness"], FAITHFULNESS_COLUMNS)
    write_tsv(out / "auc.tsv", tables["auc"], AUC_COLUMNS)
    write_tsv(out / "eval_kl.tsv", tables["eval_kl"], EVAL_COLUMNS)
    write_tsv(out / "structure.tsv", tables["structure"], STRUCTURE_COLUMNS)
    write_tsv(out / "timing.tsv", tables["timing"], TIMING_COLUMNS)
    comp = (
        published_comparison(published, tables["eval_kl"]) if published and Path(published).exists() else []
    )
    if comp:
        write_tsv(out / "published_comparison.tsv", comp, PUBLISHED_COLUMNS)
    auc_rows, checks = _auc_table(tables["auc"], methods)
    auc_over = auc_overview(tables["auc"], methods)
    struct_over = structure_overview(tables["structure"])
    write_tsv(out / "auc_overview.tsv", auc_over, AUC_OVERVIEW_COLUMNS)
    write_tsv(out / "structure_overview.tsv", struct_over, STRUCTURE_OVERVIEW_COLUMNS)
    md = [
        f"# trRosetta explanation benchmark — {protocol.name} protocol",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in protocol.as_dict().items()),
        "",
        "## Runs",
        "",
        _markdown_table(runs, ("protein", "device", "steps", "wall_seconds")),
        "",
        "## Area under the faithfulness curves (KL x fraction, X = "
        + ", ".join(f"{100 * f:g}%" for f in protocol.fractions)
        + "): inclusion lower is better, occlusion higher is better",
        "",
        _markdown_table(
            auc_rows, ["protein"] + [c for c in (auc_rows[0] if auc_rows else {}) if c != "protein"]
        ),
        "",
        *[f"- {c}" for c in checks],
        "",
    ]
    if len(auc_rows) > 1:
        md += [
            "## Across proteins",
            "",
            "Mean rank of each method's area among the methods run on a protein (1 = best), and the number "
            "of proteins where it ranks first.",
            "",
            _markdown_table(auc_over, AUC_OVERVIEW_COLUMNS),
            "",
        ]
    if tables["eval_kl"]:
        md += ["## Scrambler evaluation KL", "", _markdown_table(tables["eval_kl"], EVAL_COLUMNS), ""]
    if comp:
        md += [
            "## Against published_results.tsv (scrambler inclusion)",
            "",
            _markdown_table(comp, PUBLISHED_COLUMNS),
            "",
        ]
    if tables["structure"]:
        keep = [
            r
            for r in tables["structure"]
            if r["metric"] in ("spearman_total", "spearman_abs_total", "hbnet_average_precision")
            or "ddg" in str(r["metric"])
        ]
        md += [
            "## Structure agreement (all terms in structure.tsv)",
            "",
            _markdown_table(keep, STRUCTURE_COLUMNS),
            "",
        ]
        if len({r["protein"] for r in tables["structure"]}) > 1:
            from ..structures.compare import PUBLISHED_REFERENCE  # biotite: imported only when needed

            md += [
                "### Structure agreement across proteins",
                "",
                "Per-protein values summarised; `wilcoxon_p`: signed-rank test of the per-protein values "
                f"against 0 (five proteins or more). For reference, {PUBLISHED_REFERENCE}.",
                "",
                _markdown_table(struct_over, STRUCTURE_OVERVIEW_COLUMNS),
                "",
            ]
    if figures and tables["faithfulness"]:
        md += ["## Figures", ""] + [f"![{n}]({n})" for n in _figures(out, tables["faithfulness"])] + [""]
    atomic_write_text(out / "summary.md", "\n".join(md))
    return out / "summary.md"
