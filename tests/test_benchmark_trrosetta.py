"""The trRosetta benchmark harness: AUC, a tiny end-to-end run, resume and bad input.

The end-to-end run uses a small differentiable toy predictor with trRosetta's
output format (pair maps), so it takes seconds; the real trRosetta numbers
are in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_file

from protscramble.alphabet import AMINO_ACIDS
from protscramble.backgrounds import make_background
from protscramble.benchmark import (
    METHODS,
    PROTOCOLS,
    BenchmarkProtein,
    curve_auc,
    resolve_proteins,
    run_benchmark,
)
from protscramble.benchmark.runner import AUC_COLUMNS, EVAL_COLUMNS, FAITHFULNESS_COLUMNS, read_tsv, write_tsv
from protscramble.benchmark.summary import published_comparison
from protscramble.cli import main
from protscramble.errors import InvalidParameterError, InvalidSequenceError
from protscramble.evaluation import draw_variance_components
from protscramble.masking import conservation_bits, scramble_pssm


class ToyPairPredictor:
    """Pair maps from pairwise products of a random residue embedding: (N, L, L, 5) per output."""

    alphabet = AMINO_ACIDS
    device = torch.device("cpu")

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.embed = torch.randn(20, 6, generator=gen)
        self.heads = {"dist": torch.randn(6, 5, generator=gen), "omega": torch.randn(6, 3, generator=gen)}
        self.activation = torch.nn.ELU()  # a module, so DeepLift can apply its rule

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.activation(x.float() @ self.embed)
        pair = h.unsqueeze(2) * h.unsqueeze(1)
        return {k: torch.softmax(pair @ w, -1) for k, w in self.heads.items()}

    @contextlib.contextmanager
    def layerwise(self):
        yield [self.activation]


PROTEINS = [
    BenchmarkProtein("toy_a", "MKVLAAGIEELLKKLAEHGW"),
    BenchmarkProtein("toy_b", "GSPEELLRKAIELAKRLG", background="uniform", target_bits=0.5),
]
TINY = PROTOCOLS["quick"].with_overrides(
    steps=5, samples=2, eval_samples=8, faithfulness_samples=8, n_permutations=50
)
TINY_METHODS = ["scrambler_inclusion", "saliency", "random"]


def test_curve_auc_matches_hand_computation():
    # trapezoids: (1+2)/2*0.1 + (2+4)/2*0.1 = 0.15 + 0.30
    assert curve_auc([0.1, 0.2, 0.3], [1.0, 2.0, 4.0]) == pytest.approx(0.45)
    assert curve_auc([0.1, 0.2, 0.3, 0.4, 0.5], [1.0] * 5) == pytest.approx(0.4)
    with pytest.raises(InvalidParameterError):
        curve_auc([0.2, 0.1], [1.0, 2.0])
    with pytest.raises(InvalidParameterError):
        curve_auc([0.1], [1.0])


def test_tiny_run_writes_tables_and_resumes(tmp_path):
    logs: list[str] = []
    out = run_benchmark(
        PROTEINS, TINY_METHODS, TINY, tmp_path / "bench", predictor=ToyPairPredictor(), log=logs.append
    )
    for name in ("faithfulness.tsv", "auc.tsv", "eval_kl.tsv", "timing.tsv", "summary.md"):
        assert (out / name).is_file(), name
    faith = read_tsv(out / "faithfulness.tsv")
    assert (out / "faithfulness.tsv").read_text().splitlines()[0].split("\t") == list(FAITHFULNESS_COLUMNS)
    assert len(faith) == len(PROTEINS) * len(TINY_METHODS) * 2 * len(TINY.fractions)
    assert all(r["kl"] >= 0 for r in faith)
    aucs = read_tsv(out / "auc.tsv")
    assert (out / "auc.tsv").read_text().splitlines()[0].split("\t") == list(AUC_COLUMNS)
    # every AUC is the trapezoidal area of its curve in faithfulness.tsv
    for a in aucs:
        pts = sorted(
            (r["fraction"], r["kl"])
            for r in faith
            if (r["protein"], r["method"], r["mode"]) == (a["protein"], a["method"], a["mode"])
        )
        assert a["auc"] == pytest.approx(curve_auc(*zip(*pts, strict=True)), rel=1e-4)
    evals = read_tsv(out / "eval_kl.tsv")
    assert {e["protein"] for e in evals} == {"toy_a", "toy_b"} and all(
        e["method"] == "scrambler_inclusion" for e in evals
    )
    assert all(e["eval_samples"] == TINY.eval_samples for e in evals)  # the mean's sample count
    imp = read_tsv(out / "proteins" / "toy_a" / "importance.tsv")
    assert len(imp) == 20 and set(TINY_METHODS) <= set(imp[0])
    assert "aim" in (out / "summary.md").read_text()
    # the across-protein ranks follow auc.tsv: inclusion ascending, occlusion descending
    over = read_tsv(out / "auc_overview.tsv")
    assert len(over) == 2 * len(TINY_METHODS) and "Across proteins" in (out / "summary.md").read_text()
    for o in over:
        ranks = []
        for prot in ("toy_a", "toy_b"):
            per = {a["method"]: a["auc"] for a in aucs if (a["protein"], a["mode"]) == (prot, o["mode"])}
            better = [v for v in per.values() if (v < per[o["method"]]) == (o["mode"] == "inclusion")]
            ranks.append(1 + len([v for v in better if v != per[o["method"]]]))
        assert (o["n_proteins"], o["mean_rank"], o["n_best"]) == (2, np.mean(ranks), ranks.count(1))

    done = out / "proteins" / "toy_a" / "done.json"
    stamp = done.stat().st_mtime_ns
    logs.clear()
    run_benchmark(PROTEINS, ["saliency"], TINY, out, predictor=ToyPairPredictor(), log=logs.append)
    assert logs == ["toy_a: already done, skipped", "toy_b: already done, skipped"]
    assert done.stat().st_mtime_ns == stamp
    assert {r["method"] for r in read_tsv(out / "auc.tsv")} == {"saliency"}
    # changed settings recompute
    logs.clear()
    run_benchmark(
        PROTEINS[:1],
        ["random"],
        TINY.with_overrides(seed=1),
        out,
        predictor=ToyPairPredictor(),
        log=logs.append,
    )
    assert not any("skipped" in m for m in logs) and json.loads(done.read_text())["methods"] == ["random"]


def test_results_record_the_thread_count_they_ran_with(tmp_path):
    # a CPU's sums run in a thread-count-dependent order, so reproducing a result needs the count
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        out = run_benchmark(PROTEINS[:1], ["random"], TINY, tmp_path / "b", predictor=ToyPairPredictor())
        entry = json.loads((out / "method_cache" / "toy_a" / "random.json").read_text())
        done = json.loads((out / "proteins" / "toy_a" / "done.json").read_text())
        torch.set_num_threads(2)
        # a method added later runs with two threads; the cached one keeps its count
        run_benchmark(PROTEINS[:1], ["random", "saliency"], TINY, out, predictor=ToyPairPredictor())
        redone = json.loads((out / "proteins" / "toy_a" / "done.json").read_text())
    finally:
        torch.set_num_threads(before)
    assert entry["threads"] == 1 and entry["faithfulness_threads"] == 1
    assert done["versions"]["torch_threads"] == "1" and redone["versions"]["torch_threads"] == "2"
    assert {r["method"]: r["threads"] for r in read_tsv(out / "timing.tsv")} == {
        "random": 1,
        "saliency": 2,
        "faithfulness_evaluation": "1, 2",
    }


def test_result_folders_without_the_sample_count_take_it_from_their_settings(tmp_path):
    out = run_benchmark(
        PROTEINS[:1], ["scrambler_inclusion"], TINY, tmp_path / "b", predictor=ToyPairPredictor()
    )
    per = out / "proteins" / PROTEINS[0].name / "eval_kl.tsv"
    rows = read_tsv(per)
    write_tsv(per, rows, [c for c in EVAL_COLUMNS if c != "eval_samples"])  # as written before the column
    assert "eval_samples" not in per.read_text()
    again = run_benchmark(PROTEINS[:1], ["scrambler_inclusion"], TINY, out, predictor=ToyPairPredictor())
    (row,) = read_tsv(again / "eval_kl.tsv")  # collected, not recomputed
    assert row["eval_samples"] == TINY.eval_samples and row["eval_kl_mean"] == rows[0]["eval_kl_mean"]


def test_cached_scramblers_draw_their_evaluation_samples_again(tmp_path):
    from scipy.stats import sem

    from protscramble.benchmark.runner import cached_eval_kl, method_cache

    methods = ["scrambler_inclusion", "scrambler_occlusion"]
    out = run_benchmark(PROTEINS[:1], methods, TINY, tmp_path / "b", predictor=ToyPairPredictor())
    rows = {r["method"]: r for r in read_tsv(out / "eval_kl.tsv")}
    cache = method_cache(out / "proteins" / PROTEINS[0].name)
    for m in methods:
        entry = json.loads((cache / f"{m}.json").read_text())
        kl = cached_eval_kl(PROTEINS[0], ToyPairPredictor(), entry, m, TINY)
        # the importance alone rebuilds the PSSM, and the protocol's seed the very samples
        assert kl.shape == (TINY.eval_samples,) and np.ptp(kl) > 0
        assert np.mean(kl) == pytest.approx(entry["eval"]["eval_kl_mean"], rel=1e-6)
        assert np.median(kl) == pytest.approx(entry["eval"]["eval_kl_median"], rel=1e-6)
        assert rows[m]["eval_kl_sem"] == pytest.approx(sem(kl), rel=1e-5)


def _spread_script_and_kept_run(tmp_path: Path):
    """benchmarks/eval_kl_spread.py loaded, a kept toy scrambler run, and a published table (mean 0.5)."""
    from conftest import load_script

    mod = load_script("eval_kl_spread.py")
    toy = PROTEINS[1]
    out = run_benchmark([toy], ["scrambler_inclusion"], TINY, tmp_path / "b", predictor=ToyPairPredictor())
    published = tmp_path / "published.tsv"
    write_tsv(
        published,
        [{"protein": toy.name, "target_bits": toy.target_bits, "eval_kl_mean": 0.5, "eval_kl_median": 0.4}],
        ["protein", "target_bits", "eval_kl_mean", "eval_kl_median"],
    )
    kw = {"published": published, "predictor": lambda settings, precision: ToyPairPredictor(), "log": _quiet}
    return mod, toy, out, kw


def test_eval_kl_spread_script_redraws_a_kept_run(tmp_path):
    mod, toy, out, kw = _spread_script_and_kept_run(tmp_path)
    (row,) = mod.spread_rows([out], proteins={toy.name: toy}, n_boot=500, **kw)
    (recorded,) = read_tsv(out / "eval_kl.tsv")
    assert (row["n"], row["recorded_match"]) == (TINY.eval_samples, "yes")
    assert row["sem"] == pytest.approx(recorded["eval_kl_sem"], rel=1e-5)
    assert row["mean_ci_low"] < row["mean"] < row["mean_ci_high"]
    assert row["median_ci_low"] <= row["median"] <= row["median_ci_high"]
    assert row["mean_minus_published_in_sem"] == pytest.approx((row["mean"] - 0.5) / row["sem"])
    assert row["source"] == "cache"
    # results of another sequence under the same name are refused, not redrawn on the wrong protein
    other = dataclasses.replace(toy, sequence=toy.sequence[::-1])
    with pytest.raises(SystemExit, match="not the protein"):
        mod.spread_rows([out], proteins={toy.name: other}, **kw)
    # committed results keep no cache: the importance TSV (six digits) stands in and redraws the same samples
    shutil.rmtree(out / "method_cache")
    (from_files,) = mod.spread_rows([out], proteins={toy.name: toy}, n_boot=500, **kw)
    assert from_files["source"] == "importance.tsv"
    assert from_files["recorded_mean"] == pytest.approx(recorded["eval_kl_mean"])
    assert from_files["mean"] == pytest.approx(row["mean"], rel=1e-4)
    assert from_files["sem"] == pytest.approx(row["sem"], rel=1e-3)
    # an importance file of another length is refused, not redrawn on a shifted PSSM
    (imp,) = out.glob("proteins/*/importance.tsv")
    full = imp.read_text()
    imp.write_text("".join(full.splitlines(keepends=True)[:-1]))
    with pytest.raises(SystemExit, match="importance values for"):
        mod.spread_rows([out], proteins={toy.name: toy}, n_boot=50, **kw)
    imp.write_text(full)
    # a folder holding only the importance (no recorded evaluation) has nothing to compare with
    (out / "eval_kl.tsv").unlink()
    for f in out.glob("proteins/*/eval_kl.tsv"):
        f.unlink()
    assert mod.spread_rows([out], proteins={toy.name: toy}, n_boot=50, **kw) == []


def test_eval_kl_spread_alignment_draws_resume_and_compare_on_the_one_alignment_scale(tmp_path):
    mod, toy, out, kw = _spread_script_and_kept_run(tmp_path)
    kw = {**kw, "proteins": {toy.name: toy}, "samples_per_draw": 4, "seed": 7}
    fresh = tmp_path / "fresh"
    (whole,) = mod.draw_rows([out], draws=4, out_dir=fresh, **kw)
    saved = np.load(fresh / f"{toy.name}.scrambler_inclusion.draws.npz")["kl"]
    assert saved.shape == (4, 4) and np.isfinite(saved).all()
    # stopped after two alignments, then asked for four: the two are kept and the rest drawn as if never stopped
    part = tmp_path / "part"
    mod.draw_rows([out], draws=2, out_dir=part, **kw)
    (resumed,) = mod.draw_rows([out], draws=4, out_dir=part, **{**kw, "log": (logged := []).append})
    assert np.array_equal(np.load(part / f"{toy.name}.scrambler_inclusion.draws.npz")["kl"], saved)
    assert [m.split(": ")[1] for m in logged if "/4:" in m] == ["alignment 3/4", "alignment 4/4"]
    assert resumed["mean"] == whole["mean"] == pytest.approx(saved.mean())
    c = draw_variance_components(saved, TINY.eval_samples)
    assert whole["one_alignment_sd"] == pytest.approx(c["estimate_sd"])
    assert whole["published_minus_mean_in_sd"] == pytest.approx((0.5 - saved.mean()) / c["estimate_sd"])
    assert whole["draws_at_or_below_published"] == int((saved.mean(axis=1) <= 0.5).sum())
    # draws saved for another importance (another run of the protein sharing the folder) are not reused
    saved_file = part / f"{toy.name}.scrambler_inclusion.draws.npz"
    with np.load(saved_file) as z:
        fields = dict(z)
    np.savez(saved_file, **{**fields, "importance": fields["importance"][::-1]})
    mod.draw_rows([out], draws=4, out_dir=part, **{**kw, "log": (relogged := []).append})
    assert sum("/4:" in m for m in relogged) == 4
    # draws saved under another seed are not mixed in
    (other,) = mod.draw_rows([out], draws=2, out_dir=part, **{**kw, "seed": 8})
    assert other["mean"] != pytest.approx(saved[:2].mean())


def _quiet(msg: str) -> None:
    pass


def test_every_method_runs_on_the_toy_predictor(tmp_path):
    from protscramble.benchmark.methods import MethodInput, importance_of

    pred = ToyPairPredictor()
    x = torch.eye(20)[torch.randint(0, 20, (12,), generator=torch.Generator().manual_seed(1))].unsqueeze(0)
    bg = torch.full((12, 20), 0.05)
    with torch.no_grad():
        ref = pred(x)
    proto = TINY.with_overrides(ig_steps=4)
    for name, fn in METHODS.items():
        imp = importance_of(fn(MethodInput(pred, x, bg, ref, proto, 0.5, 3)))
        assert imp.shape == (12,) and np.isfinite(imp).all(), name


def test_protocols_train_on_the_published_divergence_unless_told_otherwise():
    from protscramble.benchmark.methods import MethodInput

    pred = ToyPairPredictor()
    x = torch.eye(20)[torch.arange(12) % 20].unsqueeze(0)
    bg = torch.full((12, 20), 0.05)
    with torch.no_grad():
        ref = pred(x)
    for proto, direction in ((TINY, "reverse"), (TINY.with_overrides(kl_direction="forward"), "forward")):
        exp = METHODS["scrambler_inclusion"](MethodInput(pred, x, bg, ref, proto, 0.5, 2))
        assert exp.settings["kl_direction"] == direction
        assert exp.settings["clip_value"] is None
    clipped = METHODS["scrambler_occlusion"](MethodInput(pred, x, bg, ref, TINY, 0.5, 2, clip_value=0.5))
    assert clipped.settings["clip_value"] == 0.5
    assert clipped.settings["accumulation_steps"] == 1
    # the published runs clipped each of two 4-sample groups (Keras AdamAccumulate)
    assert (PROTOCOLS["published"].samples, PROTOCOLS["published"].accumulation_steps) == (8, 2)
    grouped = TINY.with_overrides(accumulation_steps=2)
    exp = METHODS["scrambler_inclusion"](MethodInput(pred, x, bg, ref, grouped, 0.5, 2, clip_value=0.5))
    assert exp.settings["accumulation_steps"] == 2
    # results written before the setting existed (one group) keep matching
    assert "accumulation_steps" not in TINY.as_dict() and grouped.as_dict()["accumulation_steps"] == 2
    assert PROTOCOLS["published"].kl_direction == "reverse"
    with pytest.raises(InvalidParameterError, match="KL direction"):
        TINY.with_overrides(kl_direction="sideways")


def test_bad_input_is_rejected(tmp_path):
    with pytest.raises(InvalidParameterError, match="unknown method"):
        run_benchmark(PROTEINS, ["nope"], TINY, tmp_path, predictor=ToyPairPredictor())
    with pytest.raises(InvalidParameterError, match="distinct"):
        run_benchmark([PROTEINS[0], PROTEINS[0]], ["random"], TINY, tmp_path, predictor=ToyPairPredictor())
    with pytest.raises(InvalidParameterError):
        TINY.with_overrides(fractions=(0.3, 0.1))
    with pytest.raises(InvalidParameterError):
        TINY.with_overrides(fractions=(0.0, 0.5))
    with pytest.raises(InvalidParameterError, match="accumulation steps"):
        PROTOCOLS["published"].with_overrides(samples=3)
    odd = ["--protocol", "published", "--samples", "3"]
    assert main(["benchmark", "trrosetta", *odd, "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    assert main(["benchmark", "trrosetta", "--methods", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main(["benchmark", "trrosetta", "--protocol", "fast", "--out", str(tmp_path / "x")]) == 2
    assert (
        main(
            ["benchmark", "trrosetta", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]
        )
        == 2
    )


def _random_on_tr005257(out: Path, *extra: str) -> list[str]:
    """CLI arguments: the random baseline on TR005257 with a few samples, written to ``out``."""
    root = shared_file("trrosetta", "published_results.tsv").parents[1]
    args = [
        "benchmark",
        "trrosetta",
        "--proteins",
        "TR005257",
        "--methods",
        "random",
        "--data-dir",
        str(root),
    ]
    return [
        *args,
        "--faithfulness-samples",
        "2",
        "--eval-samples",
        "2",
        "--no-figures",
        "--out",
        str(out),
        *extra,
    ]


def test_the_keras_instance_norm_reaches_the_predictor_and_the_record(tmp_path, monkeypatch):
    import protscramble.predictors.trrosetta as trrosetta

    made = []

    class Recorder(ToyPairPredictor):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__()
            made.append(kwargs)
            self.instance_norm = kwargs.get("instance_norm", "trrosetta")

    monkeypatch.setattr(trrosetta, "TrRosetta", Recorder)
    assert main(_random_on_tr005257(tmp_path / "k", "--instance-norm", "keras")) == 0
    assert made[-1]["instance_norm"] == "keras"
    done = json.loads((tmp_path / "k" / "proteins" / "TR005257" / "done.json").read_text())
    assert done["settings"]["protocol"]["instance_norm"] == "keras"
    # the default is the network as trained, and is left out of the record (older results still match)
    assert main(_random_on_tr005257(tmp_path / "t")) == 0
    assert made[-1]["instance_norm"] == "trrosetta"
    done = json.loads((tmp_path / "t" / "proteins" / "TR005257" / "done.json").read_text())
    assert "instance_norm" not in done["settings"]["protocol"]
    with pytest.raises(InvalidParameterError, match="instance norm"):
        TINY.with_overrides(instance_norm="tensorflow")
    # a given predictor must be the network the protocol names
    keras = TINY.with_overrides(instance_norm="keras")
    with pytest.raises(InvalidParameterError, match="instance norm"):
        run_benchmark(PROTEINS, ["random"], keras, tmp_path / "x", predictor=ToyPairPredictor())
    assert not (tmp_path / "x").exists()


class DropoutToy(ToyPairPredictor):
    """ToyPairPredictor with a dropout switch; records whether dropout was on at each call."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout = False
        self.calls: list[bool] = []

    def set_dropout(self, enabled: bool) -> None:
        self.dropout = enabled

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls.append(self.dropout)
        h = torch.nn.functional.dropout(self.activation(x.float() @ self.embed), 0.5, training=self.dropout)
        pair = h.unsqueeze(2) * h.unsqueeze(1)
        return {k: torch.softmax(pair @ w, -1) for k, w in self.heads.items()}


