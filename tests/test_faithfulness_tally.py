"""benchmarks/faithfulness_tally.py: the aim's verdicts recomputed from kept auc.tsv files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def tally_mod():
    return load_script("faithfulness_tally.py")


def _run(folder: Path, protein: str, areas: dict[tuple[str, str], float], *, name: str = "quick",
         seed: int = 0, budget: str | None = "0.4", precision: str = "fp32", restarts: int = 1,
         importance: dict[str, list[float]] | None = None) -> Path:  # fmt: skip
    folder.mkdir(parents=True)
    if importance is not None:
        with (folder / "importance.tsv").open("w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(["position", *importance])
            for i, values in enumerate(zip(*importance.values(), strict=True)):
                w.writerow([i + 1, *values])
    protocol = {"name": name, "seed": seed}
    if budget is not None:
        protocol["occlusion_budget"] = budget
    if restarts > 1:  # as Protocol.as_dict records it: only above one
        protocol["occlusion_restarts"] = restarts
    settings = {"protein": protein, "steps": 100, "protocol": protocol}
    (folder / "done.json").write_text(
        json.dumps({"settings": settings, "methods": sorted({m for m, _ in areas})})
    )
    with (folder / "auc.tsv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["protein", "method", "mode", "auc"])
        # another protein's rows in the same file (a merged table) must not leak into this run's verdict
        w.writerow(["other", "ism", "inclusion", "0.001"])
        for (method, mode), auc in areas.items():
            w.writerow([protein, method, mode, auc])
    with (folder / "timing.tsv").open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["protein", "method", "seconds", "device", "precision"])
        w.writerow([protein, "scrambler_inclusion", 1.0, "cpu", precision])
    return folder


def test_judge_half_directions(tally_mod):
    # inclusion: lower wins; occlusion: higher wins; the scrambler against the best of the others
    inc = tally_mod.judge_half({"scrambler_inclusion": 1.0, "ism": 1.25, "random": 0.9}, "inclusion")
    assert inc["best_other"] == "random" and inc["holds"] is False
    assert inc["margin_pct"] == pytest.approx(-100 * 0.1 / 0.9)
    occ = tally_mod.judge_half(
        {"scrambler_occlusion": 1.5, "scrambler_inclusion": 1.2, "random": 0.5}, "occlusion"
    )
    assert occ["best_other"] == "scrambler_inclusion" and occ["holds"] is True
    assert occ["margin_pct"] == pytest.approx(25.0)
    # a half needs its scrambler and at least one other method
    assert tally_mod.judge_half({"scrambler_occlusion": 1.5}, "occlusion") is None
    assert tally_mod.judge_half({"ism": 1.0, "random": 2.0}, "inclusion") is None


def test_tally_over_run_folders(tally_mod, tmp_path, capsys):
    root = tmp_path / "results"
    _run(
        root / "a" / "proteins" / "p1", "p1",
        {("scrambler_inclusion", "inclusion"): 0.8, ("ism", "inclusion"): 1.0, ("random", "inclusion"): 1.4,
         ("scrambler_inclusion", "occlusion"): 1.3, ("scrambler_occlusion", "occlusion"): 1.2,
         ("ism", "occlusion"): 0.9, ("random", "occlusion"): 0.5},
        name="published", budget=None, precision="bf16",
    )  # fmt: skip
    _run(
        root / "b", "p2",
        {("scrambler_inclusion", "inclusion"): 0.5, ("scrambler_occlusion", "inclusion"): 0.7,
         ("scrambler_inclusion", "occlusion"): 1.0, ("scrambler_occlusion", "occlusion"): 1.1},
        seed=1, restarts=2,
    )  # fmt: skip
    _run(root / "c", "p3", {("scrambler_occlusion", "occlusion"): 2.0})  # nothing to judge
    (root / "d").mkdir()
    (root / "d" / "done.json").write_text("{}")  # no auc.tsv beside it: not a protein-run

    rows = tally_mod.tally([root])
    assert [r["protein"] for r in rows] == ["p1", "p2"]
    p1, p2 = rows
    assert (p1["protocol"], p1["precision"], p1["n_methods"]) == ("published", "bf16", 4)
    assert p1["budget"].startswith("complement")  # runs from before the field recorded the old default
    assert p1["inclusion_holds"] is True and p1["inclusion_best_other"] == "ism"
    assert p1["occlusion_holds"] is False and p1["occlusion_best_other"] == "scrambler_inclusion"
    assert (p2["seed"], p2["budget"], p2["inclusion_holds"], p2["occlusion_holds"]) == (1, "0.4", True, True)
    assert (p1["restarts"], p2["restarts"]) == (1, 2)
    assert tally_mod.tally([root], protocol="quick") == [p2]
    assert tally_mod.tally([root], protein="p1") == [p1]
    assert tally_mod.tally_lines(rows) == [
        "published: inclusion holds on 1 of 1; occlusion holds on 0 of 1; both on 0 of 1 judged on both (1 proteins)",
        "quick: inclusion holds on 1 of 1; occlusion holds on 1 of 1; both on 1 of 1 judged on both (1 proteins)",
    ]

    out = tmp_path / "tally.tsv"
    assert tally_mod.main([str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| p1 | published |" in printed and "NO" in printed
    with out.open() as fh:
        written = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["protein"], r["occlusion_holds"]) for r in written] == [("p1", "False"), ("p2", "True")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "tally.tsv"]  # no temporary left


def test_tally_cli_errors(tally_mod, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        tally_mod.main([str(tmp_path / "missing")])
    assert exc.value.code == 2 and "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        tally_mod.main([str(tmp_path)])
    assert exc.value.code == 2 and "no protein-run" in capsys.readouterr().err


def test_a_run_copied_and_extended_counts_once(tally_mod, tmp_path):
    root = tmp_path / "results"
    scramblers = {"scrambler_inclusion": [0.1, 0.9, 0.5], "scrambler_occlusion": [0.7, 0.2, 0.4]}
    first = {("scrambler_inclusion", "inclusion"): 0.8, ("random", "inclusion"): 1.4,
             ("scrambler_occlusion", "occlusion"): 1.2, ("random", "occlusion"): 0.5}  # fmt: skip
    _run(root / "day1" / "p1", "p1", first, importance={**scramblers, "random": [0.3, 0.1, 0.2]})
    # the same scramblers, copied, with a competitor that beats the occlusion scrambler
    extended = {**first, ("ism", "inclusion"): 1.0, ("ism", "occlusion"): 1.3}
    _run(root / "day2" / "p1", "p1", extended, importance={**scramblers, "ism": [1.0, 2.0, 3.0]})
    # another inclusion optimisation of the same protein stays a run of its own, but its occlusion
    # scrambler is day1's, reused (as --occlusion-restarts over a finished run shares the inclusion one)
    other = {"scrambler_inclusion": [0.2, 0.9, 0.5], "scrambler_occlusion": [0.7, 0.2, 0.4]}
    _run(root / "day3" / "p1", "p1", first, importance=other)
    # a run without an importance file is never folded
    _run(root / "day4" / "p1", "p1", first)
    # nor is another protein's run that happens to hold the same importance values
    _run(root / "day5" / "p2", "p2", first, importance=scramblers)

    rows = tally_mod.tally([root], protein="p1")
    assert [Path(r["run"]).parent.name for r in rows] == ["day2", "day3", "day4"]
    assert [Path(r["run"]).parent.name for r in tally_mod.tally([root], protein="p2")] == ["day5"]
    kept = rows[0]
    assert (kept["copies"], kept["n_methods"], kept["occlusion_holds"]) == (1, 4, False)
    assert [r["copies"] for r in rows[1:]] == [0, 0]
    # the shared occlusion half is judged once, in the run with more methods (day2)
    assert (rows[1]["inclusion_holds"], rows[1]["occlusion_holds"], rows[1]["occlusion_scrambler"]) == (
        True, None, None,
    )  # fmt: skip
    assert tally_mod.tally_lines(rows)[0].startswith(
        "quick: inclusion holds on 3 of 3; occlusion holds on 1 of 2"
    )
    # a run whose only judged half is shared drops out of the table
    _run(root / "day6" / "p1", "p1", {("scrambler_occlusion", "occlusion"): 1.2, ("random", "occlusion"): 0.5},
         importance={"scrambler_occlusion": scramblers["scrambler_occlusion"]})  # fmt: skip
    assert "day6" not in {Path(r["run"]).parent.name for r in tally_mod.tally([root], protein="p1")}
