"""benchmarks/run_agreement.py: two runs of one protein compared from their kept files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def agree():
    return load_script("run_agreement.py")


def _tsv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _run(folder: Path, protein: str, sequence: str, importance: dict[str, list[float]],
         areas: dict[tuple[str, str], float], eval_kl: float | None = None, device: str = "cpu") -> Path:  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "done.json").write_text(json.dumps({"settings": {"protein": protein}}))
    _tsv(folder / "importance.tsv", ["position", "residue", *importance],
         [[i + 1, aa, *(v[i] for v in importance.values())] for i, aa in enumerate(sequence)])  # fmt: skip
    _tsv(folder / "auc.tsv", ["protein", "method", "mode", "auc"],
         [["other", "ism", "inclusion", 9.0]] + [[protein, m, mode, a] for (m, mode), a in areas.items()])  # fmt: skip
    _tsv(folder / "timing.tsv", ["protein", "method", "seconds", "device", "precision"],
         [[protein, "scrambler_inclusion", 1.0, device, "bf16"]])  # fmt: skip
    if eval_kl is not None:
        _tsv(folder / "eval_kl.tsv", ["protein", "method", "target_bits", "eval_kl_mean", "eval_kl_median"],
             [[protein, "scrambler_inclusion", 1, eval_kl, eval_kl]])  # fmt: skip
    return folder


SEQ = "ACDEFGHIKL"
RISING = [float(i) for i in range(10)]


def test_identical_runs_agree_exactly(agree, tmp_path):
    imp = {"scrambler_inclusion": RISING, "random": RISING[::-1]}
    areas = {("scrambler_inclusion", "inclusion"): 0.9, ("random", "inclusion"): 1.4}
    a = _run(tmp_path / "a", "P", SEQ, imp, areas, eval_kl=2.0)
    b = _run(tmp_path / "b", "P", SEQ, imp, areas, eval_kl=2.0)
    rows = agree.compare(a, b, "P")
    imp_rows = {r["method"]: r for r in rows if r["quantity"] == "importance"}
    assert set(imp_rows) == {"scrambler_inclusion", "random"}
    assert all(
        r["spearman"] == pytest.approx(1.0) and r["top_shared"] == 2 == r["top_k"] for r in imp_rows.values()
    )
    assert all(r["max_abs_diff"] == 0 for r in imp_rows.values())
    # the other protein's row in auc.tsv is not this protein's
    assert {r["method"] for r in rows if r["quantity"] == "auc_inclusion"} == {
        "scrambler_inclusion",
        "random",
    }
    assert all(r["diff_pct"] == 0 for r in rows if r["quantity"] != "importance")


def test_differences_are_measured(agree, tmp_path):
    # b reverses the ranking of positions and moves the areas and KL by known amounts
    a = _run(tmp_path / "a", "P", SEQ, {"scrambler_inclusion": RISING},
             {("scrambler_inclusion", "inclusion"): 1.0, ("ism", "inclusion"): 2.0}, eval_kl=2.0)  # fmt: skip
    b = _run(tmp_path / "b", "P", SEQ, {"scrambler_inclusion": RISING[::-1]},
             {("scrambler_inclusion", "inclusion"): 1.05}, eval_kl=1.9)  # fmt: skip
    rows = agree.compare(a, b, "P", top=0.3)
    (imp,) = [r for r in rows if r["quantity"] == "importance"]
    assert imp["spearman"] == pytest.approx(-1.0)
    assert (imp["top_shared"], imp["top_k"]) == (0, 3)  # ceil(0.3 * 10): top three of each, disjoint
    assert imp["max_abs_diff"] == pytest.approx(9.0)
    (auc,) = [r for r in rows if r["quantity"] == "auc_inclusion"]  # ism ran in a only: not compared
    assert (auc["a"], auc["b"], auc["diff_pct"]) == (1.0, 1.05, pytest.approx(5.0))
    (kl,) = [r for r in rows if r["quantity"] == "eval_kl"]
    assert kl["method"] == "scrambler_inclusion (1 bits)" and kl["diff_pct"] == pytest.approx(-5.0)


def test_top_overlap_counts_shared_positions(agree, tmp_path):
    # swap the two highest positions' order only: the top-20% set (two positions) is unchanged
    swapped = RISING[:8] + [RISING[9], RISING[8]]
    a = _run(tmp_path / "a", "P", SEQ, {"m": RISING}, {})
    b = _run(tmp_path / "b", "P", SEQ, {"m": swapped}, {})
    (imp,) = agree.compare(a, b, "P")
    assert imp["top_shared"] == 2 and imp["spearman"] < 1.0
    # the highest position swapped with a middle one: one of the top two stays, while the bottom two
    # would still be shared (so a count over the wrong end of the ranking fails here)
    demoted = RISING[:5] + [RISING[9]] + RISING[6:9] + [RISING[5]]
    c = _run(tmp_path / "c", "P", SEQ, {"m": demoted}, {})
    (imp,) = agree.compare(a, c, "P")
    assert imp["top_shared"] == 1


def test_different_sequences_refused(agree, tmp_path):
    a = _run(tmp_path / "a", "P", SEQ, {"m": RISING}, {})
    b = _run(tmp_path / "b", "P", "ACDEFGHIKM", {"m": RISING}, {})
    with pytest.raises(agree.AgreementError, match="different sequences"):
        agree.compare(a, b, "P")


def test_run_folders_pair_proteins_by_name(agree, tmp_path, capsys):
    imp = {"scrambler_inclusion": RISING}
    areas = {("scrambler_inclusion", "inclusion"): 1.0}
    _run(tmp_path / "a" / "proteins" / "P", "P", SEQ, imp, areas, device="Xeon")
    _run(tmp_path / "a" / "proteins" / "Q", "Q", SEQ, imp, areas)
    _run(tmp_path / "b" / "proteins" / "P", "P", SEQ, imp, areas, device="EPYC")
    out_tsv = tmp_path / "agreement.tsv"
    assert agree.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out_tsv)]) == 0
    out = capsys.readouterr().out
    assert "P: a = Xeon (bf16); b = EPYC (bf16)" in out and "Q:" not in out
    with out_tsv.open() as fh:
        written = list(csv.DictReader(fh, delimiter="\t"))
    assert {r["protein"] for r in written} == {"P"} and len(written) == 2


def test_cli_errors_are_one_line(agree, tmp_path, capsys):
    _run(tmp_path / "a", "P", SEQ, {"m": RISING}, {})
    _run(tmp_path / "b", "Q", SEQ, {"m": RISING}, {})
    with pytest.raises(SystemExit) as exc:
        agree.main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("the two folders hold no protein-run of the same protein")
    assert "Traceback" not in "\n".join(err)
    _run(tmp_path / "c", "P", "ACDEFGHIKM", {"m": RISING}, {})
    with pytest.raises(SystemExit) as exc:
        agree.main([str(tmp_path / "a"), str(tmp_path / "c")])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip().endswith("(lengths 10 and 10, first difference at position 10)")
    assert captured.out == ""  # nothing of a report before the error
    with pytest.raises(SystemExit) as exc:
        agree.main([str(tmp_path / "a"), str(tmp_path / "a"), "--top", "2"])
    assert exc.value.code == 2 and "--top must be in (0, 1], got 2.0" in capsys.readouterr().err


def test_older_layout_reads_the_run_folders_merged_tables(agree, tmp_path, capsys):
    # older runs: proteins/NAME/ holds importance.tsv and done.json; auc/eval/timing merged at the top
    imp = {"scrambler_inclusion": RISING}
    new = _run(tmp_path / "new", "P", SEQ, imp, {("scrambler_inclusion", "inclusion"): 1.1}, eval_kl=2.2)
    old = tmp_path / "old"
    _run(old / "proteins" / "P", "P", SEQ, imp, {})
    for name in ("auc.tsv", "timing.tsv", "eval_kl.tsv"):
        (old / "proteins" / "P" / name).unlink(missing_ok=True)
    _tsv(old / "auc.tsv", ["protein", "method", "mode", "auc"],
         [["Q", "scrambler_inclusion", "inclusion", 5.0], ["P", "scrambler_inclusion", "inclusion", 1.0]])  # fmt: skip
    _tsv(old / "eval_kl.tsv", ["protein", "method", "target_bits", "eval_kl_mean"],
         [["P", "scrambler_inclusion", 1, 2.0], ["Q", "scrambler_inclusion", 1, 9.0]])  # fmt: skip
    _tsv(old / "timing.tsv", ["protein", "method", "seconds", "device", "precision"],
         [["P", "scrambler_inclusion", 1.0, "H200", "fp32"], ["Q", "scrambler_inclusion", 1.0, "other", "fp32"]])  # fmt: skip
    assert agree.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "P: a = H200 (fp32); b = cpu (bf16)" in out and "other" not in out
    rows = agree.compare(old / "proteins" / "P", new, "P")
    (auc,) = [r for r in rows if r["quantity"] == "auc_inclusion"]
    assert (auc["a"], auc["b"]) == (1.0, 1.1)  # P's row of the merged table, not Q's
    (kl,) = [r for r in rows if r["quantity"] == "eval_kl"]
    assert (kl["a"], kl["b"]) == (2.0, 2.2)


def test_settings_that_differ_are_named(agree, tmp_path):
    a = _run(tmp_path / "a", "P", SEQ, {"m": RISING}, {})
    b = _run(tmp_path / "b", "P", SEQ, {"m": RISING}, {})
    assert agree.settings_diff(a, b) == []
    for run, precision, budget in ((a, "fp32", "complement"), (b, "auto", "0.4")):
        settings = {
            "protein": "P",
            "protocol": {"precision": precision, "occlusion_budget": budget, "seed": 0},
        }
        (run / "done.json").write_text(json.dumps({"settings": settings}))
    assert agree.settings_diff(a, b) == [
        "protocol.occlusion_budget: complement / 0.4",
        "protocol.precision: fp32 / auto",
    ]