def test_optimiser_dropout_acts_only_while_the_scrambler_optimises(tmp_path):
    proto = TINY.with_overrides(optimiser_dropout=True)
    methods = ["scrambler_inclusion", "random"]
    tr = DropoutToy()
    run_benchmark(PROTEINS[:1], methods, proto, tmp_path / "d", predictor=tr)
    # the reference is predicted without dropout, then the optimisation runs with it, and the
    # evaluation, the random baseline and the curves without it again
    on = [i for i, c in enumerate(tr.calls) if c]
    assert tr.calls[0] is False and on and on == list(range(on[0], on[-1] + 1)) and on[-1] < len(tr.calls) - 1
    assert tr.dropout is False
    plain = run_benchmark(PROTEINS[:1], methods, TINY, tmp_path / "p", predictor=DropoutToy())
    d, p = tmp_path / "d" / "proteins" / "toy_a", plain / "proteins" / "toy_a"
    imp = [read_tsv(f / "importance.tsv") for f in (d, p)]
    # dropout moved the scrambler, not the random baseline (nor its curves, below)
    assert [r["scrambler_inclusion"] for r in imp[0]] != [r["scrambler_inclusion"] for r in imp[1]]
    assert [r["random"] for r in imp[0]] == [r["random"] for r in imp[1]]
    rand = [[r for r in read_tsv(f / "faithfulness.tsv") if r["method"] == "random"] for f in (d, p)]
    assert rand[0] == rand[1]
    assert json.loads((d / "done.json").read_text())["settings"]["protocol"]["optimiser_dropout"] is True
    assert "optimiser_dropout" not in json.loads((p / "done.json").read_text())["settings"]["protocol"]
    # repeatable: the dropout masks are seeded
    again = run_benchmark(PROTEINS[:1], methods, proto, tmp_path / "a", predictor=DropoutToy())
    assert read_tsv(again / "proteins" / "toy_a" / "importance.tsv") == read_tsv(d / "importance.tsv")
    # a predictor without dropout is refused before anything is written
    with pytest.raises(InvalidParameterError, match="dropout"):
        run_benchmark(PROTEINS[:1], methods, proto, tmp_path / "x", predictor=ToyPairPredictor())
    assert not (tmp_path / "x").exists()


