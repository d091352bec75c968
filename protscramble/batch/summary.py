"""The campaign summary: one TSV and one sortable HTML page over all designs.

Values are read back from each design's folder (not kept in memory), so the
summary of a resumed run equals that of an uninterrupted one.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..io import atomic_write_text
from .manifest import Manifest
from .status import DONE, StatusRecord

TOP_RESIDUES = 5
#: Columns copied from a design's explain/summary.json (eval_kl_sem is absent from older runs' files).
EXPLAIN_KEYS = (
    "length",
    "conservation_bits",
    "eval_kl_mean",
    "eval_kl_median",
    "eval_kl_sem",
    "final_divergence",
)
#: (column, kind) in output order; kind ``num`` sorts numerically in the HTML page.
COLUMNS: list[tuple[str, str]] = [
    ("id", "text"),
    ("state", "text"),
    ("stage", "text"),
    ("error", "text"),
    ("length", "num"),
    ("conservation_bits", "num"),
    ("eval_kl_mean", "num"),
    ("eval_kl_median", "num"),
    ("eval_kl_sem", "num"),
    ("final_divergence", "num"),
    ("top_residues", "text"),
    ("structure", "text"),
    ("chain", "text"),
    ("energy_backend", "text"),
    ("sequence_identity", "num"),
    ("rho_abs_energy", "num"),
    ("p_abs_energy", "num"),
    ("rho_total_energy", "num"),
    ("p_total_energy", "num"),
    ("ddg_topk_difference", "num"),
    ("ddg_topk_p", "num"),
    ("hbnet_ap", "num"),
    ("hbnet_baseline", "num"),
    ("folder", "text"),
    ("report", "text"),
]
#: Where another command may have put a per-design HTML report.
REPORT_NAMES = ("report.html", "explain/report.html")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def top_residues(importance_tsv: Path, k: int = TOP_RESIDUES) -> str:
    """``W12,L15,...``: the ``k`` most important positions (ties broken by position)."""
    rows = []
    try:
        lines = importance_tsv.read_text(encoding="utf-8").splitlines()[1:]
    except OSError:
        return ""
    for line in lines:
        cells = line.split("\t")
        if len(cells) >= 3:
            rows.append((-float(cells[2]), int(cells[0]), cells[1]))
    return ",".join(f"{aa}{pos}" for _, pos, aa in sorted(rows)[:k])


def _get(data: dict, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def design_row(out: Path, design_id: str, record: StatusRecord | None) -> dict[str, Any]:
    """One summary row from the status record and, when done, the design's folder."""
    row: dict[str, Any] = {name: None for name, _ in COLUMNS}
    row["id"] = design_id
    if record is None:
        row["state"] = "pending"
        return row
    row.update(state=record.state, stage=record.stage, error=record.error)
    if record.state != DONE or not record.folder:
        return row
    folder = out / record.folder
    row["folder"] = record.folder
    explain = read_json(folder / "explain" / "summary.json")
    design = read_json(folder / "design.json")
    for key in EXPLAIN_KEYS:
        row[key] = explain.get(key)
    row["top_residues"] = top_residues(folder / "explain" / "importance.tsv")
    row["structure"] = Path(design["structure"]).name if design.get("structure") else None
    row["chain"] = design.get("chain")
    compare = read_json(folder / "compare" / "summary.json")
    if compare:
        stats = compare.get("statistics", {})
        row.update(
            energy_backend=compare.get("energy_backend"),
            sequence_identity=_get(compare, "mapping", "identity"),
            rho_abs_energy=_get(stats, "spearman", "abs_total", "rho"),
            p_abs_energy=_get(stats, "spearman", "abs_total", "p_value"),
            rho_total_energy=_get(stats, "spearman", "total", "rho"),
            p_total_energy=_get(stats, "spearman", "total", "p_value"),
            ddg_topk_difference=_get(stats, "topk_ddg", "difference"),
            ddg_topk_p=_get(stats, "topk_ddg", "p_value"),
            hbnet_ap=_get(stats, "hbnet_average_precision", "average_precision"),
            hbnet_baseline=_get(stats, "hbnet_average_precision", "baseline"),
        )
    row["report"] = next((f"{record.folder}/{n}" for n in REPORT_NAMES if (folder / n).is_file()), None)
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.6g}"
    return " ".join(str(value).split())  # no tabs or newlines inside a TSV cell


