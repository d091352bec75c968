"""How far sampling noise alone moves a kept benchmark run's evaluation KL (issue 7's published-row aim).

The evaluation KL set beside ``published_results.tsv`` is a mean over 512 sequences drawn from the
scrambler's PSSM. Result folders written before ``eval_kl.tsv`` recorded its standard error keep only the
mean and median; this script draws the same 512 samples again from the cached importance (same
predictor, precision and seed; :func:`~protscramble.benchmark.runner.cached_eval_kl`), checks that they
give the recorded mean, and prints the mean's standard error and percentile-bootstrap 95% intervals of
the mean and the median, next to the published row and the distance to it in standard errors.

    python benchmarks/eval_kl_spread.py FOLDER [FOLDER ...] [--method scrambler_inclusion]
        [--protein NAME] [--bootstrap 10000] [--seed 0] [--device cpu] [--out TSV]
    python benchmarks/eval_kl_spread.py FOLDER --protein T1001@1.5 --alignment-draws 32
        [--samples-per-draw 8] [--precision bf16] [--draws-dir DIR] [--out TSV]

With ``--alignment-draws K`` it measures instead how far the published with-MSA evaluation's own
estimator moves: that notebook drew one scrambled alignment and scored all 512 query samples under it,
so its mean carries one alignment's luck. K alignments with ``--samples-per-draw`` queries each give the
between- and within-alignment variance and the standard deviation of such a one-alignment mean
(``one_alignment_sd``), on which scale the published row is placed (``published_minus_mean_in_sd``).

Each FOLDER is searched for benchmark result folders (a ``done.json``). A result's importance comes
from its ``method_cache`` where one was kept, otherwise from its ``importance.tsv`` (six significant
digits; the recorded mean from ``eval_kl.tsv`` beside it or in the run folder above), which is how the
committed results, whose caches were left out, are measured. The redrawn mean matches the recorded one
only on the arithmetic and random-number stream that recorded it (bf16 results on a CPU with bf16, fp32
on a CPU to about 1e-5; never a GPU run redrawn on a CPU, whose samples are other draws from the same
PSSM); ``recorded_match`` says whether it did, and a mismatch is printed as such rather than hidden.
Results of a run with the Keras port's instance norm are redrawn under the norm their ``done.json``
records (older folders did not record it: they are redrawn under trRosetta's own).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from protscramble.benchmark import resolve_proteins
from protscramble.benchmark.proteins import BenchmarkProtein, data_dir, source_protein
from protscramble.benchmark.protocols import Protocol
from protscramble.benchmark.runner import (
    cached_eval_kl,
    cached_pssm,
    default_predictor,
    method_cache,
    protein_inputs,
    read_tsv,
    write_tsv,
)
from protscramble.errors import InputFileError
from protscramble.evaluation import draw_variance_components, shared_draw_divergence, standard_error
from protscramble.io import atomic_savez
from protscramble.predictors.base import Predictor

COLUMNS = (
    "protein", "method", "seed", "precision", "n", "recorded_mean", "mean", "recorded_match", "median",
    "sem", "mean_ci_low", "mean_ci_high", "median_ci_low", "median_ci_high", "published_mean",
    "published_median", "mean_minus_published_in_sem", "source", "run",
)  # fmt: skip
DRAW_COLUMNS = (
    "protein", "method", "precision", "draws", "samples_per_draw", "recorded_mean", "mean", "between_sd",
    "within_sd", "draw_means_sd", "one_alignment_sd", "n_per_estimate", "published_mean",
    "published_minus_mean_in_sd", "draws_at_or_below_published", "source", "run",
)  # fmt: skip
#: Relative difference up to which a redrawn mean counts as the recorded one (bf16 sums in another order
#: differ by about 1e-6; another precision by 1e-3 or more).
MATCH_RTOL = 1e-4


def bootstrap_intervals(
    values: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of the mean and the median of ``values``.

    Examples
    --------
    >>> ci = bootstrap_intervals(np.arange(100.0), 2000, seed=0)
    >>> ci["mean"][0] < 49.5 < ci["mean"][1]
    True
    """
    v = np.asarray(values, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))
    draws = v[idx]
    tail = 100 * (1 - level) / 2
    out = {}
    for name, stat in (("mean", np.mean(draws, axis=1)), ("median", np.median(draws, axis=1))):
        lo, hi = np.percentile(stat, [tail, 100 - tail])
        out[name] = (float(lo), float(hi))
    return out