def test_cli_optimiser_dropout_reaches_the_record(tmp_path, monkeypatch):
    import protscramble.predictors.trrosetta as trrosetta

    monkeypatch.setattr(trrosetta, "TrRosetta", lambda *a, **k: DropoutToy())
    assert main(_random_on_tr005257(tmp_path, "--optimiser-dropout")) == 0
    done = json.loads((tmp_path / "proteins" / "TR005257" / "done.json").read_text())
    assert done["settings"]["protocol"]["optimiser_dropout"] is True


def test_protein_sets_from_shared_data():
    root = shared_file("trrosetta", "published_results.tsv").parents[1]
    assert [p.name for p in resolve_proteins("quick", root)] == ["TR005257", "hallucinated_0417"]
    tr, t1001 = resolve_proteins("TR005257,T1001,TR005257", root)
    assert (tr.length, tr.msa_features, tr.background, tr.target_bits) == (72, False, "msa", 0.25)
    assert (t1001.length, t1001.msa_features, t1001.pseudocount) == (140, True, 20.0)
    # as published (rosetta_utils_with_msa.py and its notebook): the alignment is scrambled with the query
    assert (t1001.scramble_msa, t1001.profile_floor, t1001.clip_value) == (True, 0.005, 0.5)
    assert (tr.scramble_msa, tr.clip_value) == (False, None)
    with pytest.raises(InvalidParameterError, match="unknown protein"):
        resolve_proteins("T9999", root)
    # every row of published_results.tsv is one entry, T1001 once per conservation target
    published = resolve_proteins("published", root)
    rows = read_tsv(root / "trrosetta" / "published_results.tsv")
    assert [(p.source, p.target_bits) for p in published] == [
        (r["protein"], float(r["target_bits"])) for r in rows
    ]
    assert len({p.name for p in published}) == len(rows)
    (half,) = resolve_proteins("T1001@0.5", root)
    assert (half.name, half.source, half.target_bits, half.msa_features) == ("T1001@0.5", "T1001", 0.5, True)
    assert resolve_proteins("T1001@1", root)[0].name == "T1001"  # its default target keeps the plain name
    with pytest.raises(InvalidParameterError, match="bits"):
        resolve_proteins("T1001@-2", root)


def test_published_comparison_matches_settings():
    path = shared_file("trrosetta", "published_results.tsv")
    ours = [
        {"protein": "TR005257", "method": "scrambler_inclusion", "background": "msa", "pseudocount": 1.0,
         "target_bits": 0.25, "steps": 100, "eval_kl_mean": 0.4, "eval_kl_median": 0.3},
        {"protein": "T1001", "method": "scrambler_inclusion", "background": "msa", "pseudocount": 1.0,
         "target_bits": 1.0, "steps": 100, "eval_kl_mean": 0.1, "eval_kl_median": 0.1},
    ]  # fmt: skip
    ours.append(
        {"protein": "T1001@0.5", "method": "scrambler_inclusion", "background": "msa", "pseudocount": 20.0,
         "target_bits": 0.5, "steps": 250, "eval_kl_mean": 2.5, "eval_kl_median": 2.4}
    )  # fmt: skip
    rows = published_comparison(path, ours)
    assert len(rows) == 9
    (half,) = [r for r in rows if r["our_eval_kl_mean"] == 2.5]
    assert (half["protein"], half["target_bits"], half["at_or_below"]) == ("T1001@0.5", 0.5, "no")
    tr = [r for r in rows if r["protein"] == "TR005257"][0]
    assert (tr["our_eval_kl_mean"], tr["at_or_below"]) == (0.4, "yes")
    # a mean over fewer samples than the published 512 is not judged against it, whatever its value
    ours[0] |= {"eval_samples": 32.0}
    ours[2] |= {"eval_samples": 512.0, "eval_kl_mean": 1.9}
    rows = published_comparison(path, ours)
    tr = [r for r in rows if r["protein"] == "TR005257"][0]
    assert (tr["our_eval_samples"], tr["at_or_below"]) == (32.0, "n/a (32 samples; published 512)")
    (half,) = [r for r in rows if r["protein"] == "T1001@0.5"]
    assert half["at_or_below"] == "yes"
    assert half["our_minus_published_in_sem"] is None  # no standard error recorded (older results)
    # with one, how many of them the mean lies from the published one (the table's value read here)
    published = {
        (r["protein"], r["target_bits"]): r["eval_kl_mean"] for r in read_tsv(path) if r["protein"] == "T1001"
    }
    ours[2] |= {"eval_kl_sem": 0.012}
    (half,) = [r for r in published_comparison(path, ours) if r["protein"] == "T1001@0.5"]
    assert half["our_eval_kl_sem"] == 0.012
    assert half["our_minus_published_in_sem"] == pytest.approx((1.9 - published["T1001", 0.5]) / 0.012)
    assert half["our_minus_published_in_sem"] < 0
    # T1001 was published with pseudocount 20: a pseudocount-1 result is not its match
    assert all(
        r["our_eval_kl_mean"] is None for r in rows if r["protein"] == "T1001" and r["target_bits"] == 1.0
    )


