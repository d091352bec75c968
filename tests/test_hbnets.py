"""Hydrogen bonds and HBNet-style networks: geometry, network rules, interface filter, CLI."""

from __future__ import annotations

import biotite.structure as struc
import numpy as np
import pytest
from _structures_helpers import assert_one_line_error, design_models, needs_tmol, run_cli, structure_file

from protscramble.structures import (
    HBond,
    ResidueId,
    Structure,
    build_networks,
    find_hbond_networks,
    find_hbonds,
    load_structure,
)

# --------------------------------------------------------- synthetic geometry


def _serine_pair(og_distance: float, bend_second: bool = False) -> Structure:
    """Two serines whose OG atoms face each other along x, ``og_distance`` apart.

    Backbones are placed far apart so only the hydroxyls can interact. With
    ``bend_second`` the second CB sits between the two oxygens' line of sight
    (acceptor antecedent angle < 90 deg).
    """
    d = og_distance
    second_cb = (1.43 + d - 1.0, 1.0, 0.0) if bend_second else (1.43 + d + 1.43, 0.0, 0.0)
    layout = [
        (1, "N", "N", (-2.5, -1.2, 0.0)), (1, "CA", "C", (-1.5, 0.0, 0.0)), (1, "C", "C", (-2.2, 1.3, 0.0)),
        (1, "O", "O", (-3.4, 1.4, 0.0)), (1, "CB", "C", (0.0, 0.0, 0.0)), (1, "OG", "O", (1.43, 0.0, 0.0)),
        (2, "OG", "O", (1.43 + d, 0.0, 0.0)), (2, "CB", "C", second_cb),
        (2, "CA", "C", (1.43 + d + 2.9, 0.0, 0.0)), (2, "N", "N", (1.43 + d + 3.9, -1.2, 0.0)),
        (2, "C", "C", (1.43 + d + 3.6, 1.3, 0.0)), (2, "O", "O", (1.43 + d + 4.8, 1.4, 0.0)),
    ]  # fmt: skip
    layout.sort(key=lambda a: (a[0], ["N", "CA", "C", "O", "CB", "OG"].index(a[1])))
    atoms = struc.array(
        [
            struc.Atom(
                xyz, chain_id="A" if res == 1 else "B", res_id=res, res_name="SER", atom_name=name, element=el
            )
            for res, name, el, xyz in layout
        ]
    )
    from pathlib import Path

    return Structure(atoms, Path("synthetic.pdb"))


def test_heavy_atom_criterion_finds_a_hydroxyl_pair_at_2_8_angstrom():
    bonds = find_hbonds(_serine_pair(2.8))
    pairs = {(h.donor.number, h.donor_atom, h.acceptor.number, h.acceptor_atom) for h in bonds}
    assert (1, "OG", 2, "OG") in pairs and (2, "OG", 1, "OG") in pairs  # hydroxyls donate both ways
    assert all(h.distance == pytest.approx(2.8, abs=1e-3) for h in bonds)


def test_heavy_atom_criterion_rejects_long_or_bent_contacts():
    assert find_hbonds(_serine_pair(3.8)) == []
    assert find_hbonds(_serine_pair(2.8, bend_second=True)) == []


def test_hydrogen_criterion_on_a_rosetta_model_is_within_cutoffs():
    path = design_models(1)[0]
    s = load_structure(path)
    bonds = find_hbonds(s)
    assert bonds
    # Baker-Hubbard with H...A <= 2.5 A implies donor...acceptor <= 3.5 A (D-H ~1 A)
    assert max(h.distance for h in bonds) <= 3.55
    # only carbonyl/carboxyl/hydroxyl oxygens and His ring nitrogens accept (never Lys NZ, Arg, amide N)
    allowed = {"O", "OXT", "OD1", "OD2", "OE1", "OE2", "OG", "OG1", "OH", "ND1", "NE2"}
    assert {h.acceptor_atom for h in bonds} <= allowed
    assert all(h.acceptor.name == "HIS" for h in bonds if h.acceptor_atom in ("ND1", "NE2"))
    assert {h.donor_atom[0] for h in bonds} <= {"N", "O"}


# ----------------------------------------------------------- network rules


def _bond(a: ResidueId, a_atom: str, b: ResidueId, b_atom: str) -> HBond:
    return HBond(a, a_atom, b, b_atom, 2.9)


