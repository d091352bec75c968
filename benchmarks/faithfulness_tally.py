"""Tally the faithfulness aim over kept benchmark runs: does each half hold, by how much, at what settings.

The aim (issue 7): scrambler inclusion has the lowest inclusion area of all methods run on a protein, and
the occlusion scrambler the highest occlusion area. ``docs/benchmarks.md`` reports it run by run; this
script reads the kept result folders and recomputes every verdict from their ``auc.tsv`` files, so the
tables there can be checked against the files rather than taken on trust.

Every ``done.json`` under the given folders with an ``auc.tsv`` beside it is one protein-run (a run folder
of one protein, or ``proteins/NAME/`` of a larger run). A half is judged where its scrambler and at least
one other method ran; the margin is the scrambler's area against the best other method's (inclusion:
how far below it, occlusion: how far above it, in percent). Precision comes from the run's ``timing.tsv``.

A run folder copied and extended with more methods (the same scramblers' cached results, new competitors
beside them) is one optimisation, not two: protein-runs whose scrambler importance (``importance.tsv``)
equals another's on the same protein count once, as the run with the most methods (``copies`` says how many
were folded into it), so the tally counts optimisations, not folders. Where two runs share only one
scrambler (one redone, say with ``--occlusion-restarts``, the other reused), that half is judged once, in
the run with the most methods, and shown as ``-`` in the other.

It prints a markdown table (one row per protein-run with at least one half judged), then one tally line
per protocol, and with ``--out`` writes the table as a TSV.

    python benchmarks/faithfulness_tally.py [FOLDER ...] [--protocol published|quick] [--protein NAME]
        [--out TSV]

With no folder it reads ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from protscramble.benchmark.runner import read_tsv, write_tsv

TARGETS = {"inclusion": "scrambler_inclusion", "occlusion": "scrambler_occlusion"}
#: A half's verdict, as the row's ``{mode}_{key}`` columns
VERDICT_KEYS = ("scrambler", "best_other", "other_auc", "margin_pct", "holds")
COLUMNS = (
    "protein", "protocol", "steps", "budget", "restarts", "seed", "precision", "n_methods",
    "inclusion_scrambler", "inclusion_best_other", "inclusion_other_auc", "inclusion_margin_pct",
    "inclusion_holds",
    "occlusion_scrambler", "occlusion_best_other", "occlusion_other_auc", "occlusion_margin_pct",
    "occlusion_holds",
    "copies", "run",
)  # fmt: skip


def judge_half(areas: dict[str, float], mode: str) -> dict[str, Any] | None:
    """The verdict on one half from the areas of the methods run; ``None`` where it cannot be judged.

    Examples
    --------
    >>> v = judge_half({"scrambler_inclusion": 0.9, "ism": 1.2, "random": 1.4}, "inclusion")
    >>> v["best_other"], round(v["margin_pct"], 1), v["holds"]
    ('ism', 25.0, True)
    >>> judge_half({"scrambler_occlusion": 1.0, "scrambler_inclusion": 1.1}, "occlusion")["holds"]
    False
    """
    target = TARGETS[mode]
    others = {m: a for m, a in areas.items() if m != target}
    if target not in areas or not others:
        return None
    ours = areas[target]
    if mode == "inclusion":  # lower is better
        best = min(others, key=others.__getitem__)
        margin = (others[best] - ours) / others[best]
    else:
        best = max(others, key=others.__getitem__)
        margin = (ours - others[best]) / others[best]
    return {"scrambler": ours, "best_other": best, "other_auc": others[best], "margin_pct": 100 * margin,
            "holds": margin > 0}  # fmt: skip


def protein_runs(folders: Iterable[Path]) -> list[Path]:
    """Folders holding a ``done.json`` with an ``auc.tsv`` beside it, in path order, each once."""
    found = {
        d.parent.resolve()
        for f in folders
        for d in Path(f).rglob("done.json")
        if (d.parent / "auc.tsv").is_file()
    }
    return sorted(found)


def tally_run(run: Path) -> dict[str, Any] | None:
    """One row of the tally for the protein-run in ``run``; ``None`` where neither half can be judged."""
    done = json.loads((run / "done.json").read_text())
    settings = done["settings"]
    protein = settings["protein"]
    protocol = settings.get("protocol", {})
    areas: dict[str, dict[str, float]] = {"inclusion": {}, "occlusion": {}}
    for row in read_tsv(run / "auc.tsv"):
        if str(row["protein"]) == protein and row["mode"] in areas:
            areas[row["mode"]][row["method"]] = row["auc"]
    verdicts = {mode: judge_half(per, mode) for mode, per in areas.items()}
    if not any(verdicts.values()):
        return None
    timing = run / "timing.tsv"
    precisions = (
        sorted({r["precision"] for r in read_tsv(timing) if r.get("precision")}) if timing.is_file() else []
    )
    row: dict[str, Any] = {
        "protein": protein,
        "protocol": protocol.get("name", "?"),
        "steps": settings.get("steps"),
        # the field was added after the first runs, whose budget was the complement of the target bits
        "budget": protocol.get("occlusion_budget", "complement (not recorded)"),
        # occlusion scramblers run, the best kept (``--occlusion-restarts``; recorded only above one)
        "restarts": protocol.get("occlusion_restarts", 1),
        "seed": protocol.get("seed"),
        "precision": "/".join(precisions) or "?",
        "n_methods": len(set(areas["inclusion"]) | set(areas["occlusion"])),
        "run": str(run),
    }
    for mode, v in verdicts.items():
        for key in VERDICT_KEYS:
            row[f"{mode}_{key}"] = None if v is None else v[key]
    return row


ImportanceReader = Callable[[Path], "tuple[dict[str, Any], ...] | None"]


def read_importance(run: Path) -> tuple[dict[str, Any], ...] | None:
    """``run``'s ``importance.tsv`` rows (``None`` without the file)."""
    path = run / "importance.tsv"
    return tuple(read_tsv(path)) if path.is_file() else None