def test_structure_overview_summarises_per_protein_values():
    from scipy.stats import wilcoxon

    from protscramble.benchmark.summary import structure_overview

    rho = [-0.3, -0.25, -0.1, -0.4, 0.05, -0.2]
    rows = [
        {
            "protein": f"d{i}",
            "method": "scr",
            "metric": "spearman_total",
            "value": v,
            "p_value": 0.01 + 0.02 * i,
        }
        for i, v in enumerate(rho)
    ]
    rows += [
        {"protein": f"d{i}", "method": "scr", "metric": "hbnet_average_precision", "value": 0.1 * (i + 1),
         "p_value": 0.5}
        for i in range(6)
    ]  # fmt: skip
    rows.append({"protein": "d0", "method": "scr", "metric": "spearman_fa_rep", "value": 0.2, "p_value": 0.1})
    rows.append({"protein": "d0", "method": "rnd", "metric": "spearman_total", "value": 0.1, "p_value": 0.4})
    over = {(r["method"], r["metric"]): r for r in structure_overview(rows)}
    assert set(over) == {
        ("scr", "spearman_total"),
        ("scr", "hbnet_average_precision"),
        ("rnd", "spearman_total"),
    }
    sp = over[("scr", "spearman_total")]
    assert sp["n_proteins"] == 6 and sp["mean"] == pytest.approx(np.mean(rho))
    assert (sp["median"], sp["min"], sp["max"]) == (pytest.approx(np.median(rho)), -0.4, 0.05)
    assert sp["n_p_below_0.05"] == 2  # p = 0.01, 0.03
    assert sp["wilcoxon_p"] == pytest.approx(wilcoxon(rho).pvalue)
    assert over[("scr", "hbnet_average_precision")]["wilcoxon_p"] is None  # no zero null for AP
    assert over[("rnd", "spearman_total")]["wilcoxon_p"] is None  # one protein


def test_structure_agreement_on_a_design():
    from protscramble.benchmark.metrics import structure_rows
    from protscramble.structures import load_structure

    pdb = shared_file("structures", "designed", "sh3_binders", "sh3_r1_110_r2_15.pdb")
    seq = load_structure(pdb, chains=["A"]).sequence("A")
    imp = {"random": np.random.default_rng(0).random(len(seq))}
    rows, _ = structure_rows(imp, seq, str(pdb), "A", top_k=10, n_permutations=50, seed=0, compute_ddg=False)
    metrics = {r["metric"]: r for r in rows}
    assert -1 <= metrics["spearman_total"]["value"] <= 1 and 0 < metrics["spearman_total"]["p_value"] <= 1
    assert any(m.startswith("spearman_fa_") for m in metrics)
    assert "hbnet_average_precision" in metrics
    assert not any("ddg" in m for m in metrics)  # the alanine scan (about a minute on CPU) was not asked for


def test_structure_spearman_rows_follow_the_energy_table():
    """Importance equal to minus the ref2015 total: rho(total) = -1 and rho(|total|) as scipy computes it."""
    from scipy.stats import spearmanr

    from protscramble.benchmark.metrics import structure_rows
    from protscramble.structures import load_structure, per_residue_energies

    pdb = shared_file("structures", "designed", "pdl1_binders", "pd1_r1_10_r2_0.pdb")
    seq = load_structure(pdb, chains=["A"]).sequence("A")
    total = per_residue_energies(pdb, chains=["A"], backend="table").total
    assert len(total) == len(seq)
    rows, _ = structure_rows({"favourable": -total}, seq, str(pdb), "A", 10, 200, 0, compute_ddg=False)
    metrics = {r["metric"]: r for r in rows}
    assert metrics["spearman_total"]["value"] == pytest.approx(-1.0)
    assert metrics["spearman_total"]["p_value"] == pytest.approx(1 / 201)
    expected = spearmanr(-total, np.abs(total)).statistic
    assert metrics["spearman_abs_total"]["value"] == pytest.approx(expected)


def test_methods_are_cached_so_added_methods_and_interrupted_proteins_reuse_work(tmp_path, monkeypatch):
    import protscramble.benchmark.runner as runner

    def broken(_):
        raise RuntimeError("stopped midway")

    out = tmp_path / "bench"
    # An interrupted protein: random finished, gradient x input crashed -> nothing half-written.
    monkeypatch.setitem(runner.METHODS, "gradient_x_input", broken)
    with pytest.raises(RuntimeError, match="midway"):
        run_benchmark(PROTEINS[:1], ["random", "gradient_x_input"], TINY, out, predictor=ToyPairPredictor())
    assert not (out / "proteins" / "toy_a").exists()
    monkeypatch.undo()

    # The rerun must not recompute random (it would raise), and may add methods.
    monkeypatch.setitem(runner.METHODS, "random", broken)
    logs: list[str] = []
    run_benchmark(
        PROTEINS[:1], ["random", "gradient_x_input", "saliency"], TINY, out, predictor=ToyPairPredictor(),
        log=logs.append,
    )  # fmt: skip
    assert "toy_a: random reused from an earlier run" in logs
    monkeypatch.undo()

    fresh = run_benchmark(
        PROTEINS[:1], ["random", "gradient_x_input", "saliency"], TINY, tmp_path / "fresh",
        predictor=ToyPairPredictor(),
    )  # fmt: skip
    for name in ("faithfulness.tsv", "auc.tsv"):
        assert read_tsv(out / name) == read_tsv(fresh / name), name
    imp = read_tsv(out / "proteins" / "toy_a" / "importance.tsv")
    assert imp == read_tsv(fresh / "proteins" / "toy_a" / "importance.tsv")

    # Other settings never reuse cached results.
    monkeypatch.setitem(runner.METHODS, "random", broken)
    with pytest.raises(RuntimeError, match="midway"):
        run_benchmark(
            PROTEINS[:1], ["random"], TINY.with_overrides(seed=3), out, predictor=ToyPairPredictor()
        )


def test_a_new_occlusion_budget_reruns_the_occlusion_scrambler_alone(tmp_path, monkeypatch):
    import protscramble.benchmark.runner as runner

    def broken(_):
        raise RuntimeError("recomputed")

    out = tmp_path / "bench"
    complement = TINY.with_overrides(occlusion_budget="complement")
    run_benchmark(
        PROTEINS[:1], ["random", "scrambler_occlusion"], complement, out, predictor=ToyPairPredictor()
    )
    (row,) = read_tsv(out / "eval_kl.tsv")
    full_bits = row["target_bits"] + PROTEINS[0].target_bits  # complement: all but the protein's bits
    budgets: list[str] = []
    occlusion = runner.METHODS["scrambler_occlusion"]
    monkeypatch.setitem(runner.METHODS, "random", broken)
    monkeypatch.setitem(
        runner.METHODS,
        "scrambler_occlusion",
        lambda m: budgets.append(m.protocol.occlusion_budget) or occlusion(m),
    )
    logs: list[str] = []
    run_benchmark(
        PROTEINS[:1], ["random", "scrambler_occlusion"], TINY.with_overrides(occlusion_budget="0.4"), out,
        predictor=ToyPairPredictor(), log=logs.append,
    )  # fmt: skip
    assert budgets == ["0.4"]  # the occlusion scrambler reran at the new budget ...
    assert "toy_a: random reused from an earlier run" in logs  # ... and random did not
    (row,) = read_tsv(out / "eval_kl.tsv")
    assert row["target_bits"] == pytest.approx(0.6 * full_bits, abs=1e-4)
    # any other setting still reruns every method
    with pytest.raises(RuntimeError, match="recomputed"):
        run_benchmark(
            PROTEINS[:1], ["random"], complement.with_overrides(seed=3), out, predictor=ToyPairPredictor()
        )