def test_networks_follow_the_hbnet_rules():
    r = [ResidueId("A", i, "", "SER") for i in range(1, 7)] + [ResidueId("B", 1, "", "ASP")]
    bonds = [
        _bond(r[0], "OG", r[1], "OG"),  # sc-sc
        _bond(r[1], "OG", r[2], "OG"),  # sc-sc -> {1,2,3}
        _bond(r[3], "N", r[4], "O"),  # bb-bb: never an edge
        _bond(r[4], "OG", r[5], "O"),  # sc-bb: only with include_backbone
        _bond(r[5], "N", r[3], "OG"),  # bb-sc
        _bond(r[2], "OG", r[6], "OD1"),  # sc-sc across chains A/B
    ]
    nets = build_networks(bonds)
    assert [[x.number for x in n.residues] for n in nets] == [[1, 2, 3, 1]]
    assert nets[0].chains == ["A", "B"] and nets[0].size == 4
    with_bb = build_networks(bonds, include_backbone=True)
    assert sorted(n.size for n in with_bb) == [3, 4]  # {4,5,6} joined by side chain-backbone bonds
    assert build_networks(bonds, min_size=5) == []
    assert len(build_networks(bonds, interface=("A", "B"))) == 1
    assert build_networks(bonds[:2], interface=("A", "B")) == []


def test_interface_networks_span_both_chains_on_a_design_model():
    path = design_models(1)[0]
    everything = find_hbond_networks(path)
    interface = find_hbond_networks(path, interface=("A", "B"))
    for net in everything.networks:
        assert net.size >= 3
        assert all(h.donor_sidechain and h.acceptor_sidechain for h in net.hbonds)
    assert all(net.chains == ["A", "B"] for net in interface.networks)
    spanning = [net for net in everything.networks if net.chains == ["A", "B"]]
    assert sorted(tuple(n.residues) for n in spanning) == sorted(
        tuple(n.residues) for n in interface.networks
    )
    members = interface.membership(load_structure(path).residues)
    assert members.sum() == sum(n.size for n in interface.networks)


def test_backbone_option_only_adds_residues():
    path = structure_file("natural", "1dpx.pdb")  # no hydrogens: heavy-atom criterion
    plain = find_hbond_networks(path)
    with_bb = find_hbond_networks(path, include_backbone=True)
    assert plain.networks
    covered = {r.key for n in with_bb.networks for r in n.residues}
    assert {r.key for n in plain.networks for r in n.residues} <= covered
    assert any("no hydrogens" in note for note in plain.notes)


@needs_tmol
def test_tmol_backend_confirms_bonds_with_hbond_energy():
    path = design_models(1)[0]
    geometric = find_hbond_networks(path)
    scored = find_hbond_networks(path, backend="tmol", device="cpu")
    assert scored.hbonds and all(h.energy is not None and h.energy <= -0.5 for h in scored.hbonds)
    geometric_bonds = {h.label() for h in geometric.hbonds}
    assert {h.label() for h in scored.hbonds} <= geometric_bonds


# --------------------------------------------------------------------- CLI


def test_cli_hbnets_interface(tmp_path, capsys):
    path = design_models(1)[0]
    out = tmp_path / "hbnets.tsv"
    code, _, err = run_cli(capsys, "hbnets", "--structure", path, "--interface", "A_B", "--out", out)
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0].split("\t")[:5] == [
        "network",
        "chain",
        "residue_number",
        "insertion_code",
        "residue_name",
    ]
    rows = [line.split("\t") for line in lines[1:]]
    by_net: dict[str, set] = {}
    for row in rows:
        by_net.setdefault(row[0], set()).add(row[1])
        assert int(row[5]) >= 3
    assert all(chains == {"A", "B"} for chains in by_net.values())
    expected = find_hbond_networks(path, interface=("A", "B"))
    assert len(rows) == sum(n.size for n in expected.networks)


@pytest.mark.parametrize("interface", ["A", "A_Z", "A_A"])
def test_cli_hbnets_bad_interface(tmp_path, capsys, interface):
    out = tmp_path / "hbnets.tsv"
    code, _, err = run_cli(
        capsys, "hbnets", "--structure", design_models(1)[0], "--interface", interface, "--out", out
    )
    assert_one_line_error(code, err)
    assert not out.exists()


def test_membership_of_unmapped_positions_is_false():
    path = design_models(1)[0]
    result = find_hbond_networks(path)
    assert not result.membership([None]).any()
    assert isinstance(result.membership([]), np.ndarray)
