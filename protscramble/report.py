"""One self-contained HTML page per explanation: settings, figures, 3D view, correlations, table.

The page embeds its figures as base64 PNGs and the 3D view's data as
script-safe JSON; with a local 3Dmol.js (``js=``) it inlines that too and
needs nothing else to open, offline. Every string that comes from the user
(names, sequences, settings, file names, chain and residue names) is escaped.

The distogram panels need trRosetta's prediction on the original sequence and
on the scrambled PSSM. :func:`scrambled_predictions` computes them: the
"scrambled" maps are the **mean prediction over sequences sampled from the
PSSM** (hard one-hot draws, the sequences the evaluation KL is measured on),
not a prediction on the soft PSSM itself. :func:`write_predictions` stores
them as ``predictions.npz`` in an explanation folder, where :func:`build_report`
(and ``protscramble view --predicted``) find them; otherwise the report runs
trRosetta itself.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .alphabet import AMINO_ACIDS, one_hot, validate_sequence
from .errors import BackendUnavailableError, InputFileError, InvalidParameterError
from .io import MSA, atomic_output_dir, atomic_savez, atomic_write_text
from .predicted_fold import distogram_for, embed_distogram, read_predictions
from .structure_export import ColourScale, ResidueImportance, lay_importance, text_colour
from .structures.compare import (
    ComparisonResult,
    Importance,
    compare_importance_with_structure,
    read_importance_tsv,
)
from .structures.io import Structure, load_structure
from .viewer import CDN_URL, ImportanceView, inline_script, predicted_fold_view, read_3dmol_js, structure_view

PREDICTIONS_FILE = "predictions.npz"
_OUTPUTS = ("dist", "omega", "theta", "phi")


# ---------------------------------------------------------- explanation folder


@dataclass
class ExplanationFolder:
    """What ``protscramble explain`` wrote for one protein.

    Attributes
    ----------
    path
        The folder.
    importance
        ``importance.tsv``.
    summary
        ``summary.json`` (empty when absent).
    pssm
        ``(L, 20)`` scrambled PSSM from ``pssm.tsv`` (``None`` when absent).
    predictions
        Arrays of ``predictions.npz`` (``None`` when absent).
    """

    path: Path
    importance: Importance
    summary: dict[str, Any] = field(default_factory=dict)
    pssm: np.ndarray | None = None
    predictions: dict[str, np.ndarray] | None = None

    @property
    def name(self) -> str:
        return str(self.summary.get("name") or self.path.name)

    @property
    def sequence(self) -> str:
        return self.importance.sequence

    @property
    def settings(self) -> dict[str, Any]:
        settings = self.summary.get("settings")
        return settings if isinstance(settings, dict) else {}


def read_pssm_tsv(path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """Read ``pssm.tsv`` (position, residue, then the 20 amino acids in ``ARNDCQEGHILKMFPSTWYV`` order).

    Raises
    ------
    InputFileError
        Wrong header, non-numeric or negative entries, rows that do not sum to about 1.
    """
    p = Path(path)
    lines = [line for line in _text(p).splitlines() if line.strip()]
    header = lines[0].split("\t") if lines else []
    if header[:2] != ["position", "residue"] or "".join(header[2:]) != AMINO_ACIDS:
        raise InputFileError(f"{p}: the header must be position, residue and the letters {AMINO_ACIDS}")
    letters, rows = [], []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        try:
            values = [float(c) for c in cells[2:]]
        except ValueError:
            raise InputFileError(f"{p} line {n}: PSSM entries must be numbers") from None
        if len(values) != 20 or not all(math.isfinite(v) and v >= 0 for v in values):
            raise InputFileError(f"{p} line {n}: expected 20 non-negative probabilities")
        if abs(sum(values) - 1.0) > 1e-3:
            raise InputFileError(f"{p} line {n}: probabilities sum to {sum(values):.4f}, not 1")
        letters.append(cells[1].strip().upper())
        rows.append(values)
    if not rows:
        raise InputFileError(f"{p} holds no PSSM rows")
    return "".join(letters), np.asarray(rows)


def _text(path: Path) -> str:
    if not path.is_file():
        raise InputFileError(f"file not found: {path}")
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise InputFileError(f"{path} is a binary file, expected text")
    return data.decode("utf-8", "replace")


def read_explanation(path: str | os.PathLike) -> ExplanationFolder:
    """Read an explanation folder, checking that its files describe the same sequence."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputFileError(f"explanation folder not found: {folder}")
    importance = read_importance_tsv(folder / "importance.tsv")
    summary: dict[str, Any] = {}
    if (folder / "summary.json").is_file():
        try:
            summary = json.loads(_text(folder / "summary.json"))
        except ValueError as err:
            raise InputFileError(f"{folder / 'summary.json'} is not valid JSON: {err}") from None
        if not isinstance(summary, dict):
            raise InputFileError(f"{folder / 'summary.json'} must hold a JSON object")
        if summary.get("sequence") not in (None, importance.sequence):
            raise InputFileError(f"summary.json and importance.tsv in {folder} describe different sequences")
    pssm = None
    if (folder / "pssm.tsv").is_file():
        letters, pssm = read_pssm_tsv(folder / "pssm.tsv")
        if letters != importance.sequence:
            raise InputFileError(f"pssm.tsv and importance.tsv in {folder} describe different sequences")
    predictions = None
    if (folder / PREDICTIONS_FILE).is_file():
        predictions = read_predictions(folder / PREDICTIONS_FILE)
        distogram_for(predictions, importance.sequence)
    return ExplanationFolder(folder, importance, summary, pssm, predictions)