def _published(path: Path | None) -> dict[tuple[str, float], dict[str, Any]]:
    if path is None or not path.is_file():
        return {}
    return {(str(r["protein"]), float(r["target_bits"])): r for r in read_tsv(path)}


def _recorded_row(pdir: Path, name: str, method: str, table: str) -> dict[str, Any] | None:
    """``method``'s row for protein ``name`` in ``table`` (``eval_kl.tsv``, ``timing.tsv``) of the protein
    folder ``pdir`` or, where that was not kept, of the run folder that holds ``proteins/NAME``."""
    for path in (pdir / table, pdir.parent.parent / table):
        if path.is_file():
            for row in read_tsv(path):
                if row.get("protein") == name and row.get("method") == method:
                    return row
    return None


def _entry_from_files(pdir: Path, name: str, method: str) -> dict[str, Any] | None:
    """A cache-like entry (importance, recorded evaluation, precision) from a result folder's TSVs."""
    path = pdir / "importance.tsv"
    evaluation = _recorded_row(pdir, name, method, "eval_kl.tsv")
    if not path.is_file() or evaluation is None or evaluation.get("eval_kl_mean") is None:
        return None
    rows = read_tsv(path)
    if not rows or method not in rows[0]:
        return None
    timing = _recorded_row(pdir, name, method, "timing.tsv") or {}
    return {
        "importance": [float(r[method]) for r in rows],
        "eval": evaluation,
        "precision": timing.get("precision"),
    }


def _kept_runs(
    folders: Iterable[Path],
    method: str,
    protein: str | None,
    device: str,
    proteins: Mapping[str, BenchmarkProtein] | None,
    predictor: Callable[[Mapping[str, Any], str], Predictor] | None,
    precision: str | None = None,
) -> Iterator[tuple[Path, BenchmarkProtein, Protocol, dict[str, Any], Predictor, str, str]]:
    """Every kept ``method`` result with an evaluation KL under ``folders``: its folder, protein,
    protocol, cache-like entry, predictor (on the run's precision, or ``precision``, and norm), precision
    and source."""
    for done_path in sorted({d.resolve() for f in folders for d in Path(f).rglob("done.json")}):
        pdir = done_path.parent
        settings = json.loads(done_path.read_text())["settings"]
        name = settings["protein"]
        if protein is not None and name != protein:
            continue
        source = "cache"
        try:
            entry = json.loads((method_cache(pdir) / f"{method}.json").read_text())
        except (OSError, ValueError):
            entry = None
        if entry is None or not entry.get("eval"):
            entry, source = _entry_from_files(pdir, name, method), "importance.tsv"
        if entry is None:
            continue
        p = proteins[name] if proteins is not None else resolve_proteins(name)[0]
        d = dict(settings["protocol"])
        protocol = Protocol(**{**d, "fractions": tuple(d["fractions"])})
        if (p.sequence, p.target_bits, p.background) != (
            settings["sequence"],
            settings["target_bits"],
            settings["background"],
        ):
            raise SystemExit(
                f"{pdir}: the catalogue's {name} is not the protein these results were computed on"
            )
        if len(entry["importance"]) != len(p.sequence):
            raise SystemExit(
                f"{pdir}: {len(entry['importance'])} importance values for {len(p.sequence)} residues"
            )
        run_precision = precision or entry.get("precision") or protocol.precision
        pred = (
            predictor(settings, run_precision)
            if predictor is not None
            else default_predictor(
                settings["models"], device, run_precision, protocol.compile, protocol.instance_norm
            )
        )
        yield pdir, p, protocol, entry, pred, run_precision, source