def test_occlusion_budget_complements_the_inclusion_target(tmp_path):
    """complement: the occlusion scrambler keeps all but the protein's bits; same: keeps the protein's bits."""
    from protscramble.benchmark.methods import MethodInput

    pred = ToyPairPredictor()
    x = torch.eye(20)[torch.arange(12) % 20].unsqueeze(0)
    bg = torch.full((12, 20), 0.05)  # every letter carries log2(20) bits against the uniform background
    with torch.no_grad():
        ref = pred(x)
    occ = METHODS["scrambler_occlusion"]
    complement = occ(
        MethodInput(pred, x, bg, ref, TINY.with_overrides(occlusion_budget="complement"), 0.5, 2)
    )
    assert complement.settings["target_bits"] == pytest.approx(np.log2(20) - 0.5, abs=1e-5)
    default = occ(MethodInput(pred, x, bg, ref, TINY, 0.5, 2))  # destroys 40% of the sequence's bits
    assert default.settings["target_bits"] == pytest.approx(np.log2(20) * 0.6, abs=1e-5)
    same = occ(MethodInput(pred, x, bg, ref, TINY.with_overrides(occlusion_budget="same"), 0.5, 2))
    assert same.settings["target_bits"] == 0.5
    inclusion = METHODS["scrambler_inclusion"](MethodInput(pred, x, bg, ref, TINY, 0.5, 2))
    assert inclusion.settings["target_bits"] == 0.5  # the inclusion target is the protein's, always
    # a number X: keep (1 - X) of the sequence's bits, whatever the protein's target
    destroy = occ(MethodInput(pred, x, bg, ref, TINY.with_overrides(occlusion_budget="0.4"), 0.5, 2))
    assert destroy.settings["target_bits"] == pytest.approx(np.log2(20) * 0.6, abs=1e-5)
    for bad in ("half", "0", "1", "1.5", "-0.2", "nan"):
        with pytest.raises(InvalidParameterError, match="occlusion budget"):
            TINY.with_overrides(occlusion_budget=bad)

    # the evaluation table records the target each scrambler ran at; progress reaches the log
    logs: list[str] = []
    out = run_benchmark(
        PROTEINS[:1], ["scrambler_inclusion", "scrambler_occlusion"], TINY, tmp_path / "b",
        predictor=ToyPairPredictor(), log=logs.append,
    )  # fmt: skip
    rows = {r["method"]: r for r in read_tsv(out / "eval_kl.tsv")}
    assert rows["scrambler_inclusion"]["target_bits"] == 1.0
    x_a = torch.eye(20)[[AMINO_ACIDS.index(c) for c in PROTEINS[0].sequence]][None]
    bg_a = torch.tensor(make_background("native", PROTEINS[0].length), dtype=torch.float32)
    full = float(conservation_bits(x_a, bg_a).mean())
    assert rows["scrambler_occlusion"]["target_bits"] == pytest.approx(0.6 * full, rel=1e-4)  # the default
    assert f"toy_a: scrambler_occlusion: update {TINY.steps}/{TINY.steps}" in " ".join(logs)
    # ... and the bits each scrambler's final PSSM reached (recomputed from the written importance)
    imp = read_tsv(out / "proteins" / "toy_a" / "importance.tsv")
    for mode in ("inclusion", "occlusion"):
        scores = torch.tensor([[r[f"scrambler_{mode}"] for r in imp]], dtype=torch.float32)
        bits = conservation_bits(scramble_pssm(x_a, scores, bg_a, mode), bg_a)
        assert rows[f"scrambler_{mode}"]["bits"] == pytest.approx(float(bits), rel=1e-3)


def test_nested_ranking_takes_each_fraction_from_its_own_vector():
    from protscramble.benchmark.methods import nested_ranking

    rng = np.random.default_rng(0)
    fractions = [0.1, 0.2, 0.3, 0.4, 0.5]
    vectors = [rng.random(23) for _ in fractions]
    scores = nested_ranking(vectors, fractions)
    assert len(set(scores)) == 23 and scores.max() == 1.0  # a strict ranking, no ties for the curves
    ranked = list(np.argsort(-scores))
    taken: list[int] = []
    for v, f in zip(vectors, fractions, strict=True):
        k = max(1, int(np.floor(f * 23 + 0.5)))
        # the next positions are the vector's best among those not yet taken, in its order
        expected = [int(i) for i in np.argsort(-v) if i not in taken][: k - len(taken)]
        assert ranked[len(taken) : k] == expected
        taken += expected
    # beyond the last fraction the last vector orders the rest
    assert ranked[len(taken) :] == [int(i) for i in np.argsort(-vectors[-1]) if i not in taken]
    with pytest.raises(InvalidParameterError, match="one importance vector per fraction"):
        nested_ranking(vectors[:2], fractions)


def test_fractions_budget_runs_one_occlusion_scrambler_per_fraction(tmp_path):
    """fractions: a scrambler destroying each curve fraction of the bits, rankings nested, parts on record."""
    from protscramble.benchmark.methods import nested_ranking

    protocol = TINY.with_overrides(occlusion_budget="fractions", fractions=(0.2, 0.4))
    logs: list[str] = []
    out = run_benchmark(
        PROTEINS[:1], ["scrambler_occlusion"], protocol, tmp_path / "b", predictor=ToyPairPredictor(),
        log=logs.append,
    )  # fmt: skip
    cache = tmp_path / "b" / "method_cache" / "toy_a"
    entry = json.loads((cache / "scrambler_occlusion.json").read_text())
    x_a = torch.eye(20)[[AMINO_ACIDS.index(c) for c in PROTEINS[0].sequence]][None]
    bg_a = torch.tensor(make_background("native", PROTEINS[0].length), dtype=torch.float32)
    full = float(conservation_bits(x_a, bg_a).mean())
    parts = entry["components"]
    assert [c["fraction"] for c in parts] == [0.2, 0.4]
    for c in parts:
        assert c["target_bits"] == pytest.approx(full * (1 - c["fraction"]), rel=1e-4)
        # the bits recorded are those of that part's own PSSM
        scores = torch.tensor([c["importance"]], dtype=torch.float32)
        bits = conservation_bits(scramble_pssm(x_a, scores, bg_a, "occlusion"), bg_a)
        assert c["bits"] == pytest.approx(float(bits), rel=1e-3)
    assert parts[0]["importance"] != parts[1]["importance"]  # two runs, not one reused
    written = [r["scrambler_occlusion"] for r in read_tsv(out / "proteins" / "toy_a" / "importance.tsv")]
    expected = nested_ranking([np.array(c["importance"]) for c in parts], [0.2, 0.4])
    assert written == pytest.approx(expected.tolist())
    assert read_tsv(out / "eval_kl.tsv") == []  # no single PSSM to evaluate
    assert not list(cache.glob("*.ckpt"))  # the parts' checkpoints go once the result is cached
    joined = " ".join(logs)
    assert "scrambler_occlusion (destroying 20%): update 5/5" in joined and "(destroying 40%)" in joined
    # each part is the scrambler of the numeric budget X on its own: same target, seed and ranking
    alone = run_benchmark(
        PROTEINS[:1], ["scrambler_occlusion"], TINY.with_overrides(occlusion_budget="0.4", fractions=(0.2, 0.4)),
        tmp_path / "alone", predictor=ToyPairPredictor(),
    )  # fmt: skip
    single = json.loads((alone / "method_cache" / "toy_a" / "scrambler_occlusion.json").read_text())
    assert single["importance"] == pytest.approx(parts[1]["importance"], rel=1e-6)
    assert read_tsv(alone / "eval_kl.tsv")[0]["target_bits"] == pytest.approx(
        parts[1]["target_bits"], rel=1e-5
    )