def find_explanations(path: str | os.PathLike) -> list[Path]:
    """The folder itself if it holds ``importance.tsv``, else its sub-folders that do (sorted)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputFileError(f"explanation folder not found: {folder}")
    if (folder / "importance.tsv").is_file():
        return [folder]
    found = sorted(p.parent for p in folder.glob("*/importance.tsv"))
    if not found:
        raise InputFileError(f"{folder} holds no importance.tsv (nor do its sub-folders)")
    return found


# ------------------------------------------------------------- predictions


def scrambled_predictions(
    sequence: str,
    pssm: np.ndarray,
    predictor=None,
    *,
    n_samples: int = 8,
    seed: int = 0,
    msa: MSA | None = None,
    device: str = "cpu",
    importance: np.ndarray | None = None,
    mode: str = "inclusion",
    scramble_msa: bool = False,
    msa_pseudocount: float = 1.0,
) -> dict[str, np.ndarray]:
    """trRosetta maps on the original sequence and averaged over sequences drawn from the PSSM.

    Parameters
    ----------
    sequence
        The explained sequence.
    pssm
        ``(L, 20)`` scrambled PSSM.
    predictor
        A :class:`~protscramble.predictors.trrosetta.TrRosetta` (default: model
        ``xaa`` on ``device``); conditioned on ``msa`` when one is given.
    n_samples
        Sequences drawn from the PSSM (hard one-hot, seeded).
    importance, mode, scramble_msa, msa_pseudocount
        For an explanation that scrambled the alignment too (``explain --scramble-msa``):
        each sample also draws an alignment scrambled by ``importance`` (L,) in ``mode``.

    Returns
    -------
    dict
        ``dist``, ``omega``, ``theta``, ``phi`` (original, ``(L, L, bins)``),
        the same with a ``scrambled_`` prefix (means over the samples),
        ``sequence`` and ``scrambled_samples``.
    """
    import torch

    from .predictors.base import scrambled_forward
    from .predictors.trrosetta import TrRosetta
    from .sampling import sample_sequences

    seq = validate_sequence(sequence)
    p = np.asarray(pssm, dtype=float)
    if p.shape != (len(seq), len(AMINO_ACIDS)):
        raise InvalidParameterError(f"PSSM must be ({len(seq)}, 20) for this sequence, got {p.shape}")
    if n_samples < 1:
        raise InvalidParameterError(f"at least one scrambled sample is needed, got {n_samples}")
    if scramble_msa and (msa is None or importance is None):
        raise InvalidParameterError("scrambled-alignment predictions need the alignment and the importance")
    tr = predictor if predictor is not None else TrRosetta("xaa", device=device)
    if msa is not None:
        tr = tr.with_msa(msa, scramble_msa=scramble_msa, msa_pseudocount=msa_pseudocount)
    dev = tr.device
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        original = tr(one_hot(seq)[None].to(dev))
        for name in _OUTPUTS:
            out[name] = original[name][0].float().cpu().numpy().astype(np.float32)
        gen = torch.Generator(device=dev).manual_seed(seed)
        samples = sample_sequences(torch.tensor(p, dtype=torch.float32, device=dev)[None], n_samples, gen)[
            :, 0
        ]
        scores = None
        if scramble_msa:
            scores = torch.tensor(np.asarray(importance), dtype=torch.float32, device=dev)[None]
        sums: dict[str, np.ndarray] = {}
        for start in range(0, n_samples, 4):  # a few at a time bounds memory
            chunk = samples[start : start + 4]
            forward = (
                tr if scores is None else scrambled_forward(tr, scores, mode, chunk.shape[0], gen, False)
            )
            pred = forward(chunk)
            for name in _OUTPUTS:
                part = pred[name].float().sum(0).cpu().numpy()
                sums[name] = sums[name] + part if name in sums else part
    for name in _OUTPUTS:
        out[f"scrambled_{name}"] = (sums[name] / n_samples).astype(np.float32)
    out["sequence"] = np.asarray(seq)
    out["scrambled_samples"] = np.asarray(n_samples)
    return out


def write_predictions(folder: str | os.PathLike, predictions: dict[str, np.ndarray]) -> Path:
    """Store :func:`scrambled_predictions` output as ``folder/predictions.npz`` (atomically)."""
    path = Path(folder) / PREDICTIONS_FILE
    atomic_savez(path, **predictions)
    return path


# ------------------------------------------------------------------- report


@dataclass
class ReportParts:
    """Everything a report page shows, computed once (also used for ``--figures``)."""

    explanation: ExplanationFolder
    figures: dict[str, Any] = field(default_factory=dict)  # name -> matplotlib Figure
    view: ImportanceView | None = None
    comparison: ComparisonResult | None = None
    laid: ResidueImportance | None = None
    sse: str | None = None
    notes: list[str] = field(default_factory=list)


def prepare_report(
    folder: str | os.PathLike | ExplanationFolder,
    structure: str | os.PathLike | Structure | None = None,
    chain: str | None = None,
    *,
    model: int = 1,
    msa: MSA | None = None,
    energy_backend: str = "auto",
    interface: tuple[str, str] | None = None,
    predict: bool = True,
    predictor=None,
    n_samples: int = 8,
    seed: int = 0,
    device: str = "cpu",
    top_k: int = 10,
    n_permutations: int = 10_000,
) -> ReportParts:
    """Compute the figures, 3D view and statistics of one explanation.

    Parameters
    ----------
    folder
        Explanation folder (``importance.tsv`` and, ideally, ``summary.json``
        and ``pssm.tsv``; ``predictions.npz`` is used when present).
    structure, chain, model
        Structure to compare with and view on; the chain defaults to the one
        matching the sequence.
    msa
        Alignment to condition trRosetta on when the explanation used one.
    energy_backend
        Per-residue energy backend (see :func:`~protscramble.structures.per_residue_energies`).
    interface
        ``("A", "B")``: interface H-bond networks.
    predict
        Run trRosetta for the distogram panels when ``predictions.npz`` is absent.
    predictor, n_samples, seed, device
        See :func:`scrambled_predictions`.
    top_k
        Residues shown as sticks.
    n_permutations
        Shuffles of the Spearman permutation tests.
    """
    from .figures import distogram_figure, logo_figure, scatter_figure, secondary_structure, track_figure

    exp = folder if isinstance(folder, ExplanationFolder) else read_explanation(folder)
    parts = ReportParts(exp)
    imp = exp.importance
    scale = ColourScale.from_values(imp.values)
    title = exp.name

    energy = in_network = None
    energy_label = "energy (REU)"
    if structure is not None:
        struct = structure if isinstance(structure, Structure) else load_structure(structure, model=model)
        laid = lay_importance(imp, struct, chain)
        parts.laid = laid
        parts.sse = secondary_structure(struct, laid.mapping)
        try:
            result = compare_importance_with_structure(
                imp, struct, laid.chain, energy_backend=energy_backend, interface=interface,
                compute_ddg=False, n_permutations=n_permutations, seed=seed,
            )  # fmt: skip
        except BackendUnavailableError as err:
            parts.notes.append(f"no energies, so no correlations: {err}")
            result = None
        parts.comparison = result
        if result is not None:
            energy, in_network = result.energy_total, result.in_network
            energy_label = f"energy ({result.energies.score_function}, REU)"
            parts.notes += [n for n in result.notes if n not in parts.notes]
        parts.view = structure_view(
            laid,
            result.energies if result else None,
            result.hbnets if result else None,
            top_k=top_k,
            scale=scale,
            title=f"{title}: importance on {struct.path.name}, chain {laid.chain}",
        )

    parts.figures["tracks"] = track_figure(
        imp.values, imp.sequence, energy=energy, energy_label=energy_label, sse=parts.sse,
        in_network=in_network, title=f"{title}: per-residue importance",
    )  # fmt: skip
    if exp.pssm is not None:
        parts.figures["logo"] = logo_figure(exp.pssm, title=f"{title}: scrambled PSSM")
    maps = _predictions(exp, parts, msa, predict, predictor, n_samples, seed, device)
    if maps is not None and "scrambled_dist" in maps:
        k = int(maps.get("scrambled_samples", 0)) or "several"
        parts.figures["distograms"] = distogram_figure(
            maps["dist"], maps["scrambled_dist"], title=f"{title}: trRosetta distances",
            scrambled_label=f"scrambled (mean of {k} samples)",
        )  # fmt: skip
    if energy is not None:
        parts.figures["scatter"] = scatter_figure(
            imp.values, energy, energy_label=energy_label, n_permutations=n_permutations, seed=seed,
            title=f"{title}: importance vs per-residue energy",
        )  # fmt: skip
    if parts.view is None and maps is not None:
        fold = embed_distogram(maps["dist"], seed=seed)
        parts.view = predicted_fold_view(imp, fold, top_k=top_k, scale=scale, title=f"{title}: rough model")
    if parts.view is None:
        parts.notes.append("no 3D view: give a structure, or predictions to embed a rough model")
    return parts


def _predictions(exp, parts, msa, predict, predictor, n_samples, seed, device) -> dict | None:
    if exp.predictions is not None and "scrambled_dist" in exp.predictions:
        return exp.predictions
    if not predict:
        if exp.predictions is None:
            parts.notes.append("distogram panels skipped (no predictions.npz; prediction turned off)")
        return exp.predictions
    if exp.pssm is None:
        parts.notes.append("distogram panels skipped: pssm.tsv is missing")
        return exp.predictions
    if exp.settings.get("msa_features") and msa is None:
        parts.notes.append(
            "the explanation used alignment features; distograms were predicted from the sequence alone "
            "(pass the alignment to predict with it)"
        )
    scramble_msa = bool(exp.settings.get("scramble_msa")) and msa is not None
    return scrambled_predictions(
        exp.sequence, exp.pssm, predictor, n_samples=n_samples, seed=seed, msa=msa, device=device,
        importance=exp.importance.values, mode=exp.settings.get("mode", "inclusion"),
        scramble_msa=scramble_msa, msa_pseudocount=float(exp.settings.get("pseudocount", 1.0)),
    )  # fmt: skip


# ------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if value is None:
        return "n/a"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _flatten(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        rows += _flatten(value, f"{name}.") if isinstance(value, dict) else [(name, value)]
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """HTML table; cells must already be escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f'<table class="{_e(cls)}"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n'