def to_tsv(rows: list[dict[str, Any]]) -> str:
    lines = ["\t".join(name for name, _ in COLUMNS)]
    lines += ["\t".join(_cell(row[name]) for name, _ in COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(quote(href))}">{html.escape(text)}</a>'


def _html_cell(name: str, row: dict[str, Any]) -> str:
    value = row[name]
    blank = value is None or (isinstance(value, float) and not math.isfinite(value))
    sort = "" if blank else _cell(value)  # blanks (and NaN) sort last
    if name == "id" and row["folder"]:
        content = _link(row["folder"] + "/", str(value))
    elif name == "folder" and value:
        links = [_link(f"{value}/explain/importance.png", "importance")]
        if row["energy_backend"] is not None:
            links.append(_link(f"{value}/compare/scatter.png", "vs energy"))
        content = " ".join(links)
    elif name == "report" and value:
        content = _link(value, "report")
    else:
        content = html.escape(_cell(value))
    css = ' class="error"' if name == "error" else ""
    return f'<td{css} data-sort="{html.escape(sort)}">{content}</td>'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.45em; text-align: left; vertical-align: top; }
th { background: #eee; cursor: pointer; position: sticky; top: 0; user-select: none; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
tr.failed td { background: #fdecea; } tr.pending td { background: #fff8e1; }
td.error { max-width: 30em; }
"""

# Click a header to sort (again to reverse); numeric columns sort as numbers, blanks last.
_SCRIPT = """
document.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const asc = !th.classList.contains("asc");
  th.parentNode.querySelectorAll("th").forEach(h => h.classList.remove("asc", "desc"));
  th.classList.add(asc ? "asc" : "desc");
  const num = th.dataset.type === "num";
  const key = tr => tr.cells[col].dataset.sort;
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    const c = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, {numeric: true});
    return asc ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}));
"""


def to_html(rows: list[dict[str, Any]], title: str = "protscramble design campaign") -> str:
    done = [r for r in rows if r["state"] == DONE]
    rhos = [r["rho_abs_energy"] for r in done if isinstance(r["rho_abs_energy"], int | float)]
    rhos = [x for x in rhos if math.isfinite(x)]
    counts = {s: sum(r["state"] == s for r in rows) for s in ("done", "failed", "pending")}
    median = f"{statistics.median(rhos):.3f}" if rhos else "n/a"
    head = "".join(f'<th data-type="{kind}">{html.escape(name)}</th>' for name, kind in COLUMNS)
    body = "\n".join(
        f'<tr class="{html.escape(str(r["state"]))}">'
        + "".join(_html_cell(n, r) for n, _ in COLUMNS)
        + "</tr>"
        for r in rows
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(rows)} designs: {counts["done"]} done, {counts["failed"]} failed, {counts["pending"]} pending.
Median Spearman &rho;(importance, |per-residue energy|) over {len(rhos)} compared designs: {median}.
Click a column header to sort.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_campaign(out: Path, manifest: Manifest, latest: dict[str, StatusRecord]) -> tuple[Path, Path]:
    """Write ``campaign.tsv`` and ``campaign.html`` (atomically) in manifest order."""
    rows = [design_row(out, i, latest.get(i)) for i in manifest.ids]
    atomic_write_text(out / "campaign.tsv", to_tsv(rows))
    atomic_write_text(out / "campaign.html", to_html(rows))
    return out / "campaign.tsv", out / "campaign.html"
