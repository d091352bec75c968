"""Importance versus structure: the statistics, the importance reader and the compare command."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from _structures_helpers import (
    assert_one_line_error,
    design_models,
    needs_tmol,
    rosetta_table_rows,
    run_cli,
    structure_file,
    write_importance,
)
from scipy.stats import spearmanr

from protscramble.errors import InputFileError, InvalidParameterError
from protscramble.structures import (
    average_precision,
    load_structure,
    read_importance_tsv,
    spearman_permutation_test,
    topk_permutation_test,
)

# ------------------------------------------------------------------ statistics


def test_spearman_matches_scipy_and_is_reproducible():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=40)
    y[:20] += x[:20]
    res = spearman_permutation_test(x, y, n_permutations=2000, seed=1)
    assert res.rho == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    assert res == spearman_permutation_test(x, y, n_permutations=2000, seed=1)
    assert 0 < res.p_value <= 1 and res.n == 40


def test_spearman_permutation_p_value_matches_exhaustive_enumeration():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    observed = abs(spearmanr(x, y)[0])
    exact = np.mean(
        [abs(spearmanr(np.array(p), y)[0]) >= observed - 1e-12 for p in itertools.permutations(x)]
    )
    res = spearman_permutation_test(x, y, n_permutations=20_000, seed=0)
    assert res.p_value == pytest.approx(exact, abs=0.01)


def test_spearman_drops_nan_pairs_and_handles_constants():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    y = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 6.0])
    res = spearman_permutation_test(x, y, n_permutations=100)
    assert res.n == 4 and res.rho == pytest.approx(1.0)
    const = spearman_permutation_test([1, 2, 3, 4], [0, 0, 0, 0], n_permutations=100)
    assert np.isnan(const.rho) and np.isnan(const.p_value)
    with pytest.raises(InvalidParameterError):
        spearman_permutation_test(x, y, n_permutations=0)


def test_topk_difference_and_its_permutation_p_value():
    importance = [5.0, 4.0, 3.0, 2.0, 1.0]
    ddg = [10.0, 10.0, 0.0, 0.0, 0.0]
    res = topk_permutation_test(importance, ddg, k=2, n_permutations=10_000, seed=0)
    assert res.mean_top == 10.0 and res.mean_rest == 0.0 and res.difference == 10.0
    # 1 of the C(5,2) = 10 possible top-2 sets reaches a difference of 10
    assert res.p_value == pytest.approx(0.1, abs=0.01)
    reverse = topk_permutation_test(importance[::-1], ddg, k=2, n_permutations=2000)
    assert reverse.difference < 0 and reverse.p_value > 0.5
    with pytest.raises(InvalidParameterError):
        topk_permutation_test(importance, ddg, k=0)


def test_average_precision_by_hand():
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.1, 0.9, 0.5], [1, 0, 0]) == pytest.approx(1 / 3)
    assert average_precision([0.3, 0.2], [True, True]) == 1.0
    assert np.isnan(average_precision([0.3, 0.2], [False, False]))
    assert average_precision([0.9, np.nan, 0.1], [0, 1, 1]) == pytest.approx(
        0.5
    )  # unmapped positions ignored


# ---------------------------------------------------------- importance reader


def test_read_importance(tmp_path):
    path = write_importance(tmp_path / "importance.tsv", "MKV", [0.5, 0.25, 1.0])
    imp = read_importance_tsv(path)
    assert imp.sequence == "MKV" and list(imp.values) == [0.5, 0.25, 1.0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("pos\tres\timp\n1\tM\t0.1\n", "header"),
        ("position\tresidue\timportance\n", "no positions"),
        ("position\tresidue\timportance\n1\tM\t0.1\n3\tK\t0.2\n", "expected 2"),
        ("position\tresidue\timportance\n1\tJ\t0.1\n", "not one of"),
        ("position\tresidue\timportance\n1\tM\tnan\n", "finite"),
        ("position\tresidue\timportance\n1\tM\n", "expected position"),
    ],
)
def test_malformed_importance_files(tmp_path, text, match):
    path = tmp_path / "importance.tsv"
    path.write_text(text)
    with pytest.raises(InputFileError, match=match):
        read_importance_tsv(path)


# ------------------------------------------------------------- compare command


def _design_with_table():
    path = min(design_models(), key=lambda p: p.stat().st_size)
    s = load_structure(path)
    header, rows = rosetta_table_rows(path)
    n_a = sum(1 for r in s.residues if r.chain == "A")
    totals = np.array([float(r[-1]) for r in rows[:n_a]])
    return path, s.sequence("A"), totals


def test_compare_recovers_a_known_correlation_with_the_rosetta_table(tmp_path, capsys):
    path, seq, totals = _design_with_table()
    # importance = -energy: Spearman with the ref2015 totals is exactly -1
    importance = write_importance(tmp_path / "importance.tsv", seq, -totals)
    ddg = tmp_path / "ddg.tsv"
    lines = ["chain\tresidue_number\tinsertion_code\tresidue_name\tinterface_ddg\tmonomer_ddg"]
    s = load_structure(path)
    chain_a = [r for r in s.residues if r.chain == "A"]
    for rank, r in enumerate(chain_a):
        # give the 5 most important residues (lowest energy) a ddG of 3, everyone else 0
        lines.append(f"A\t{r.number}\t\t{r.name}\t{3.0 if rank in np.argsort(totals)[:5] else 0.0}\tnan")
    ddg.write_text("\n".join(lines) + "\n")
    out = tmp_path / "cmp"
    code, _, err = run_cli(
        capsys, "compare", "--importance", importance, "--structure", path, "--chain", "A",
        "--interface", "A_B", "--ddg", ddg, "--top-k", "5", "--permutations", "2000", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    stats = summary["statistics"]
    assert summary["energy_backend"] == "table"
    assert stats["spearman"]["total"]["rho"] == pytest.approx(-1.0)
    assert stats["spearman"]["total"]["p_value"] == pytest.approx(1 / 2001)
    assert stats["topk_ddg"]["difference"] == pytest.approx(3.0)
    assert stats["topk_ddg"]["p_value"] < 0.01
    ap = stats["hbnet_average_precision"]
    assert ap["average_precision"] is None or 0 <= ap["average_precision"] <= 1
    assert "0.25-0.33" in summary["published_reference"]
    assert summary["mapping"]["identity"] == 1.0
    for name in ("per_residue.tsv", "tracks.png", "scatter.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "tracks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "per_residue.tsv").read_text().splitlines()
    assert len(rows) == len(seq) + 1
    header = rows[0].split("\t")
    first = dict(zip(header, rows[1].split("\t"), strict=True))
    assert float(first["energy_total"]) == totals[0] and first["residue_number"] == str(chain_a[0].number)


@needs_tmol
def test_compare_default_path_with_computed_energies_and_ddg(tmp_path, capsys):
    path = structure_file("designed", "trp_cage", "1l2y.pdb")
    seq = load_structure(path).sequence("A")
    rng = np.random.default_rng(0)
    importance = write_importance(tmp_path / "importance.tsv", seq, rng.random(len(seq)))
    out = tmp_path / "cmp"
    code, _, err = run_cli(
        capsys, "compare", "--importance", importance, "--structure", path, "--chain", "A",
        "--permutations", "500", "--quiet", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["energy_backend"] == "tmol" and summary["ddg"] == "monomer"
    assert summary["statistics"]["topk_ddg"]["n"] == len(seq) - seq.count("G")  # glycines have no ddG
    assert set(summary["statistics"]["spearman"]["terms"]) >= {"fa_ljatr", "hbond", "ref"}


def test_compare_sequence_mismatch_writes_nothing(tmp_path, capsys):
    path = structure_file("designed", "top7", "1QYS.pdb")
    importance = write_importance(tmp_path / "importance.tsv", "MKWVTFISLLLLFSSAYSRGVFRR" * 3, np.ones(72))
    out = tmp_path / "cmp"
    code, _, err = run_cli(
        capsys,
        "compare",
        "--importance",
        importance,
        "--structure",
        path,
        "--chain",
        "A",
        "--no-ddg",
        "--out",
        out,
    )
    assert_one_line_error(code, err)
    assert "does not match chain A" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [importance]


@pytest.mark.parametrize(
    ("structure_content", "chain", "match"),
    [(None, "Z", "chain Z not found"), (b"", "A", "empty"), (b"not a structure\n", "A", "not a PDB")],
)
def test_compare_bad_structure_or_chain(tmp_path, capsys, structure_content, chain, match):
    path = structure_file("designed", "top7", "1QYS.pdb")
    seq = load_structure(path).sequence("A")
    importance = write_importance(tmp_path / "importance.tsv", seq, np.ones(len(seq)))
    if structure_content is not None:
        path = tmp_path / "bad.pdb"
        path.write_bytes(structure_content)
    out = tmp_path / "cmp"
    code, _, err = run_cli(
        capsys,
        "compare",
        "--importance",
        importance,
        "--structure",
        path,
        "--chain",
        chain,
        "--no-ddg",
        "--out",
        out,
    )
    assert_one_line_error(code, err)
    assert match in err and not out.exists()


def test_compare_bad_importance_file(tmp_path, capsys):
    path = structure_file("designed", "top7", "1QYS.pdb")
    bad = tmp_path / "importance.tsv"
    bad.write_text("position\tresidue\n1\tM\n")
    out = tmp_path / "cmp"
    code, _, err = run_cli(
        capsys, "compare", "--importance", bad, "--structure", path, "--chain", "A", "--no-ddg", "--out", out
    )
    assert_one_line_error(code, err)
    assert not out.exists()