def test_fractions_budget_resumes_after_a_finished_part(tmp_path, monkeypatch):
    """An interrupted fractions run keeps its finished parts: the rerun only optimises the rest."""
    import protscramble.benchmark.methods as methods_mod

    protocol = TINY.with_overrides(occlusion_budget="fractions", fractions=(0.2, 0.4))
    real = methods_mod._optimise
    calls: list[str] = []

    def stop_at_second(m, mode, target, checkpoint, label, seed=None):
        calls.append(label)
        if "40%" in label and len(calls) == 2:
            raise KeyboardInterrupt
        return real(m, mode, target, checkpoint, label, seed=seed)

    monkeypatch.setattr(methods_mod, "_optimise", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(
            PROTEINS[:1], ["scrambler_occlusion"], protocol, tmp_path / "b", predictor=ToyPairPredictor()
        )
    cache = tmp_path / "b" / "method_cache" / "toy_a"
    assert [p.name for p in cache.glob("*.ckpt")] == ["scrambler_occlusion.f0.2.ckpt"]
    logs: list[str] = []
    run_benchmark(
        PROTEINS[:1], ["scrambler_occlusion"], protocol, tmp_path / "b", predictor=ToyPairPredictor(),
        log=logs.append,
    )  # fmt: skip
    joined = " ".join(logs)
    # the 20% part came back from its checkpoint without an update; the 40% part ran all five
    assert "(destroying 20%): update" not in joined and "(destroying 40%): update 5/5" in joined
    fresh = run_benchmark(
        PROTEINS[:1], ["scrambler_occlusion"], protocol, tmp_path / "c", predictor=ToyPairPredictor()
    )
    resumed = read_tsv(tmp_path / "b" / "proteins" / "toy_a" / "importance.tsv")
    assert resumed == read_tsv(fresh / "proteins" / "toy_a" / "importance.tsv")


def test_occlusion_restarts_keep_the_scrambler_whose_objective_went_highest(tmp_path, monkeypatch):
    """Best of N occlusion scramblers by their own divergence; restart k is the single run at seed + k."""
    from protscramble.benchmark.methods import MethodInput, objective_divergence

    pred = ToyPairPredictor()
    x = torch.eye(20)[torch.arange(12) % 20].unsqueeze(0)
    bg = torch.full((12, 20), 0.05)
    with torch.no_grad():
        ref = pred(x)
    occ = METHODS["scrambler_occlusion"]
    singles = [occ(MethodInput(pred, x, bg, ref, TINY.with_overrides(seed=s), 0.5, 5)) for s in (5, 6, 7)]
    scores = [objective_divergence(e) for e in singles]
    best = int(np.argmax(scores))
    # neither the first nor the last restart wins, so keeping either by mistake would show
    assert len(set(scores)) == 3 and best == 1
    # the objective is the training divergence over the last tenth of the updates (at least one), not the curves
    assert scores[0] == pytest.approx(float(singles[0].trace["divergence"][-1].mean()))
    div = np.arange(20.0)[:, None]  # 20 updates: the last two count
    assert objective_divergence(dataclasses.replace(singles[0], trace={"divergence": div})) == 18.5
    logs: list[str] = []
    best_of = occ(
        MethodInput(
            pred,
            x,
            bg,
            ref,
            TINY.with_overrides(seed=5, occlusion_restarts=3, occlusion_restart_select="objective"),
            0.5,
            5,
            log=logs.append,
        )
    )
    np.testing.assert_allclose(best_of.importance, singles[best].importance, rtol=1e-6)
    np.testing.assert_allclose(best_of.pssm, singles[best].pssm, rtol=1e-6)
    record = best_of.settings["restarts"]
    assert [r["seed"] for r in record] == [5, 6, 7] and [r["kept"] for r in record] == [
        k == best for k in range(3)
    ]
    assert [r["objective_divergence"] for r in record] == pytest.approx(scores, rel=1e-6)
    # every restart's ranking stays on record, the unkept ones too, so the choice can be judged afterwards
    for r, single in zip(record, singles, strict=True):
        np.testing.assert_allclose(r["importance"], single.importance[0], rtol=1e-6)
    # the time of every restart is counted, not only the kept one's
    assert best_of.settings["optimisation_seconds"] == pytest.approx(
        sum(r["optimisation_seconds"] for r in record)
    )
    assert all(r["optimisation_seconds"] > 0 for r in record)
    assert any(f"kept restart {best + 1}/3" in msg for msg in logs)
    assert sum("restart 2/3: update 5/5" in msg for msg in logs) == 1
    # a lone restart is the plain scrambler
    one = occ(MethodInput(pred, x, bg, ref, TINY.with_overrides(seed=5, occlusion_restarts=1), 0.5, 5))
    np.testing.assert_array_equal(one.importance, singles[0].importance)
    assert "restarts" not in one.settings
    with pytest.raises(InvalidParameterError, match="occlusion restarts"):
        TINY.with_overrides(occlusion_restarts=0)

    # in the harness: restarts on record, their checkpoints gone, a new count reruns the occlusion scrambler
    # alone, and a run interrupted in its second restart resumes there
    import protscramble.benchmark.methods as methods_mod
    import protscramble.benchmark.runner as runner

    protocol = TINY.with_overrides(occlusion_restarts=2, occlusion_restart_select="objective")
    real = methods_mod._optimise

    def stop_in_second(m, mode, target, checkpoint, label, seed=None):
        if "restart 2/2" in label and not stop_in_second.done:
            stop_in_second.done = True
            raise KeyboardInterrupt
        return real(m, mode, target, checkpoint, label, seed=seed)

    stop_in_second.done = False
    monkeypatch.setattr(methods_mod, "_optimise", stop_in_second)
    out = tmp_path / "b"
    run_benchmark(PROTEINS[:1], ["random"], TINY, out, predictor=ToyPairPredictor())
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(
            PROTEINS[:1], ["random", "scrambler_occlusion"], protocol, out, predictor=ToyPairPredictor()
        )
    cache = out / "method_cache" / "toy_a"
    assert sorted(p.name for p in cache.glob("*.ckpt")) == ["scrambler_occlusion.ckpt"]
    monkeypatch.setitem(runner.METHODS, "random", lambda _: pytest.fail("random recomputed"))
    logs = []
    run_benchmark(
        PROTEINS[:1], ["random", "scrambler_occlusion"], protocol, out, predictor=ToyPairPredictor(),
        log=logs.append,
    )  # fmt: skip
    joined = " ".join(logs)
    assert "restart 1/2: update" not in joined and "restart 2/2: update 5/5" in joined
    assert not list(cache.glob("*.ckpt"))
    entry = json.loads((cache / "scrambler_occlusion.json").read_text())
    assert [r["seed"] for r in entry["restarts"]] == [0, 1] and sum(r["kept"] for r in entry["restarts"]) == 1
    assert entry["settings"]["protocol"]["occlusion_restarts"] == 2
    fresh = run_benchmark(
        PROTEINS[:1], ["scrambler_occlusion"], protocol, tmp_path / "f", predictor=ToyPairPredictor()
    )
    resumed, uninterrupted = (
        [r["scrambler_occlusion"] for r in read_tsv(d / "proteins" / "toy_a" / "importance.tsv")]
        for d in (out, fresh)
    )
    assert resumed == uninterrupted

    # benchmarks/occlusion_parts.py re-evaluates every restart's ranking under the run's own curve draws:
    # the kept restart's curve is the cached one, the other's is its own
    from conftest import load_script

    from protscramble.benchmark.metrics import faithfulness_rows
    from protscramble.benchmark.runner import protein_inputs

    parts = load_script("occlusion_parts.py")
    rankings, extra = parts.cached_rankings(entry)
    kept_name = next(n for n in rankings if extra[n]["kept"])
    assert list(rankings)[0] == kept_name and sorted(rankings) == ["restart_seed0", "restart_seed1"]
    np.testing.assert_array_equal(rankings[kept_name], entry["importance"])
    assert not np.array_equal(rankings["restart_seed0"], rankings["restart_seed1"])
    assert [extra[f"restart_seed{k}"]["objective_divergence"] for k in (0, 1)] == pytest.approx(
        [r["objective_divergence"] for r in entry["restarts"]], abs=1e-4
    )
    pred, x, bg, ref = protein_inputs(PROTEINS[0], ToyPairPredictor())
    curves = faithfulness_rows(
        pred, x, rankings, bg, ref, protocol.fractions, protocol.faithfulness_samples, protocol.seed,
        modes=("occlusion",),
    )  # fmt: skip
    kl = {n: [r["kl"] for r in curves if r["method"] == n] for n in rankings}
    cached = [r["kl"] for r in entry["faithfulness"] if r["mode"] == "occlusion"]
    assert kl[kept_name] == pytest.approx(cached, rel=1e-5)
    # the script's evaluation KL, at the PSSM rebuilt from the kept importance, is the runner's
    from protscramble.benchmark.runner import scrambler_eval_kl

    scores = torch.as_tensor(rankings[kept_name], dtype=torch.float32)[None]
    eval_kl = scrambler_eval_kl(
        pred, ref, scramble_pssm(x, scores, bg, "occlusion"), scores, "occlusion", protocol
    )
    assert float(np.mean(eval_kl)) == pytest.approx(entry["eval"]["eval_kl_mean"], rel=1e-5)
    # a cache whose importance is not its kept restart's is refused
    broken = {
        **entry,
        "importance": rankings["restart_seed1" if kept_name.endswith("0") else "restart_seed0"],
    }
    with pytest.raises(ValueError, match="kept restart"):
        parts.cached_rankings(broken)
    # a plain single scrambler has nothing to re-evaluate
    with pytest.raises(ValueError, match="neither"):
        parts.cached_rankings({**entry, "restarts": None})


def test_occlusion_restarts_judged_by_a_heldout_curve(tmp_path, monkeypatch):
    """``occlusion_restart_select="heldout"`` keeps the restart with the highest occlusion area under draws
    the reported curves never use, and records every restart's held-out area."""
    from protscramble.benchmark.methods import MethodInput, importance_of, objective_divergence
    from protscramble.benchmark.metrics import HELDOUT_SEED_OFFSET
    from protscramble.faithfulness import evaluate_faithfulness

    pred = ToyPairPredictor()
    x = torch.eye(20)[torch.arange(12) % 20].unsqueeze(0)
    bg = torch.full((12, 20), 0.05)
    with torch.no_grad():
        ref = pred(x)
    occ = METHODS["scrambler_occlusion"]
    singles = [occ(MethodInput(pred, x, bg, ref, TINY.with_overrides(seed=s), 0.5, 5)) for s in (6, 7, 8)]

    def area(imp: np.ndarray, seed: int, n: int) -> float:
        res = evaluate_faithfulness(
            pred, x, torch.as_tensor(imp, dtype=torch.float32)[None], bg, fractions=TINY.fractions,
            modes=("occlusion",), n_samples=n, reference=ref, seed=seed, batch_size=8,
        )  # fmt: skip
        return curve_auc(TINY.fractions, [float(res["occlusion", f][0]) for f in TINY.fractions])

    # every restart judged on the same held-out draws: the run's seed (6) moved by the offset
    heldout = [area(importance_of(e), 6 + HELDOUT_SEED_OFFSET, 8) for e in singles]
    best = int(np.argmax(heldout))
    # the two rules disagree here, so a run that judged by the objective would keep another restart
    assert best == 1 and int(np.argmax([objective_divergence(e) for e in singles])) == 0
    # the held-out curve is the default judge of restarts
    protocol = TINY.with_overrides(seed=6, occlusion_restarts=3, heldout_samples=8)
    assert protocol.occlusion_restart_select == "heldout"
    logs: list[str] = []
    kept = occ(MethodInput(pred, x, bg, ref, protocol, 0.5, 5, log=logs.append))
    np.testing.assert_allclose(kept.importance, singles[best].importance, rtol=1e-6)
    record = kept.settings["restarts"]
    assert [r["kept"] for r in record] == [k == best for k in range(3)]
    assert [r["heldout_occlusion_area"] for r in record] == pytest.approx(heldout, rel=1e-5)
    assert any("kept restart 2/3 (held-out occlusion area" in msg for msg in logs)
    # the held-out draws are not the reported curves' (seeded at the run's seed)
    assert heldout != pytest.approx([area(importance_of(e), 6, 8) for e in singles], rel=1e-3)
    # the rule is settings of the occlusion scrambler alone, recorded only where it shapes a result
    assert "occlusion_restart_select" not in TINY.as_dict()
    assert "occlusion_restart_select" not in TINY.with_overrides(occlusion_restart_select="heldout").as_dict()
    assert protocol.as_dict()["occlusion_restart_select"] == "heldout"
    assert protocol.as_dict()["heldout_samples"] == 8
    # runs judged by the objective keep the keys they had before the held-out rule, so their caches match
    by_objective = TINY.with_overrides(occlusion_restarts=2, occlusion_restart_select="objective").as_dict()
    assert "occlusion_restart_select" not in by_objective and "heldout_samples" not in by_objective
    with pytest.raises(InvalidParameterError, match="restart selection"):
        TINY.with_overrides(occlusion_restart_select="curves")
    with pytest.raises(InvalidParameterError, match="heldout samples"):
        TINY.with_overrides(heldout_samples=0)

    # in the harness: a change of rule reruns the occlusion scrambler alone, and the cache records it
    import protscramble.benchmark.runner as runner

    out = tmp_path / "b"
    objective = TINY.with_overrides(occlusion_restarts=2, occlusion_restart_select="objective")
    run_benchmark(
        PROTEINS[:1], ["random", "scrambler_occlusion"], objective, out, predictor=ToyPairPredictor()
    )
    monkeypatch.setitem(runner.METHODS, "random", lambda _: pytest.fail("random recomputed"))
    run_benchmark(
        PROTEINS[:1], ["random", "scrambler_occlusion"],
        objective.with_overrides(occlusion_restart_select="heldout"), out, predictor=ToyPairPredictor(),
    )  # fmt: skip
    entry = json.loads((out / "method_cache" / "toy_a" / "scrambler_occlusion.json").read_text())
    assert entry["settings"]["protocol"]["occlusion_restart_select"] == "heldout"
    assert all("heldout_occlusion_area" in r for r in entry["restarts"])


def test_cli_passes_seed_and_occlusion_budget(tmp_path, monkeypatch, capsys):
    import protscramble.cli.benchmark as cli_benchmark

    seen = {}

    def fake_run(proteins, methods, protocol, out, **kwargs):
        seen["protocol"], seen["methods"], seen["workers"] = protocol, methods, kwargs["workers"]
        return tmp_path

    monkeypatch.setattr(cli_benchmark, "run_benchmark", fake_run)
    data = shared_file("trrosetta", "published_results.tsv").parents[1]
    args = [
        "benchmark",
        "trrosetta",
        "--proteins",
        "TR005257",
        "--data-dir",
        str(data),
        "--out",
        str(tmp_path),
    ]
    assert main([*args, "--seed", "3", "--occlusion-budget", "same"]) == 0
    assert (seen["protocol"].seed, seen["protocol"].occlusion_budget) == (3, "same")
    assert main([*args, "--occlusion-budget", "fractions"]) == 0
    assert seen["protocol"].occlusion_budget == "fractions"
    assert main([*args, "--occlusion-budget", "0.40"]) == 0
    assert seen["protocol"].occlusion_budget == "0.4"  # one spelling per budget, so caches match
    assert main(args) == 0
    assert (seen["protocol"].seed, seen["protocol"].occlusion_budget) == (0, "0.4")
    assert seen["protocol"].occlusion_restarts == 1
    assert main([*args, "--occlusion-restarts", "3"]) == 0
    assert seen["protocol"].occlusion_restarts == 3
    assert seen["protocol"].occlusion_restart_select == "heldout"
    assert main([*args, "--occlusion-restarts", "2", "--occlusion-restart-select", "objective"]) == 0
    assert seen["protocol"].occlusion_restart_select == "objective"
    assert main([*args, "--heldout-samples", "16"]) == 0
    assert seen["protocol"].heldout_samples == 16
    assert seen["workers"] == 1
    assert main([*args, "--workers", "2"]) == 0
    assert seen["workers"] == 2
    capsys.readouterr()
    assert main([*args, "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--occlusion-restart-select", "curves"]) == 2
    err = capsys.readouterr().err
    assert "occlusion-restart-select" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--occlusion-restarts", "0"]) == 2
    err = capsys.readouterr().err
    assert "occlusion-restarts" in err and len(err.strip().splitlines()) == 1
    for bad in ("half", "1.5"):
        assert main([*args, "--occlusion-budget", bad]) == 2
        err = capsys.readouterr().err
        assert "occlusion-budget" in err and "(0, 1)" in err and len(err.strip().splitlines()) == 1
    # methods space- or comma-separated (as the heterodimer benchmark takes them), repeats dropped
    assert main([*args, "--methods", "ism,random", "scrambler_inclusion", "random"]) == 0
    assert seen["methods"] == ["ism", "random", "scrambler_inclusion"]
    capsys.readouterr()
    assert main([*args, "--methods", "ism,shap"]) == 2
    err = capsys.readouterr().err
    assert "unknown method(s) shap" in err and len(err.strip().splitlines()) == 1


def test_results_name_the_cpu_model(tmp_path):
    """platform.processor() is empty on Linux: the record must carry /proc/cpuinfo's model name."""
    from pathlib import Path

    from protscramble.explain import device_name

    info = Path("/proc/cpuinfo")
    if not info.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    models = [
        ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("model name")
    ]
    if not models:
        pytest.skip("/proc/cpuinfo names no CPU model here")
    assert device_name("cpu").startswith(models[0])
    out = run_benchmark(PROTEINS[:1], ["random"], TINY, tmp_path / "b", predictor=ToyPairPredictor())
    assert models[0] in json.loads((out / "proteins" / "toy_a" / "done.json").read_text())["device"]


def test_an_interrupted_scrambler_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    from protscramble.benchmark import methods as bench_methods

    proto = TINY.with_overrides(steps=60)
    first_run: list[str] = []

    def crash_at_50(msg: str) -> None:
        first_run.append(msg)
        if "update 50/60" in msg:
            raise KeyboardInterrupt

    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(
            PROTEINS[:1], ["scrambler_inclusion"], proto, out, predictor=ToyPairPredictor(), log=crash_at_50
        )
    ckpt = out / "method_cache" / "toy_a" / "scrambler_inclusion.ckpt"
    assert ckpt.is_file() and not (out / "proteins" / "toy_a").exists()
    # a fast run reports every PROGRESS_EVERY updates only ...
    assert [m for m in first_run if "scrambler_inclusion: update" in m][-1].startswith(
        "toy_a: scrambler_inclusion: update 50/60"
    ) and sum("scrambler_inclusion: update" in m for m in first_run) == 1
    # ... a slow one also when PROGRESS_SECONDS have passed, with its rate and the time left
    monkeypatch.setattr(bench_methods, "PROGRESS_SECONDS", 0.0)
    logs: list[str] = []
    run_benchmark(
        PROTEINS[:1], ["scrambler_inclusion"], proto, out, predictor=ToyPairPredictor(), log=logs.append
    )
    assert "toy_a: scrambler_inclusion: resumed at update 51/60" in logs
    timed = [m for m in logs if "scrambler_inclusion: update" in m]
    assert [m.split("update ")[1].split("/")[0] for m in timed] == [str(i) for i in range(51, 61)]
    assert "s/update" in timed[0] and timed[-1].endswith("~0 min left")
    assert not ckpt.exists()  # superseded by the cached result
    fresh = run_benchmark(
        PROTEINS[:1], ["scrambler_inclusion"], proto, tmp_path / "f", predictor=ToyPairPredictor()
    )
    for name in ("importance.tsv", "eval_kl.tsv", "faithfulness.tsv"):
        assert read_tsv(out / "proteins" / "toy_a" / name) == read_tsv(fresh / "proteins" / "toy_a" / name), (
            name
        )


def test_progress_rate_follows_the_recent_updates(tmp_path, monkeypatch):
    """On a CPU that another job starts or stops sharing, the time left must follow the new rate."""
    import types

    from protscramble.benchmark import methods as bench_methods

    # a fake clock: the setup and the first 10 updates take 1 s each, the rest 10 s each
    ticks = iter([0.0] + [float(i) for i in range(1, 11)] + [10.0 + 10 * i for i in range(1, 21)])
    monkeypatch.setattr(bench_methods, "time", types.SimpleNamespace(monotonic=lambda: next(ticks)))
    monkeypatch.setattr(bench_methods, "PROGRESS_SECONDS", 5.0)
    logs: list[str] = []
    run_benchmark(
        PROTEINS[:1],
        ["scrambler_inclusion"],
        TINY.with_overrides(steps=30),
        tmp_path / "b",
        predictor=ToyPairPredictor(),
        log=logs.append,
    )
    lines = [
        (int(u), float(r), int(left))
        for m in logs
        for u, r, left in re.findall(r"update (\d+)/30, .*, ([\d.]+) s/update, ~(\d+) min left", m)
    ]
    # a line every 5 s of the clock: updates 5 and 10 at 1 s each, then each slow update, whose
    # 10 s/update (19 left: ~3 min) a run average would put at 1.8 s/update (~1 min)
    assert lines[:3] == [(5, 1.0, 0), (10, 1.0, 0), (11, 10.0, 3)]
    assert [u for u, _, _ in lines] == [5, 10, *range(11, 31)] and {r for _, r, _ in lines[2:]} == {10.0}


def test_results_move_between_machines_and_a_skipped_ddg_is_added_later(tmp_path, monkeypatch):
    """A run elsewhere (a GPU without tmol) is finished here: same structure file under another
    path reuses every method and curve, the skipped alanine scan is added, the timing keeps the
    original device."""
    import shutil

    import protscramble.benchmark.runner as runner
    import protscramble.structures as structures
    from protscramble.errors import BackendUnavailableError
    from protscramble.structures import DdgTable, load_structure

    pdb = shared_file("structures", "designed", "sh3_binders", "sh3_r1_110_r2_15.pdb")
    copies = []
    for where in ("gpu_machine", "here"):
        (tmp_path / where).mkdir()
        copies.append(Path(shutil.copy(pdb, tmp_path / where / pdb.name)))
    seq = load_structure(pdb, chains=["A"]).sequence("A")
    protein = [BenchmarkProtein("design", seq, structure=copies[0])]
    protocol = TINY.with_overrides(n_permutations=20)
    methods = ["random", "saliency"]

    def no_tmol(*_, **__):
        raise BackendUnavailableError("tmol is not installed")

    monkeypatch.setattr(structures, "alanine_scan", no_tmol)
    monkeypatch.setattr(runner, "ddg_available", lambda: False)
    out = run_benchmark(protein, methods, protocol, tmp_path / "bench", predictor=ToyPairPredictor())
    done = json.loads((out / "proteins" / "design" / "done.json").read_text())
    assert done["pending"] == ["ddg"] and not any(
        "ddg" in r["metric"] for r in read_tsv(out / "structure.tsv")
    )
    cache = out / "method_cache" / "design"
    for m in methods:  # pretend the methods and curves ran on a GPU
        entry = json.loads((cache / f"{m}.json").read_text())
        entry["device"] = entry["faithfulness_device"] = "NVIDIA H200"
        entry["precision"] = entry["faithfulness_precision"] = "tf32"
        (cache / f"{m}.json").write_text(json.dumps(entry))
    first = read_tsv(out / "faithfulness.tsv")

    def scan(struct, chains):
        res = [r for r in struct.residues if r.chain == chains[0]]
        ddg = np.arange(len(res), dtype=float)
        return DdgTable(res, np.full(len(res), np.nan), ddg, None, "fake", "ref2015")

    # Here: tmol present, the structure under another folder, every method would fail if recomputed.
    monkeypatch.setattr(structures, "alanine_scan", scan)
    monkeypatch.setattr(runner, "ddg_available", lambda: True)
    for m in methods:
        monkeypatch.setitem(runner.METHODS, m, no_tmol)
    monkeypatch.setattr(runner, "faithfulness_rows", no_tmol)
    moved = [BenchmarkProtein("design", seq, structure=copies[1])]
    logs: list[str] = []
    run_benchmark(moved, methods, protocol, out, predictor=ToyPairPredictor(), log=logs.append)
    assert "design: random reused from an earlier run" in logs
    done = json.loads((out / "proteins" / "design" / "done.json").read_text())
    assert done["pending"] == [] and done["device"] == "NVIDIA H200"
    assert read_tsv(out / "faithfulness.tsv") == first
    assert {r["metric"] for r in read_tsv(out / "structure.tsv")} >= {"top10_ddg_difference"}
    assert {(r["method"], r["device"], r["precision"]) for r in read_tsv(out / "timing.tsv")} == {
        ("random", "NVIDIA H200", "tf32"),
        ("saliency", "NVIDIA H200", "tf32"),
        ("faithfulness_evaluation", "NVIDIA H200", "tf32"),
    }
    # finished now: a third run skips the protein; a changed structure file is another input
    logs.clear()
    run_benchmark(moved, methods, protocol, out, predictor=ToyPairPredictor(), log=logs.append)
    assert logs == ["design: already done, skipped"]
    copies[1].write_text(copies[1].read_text().replace("ATOM  ", "HETATM", 1))
    logs.clear()
    with pytest.raises(BackendUnavailableError):
        run_benchmark(moved, methods, protocol, out, predictor=ToyPairPredictor(), log=logs.append)


class FailingWorkerToyPredictor(ToyPairPredictor):
    """Refuses toy_b's sequence (after a pause) in worker processes only, so that an error reaching the
    caller can only have come from a worker."""

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if multiprocessing.parent_process() is not None and x.shape[1] == len(PROTEINS[1].sequence):
            time.sleep(3.0)  # the other worker's scrambler is running by now
            raise InvalidSequenceError("toy predictor refuses this sequence")
        return super().__call__(x)


def test_workers_compute_every_method_elsewhere_and_give_the_serial_results(tmp_path):
    methods = [*TINY_METHODS, "scrambler_occlusion"]
    serial_logs: list[str] = []
    serial = run_benchmark(
        PROTEINS, methods, TINY, tmp_path / "serial", predictor=ToyPairPredictor(), log=serial_logs.append
    )
    assert sum("faithfulness curves of" in line for line in serial_logs) == len(PROTEINS)
    logs: list[str] = []
    parallel = run_benchmark(
        PROTEINS, methods, TINY, tmp_path / "parallel", predictor=ToyPairPredictor(), workers=2,
        log=logs.append,
    )  # fmt: skip
    assert f"{len(PROTEINS) * len(methods)} method run(s) on 2 worker(s) of" in logs[0]
    # the worker processes computed everything: this process only collected their cached results
    for p in PROTEINS:
        for m in methods:
            assert f"{p.name}: {m} reused from an earlier run" in logs, (p.name, m)
    assert not any("faithfulness curves" in line for line in logs)  # the curves too
    tables = [
        (name, read_tsv(parallel / name), read_tsv(serial / name)) for name in ("auc.tsv", "eval_kl.tsv")
    ]
    tables += [
        (p.name, *(read_tsv(d / "proteins" / p.name / "importance.tsv") for d in (parallel, serial)))
        for p in PROTEINS
    ]
    for name, ours, theirs in tables:
        assert len(ours) == len(theirs) > 0, name
        for a, b in zip(ours, theirs, strict=True):
            assert a.keys() == b.keys()
            for k, v in a.items():
                assert v == (pytest.approx(b[k], rel=1e-5) if isinstance(v, float) else b[k]), (name, k)


def test_a_workers_error_reaches_the_caller_and_stops_the_other_workers(tmp_path):
    out = tmp_path / "bench"
    endless = TINY.with_overrides(steps=20_000)  # minutes, unless stopped
    t0 = time.perf_counter()
    with pytest.raises(InvalidSequenceError, match="refuses"):
        run_benchmark(
            PROTEINS, ["scrambler_inclusion"], endless, out, predictor=FailingWorkerToyPredictor(), workers=2
        )
    # toy_a's scrambler was stopped midway and kept its checkpoint for a rerun; nothing was written
    assert time.perf_counter() - t0 < 60
    assert (out / "method_cache" / "toy_a" / "scrambler_inclusion.ckpt").is_file()
    assert not (out / "method_cache" / "toy_a" / "scrambler_inclusion.json").exists()
    assert not (out / "proteins" / "toy_a").exists() and not (out / "summary.md").exists()

    unpicklable = ToyPairPredictor()
    unpicklable.heads = {"dist": lambda h: h}  # a lambda cannot be sent to a worker
    with pytest.raises(InvalidParameterError, match="sent to another process"):
        run_benchmark(PROTEINS[:1], ["random"], TINY, out, predictor=unpicklable, workers=2)
    with pytest.raises(InvalidParameterError, match="workers"):
        run_benchmark(PROTEINS[:1], ["random"], TINY, out, predictor=ToyPairPredictor(), workers=0)


def test_workers_build_trrosetta_and_reproduce_the_single_process_run(tmp_path):
    """With the benchmark's own predictor each worker builds trRosetta: same areas as one process."""
    tiny = TINY.with_overrides(steps=2, precision="fp32", compile="off")
    protein = [BenchmarkProtein("tiny", "MKVLAAGIEELLKK")]
    methods = ["scrambler_inclusion", "random"]
    one = run_benchmark(protein, methods, tiny, tmp_path / "one", figures=False)
    two = run_benchmark(protein, methods, tiny, tmp_path / "two", workers=2, figures=False)
    ours, theirs = read_tsv(two / "auc.tsv"), read_tsv(one / "auc.tsv")
    assert [(r["method"], r["mode"]) for r in ours] == [(r["method"], r["mode"]) for r in theirs]
    assert [r["auc"] for r in ours] == pytest.approx([r["auc"] for r in theirs], rel=1e-4)
    assert read_tsv(two / "eval_kl.tsv")[0]["eval_kl_mean"] == pytest.approx(
        read_tsv(one / "eval_kl.tsv")[0]["eval_kl_mean"], rel=1e-4
    )
    cached = json.loads((two / "method_cache" / "tiny" / "scrambler_inclusion.json").read_text())
    assert cached["precision"] == "fp32" and "faithfulness" in cached
