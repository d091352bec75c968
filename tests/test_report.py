"""The one-page report: content, escaping, self-containment, predictions, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from _structures_helpers import assert_one_line_error, run_cli, write_importance
from conftest import shared_file

from protscramble.alphabet import AMINO_ACIDS
from protscramble.predicted_fold import distogram_from_distances
from protscramble.report import read_explanation, read_pssm_tsv, scrambled_predictions, write_predictions
from protscramble.structures import load_structure

MALICIOUS = "<script>alert(1)</script>"
STUB_JS = "var $3Dmol = {createViewer: function () { return null; }};\n"


def write_pssm(path: Path, sequence: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pssm = 0.5 * rng.dirichlet(np.ones(20), size=len(sequence))
    for i, aa in enumerate(sequence):
        pssm[i, AMINO_ACIDS.index(aa)] += 0.5
    rows = ["position\tresidue\t" + "\t".join(AMINO_ACIDS)]
    rows += [
        f"{i + 1}\t{aa}\t" + "\t".join(f"{p:.8f}" for p in row)
        for i, (aa, row) in enumerate(zip(sequence, pssm, strict=True))
    ]
    path.write_text("\n".join(rows) + "\n")
    return pssm


def make_explanation(folder: Path, sequence: str, name: str = MALICIOUS, predictions: bool = False) -> Path:
    """An explanation folder as ``protscramble explain`` writes it (summary fields that matter here)."""
    folder.mkdir(parents=True)
    values = np.random.default_rng(1).gamma(2.0, 0.4, len(sequence))
    write_importance(folder / "importance.tsv", sequence, values)
    write_pssm(folder / "pssm.tsv", sequence)
    summary = {
        "name": name, "sequence": sequence, "length": len(sequence), "conservation_bits": 1.02,
        "eval_kl_mean": 2.5, "eval_kl_median": 2.4,
        "settings": {"mode": "inclusion", "target_bits": 1.0, "predictor": "trRosetta", "models": ["xaa"],
                     "background": f"native {MALICIOUS}", "versions": {"torch": "</script>x"}},
    }  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    if predictions:
        rng = np.random.default_rng(2)
        coords = rng.normal(scale=7.0, size=(len(sequence), 3))
        d = distogram_from_distances(np.linalg.norm(coords[:, None] - coords[None], axis=-1))
        np.savez(
            folder / "predictions.npz", dist=d, scrambled_dist=0.5 * d + 0.5 / 37,
            sequence=np.asarray(sequence), scrambled_samples=np.asarray(4),
        )  # fmt: skip
    return folder


@pytest.fixture
def stub_js(tmp_path):
    path = tmp_path / "3Dmol-min.js"
    path.write_text(STUB_JS)
    return path


def images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', page)


def test_report_with_structure_is_escaped_and_self_contained(tmp_path, capsys, stub_js):
    pdb = shared_file("structures", "designed", "pdl1_binders", "pd1_r1_10_r2_1.pdb")
    seq = load_structure(pdb).sequence("A")
    exp = make_explanation(tmp_path / "exp", seq)
    out = tmp_path / "report.html"
    code, _, err = run_cli(
        capsys, "report", exp, "--structure", pdb, "--interface", "A_B", "--no-predict", "--permutations", "200",
        "--js", stub_js, "--figures", tmp_path / "figs", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    page = out.read_text()
    assert MALICIOUS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "</script>x" not in page  # a settings value
    assert page.count("<script") == page.count("</script>") == 2  # the inlined 3Dmol.js and the view
    assert not re.search(r"<script[^>]+src=", page) and "cdn.jsdelivr" not in page
    assert len(images(page)) == 3  # tracks, logo, scatter (no distograms without predictions)
    assert "Spearman correlation" in page and "fa_atr" in page
    assert "H-bond networks: 1 network(s)" in page
    assert page.count("&#9733;") == 10  # top-10 residues starred in the table
    assert "distogram panels skipped" in page
    figs = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert figs == [f"{n}.{x}" for n in ("logo", "scatter", "tracks") for x in ("pdf", "png")]


def test_report_without_structure_shows_distograms_and_rough_model(tmp_path, capsys):
    exp = make_explanation(tmp_path / "exp", "MKVLAAGIEELLKKLGEEARRL", name="plain", predictions=True)
    out = tmp_path / "r.html"
    code, _, err = run_cli(capsys, "report", exp, "--out", out)
    assert code == 0, err
    page = out.read_text()
    alts = images(page)
    assert len(alts) == 3 and any("distances" in a for a in alts)  # tracks, logo, distograms
    assert "Rough model" in page
    assert '<script src="https://cdn.jsdelivr.net/npm/3dmol' in page  # online by default


def test_report_of_several_explanations(tmp_path, capsys):
    root = tmp_path / "explained"
    make_explanation(root / "one", "MKVLAAGIEELLKKLG", name="one", predictions=True)
    make_explanation(root / "two", "MKVLAAGIEELLKKLGEE", name="two", predictions=True)
    code, _, err = run_cli(capsys, "report", root, "--out", tmp_path / "report.html")
    assert_one_line_error(code, err)
    assert "must be a folder" in err
    code, _, err = run_cli(capsys, "report", root, "--out", tmp_path / "reports")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["index.html", "one.html", "two.html"]


@pytest.mark.parametrize(
    "case", ["no_importance", "pssm_other_sequence", "structure_other_sequence", "bad_js"]
)
def test_report_errors_leave_nothing(tmp_path, capsys, stub_js, case):
    exp = make_explanation(tmp_path / "exp", "MKVLAAGIEELLKKLG", predictions=True)
    out = tmp_path / "out" / "report.html"
    args = ["report", exp, "--out", out]
    if case == "no_importance":
        (exp / "importance.tsv").unlink()
        expect = "holds no importance.tsv"
    elif case == "pssm_other_sequence":
        write_pssm(exp / "pssm.tsv", "MKVLAAGIEELLKKLA")
        expect = "describe different sequences"
    elif case == "structure_other_sequence":
        args += ["--structure", shared_file("structures", "designed", "top7", "1QYS.pdb"), "--chain", "A"]
        expect = "does not match chain A"
    else:
        args += ["--js", tmp_path / "nope.js"]
        expect = "3Dmol.js file not found"
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err)
    assert expect in err
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_pssm_reader_checks_rows(tmp_path):
    pssm = write_pssm(tmp_path / "pssm.tsv", "ACDE")
    letters, read = read_pssm_tsv(tmp_path / "pssm.tsv")
    assert letters == "ACDE" and np.allclose(read, pssm, atol=1e-7)
    text = (tmp_path / "pssm.tsv").read_text().replace("\t0.", "\t9.", 1)
    (tmp_path / "bad.tsv").write_text(text)
    with pytest.raises(Exception, match="sum to"):
        read_pssm_tsv(tmp_path / "bad.tsv")


def test_scrambled_predictions_with_trrosetta(tmp_path, trrosetta_xaa):
    seq = "MKVLAAGIEELLKKLG"
    exp = make_explanation(tmp_path / "exp", seq, name="tr")
    pssm = read_pssm_tsv(exp / "pssm.tsv")[1]
    maps = scrambled_predictions(seq, pssm, trrosetta_xaa, n_samples=2, seed=0)
    assert maps["dist"].shape == maps["scrambled_dist"].shape == (16, 16, 37)
    assert np.allclose(maps["scrambled_dist"].sum(-1), 1.0, atol=1e-4)
    assert np.allclose(maps["dist"], trrosetta_xaa.predict_sequence(seq)["dist"], atol=1e-5)
    assert not np.allclose(maps["dist"], maps["scrambled_dist"], atol=1e-3)
    write_predictions(exp, maps)
    loaded = read_explanation(exp)
    assert str(loaded.predictions["sequence"]) == seq and int(loaded.predictions["scrambled_samples"]) == 2