def _png_tag(fig, alt: str) -> str:
    from .figures import figure_bytes

    data = base64.b64encode(figure_bytes(fig, "png", dpi=130)).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _overview(exp: ExplanationFolder) -> str:
    s = exp.summary
    st = exp.settings
    rows = [
        ("name", exp.name),
        ("length", len(exp.sequence)),
        ("mode", st.get("mode")),
        ("target bits", st.get("target_bits")),
        ("conservation (bits)", s.get("conservation_bits")),
        ("evaluation KL, mean / median", f"{_fmt(s.get('eval_kl_mean'))} / {_fmt(s.get('eval_kl_median'))}"),
        ("predictor", f"{_fmt(st.get('predictor'))} {_fmt(st.get('models'))}"),
        ("background", st.get("background")),
        ("alignment features", st.get("msa_features")),
        ("folder", exp.path),
    ]
    table = _table(["", ""], [[_e(k), _e(_fmt(v))] for k, v in rows], "ps-kv")
    seq = "".join(
        f'<span title="{i + 1}">{_e(exp.sequence[i : i + 10])}</span> '
        for i in range(0, len(exp.sequence), 10)
    )
    return f'{table}<p class="ps-seq">{seq}</p>\n'


def _correlations(result: ComparisonResult) -> str:
    sp = result.stats["spearman"]
    rows = []
    for label, stat in [("total", sp["total"]), ("|total|", sp["abs_total"])] + list(sp["terms"].items()):
        rows.append([_e(label), _e(_fmt(stat["rho"])), _e(_fmt(stat["p_value"])), _e(stat["n"])])
    out = "<h3>Spearman correlation of importance with per-residue energy</h3>\n"
    out += _table(["energy", "rho", "permutation p", "n"], rows, "ps-num")
    ap = result.stats["hbnet_average_precision"]
    out += (
        f"<p>H-bond networks: {_e(ap['n_networks'])} network(s), {_e(ap['n_network_residues'])} residue(s) of "
        f"chain {_e(result.chain)}; average precision of importance ranking them "
        f"{_e(_fmt(ap['average_precision']))} (random: {_e(_fmt(ap['baseline']))}).</p>\n"
        f'<p class="ps-small">{_e(result.summary()["published_reference"])}.</p>\n'
    )
    return out