def _shown(path: Path) -> str:
    """``path`` relative to the working directory where it lies below it (result TSVs get committed)."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _saved_draws(
    path: Path | None, seed: int, samples_per_draw: int, importance: np.ndarray, precision: str
) -> list[np.ndarray]:
    """The alignment draws a stopped run saved at ``path``; none if they were made with other settings or
    for another importance (another run of the same protein sharing the folder)."""
    if path is None or not path.is_file():
        return []
    with np.load(path) as z:
        kl, saved_seed = z["kl"], int(z["seed"])
        same = (
            "importance" in z.files
            and np.array_equal(z["importance"], importance)
            and str(z["precision"]) == precision
        )
    if not same or saved_seed != seed or kl.ndim != 2 or kl.shape[1] != samples_per_draw:
        return []
    return list(kl)


def spread_rows(
    folders: Iterable[Path],
    method: str = "scrambler_inclusion",
    *,
    protein: str | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
    device: str = "cpu",
    published: Path | None = None,
    proteins: Mapping[str, BenchmarkProtein] | None = None,
    predictor: Callable[[Mapping[str, Any], str], Predictor] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per cached ``method`` result with an evaluation KL under ``folders``.

    ``proteins`` (name -> protein) and ``predictor`` (settings, precision -> predictor) replace the
    benchmark's own catalogue and trRosetta (tests use a toy predictor).
    """
    table = _published(published)
    rows = []
    for pdir, p, protocol, entry, pred, precision, source in _kept_runs(
        folders, method, protein, device, proteins, predictor
    ):
        name = p.name
        log(f"{name}: drawing {protocol.eval_samples} evaluation samples again ({precision}, {pdir})")
        kl = cached_eval_kl(p, pred, entry, method, protocol)
        recorded = float(entry["eval"]["eval_kl_mean"])
        sem = standard_error(kl)
        ci = bootstrap_intervals(kl, n_boot, seed)
        pub = table.get((source_protein(name), float(entry["eval"]["target_bits"])), {})
        mean = float(np.mean(kl))
        rows.append({
            "protein": name, "method": method, "seed": protocol.seed, "precision": precision,
            "n": int(kl.size), "recorded_mean": recorded, "mean": mean,
            "recorded_match": "yes" if abs(mean - recorded) <= MATCH_RTOL * abs(recorded) else "no",
            "median": float(np.median(kl)), "sem": sem,
            "mean_ci_low": ci["mean"][0], "mean_ci_high": ci["mean"][1],
            "median_ci_low": ci["median"][0], "median_ci_high": ci["median"][1],
            "published_mean": pub.get("eval_kl_mean"), "published_median": pub.get("eval_kl_median"),
            "mean_minus_published_in_sem": (
                None if not pub or not sem else (mean - float(pub["eval_kl_mean"])) / sem
            ),
            "source": source, "run": _shown(pdir),
        })  # fmt: skip
    return rows


