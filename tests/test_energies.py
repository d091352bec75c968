"""Per-residue energies: the Rosetta table read exactly, tmol fidelity against it, the CLI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from _structures_helpers import (
    assert_one_line_error,
    design_models,
    needs_tmol,
    residue_numbers,
    rosetta_table_rows,
    run_cli,
    structure_file,
)
from scipy.stats import spearmanr

from protscramble.errors import BackendUnavailableError, StructureError
from protscramble.structures import load_structure, parse_rosetta_table, per_residue_energies

# ----------------------------------------------------------------- table backend


def test_table_backend_reproduces_the_rosetta_numbers():
    path = design_models(1)[0]
    header, rows = rosetta_table_rows(path)
    table = per_residue_energies(path, backend="table")
    assert table.backend == "table" and table.score_function == "ref2015"
    assert table.terms == header[:-1]
    assert len(table) == len(rows)
    for i in (0, 1, len(rows) // 2, len(rows) - 1):
        assert table.total[i] == float(rows[i][-1])
        assert list(table.values[i]) == [float(v) for v in rows[i][1:-1]]
    # residue names follow the table labels (e.g. ASP:NtermProteinFull_1 -> ASP)
    assert table.residues[0].name == rows[0][0].split(":")[0].split("_")[0]


def test_table_rows_add_up_to_their_total():
    # the file's own comment: the table holds weighted scores, so terms sum to the total
    path = design_models(1)[0]
    table = per_residue_energies(path, backend="table")
    assert np.allclose(table.values.sum(axis=1), table.total, atol=2e-4)


def test_table_chain_selection():
    path = design_models(1)[0]
    a = per_residue_energies(path, chains=["A"], backend="table")
    assert {r.chain for r in a.residues} == {"A"}
    assert [(r.number, r.insertion_code) for r in a.residues] == residue_numbers(path, "A")
    with pytest.raises(StructureError, match="chain C not found"):
        per_residue_energies(path, chains=["C"], backend="table")


def test_table_backend_needs_a_table():
    with pytest.raises(StructureError, match="no Rosetta energy table"):
        per_residue_energies(structure_file("designed", "top7", "1QYS.pdb"), backend="table")


def test_malformed_table_is_rejected():
    text = "#BEGIN_POSE_ENERGIES_TABLE x\nlabel fa_atr total\nweights 1 NA\npose 1 1\nALA_1 oops 2\n"
    with pytest.raises(StructureError, match="not a number"):
        parse_rosetta_table(text + "#END_POSE_ENERGIES_TABLE x\n")
    with pytest.raises(StructureError, match="END_POSE_ENERGIES_TABLE"):
        parse_rosetta_table(text.replace("oops", "1"))


def test_cli_energies_table_is_exact(tmp_path, capsys):
    path = design_models(1)[0]
    out = tmp_path / "energies.tsv"
    code, _, err = run_cli(capsys, "energies", "--structure", path, "--chain", "A", "--out", out)
    assert code == 0, err
    lines = out.read_text().splitlines()
    header, rows = rosetta_table_rows(path)
    assert lines[0].split("\t") == [
        "chain",
        "residue_number",
        "insertion_code",
        "residue_name",
        "total",
        *header[:-1],
    ]
    n_a = len(residue_numbers(path, "A"))
    assert len(lines) == n_a + 1
    for line, row in zip(lines[1:], rows[:n_a], strict=True):
        cells = line.split("\t")
        assert cells[0] == "A"
        # every number exactly as Rosetta wrote it
        assert cells[4] == row[-1] and cells[5:] == row[1:-1]


# ------------------------------------------------------------------ tmol backend


@needs_tmol
def test_tmol_fidelity_against_ref2015_on_three_design_models():
    models = design_models()
    picks = [models[0], models[len(models) // 2], models[-1]]  # both binder families
    for path in picks:
        reference = per_residue_energies(path, backend="table").total
        computed = per_residue_energies(path, backend="tmol", device="cpu")
        assert computed.backend == "tmol" and np.isfinite(computed.total).all()
        rho = spearmanr(computed.total, reference)[0]
        assert rho >= 0.85, f"{path.name}: Spearman {rho:.3f}"


@needs_tmol
def test_tmol_per_residue_energies_add_up_to_the_pose_energy():
    import torch
    from tmol.io import pose_stack_from_atom_array
    from tmol.score import beta2016_score_function

    path = structure_file("designed", "trp_cage", "1l2y.pdb")
    table = per_residue_energies(path, backend="tmol", device="cpu")
    assert np.allclose(table.values.sum(axis=1), table.total)
    # independent whole-pose score straight from tmol
    atoms = load_structure(path).atoms
    pose = pose_stack_from_atom_array(atoms, torch.device("cpu"), no_optH=True)
    sfxn = beta2016_score_function(torch.device("cpu"))
    with torch.no_grad():
        whole = float(sfxn.render_whole_pose_scoring_module(pose)(pose.coords)[0])
    assert table.total.sum() == pytest.approx(whole, abs=1e-2)


@needs_tmol
def test_tmol_on_xray_structure_reports_unusable_residue():
    path = structure_file("natural", "1dpx.pdb")
    table = per_residue_energies(path, backend="auto", device="cpu")
    assert table.backend == "tmol"  # no Rosetta table in an X-ray file
    assert len(table) == 129
    # LEU 129 lacks its C and O atoms: tmol cannot score it, and says so
    assert np.isnan(table.total[-1]) and np.isfinite(table.total[:-1]).all()
    assert any("A129" in note for note in table.notes)


def test_pyrosetta_backend_absent_is_a_clear_error():
    if importlib.util.find_spec("pyrosetta") is not None:
        pytest.skip("PyRosetta is installed")
    with pytest.raises(BackendUnavailableError, match="PyRosetta"):
        per_residue_energies(structure_file("designed", "top7", "1QYS.pdb"), backend="pyrosetta")


# ------------------------------------------------------------------ CLI bad input


def test_cli_missing_chain_writes_nothing(tmp_path, capsys):
    out = tmp_path / "e.tsv"
    code, _, err = run_cli(
        capsys, "energies", "--structure", design_models(1)[0], "--chain", "Q", "--out", out
    )
    assert_one_line_error(code, err)
    assert "chain Q not found" in err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"", b"just some words\n", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_cli_bad_structure_files(tmp_path, capsys, content):
    bad = tmp_path / "input.pdb"
    bad.write_bytes(content)
    out = tmp_path / "e.tsv"
    code, _, err = run_cli(capsys, "energies", "--structure", bad, "--out", out)
    assert_one_line_error(code, err)
    assert not out.exists()


def test_cli_missing_file(tmp_path, capsys):
    out = tmp_path / "e.tsv"
    code, _, err = run_cli(capsys, "energies", "--structure", tmp_path / "absent.pdb", "--out", out)
    assert_one_line_error(code, err)
    assert "not found" in err and not out.exists()


def test_cli_subprocess_empty_file(tmp_path):
    bad = tmp_path / "empty.pdb"
    bad.write_text("")
    out = tmp_path / "e.tsv"
    proc = subprocess.run(
        [sys.executable, "-m", "protscramble.cli", "energies", "--structure", str(bad), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"protscramble: error: structure file {bad} is empty"]
    assert not out.exists()