def _residue_table(parts: ReportParts, scale: ColourScale, top_k: int) -> str:
    imp = parts.explanation.importance
    order = sorted(range(len(imp.values)), key=lambda i: (-imp.values[i], i))
    top = set(order[:top_k])
    result = parts.comparison
    residues = parts.laid.residues() if parts.laid is not None else [None] * len(imp.values)
    rows = []
    for i, (letter, value) in enumerate(zip(imp.sequence, imp.values, strict=True)):
        colour = scale.hex(value)
        cell = f'<span class="ps-chip" style="background: {colour}; color: {text_colour(colour)}">{value:.4g}</span>'
        row = [str(i + 1), _e(letter), cell, "&#9733;" if i in top else ""]
        if parts.laid is not None:
            r = residues[i]
            row.append(_e(f"{r.label} {r.name}") if r is not None else "&mdash;")
            row.append(_e(parts.sse[i]) if parts.sse else "")
        if result is not None:
            row.append(_e(_fmt(float(result.energy_total[i]))))
            row.append("yes" if result.in_network is not None and result.in_network[i] else "")
        rows.append(row)
    header = ["position", "residue", "importance", f"top {top_k}"]
    if parts.laid is not None:
        header += ["structure residue", "SSE"]
    if result is not None:
        header += [f"energy ({result.energies.score_function})", "H-bond network"]
    return _table(header, rows, "ps-residues")