def draw_rows(
    folders: Iterable[Path],
    method: str = "scrambler_inclusion",
    *,
    draws: int = 16,
    samples_per_draw: int = 32,
    protein: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    published: Path | None = None,
    proteins: Mapping[str, BenchmarkProtein] | None = None,
    predictor: Callable[[Mapping[str, Any], str], Predictor] | None = None,
    out_dir: Path | None = None,
    precision: str | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per kept ``method`` result: the spread of the published with-MSA estimator.

    The published notebooks drew one scrambled alignment and scored all 512 query samples under it
    (``#Speed-up: Use same MSA sample for all test points``); our evaluation draws one alignment per
    sample. Here ``draws`` alignments are drawn with ``samples_per_draw`` queries each
    (:func:`~protscramble.evaluation.shared_draw_divergence`, hard draws, seed ``seed``), and the
    between- and within-alignment variance give the standard deviation of a one-alignment mean of the
    protocol's evaluation samples, the scale on which a published row could differ from ours by luck.
    ``out_dir`` keeps each run's (draws, samples) values as ``PROTEIN.METHOD.draws.npz`` after every
    draw; a run stopped part-way continues from there (alignment ``d`` is drawn with seed ``seed + d``).
    """
    table = _published(published)
    rows = []
    for pdir, p, protocol, entry, pred, used, source in _kept_runs(
        folders, method, protein, device, proteins, predictor, precision
    ):
        name = p.name
        log(f"{name}: {draws} alignments x {samples_per_draw} queries ({used}, {pdir})")
        fwd, x, bg, reference = protein_inputs(p, pred)
        scores, mode, pssm = cached_pssm(x, bg, entry, method)
        # one alignment per call, seeded seed + d, saved after each: a stopped run resumes
        path = None if out_dir is None else out_dir / f"{name}.{method}.draws.npz"
        importance = np.asarray(entry["importance"], dtype=np.float64)
        done = _saved_draws(path, seed, samples_per_draw, importance, used)
        for d in range(len(done), draws):
            row = shared_draw_divergence(
                fwd, reference, pssm, 1, samples_per_draw, scores=scores, mode=mode, seed=seed + d
            )
            done.append(row[0])
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_savez(
                    path,
                    kl=np.stack(done),
                    seed=np.array(seed),
                    importance=importance,
                    precision=np.array(used),
                )
            log(f"{name}: alignment {d + 1}/{draws}: mean {row.mean():.4f}")
        values = np.stack(done[:draws])
        c = draw_variance_components(values, protocol.eval_samples)
        group_means = values.mean(axis=1)
        pub = table.get((source_protein(name), float(entry["eval"]["target_bits"])), {})
        pub_mean = None if not pub else float(pub["eval_kl_mean"])
        rows.append({
            "protein": name, "method": method, "precision": used, "draws": draws,
            "samples_per_draw": samples_per_draw, "recorded_mean": float(entry["eval"]["eval_kl_mean"]),
            "mean": c["mean"], "between_sd": float(np.sqrt(c["between"])),
            "within_sd": float(np.sqrt(c["within"])), "draw_means_sd": c["draw_means_sd"],
            "one_alignment_sd": c["estimate_sd"], "n_per_estimate": protocol.eval_samples,
            "published_mean": pub_mean,
            "published_minus_mean_in_sd": (
                None if pub_mean is None or not c["estimate_sd"] else (pub_mean - c["mean"]) / c["estimate_sd"]
            ),
            "draws_at_or_below_published": (
                None if pub_mean is None else int(np.sum(group_means <= pub_mean))
            ),
            "source": source, "run": _shown(pdir),
        })  # fmt: skip
    return rows


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="benchmark output folders")
    ap.add_argument("--method", default="scrambler_inclusion", help="cached scrambler (default %(default)s)")
    ap.add_argument("--protein", help="only this protein")
    ap.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples (default %(default)s)")
    ap.add_argument(
        "--seed", type=int, default=0, help="bootstrap (or alignment-draw) seed (default %(default)s)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--published", type=Path, help="published_results.tsv (default: the reference data's)")
    ap.add_argument(
        "--alignment-draws", type=int, metavar="K",
        help="instead: K alignments with --samples-per-draw queries each, for the spread of the "
        "published one-alignment evaluation (runs with a scrambled alignment)",
    )  # fmt: skip
    ap.add_argument(
        "--samples-per-draw", type=int, default=32, help="queries per alignment (default %(default)s)"
    )
    ap.add_argument(
        "--precision",
        choices=("fp32", "tf32", "bf16"),
        help="alignment draws at this precision (default: the run's)",
    )
    ap.add_argument("--draws-dir", type=Path, help="keep (and resume) the alignment draws' values here")
    ap.add_argument("--out", type=Path, help="also write the rows as a TSV")
    args = ap.parse_args(argv)
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        ap.error(f"not a folder: {', '.join(missing)}")
    if args.bootstrap < 1:
        ap.error("--bootstrap must be at least 1")
    if args.alignment_draws is not None and (args.alignment_draws < 2 or args.samples_per_draw < 2):
        ap.error("--alignment-draws and --samples-per-draw must be at least 2")
    if not args.method.startswith("scrambler_"):
        ap.error("--method must be a scrambler (only they have an evaluation KL)")
    published = args.published
    if published is None:
        try:
            published = data_dir() / "trrosetta" / "published_results.tsv"
        except InputFileError:
            published = None
    if args.alignment_draws is None:
        columns = COLUMNS
        rows = spread_rows(
            args.folders, args.method, protein=args.protein, n_boot=args.bootstrap, seed=args.seed,
            device=args.device, published=published,
        )  # fmt: skip
    else:
        columns = DRAW_COLUMNS
        rows = draw_rows(
            args.folders, args.method, draws=args.alignment_draws, samples_per_draw=args.samples_per_draw,
            protein=args.protein, seed=args.seed, device=args.device, published=published,
            out_dir=args.draws_dir, precision=args.precision,
        )  # fmt: skip
    if not rows:
        ap.error(f"no cached {args.method} result with an evaluation KL under the given folders")
    shown = [c for c in columns if c != "run"]
    print("| " + " | ".join(shown) + " |")
    print("|" + "---|" * len(shown))
    for r in rows:
        print("| " + " | ".join(_fmt(r[c]) for c in shown) + " |")
    if args.out:
        write_tsv(args.out, rows, columns)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
