"""Run the benchmark protein by protein; finished proteins are skipped on resume."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..alphabet import one_hot
from ..backgrounds import make_background
from ..errors import InvalidParameterError
from ..evaluation import sampled_divergence, standard_error
from ..explain import device_name, safe_name, versions
from ..io import atomic_output_dir, atomic_write_json, atomic_write_text
from ..masking import scramble_pssm
from ..objectives import prediction_kl
from ..predictors.base import Predictor
from .methods import METHODS, MethodInput, importance_of
from .metrics import DDG_SKIPPED, auc_rows, ddg_available, faithfulness_rows, structure_rows
from .proteins import BenchmarkProtein
from .protocols import Protocol

DONE = "done.json"
#: Per-method results (importance, evaluation KL, curves) under ``out/CACHE/PROTEIN/METHOD.json``, reused
#: when a later run with the same settings asks for more methods or resumes a protein stopped midway.
CACHE = "method_cache"


def write_tsv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Atomically write ``rows`` (dicts) as a TSV with ``columns``; floats with 6 significant digits."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(
            ["" if r.get(c) is None else f"{r[c]:.6g}" if isinstance(r[c], float) else r[c] for c in columns]
        )
    atomic_write_text(path, buf.getvalue())


def read_tsv(path: Path) -> list[dict[str, Any]]:
    """Rows of a TSV written by :func:`write_tsv` (numbers parsed back)."""

    def parse(v: str) -> Any:
        if v == "":
            return None
        try:
            return float(v)
        except ValueError:
            return v

    with open(path, newline="") as fh:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh, delimiter="\t")]


FAITHFULNESS_COLUMNS = ("protein", "method", "mode", "fraction", "kl")
AUC_COLUMNS = ("protein", "method", "mode", "auc")
EVAL_COLUMNS = (
    "protein",
    "method",
    "background",
    "pseudocount",
    "target_bits",
    "steps",
    "bits",
    "eval_samples",
    "eval_kl_mean",
    "eval_kl_median",
    "eval_kl_sem",
)
STRUCTURE_COLUMNS = ("protein", "method", "metric", "value", "p_value")
TIMING_COLUMNS = ("protein", "method", "seconds", "device", "precision", "threads")


def structure_identity(path: str | os.PathLike) -> dict[str, str]:
    """A structure file by name and content, not location, so that results computed on another
    machine (a GPU run's method cache brought back) or in a moved checkout are reused."""
    path = Path(path)
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def protein_settings(p: BenchmarkProtein, protocol: Protocol, models: str) -> dict[str, Any]:
    """Everything that determines a protein's results (compared on resume)."""
    return {
        "protein": p.name,
        "sequence": p.sequence,
        "msa_features": p.msa_features,
        "scramble_msa": p.scramble_msa,
        "profile_floor": p.profile_floor,
        "clip_value": p.clip_value,
        "background": p.background,
        "pseudocount": p.pseudocount,
        "target_bits": p.target_bits,
        "steps": protocol.steps_for(p.published_steps),
        "structure": None if p.structure is None else structure_identity(p.structure),
        "models": models,
        "protocol": protocol.as_dict(),
    }


#: Protocol settings that shape one method's result only: the other methods' cached results hold
#: across a change of them (a new occlusion budget reruns the occlusion scrambler alone).
METHOD_ONLY_SETTINGS = {
    "occlusion_budget": "scrambler_occlusion",
    "occlusion_restarts": "scrambler_occlusion",
    "occlusion_restart_select": "scrambler_occlusion",
    "heldout_samples": "scrambler_occlusion",
}


def _without_other_methods_settings(settings: Mapping[str, Any], method: str) -> dict[str, Any]:
    protocol = {
        k: v for k, v in settings["protocol"].items() if METHOD_ONLY_SETTINGS.get(k, method) == method
    }
    return {**settings, "protocol": protocol}


def _same_settings(stored: Any, settings: Mapping[str, Any], method: str | None = None) -> bool:
    """Whether a stored result was computed with ``settings`` (for ``method``'s cache: the settings
    that shape that method)."""
    if not isinstance(stored, dict):
        return False
    if method is not None and isinstance(stored.get("protocol"), dict):
        stored = _without_other_methods_settings(stored, method)
        settings = _without_other_methods_settings(settings, method)
    stored = dict(stored)
    # runs before structure_identity recorded the structure's path; the same file is the same input
    if isinstance(stored.get("structure"), str):
        try:
            stored["structure"] = structure_identity(stored["structure"])
        except OSError:
            return False
    return stored == json.loads(json.dumps(settings))


def _finished(pdir: Path, settings: Mapping[str, Any], methods: Sequence[str]) -> bool:
    try:
        done = json.loads((pdir / DONE).read_text())
    except (OSError, ValueError):
        return False
    if "ddg" in done.get("pending", []) and ddg_available():
        return False  # e.g. a GPU run without tmol brought back here: add the alanine scan
    return _same_settings(done.get("settings"), settings) and set(methods) <= set(done.get("methods", []))


def _cached_method(path: Path, settings: Mapping[str, Any], method: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = _same_settings(entry.get("settings"), settings, method)
    return entry if same and "importance" in entry and "seconds" in entry else None


def protein_inputs(
    p: BenchmarkProtein, predictor: Predictor
) -> tuple[Predictor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """What every method on ``p`` is given: the predictor conditioned on the protein's alignment
    settings, the (1, L, 20) one-hot sequence, the (L, 20) background and the reference prediction."""
    dev = torch.device(getattr(predictor, "device", "cpu"))
    with_msa = getattr(predictor, "with_msa", None)
    pred = predictor
    if with_msa is not None:
        msa = p.msa if p.msa_features else None
        pred = with_msa(msa, p.scramble_msa, p.pseudocount, p.profile_floor)
    x = one_hot(p.sequence).unsqueeze(0).to(dev)
    bg = torch.tensor(
        make_background(p.background, p.length, p.msa, p.pseudocount), dtype=torch.float32, device=dev
    )
    with torch.no_grad():
        reference = {k: v.detach().float() for k, v in pred(x).items()}
    return pred, x, bg, reference


def scrambler_eval_kl(
    predictor: Predictor,
    reference: Mapping[str, torch.Tensor],
    pssm: torch.Tensor,
    scores: torch.Tensor,
    mode: str,
    protocol: Protocol,
) -> np.ndarray:
    """A scrambler's evaluation KL: forward KL of predictions on ``protocol.eval_samples`` sequences drawn
    from its (1, L, A) ``pssm`` (made by ``scores`` in ``mode``), seeded apart from the curves' draws."""
    return sampled_divergence(
        predictor, reference, pssm, protocol.eval_samples, seed=protocol.seed + 1, divergence=prediction_kl,
        scores=scores, mode=mode,
    )[0]  # fmt: skip


def cached_eval_kl(
    p: BenchmarkProtein, predictor: Predictor, entry: Mapping[str, Any], method: str, protocol: Protocol
) -> np.ndarray:
    """The per-sample evaluation KL behind a cached scrambler result's mean, drawn again.

    The cache keeps a scrambler's importance, not its PSSM or the samples; both follow from the
    importance (:func:`~protscramble.masking.scramble_pssm`) and the protocol's seed, so on the
    predictor and precision of the run this returns the very samples whose mean and median were
    recorded (the spread of older results, e.g. their standard error, without rerunning the scrambler).
    """
    pred, x, bg, reference = protein_inputs(p, predictor)
    scores, mode, pssm = cached_pssm(x, bg, entry, method)
    return scrambler_eval_kl(pred, reference, pssm, scores, mode, protocol)


def cached_pssm(
    x: torch.Tensor, bg: torch.Tensor, entry: Mapping[str, Any], method: str
) -> tuple[torch.Tensor, str, torch.Tensor]:
    """A cached scrambler's importance (1, L), mode and the (1, L, A) PSSM it makes of ``x``."""
    scores = torch.as_tensor(np.asarray(entry["importance"])[None], dtype=torch.float32, device=x.device)
    mode = method.removeprefix("scrambler_")
    return scores, mode, scramble_pssm(x, scores, bg, mode)


def _distinct(entries: Iterable[Mapping[str, Any]], *keys: str) -> str | None:
    """The distinct values of ``keys`` among cached method entries, joined (``None`` if none is known)."""
    return ", ".join(sorted({str(e[k]) for e in entries for k in keys if e.get(k)})) or None


def method_entry(
    p: BenchmarkProtein,
    inputs: tuple[Predictor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]] | None,
    method: str,
    protocol: Protocol,
    settings: Mapping[str, Any],
    cache: Path,
    log: Callable[[str], None],
    precision: str | None = None,
) -> dict[str, Any]:
    """``method``'s cached result on ``p`` (importance, evaluation KL, time), computed and written to
    ``cache/METHOD.json`` unless a result with the same settings is there already (``inputs``, from
    :func:`protein_inputs`, may then be ``None``)."""
    entry = _cached_method(cache / f"{method}.json", settings, method)
    if entry is not None:
        log(f"{p.name}: {method} reused from an earlier run")
        return entry
    if inputs is None:
        raise ValueError(f"{method} on {p.name} is not cached: its inputs are needed")
    pred, x, bg, reference = inputs
    dev = x.device
    steps = protocol.steps_for(p.published_steps)
    t0 = time.perf_counter()
    exp = METHODS[method](
        MethodInput(
            pred, x, bg, reference, protocol, p.target_bits, steps, p.clip_value,
            log=lambda msg: log(f"{p.name}: {msg}"), checkpoint=cache / f"{method}.ckpt",
        )
    )  # fmt: skip
    entry = {
        "settings": settings, "importance": importance_of(exp).tolist(), "eval": None,
        "device": device_name(dev), "precision": precision, "threads": torch.get_num_threads(),
    }  # fmt: skip
    if "components" in exp.settings:  # the fractions budget's scramblers, one per fraction
        entry["components"] = exp.settings["components"]
    if "restarts" in exp.settings:  # every restart's seed and objective, the kept one marked
        entry["restarts"] = exp.settings["restarts"]
    if method.startswith("scrambler") and exp.pssm is not None:
        kl = scrambler_eval_kl(
            pred, reference, torch.as_tensor(exp.pssm, device=dev),
            torch.as_tensor(exp.importance, device=dev), method.removeprefix("scrambler_"), protocol,
        )  # fmt: skip
        entry["eval"] = {
            "protein": p.name, "method": method, "background": p.background,
            "pseudocount": p.pseudocount, "target_bits": exp.settings["target_bits"], "steps": steps,
            "bits": float(exp.bits[0]),
            "eval_kl_mean": float(np.mean(kl)), "eval_kl_median": float(np.median(kl)),
            "eval_kl_sem": standard_error(kl),
        }  # fmt: skip
    # a scrambler resumed from its checkpoint also spent the interrupted run's time
    entry["seconds"] = time.perf_counter() - t0 + exp.settings.get("seconds_before_resume", 0.0)
    atomic_write_json(cache / f"{method}.json", entry)
    # the cached result supersedes the checkpoints (``m.f0.1.ckpt``: a part of the fractions
    # budget; ``m.r1.ckpt``: a restart)
    for ckpt in [
        cache / f"{method}.ckpt",
        *cache.glob(f"{method}.f*.ckpt"),
        *cache.glob(f"{method}.r*.ckpt"),
    ]:
        ckpt.unlink(missing_ok=True)
    log(f"{p.name}: {method} done in {entry['seconds']:.0f} s")
    return entry


def add_curves(
    inputs: tuple[Predictor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]] | None,
    entries: Mapping[str, dict[str, Any]],
    protocol: Protocol,
    cache: Path,
    log: Callable[[str], None],
    precision: str | None = None,
) -> None:
    """Compute the faithfulness curves of the ``entries`` (method -> cached result) that lack them, and
    write each back to ``cache/METHOD.json`` (``inputs`` may be ``None`` when none lacks them)."""
    # Each method's curves use their own seeded draws, so curves from an earlier run (or another
    # worker) are the ones this run would draw.
    todo = {
        m: np.asarray(e["importance"], dtype=np.float64)
        for m, e in entries.items()
        if "faithfulness" not in e
    }
    if not todo:
        return
    if inputs is None:
        raise ValueError(f"curves of {', '.join(todo)} are not cached: their inputs are needed")
    pred, x, bg, reference = inputs
    name = cache.name
    n_curves = 2 * len(protocol.fractions)
    log(
        f"{name}: faithfulness curves of {', '.join(todo)} ({n_curves} x {protocol.faithfulness_samples} samples)"
    )
    t0 = time.perf_counter()
    new_rows = faithfulness_rows(
        pred, x, todo, bg, reference, protocol.fractions, protocol.faithfulness_samples, protocol.seed
    )
    # every method's curves take the same number of network calls: each gets an equal share of the time
    share = (time.perf_counter() - t0) / len(todo)
    for m in todo:
        entries[m]["faithfulness"] = [r for r in new_rows if r["method"] == m]
        entries[m]["faithfulness_seconds"] = share
        entries[m]["faithfulness_device"] = device_name(x.device)
        entries[m]["faithfulness_precision"] = precision
        entries[m]["faithfulness_threads"] = torch.get_num_threads()
        atomic_write_json(cache / f"{m}.json", entries[m])
    log(f"{name}: faithfulness curves done in {time.perf_counter() - t0:.0f} s")


def fully_cached(cache: Path, settings: Mapping[str, Any], method: str) -> bool:
    """Whether ``method``'s importance and curves for these settings are both in ``cache``."""
    return "faithfulness" in (_cached_method(cache / f"{method}.json", settings, method) or {})


def method_cache(pdir: Path) -> Path:
    """Where the methods' results for the protein of result folder ``pdir`` are cached."""
    return pdir.parent.parent / CACHE / pdir.name


def _run_protein(
    p: BenchmarkProtein,
    predictor: Predictor,
    methods: Sequence[str],
    protocol: Protocol,
    settings: Mapping[str, Any],
    pdir: Path,
    log: Callable[[str], None],
) -> None:
    t_start = time.perf_counter()
    dev = torch.device(getattr(predictor, "device", "cpu"))
    precision = getattr(predictor, "precision", None)
    cache = method_cache(pdir)
    # the reference prediction only when something is left to compute (not after workers ran it all)
    all_cached = all(fully_cached(cache, settings, m) for m in methods)
    inputs = None if all_cached else protein_inputs(p, predictor)
    entries = {m: method_entry(p, inputs, m, protocol, settings, cache, log, precision) for m in methods}
    importances = {m: np.asarray(e["importance"], dtype=np.float64) for m, e in entries.items()}
    # a cached entry matched these settings (the protocol included), so it used this count
    evals = [{**e["eval"], "eval_samples": protocol.eval_samples} for e in entries.values() if e["eval"]]
    timing = [
        {"protein": p.name, "method": m, "seconds": e["seconds"], "device": e.get("device"),
         "precision": e.get("precision"), "threads": e.get("threads")}
        for m, e in entries.items()
    ]  # fmt: skip
    add_curves(inputs, entries, protocol, cache, log, precision)
    faith = [dict(r) for m in methods for r in entries[m]["faithfulness"]]
    # curves cached before their time was recorded count as unknown, not as free
    shares = [entries[m]["faithfulness_seconds"] for m in methods if "faithfulness_seconds" in entries[m]]
    timing.append(
        {
            "protein": p.name,
            "method": "faithfulness_evaluation",
            "seconds": sum(shares) if shares else None,
            "device": _distinct(entries.values(), "faithfulness_device"),
            "precision": _distinct(entries.values(), "faithfulness_precision"),
            "threads": _distinct(entries.values(), "faithfulness_threads"),
        }
    )
    for r in faith:
        r["protein"] = p.name
    aucs = [{"protein": p.name, **r} for r in auc_rows(faith)]
    struct: list[dict[str, Any]] = []
    notes: list[str] = []
    if p.structure is not None:
        struct, notes = structure_rows(
            importances,
            p.sequence,
            str(p.structure),
            p.chain,
            protocol.top_k,
            protocol.n_permutations,
            protocol.seed,
        )
        struct = [{"protein": p.name, **r} for r in struct]
    with atomic_output_dir(pdir) as tmp:
        cols = ["position", "residue", *methods]
        rows = [
            {"position": i + 1, "residue": aa, **{m: float(importances[m][i]) for m in methods}}
            for i, aa in enumerate(p.sequence)
        ]
        write_tsv(tmp / "importance.tsv", rows, cols)
        write_tsv(tmp / "faithfulness.tsv", faith, FAITHFULNESS_COLUMNS)
        write_tsv(tmp / "auc.tsv", aucs, AUC_COLUMNS)
        write_tsv(tmp / "eval_kl.tsv", evals, EVAL_COLUMNS)
        write_tsv(tmp / "structure.tsv", struct, STRUCTURE_COLUMNS)
        write_tsv(tmp / "timing.tsv", timing, TIMING_COLUMNS)
        done = {
            "settings": settings,
            "methods": list(methods),
            # where the methods and curves ran (a GPU run's cache finished here keeps its GPU)
            "device": _distinct(entries.values(), "device", "faithfulness_device") or device_name(dev),
            "wall_seconds": time.perf_counter() - t_start,
            "notes": notes,
            # parts a rerun adds once their backend is installed (the alanine scan needs tmol)
            "pending": ["ddg"] if any(n.startswith(DDG_SKIPPED) for n in notes) else [],
            "versions": versions(),
        }
        atomic_write_text(tmp / DONE, json.dumps(done, indent=2, default=str) + "\n")


def default_predictor(
    models: str, device: str, precision: str, compile: str, instance_norm: str
) -> Predictor:
    """The benchmark's trRosetta (a module-level function, so that worker processes can be sent it)."""
    from ..predictors.trrosetta import TrRosetta

    return TrRosetta(
        models, device=torch.device(device), precision=precision, compile=compile, instance_norm=instance_norm
    )


def _quiet(msg: str) -> None:
    pass


def run_benchmark(
    proteins: Sequence[BenchmarkProtein],
    methods: Sequence[str],
    protocol: Protocol,
    out_dir: str | os.PathLike,
    *,
    predictor: Predictor | None = None,
    models: str = "xaa",
    device: str | torch.device = "cpu",
    resume: bool = True,
    figures: bool = True,
    published: str | os.PathLike | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Benchmark ``methods`` on ``proteins``; write per-protein results and the summary under ``out_dir``.

    Parameters
    ----------
    proteins
        From :func:`~protscramble.benchmark.resolve_proteins`.
    methods
        Names from :data:`~protscramble.benchmark.METHODS`.
    protocol
        Settings (:data:`~protscramble.benchmark.PROTOCOLS`).
    predictor
        Predictor to explain; default trRosetta ``models`` on ``device`` at the protocol's precision.
    resume
        Skip proteins whose ``proteins/NAME/done.json`` records the same settings and methods.
    published
        ``published_results.tsv`` to set our evaluation KL next to (optional).
    workers
        Methods run at once, each (protein, method) in a spawned process with this process's torch
        threads shared out among them (:mod:`~protscramble.benchmark.lanes`); the same numbers as one
        worker. A given ``predictor`` must then be picklable.
    log
        Progress lines (workers print theirs to stderr when ``log`` is given).

    Returns
    -------
    Path
        ``out_dir``, holding ``faithfulness.tsv``, ``auc.tsv``, ``eval_kl.tsv``,
        ``published_comparison.tsv``, ``structure.tsv``, the across-protein
        ``auc_overview.tsv`` and ``structure_overview.tsv``, ``summary.md``,
        figures and ``proteins/NAME/`` for each protein.
    """
    from .summary import write_summary

    if not proteins:
        raise InvalidParameterError("no protein to benchmark")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidParameterError(
            f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}"
        )
    names = [safe_name(p.name) for p in proteins]
    if len(set(names)) != len(names):
        raise InvalidParameterError("protein names must be distinct")
    if workers < 1:
        raise InvalidParameterError(f"workers must be at least 1, not {workers}")
    protocol.validate()
    verbose, log = log is not None, log or _quiet
    given_norm = getattr(predictor, "instance_norm", "trrosetta")  # a non-trRosetta predictor: the default
    if predictor is not None and given_norm != protocol.instance_norm:
        raise InvalidParameterError(
            f"the protocol's instance norm ({protocol.instance_norm}) is not the predictor's ({given_norm})"
        )
    if protocol.optimiser_dropout and predictor is not None and not hasattr(predictor, "set_dropout"):
        raise InvalidParameterError("optimiser dropout needs a predictor with dropout (set_dropout)")
    out = Path(out_dir)
    (out / "proteins").mkdir(parents=True, exist_ok=True)
    todo = []
    for p, name in zip(proteins, names, strict=True):
        settings = protein_settings(p, protocol, models)
        if resume and _finished(out / "proteins" / name, settings, methods):
            log(f"{p.name}: already done, skipped")
        else:
            todo.append((p, out / "proteins" / name, settings))

    build = partial(
        default_predictor, models, str(device), protocol.precision, protocol.compile, protocol.instance_norm
    )
    if workers > 1 and todo:
        from .lanes import MethodTask, predictor_builder, run_tasks

        builder = predictor_builder(predictor, build)
        tasks = [
            MethodTask(p, m, settings, method_cache(pdir))
            for p, pdir, settings in todo
            for m in methods
            if not fully_cached(method_cache(pdir), settings, m)
        ]
        threads = max(1, torch.get_num_threads() // workers)
        run_tasks(tasks, protocol, builder, workers, threads, log, verbose=verbose)
    for p, pdir, settings in todo:  # with workers, every method is cached: this collects them
        if predictor is None:
            predictor = build()
        _run_protein(p, predictor, methods, protocol, settings, pdir, log)
    write_summary(
        out,
        [out / "proteins" / n for n in names],
        list(methods),
        protocol,
        figures=figures,
        published=published,
    )
    return out