def report_html(parts: ReportParts, js: str | os.PathLike | None = None, top_k: int = 10) -> str:
    """Render :class:`ReportParts` as one self-contained HTML page."""
    exp = parts.explanation
    scale = ColourScale.from_values(exp.importance.values)
    loader = ""
    if parts.view is not None:
        loader = (
            f'<script src="{_e(CDN_URL)}"></script>'
            if js is None
            else f"<script>\n{inline_script(read_3dmol_js(js))}\n</script>"
        )
    sections = [f"<section><h2>Overview</h2>\n{_overview(exp)}</section>"]
    if parts.view is not None:
        online = "" if js is not None else '<p class="ps-small">The 3D view loads 3Dmol.js from its CDN.</p>'
        sections.append(
            f"<section><h2>3D view</h2>\n<p>{_e(parts.view.title)}</p>\n{parts.view.html_fragment('ps-viewer', 900, 560)}"
            f'{online}<ul class="ps-small">{"".join(f"<li>{_e(n)}</li>" for n in parts.view.notes)}</ul></section>'
        )
    if parts.comparison is not None:
        sections.append(f"<section><h2>Correlations</h2>\n{_correlations(parts.comparison)}</section>")
    captions = {
        "tracks": "Importance with secondary structure and per-residue energy; triangles: H-bond-network residues.",
        "logo": "Sequence logo of the scrambled PSSM (information content, bits).",
        "distograms": "trRosetta expected Cβ distances on the original sequence and averaged over sequences "
        "sampled from the scrambled PSSM, and the per-pair KL divergence.",
        "scatter": "Importance against per-residue energy (left) and its absolute value (right).",
    }
    figs = "".join(
        f"<figure>{_png_tag(fig, captions[name])}<figcaption>{_e(captions[name])}</figcaption></figure>\n"
        for name, fig in parts.figures.items()
    )
    sections.append(f"<section><h2>Figures</h2>\n{figs}</section>")
    sections.append(
        f"<section><h2>Importance per residue</h2>\n{_residue_table(parts, scale, top_k)}</section>"
    )
    settings = _table(
        ["setting", "value"], [[_e(k), _e(_fmt(v))] for k, v in _flatten(exp.settings)], "ps-kv"
    )
    sections.append(f"<section><h2>Settings</h2>\n{settings}</section>")
    if parts.notes:
        sections.append(
            "<section><h2>Notes</h2><ul>"
            + "".join(f"<li>{_e(n)}</li>" for n in parts.notes)
            + "</ul></section>"
        )
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>protscramble report: {_e(exp.name)}</title>\n<style>{REPORT_CSS}</style>\n{loader}\n</head>\n<body>\n"
        f"<header><h1>protscramble report: {_e(exp.name)}</h1>"
        f'<p class="ps-small">protscramble {_e(__version__)}</p></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n'
    )