def scrambler_fingerprint(
    run: Path, columns: Iterable[str] = TARGETS.values(), read: ImportanceReader = read_importance
) -> tuple[Any, ...] | None:
    """The importance of the scramblers among ``columns`` in ``run`` (``None`` without such a column)."""
    rows = read(run)
    if rows is None:
        return None
    wanted = set(columns)
    cols = sorted(c for c in (rows[0] if rows else {}) if c in wanted)
    return tuple((c, tuple(r[c] for r in rows)) for c in cols) or None


def _fullest(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row that stands for ``members``: the run with the most methods (ties: the last folder)."""
    return max(members, key=lambda r: (r["n_methods"], r["run"]))


def fold_copies(
    rows: Sequence[dict[str, Any]], read: ImportanceReader = read_importance
) -> list[dict[str, Any]]:
    """``rows`` with each set of protein-runs sharing one scrambler result folded into the one with the
    most methods (its ``copies``: how many others it stands for); order kept."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for i, r in enumerate(rows):
        fingerprint = scrambler_fingerprint(Path(r["run"]), read=read)
        groups.setdefault((r["protein"], fingerprint) if fingerprint is not None else i, []).append(r)
    kept = {}
    for members in groups.values():
        best = _fullest(members)
        kept[id(best)] = len(members) - 1
    return [{**r, "copies": kept[id(r)]} for r in rows if id(r) in kept]


def fold_halves(
    rows: Sequence[dict[str, Any]], read: ImportanceReader = read_importance
) -> list[dict[str, Any]]:
    """``rows`` with a half's verdict blanked where its scrambler is another row's on the same protein.

    A run that redoes one scrambler and reuses the other's cached result (``--occlusion-restarts`` over a
    finished run, say) shares that half's optimisation with the first run; the half is judged once, in the
    row with the most methods, and the other row shows ``-`` for it. Rows left with no half are dropped.
    """
    out = [dict(r) for r in rows]
    for mode, column in TARGETS.items():
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in out:
            if r[f"{mode}_holds"] is None:
                continue
            fingerprint = scrambler_fingerprint(Path(r["run"]), [column], read)
            if fingerprint is not None:
                groups.setdefault((r["protein"], fingerprint), []).append(r)
        for members in groups.values():
            best = _fullest(members)
            for r in members:
                if r is not best:
                    r.update({f"{mode}_{key}": None for key in VERDICT_KEYS})
    return [r for r in out if r["inclusion_holds"] is not None or r["occlusion_holds"] is not None]


def tally(
    folders: Sequence[Path], protocol: str | None = None, protein: str | None = None
) -> list[dict[str, Any]]:
    """Rows of :func:`tally_run` over every protein-run under ``folders`` (copies folded,
    :func:`fold_copies`, then shared halves, :func:`fold_halves`), filtered by protocol and protein."""
    read = functools.cache(read_importance)  # both folds fingerprint every run; read each file once
    runs = [r for r in map(tally_run, protein_runs(folders)) if r is not None]
    rows = fold_halves(fold_copies(runs, read), read)
    return [
        r
        for r in rows
        if (protocol is None or r["protocol"] == protocol) and (protein is None or r["protein"] == protein)
    ]


def tally_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per protocol: on how many protein-runs each half, and both where both were judged, hold."""
    lines = []
    for name in sorted({r["protocol"] for r in rows}):
        sub = [r for r in rows if r["protocol"] == name]
        parts = []
        for mode in ("inclusion", "occlusion"):
            judged = [r for r in sub if r[f"{mode}_holds"] is not None]
            parts.append(f"{mode} holds on {sum(r[f'{mode}_holds'] for r in judged)} of {len(judged)}")
        both = [r for r in sub if r["inclusion_holds"] is not None and r["occlusion_holds"] is not None]
        n_both = sum(r["inclusion_holds"] and r["occlusion_holds"] for r in both)
        parts.append(f"both on {n_both} of {len(both)} judged on both")
        lines.append(f"{name}: " + "; ".join(parts) + f" ({len({r['protein'] for r in sub})} proteins)")
    return lines


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def markdown(rows: Sequence[dict[str, Any]], root: Path) -> str:
    """The table as markdown, run folders relative to ``root`` where they lie under it."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        run = Path(r["run"])
        shown = {**r, "run": str(run.relative_to(root) if run.is_relative_to(root) else run)}
        out.append("| " + " | ".join(_fmt(shown[c]) for c in COLUMNS) + " |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", type=Path, help="result folders (default: benchmarks/results)")
    ap.add_argument("--protocol", help="only runs of this protocol (published, quick)")
    ap.add_argument("--protein", help="only runs of this protein")
    ap.add_argument("--out", type=Path, help="also write the table as a TSV")
    args = ap.parse_args(argv)
    folders = args.folders or [Path(__file__).resolve().parent / "results"]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        ap.error(f"not a folder: {', '.join(missing)}")
    rows = tally(folders, args.protocol, args.protein)
    if not rows:
        ap.error("no protein-run with a scrambler and another method under the given folders")
    root = Path(folders[0]).resolve() if len(folders) == 1 else Path.cwd().resolve()
    print(markdown(rows, root))
    print()
    print("\n".join(tally_lines(rows)))
    if args.out:
        write_tsv(args.out, rows, COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
