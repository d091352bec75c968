"""Alanine scan: truncation, the complex-minus-separated definition, repacking, files and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from _structures_helpers import assert_one_line_error, design_models, needs_tmol, run_cli, structure_file

from protscramble.errors import InvalidParameterError, StructureError
from protscramble.structures import (
    DdgTable,
    ResidueId,
    alanine_scan,
    load_structure,
    read_ddg_tsv,
    truncate_to_alanine,
)


def _smallest_complex():
    return min(design_models(), key=lambda p: p.stat().st_size)


def _interface_residues(structure, cutoff: float = 4.0) -> list[ResidueId]:
    """Chain-A residues with a side-chain heavy atom within ``cutoff`` of chain B (plain numpy)."""
    atoms = structure.atoms[~np.isin(structure.atoms.element, ("H",))]
    b = atoms.coord[atoms.chain_id == "B"]
    out = []
    for r in structure.residues:
        if r.chain != "A" or r.name in ("GLY", "ALA", "PRO"):
            continue
        sel = (
            (atoms.chain_id == "A")
            & (atoms.res_id == r.number)
            & ~np.isin(atoms.atom_name, ["N", "CA", "C", "O"])
        )
        d = np.linalg.norm(atoms.coord[sel][:, None] - b[None], axis=-1)
        if d.size and d.min() < cutoff:
            out.append(r)
    return out


def test_truncation_keeps_backbone_and_cb_only():
    s = load_structure(_smallest_complex())
    k = next(i for i, r in enumerate(s.residues) if r.name in ("TRP", "ARG", "LYS", "GLU"))
    sl = s.residue_atom_slices()[k]
    mutant = truncate_to_alanine(s.atoms, sl)
    kept = mutant[(mutant.chain_id == s.residues[k].chain) & (mutant.res_id == s.residues[k].number)]
    assert set(kept.res_name.tolist()) == {"ALA"}
    heavy = {n for n, e in zip(kept.atom_name.tolist(), kept.element.tolist(), strict=True) if e != "H"}
    assert heavy == {"N", "CA", "C", "O", "CB"} or heavy == {"N", "CA", "C", "O", "CB", "OXT"}
    # everything else untouched
    others = np.ones(s.atoms.array_length(), bool)
    others[sl] = False
    assert mutant.array_length() == others.sum() + kept.array_length()
    cb = s.atoms[sl][s.atoms.atom_name[sl] == "CB"].coord
    assert np.allclose(kept.coord[kept.atom_name == "CB"], cb)


@needs_tmol
def test_interface_and_monomer_ddg_match_scoring_complex_and_chains_separately():
    """ddG = (E_complex_mut - E_sep_mut) - (E_complex_wt - E_sep_wt), with each state scored on its own."""
    import torch

    from protscramble.structures import _tmol

    path = _smallest_complex()
    s = load_structure(path)
    hot = _interface_residues(s)[:2]
    assert hot, "the design complex should have interface side chains"
    table = alanine_scan(s, interface=("A", "B"), residues=hot, device="cpu")

    dev = torch.device("cpu")
    sfxn = _tmol.score_function(dev)

    def energy(atoms) -> float:
        built = _tmol.build_pose(atoms, dev)
        module = sfxn.render_whole_pose_scoring_module(built.pose)
        with torch.no_grad():
            return float(module(built.pose.coords)[0])

    def states(atoms):
        a, b = atoms[atoms.chain_id == "A"], atoms[atoms.chain_id == "B"]
        return energy(atoms), energy(a), energy(b)

    wt_c, wt_a, wt_b = states(s.atoms)
    slices = dict(zip([r.key for r in s.residues], s.residue_atom_slices(), strict=True))
    for i, r in enumerate(hot):
        mut_c, mut_a, mut_b = states(truncate_to_alanine(s.atoms, slices[r.key]))
        expected_interface = (mut_c - mut_a - mut_b) - (wt_c - wt_a - wt_b)
        assert table.interface_ddg[i] == pytest.approx(expected_interface, abs=0.02)
        assert table.monomer_ddg[i] == pytest.approx(mut_a - wt_a, abs=0.02)
    assert np.nanmax(table.interface_ddg) > 0.5  # removing an interface side chain costs binding energy


@needs_tmol
def test_alanine_glycine_and_distant_residues():
    path = _smallest_complex()
    s = load_structure(path)
    b_atoms = s.atoms.coord[s.atoms.chain_id == "B"]
    far = None
    for r, sl in zip(s.residues, s.residue_atom_slices(), strict=True):
        if r.chain == "A" and r.name not in ("GLY", "ALA"):
            if np.linalg.norm(s.atoms.coord[sl][:, None] - b_atoms[None], axis=-1).min() > 12.0:
                far = r
                break
    ala = next(r for r in s.residues if r.name == "ALA")
    gly = next(r for r in s.residues if r.name == "GLY")
    table = alanine_scan(s, interface=("A", "B"), residues=[far, ala, gly], device="cpu")
    by = {r.key: i for i, r in enumerate(table.residues)}
    assert abs(table.interface_ddg[by[far.key]]) < 1e-3  # beyond every interaction cutoff
    assert np.isfinite(table.monomer_ddg[by[far.key]])
    assert table.interface_ddg[by[ala.key]] == 0.0 and table.monomer_ddg[by[ala.key]] == 0.0
    assert np.isnan(table.interface_ddg[by[gly.key]]) and np.isnan(table.monomer_ddg[by[gly.key]])
    assert any("glycine" in n for n in table.notes)


@needs_tmol
def test_repacking_is_seeded_and_monomer_only_without_interface():
    path = structure_file("designed", "trp_cage", "1l2y.pdb")
    picks = [("A", 6), ("A", 3)]
    one = alanine_scan(path, residues=picks, repack_radius=6.0, seed=3, device="cpu")
    two = alanine_scan(path, residues=picks, repack_radius=6.0, seed=3, device="cpu")
    assert np.array_equal(one.monomer_ddg, two.monomer_ddg)
    assert np.isfinite(one.monomer_ddg).all() and np.isnan(one.interface_ddg).all()
    assert one.monomer_ddg[0] > 0  # Trp6 holds the Trp-cage together
    assert any("repacked" in n for n in one.notes)


def test_ddg_tsv_round_trip(tmp_path):
    residues = [ResidueId("A", 1, "", "LYS"), ResidueId("A", 2, "B", "GLY")]
    table = DdgTable(
        residues, np.array([1.25, np.nan]), np.array([-0.5, np.nan]), ("A", "B"), "tmol", "beta2016"
    )
    path = tmp_path / "ddg.tsv"
    path.write_text(table.to_tsv())
    back = read_ddg_tsv(path)
    assert [r.key for r in back.residues] == [r.key for r in residues]
    assert back.interface_ddg[0] == 1.25 and np.isnan(back.interface_ddg[1])
    assert back.lookup([residues[0], None], "monomer")[0] == -0.5
    with pytest.raises(InvalidParameterError):
        back.lookup(residues, "folding")


def test_bad_settings():
    path = structure_file("designed", "trp_cage", "1l2y.pdb")
    with pytest.raises(InvalidParameterError):
        alanine_scan(path, repack_radius=-1.0)
    with pytest.raises(InvalidParameterError):
        alanine_scan(path, backend="foldx")
    with pytest.raises(StructureError, match="A99"):
        alanine_scan(path, residues=[("A", 99)])


@needs_tmol
def test_cli_ddg_with_progress_bar(tmp_path, capsys):
    path = _smallest_complex()
    s = load_structure(path)
    hot = _interface_residues(s)[:2]
    spec = ",".join(r.label for r in hot)
    out = tmp_path / "ddg.tsv"
    code, _, err = run_cli(
        capsys, "ddg", "--structure", path, "--interface", "A_B", "--residues", spec, "--out", out
    )
    assert code == 0, err
    assert "alanine scan" in err  # tqdm progress bar on stderr
    back = read_ddg_tsv(out)
    assert [r.label for r in back.residues] == [r.label for r in hot]
    assert np.isfinite(back.interface_ddg).all()


@pytest.mark.parametrize(
    "extra",
    [["--interface", "A_Z"], [], ["--interface", "A_B", "--residues", "Q1"]],
)
def test_cli_ddg_bad_input(tmp_path, capsys, extra):
    out = tmp_path / "ddg.tsv"
    code, _, err = run_cli(capsys, "ddg", "--structure", design_models(1)[0], *extra, "--out", out, "--quiet")
    assert_one_line_error(code, err)
    assert not out.exists()