def write_report(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    js: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    top_k: int = 10,
    **options: Any,
) -> list[Path]:
    """Write the report of an explanation folder (or one page per explanation it holds).

    Parameters
    ----------
    folder
        An explanation folder, or a folder of explanation folders (``explain``
        with a multi-record FASTA): then ``out`` is a folder receiving one
        ``<name>.html`` per explanation and an ``index.html``.
    out
        ``report.html`` (single explanation) or a folder.
    js
        Local 3Dmol.js to inline (offline page); default: the CDN.
    figures_dir
        Also write every figure as PDF and PNG here.
    options
        Passed to :func:`prepare_report` (structure, chain, msa, ...).

    Returns
    -------
    list of Path
        The pages written.
    """
    from .figures import save_figure

    if js is not None:
        read_3dmol_js(js)  # fail before any work
    folders = find_explanations(folder)
    out = Path(out)
    if len(folders) == 1 and out.suffix.lower() in (".html", ".htm"):
        if out.is_dir():
            raise InputFileError(f"--out must be a file path, {out} is a folder")
        parts = prepare_report(folders[0], top_k=top_k, **options)
        page = report_html(parts, js=js, top_k=top_k)
        if figures_dir is not None:
            with atomic_output_dir(figures_dir) as tmp:
                for name, fig in parts.figures.items():
                    save_figure(fig, tmp / name)
        atomic_write_text(out, page)
        return [out]
    if out.suffix.lower() in (".html", ".htm") or (out.exists() and not out.is_dir()):
        raise InputFileError(
            f"{folder} holds {len(folders)} explanations: --out must be a folder (one page each), not {out}"
        )
    pages: list[Path] = []
    with atomic_output_dir(out) as tmp:
        links = []
        for sub in folders:
            parts = prepare_report(sub, top_k=top_k, **options)
            name = _safe_file(sub.name)
            atomic_write_text(tmp / f"{name}.html", report_html(parts, js=js, top_k=top_k))
            links.append(f'<li><a href="{_e(name)}.html">{_e(parts.explanation.name)}</a></li>')
            pages.append(out / f"{name}.html")
            if figures_dir is not None:
                for fig_name, fig in parts.figures.items():
                    save_figure(fig, Path(figures_dir) / name / fig_name)
        atomic_write_text(
            tmp / "index.html",
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>protscramble reports</title>'
            f"<style>{REPORT_CSS}</style></head><body><h1>protscramble reports</h1><ul>{''.join(links)}</ul></body></html>\n",
        )
    return pages


def _safe_file(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "explanation"


REPORT_CSS = """
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
header { padding: 12px 24px; border-bottom: 1px solid #ddd; }
header h1 { margin: 0; font-size: 22px; }
main { padding: 0 24px 40px 24px; max-width: 1200px; }
section { margin-top: 24px; }
h2 { font-size: 18px; border-bottom: 1px solid #eee; padding-bottom: 4px; }
h3 { font-size: 15px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
th { background: #f5f5f5; }
.ps-kv td:first-child { color: #555; }
.ps-seq { font-family: ui-monospace, monospace; word-break: break-all; }
.ps-small { font-size: 12px; color: #555; }
.ps-chip { display: inline-block; min-width: 4em; padding: 0 4px; border-radius: 3px; }
figure { margin: 16px 0; }
figure img { max-width: 100%; }
figcaption { font-size: 12px; color: #555; }
.ps-viewer { position: relative; border: 1px solid #ddd; }
.ps-failed { background: #fff3cd; padding: 1em; box-sizing: border-box; }
.ps-rough { background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; }
.ps-legend { margin-top: 8px; font-size: 13px; }
.ps-bar { height: 14px; border: 1px solid #888; }
.ps-ticks { display: flex; justify-content: space-between; font-size: 12px; }
.ps-markers { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 16px; }
.ps-swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; border: 1px solid #888;
  vertical-align: middle; }
"""
