"""How closely two benchmark runs of the same protein agree: importance, curve areas, evaluation KL.

A run made at the same seed and settings on another machine (another CPU's bf16 kernels, a GPU) is not
bit-for-bit the same; this script says by how much it differs, per method both runs share, from the kept
files alone, so a reproducibility claim in ``docs/benchmarks.md`` can be recomputed rather than trusted:

- importance: Spearman between the two runs' per-position importance, how many of the top fraction of
  positions (``--top``, default 0.2) the two share, and the largest absolute difference;
- areas under the faithfulness curves (``auc.tsv``), per method and half: both values and the second's
  difference from the first in percent;
- evaluation KL (``eval_kl.tsv``) likewise, for the methods that have one;
- the device and precision each run recorded (``timing.tsv``), and the recorded settings (``done.json``)
  that differ between the two.

Each argument is a protein-run folder (``done.json`` beside ``importance.tsv``) or a run folder with
``proteins/NAME/`` inside; with run folders every protein both hold is compared (``--protein`` picks
one). A protein-run without its own ``auc.tsv``, ``eval_kl.tsv`` or ``timing.tsv`` (older runs kept them
merged, one row per protein, in the run folder) reads its run folder's.

    python benchmarks/run_agreement.py RUN_A RUN_B [--protein NAME] [--top 0.2] [--out TSV]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from protscramble.benchmark.runner import read_tsv, write_tsv

COLUMNS = (
    "protein", "method", "quantity", "a", "b", "diff_pct", "spearman", "top_shared", "top_k",
    "max_abs_diff",
)  # fmt: skip


class AgreementError(ValueError):
    """The two runs cannot be compared (different sequences, no ``importance.tsv``, a bad ``--top``)."""


def protein_runs(folder: Path) -> dict[str, Path]:
    """Protein name -> protein-run folder: the folder itself, or each ``proteins/NAME/`` with ``done.json``."""
    done = folder / "done.json"
    if done.is_file():
        try:
            name = json.loads(done.read_text())["settings"]["protein"]
        except (ValueError, KeyError, TypeError):
            name = folder.name  # an older or hand-made done.json: the folder is named after the protein
        return {str(name): folder}
    root = folder / "proteins"
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "done.json").is_file()}


def _importance(run: Path) -> tuple[list[str], dict[str, list[float]]]:
    path = run / "importance.tsv"
    if not path.is_file():
        raise AgreementError(f"{run}: no importance.tsv")
    rows = read_tsv(path)
    methods = [c for c in rows[0] if c not in ("position", "residue")] if rows else []
    residues = [str(r.get("residue", "")) for r in rows]
    return residues, {m: [float(r[m]) for r in rows] for m in methods if all(r[m] is not None for r in rows)}


def _by_key(path: Path | None, protein: str, key: tuple[str, ...], value: str) -> dict[tuple, float]:
    if path is None:
        return {}
    return {
        tuple(r[k] for k in key): float(r[value])
        for r in read_tsv(path)
        if r.get("protein") == protein and r.get(value) is not None
    }


def table(run: Path, name: str) -> Path | None:
    """A protein-run's TSV ``name``: its own, else its run folder's merged one (older runs kept only
    ``importance.tsv`` and ``done.json`` under ``proteins/NAME/``; the rows name their protein)."""
    for path in (run / name, run.parent.parent / name if run.parent.name == "proteins" else None):
        if path is not None and path.is_file():
            return path
    return None


def _device(run: Path, protein: str) -> str:
    path = table(run, "timing.tsv")
    if path is None:
        return "?"
    seen = {
        f"{r['device']} ({r.get('precision') or '?'})"
        for r in read_tsv(path)
        if r.get("device") and r.get("protein") in (None, protein)
    }
    return "; ".join(sorted(seen)) or "?"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def settings_diff(a: Path, b: Path) -> list[str]:
    """The recorded settings (``done.json``) that differ between two protein-runs, as ``key: a / b``.

    A difference in, say, ``protocol.occlusion_budget`` means the two occlusion scramblers answered
    different questions, so their rows compare settings as well as arithmetic.
    """

    def settings(run: Path) -> dict[str, Any]:
        try:
            return _flat(json.loads((run / "done.json").read_text()).get("settings", {}))
        except (OSError, ValueError, AttributeError):
            return {}

    sa, sb = settings(a), settings(b)
    return [
        f"{k}: {sa.get(k, '-')} / {sb.get(k, '-')}"
        for k in sorted(sa.keys() | sb.keys())
        if sa.get(k) != sb.get(k)
    ]


def _top(values: list[float], k: int) -> set[int]:
    return set(sorted(range(len(values)), key=lambda i: -values[i])[:k])


def _pct(a: float, b: float) -> float | None:
    return 100.0 * (b - a) / abs(a) if a else None


def compare(a: Path, b: Path, protein: str, top: float = 0.2) -> list[dict[str, Any]]:
    """Rows of agreement between protein-runs ``a`` and ``b`` of ``protein``, per method they share.

    Examples
    --------
    ``compare(Path("xeon/proteins/P"), Path("epyc/proteins/P"), "P")`` gives one ``importance`` row per
    shared method (Spearman, top-20% positions shared), one ``auc_inclusion`` / ``auc_occlusion`` row per
    shared method and half, and one ``eval_kl`` row per method with an evaluation KL in both.
    """
    if not 0 < top <= 1:
        raise AgreementError(f"--top must be in (0, 1], got {top}")
    res_a, imp_a = _importance(a)
    res_b, imp_b = _importance(b)
    if res_a != res_b:
        first = next(
            (i for i, (p, q) in enumerate(zip(res_a, res_b, strict=False)) if p != q),
            min(len(res_a), len(res_b)),
        )
        raise AgreementError(
            f"{protein}: the two runs explain different sequences "
            f"(lengths {len(res_a)} and {len(res_b)}, first difference at position {first + 1})"
        )
    rows: list[dict[str, Any]] = []
    k = max(1, math.ceil(top * len(res_a)))
    for m in [m for m in imp_a if m in imp_b]:
        x, y = imp_a[m], imp_b[m]
        rho = spearmanr(x, y).statistic if len(x) > 1 else float("nan")
        rows.append({
            "protein": protein, "method": m, "quantity": "importance", "spearman": float(rho),
            "top_shared": len(_top(x, k) & _top(y, k)), "top_k": k,
            "max_abs_diff": max(abs(p - q) for p, q in zip(x, y, strict=True)),
        })  # fmt: skip
    auc_a = _by_key(table(a, "auc.tsv"), protein, ("method", "mode"), "auc")
    auc_b = _by_key(table(b, "auc.tsv"), protein, ("method", "mode"), "auc")
    for method, mode in [key for key in auc_a if key in auc_b]:
        va, vb = auc_a[(method, mode)], auc_b[(method, mode)]
        rows.append({"protein": protein, "method": method, "quantity": f"auc_{mode}", "a": va, "b": vb,
                     "diff_pct": _pct(va, vb)})  # fmt: skip
    key = ("method", "target_bits")
    kl_a = _by_key(table(a, "eval_kl.tsv"), protein, key, "eval_kl_mean")
    kl_b = _by_key(table(b, "eval_kl.tsv"), protein, key, "eval_kl_mean")
    for method, bits in [key for key in kl_a if key in kl_b]:
        va, vb = kl_a[(method, bits)], kl_b[(method, bits)]
        rows.append({"protein": protein, "method": f"{method} ({bits:g} bits)", "quantity": "eval_kl",
                     "a": va, "b": vb, "diff_pct": _pct(va, vb)})  # fmt: skip
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", type=Path, help="first run (protein-run folder or run folder)")
    ap.add_argument("run_b", type=Path, help="second run")
    ap.add_argument("--protein", help="compare only this protein")
    ap.add_argument("--top", type=float, default=0.2, help="fraction of positions for the top-set overlap")
    ap.add_argument("--out", type=Path, help="also write the rows as a TSV")
    args = ap.parse_args(argv)
    for f in (args.run_a, args.run_b):
        if not f.is_dir():
            ap.error(f"not a folder: {f}")
    if not 0 < args.top <= 1:
        ap.error(f"--top must be in (0, 1], got {args.top}")
    runs_a, runs_b = protein_runs(args.run_a), protein_runs(args.run_b)
    shared = [p for p in runs_a if p in runs_b and (args.protein is None or p == args.protein)]
    if not shared:
        ap.error("the two folders hold no protein-run of the same protein" + (
            f" named {args.protein}" if args.protein else ""))  # fmt: skip
    rows: list[dict[str, Any]] = []
    try:  # every protein compared before anything is printed: an error leaves no half a report
        for p in shared:
            rows += compare(runs_a[p], runs_b[p], p, args.top)
    except AgreementError as exc:
        ap.exit(2, f"{ap.prog}: error: {exc}\n")
    for p in shared:
        print(f"{p}: a = {_device(runs_a[p], p)}; b = {_device(runs_b[p], p)}")
        diff = settings_diff(runs_a[p], runs_b[p])
        print("  settings differ: " + "; ".join(diff) if diff else "  settings: the same")
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |")
    if args.out:
        write_tsv(args.out, rows, COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
