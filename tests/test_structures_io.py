"""Reading structures: models, chains, alt-locs, waters/ions, numbering gaps, and sequence mapping."""

from __future__ import annotations

import biotite.structure as struc
import biotite.structure.io.pdb as biotite_pdb
import biotite.structure.io.pdbx as biotite_pdbx
import numpy as np
import pytest
from _structures_helpers import atom_records, residue_numbers, structure_file

from protscramble.errors import InputFileError, StructureError
from protscramble.structures import (
    ResidueId,
    load_structure,
    map_sequence_to_structure,
    parse_interface,
    parse_residue_spec,
)

STANDARD = {
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
    "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
}  # fmt: skip


def test_1dpx_alt_locs_waters_and_ions_are_resolved():
    path = structure_file("natural", "1dpx.pdb")
    s = load_structure(path, chains=["A"])
    assert len(s.residues) == 129
    assert [r.number for r in s.residues] == list(range(1, 130))
    assert set(s.atoms.res_name.tolist()) <= STANDARD  # no HOH, no CL
    # one conformer per atom: no (residue, atom name) appears twice
    keys = list(zip(s.atoms.res_id.tolist(), s.atoms.atom_name.tolist(), strict=True))
    assert len(keys) == len(set(keys))
    assert any("water" in n for n in s.notes) and any("CL" in n for n in s.notes)


def test_1dpx_alt_locs_give_one_whole_conformer_per_residue():
    path = structure_file("natural", "1dpx.pdb")
    alt: dict[int, dict[str, dict[str, tuple]]] = {}  # residue -> altloc -> atom -> (occupancy, xyz)
    for line in atom_records(path):
        if line.startswith("ATOM  ") and line[16] != " ":
            coord = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
            alt.setdefault(int(line[22:26]), {}).setdefault(line[16], {})[line[12:16].strip()] = (
                float(line[54:60]),
                coord,
            )
    assert len(alt) >= 3, "1dpx is expected to carry alternate locations"
    s = load_structure(path)
    for resnum, options in alt.items():
        picked = []
        for letter, atoms in options.items():
            ok = all(
                np.allclose(
                    s.atoms.coord[(s.atoms.res_id == resnum) & (s.atoms.atom_name == name)][0], xyz, atol=1e-3
                )
                for name, (_, xyz) in atoms.items()
            )
            if ok:
                picked.append(letter)
        # exactly one conformer, taken whole (never a mix of A and B atoms)
        assert len(picked) == 1, (resnum, picked)
        occupancy = {letter: max(o for o, _ in atoms.values()) for letter, atoms in options.items()}
        assert occupancy[picked[0]] == max(occupancy.values())


def test_1qys_starts_at_residue_3_and_keeps_file_numbering():
    path = structure_file("designed", "top7", "1QYS.pdb")
    s = load_structure(path)
    expected = residue_numbers(path, "A")
    assert s.residues[0].number == 3
    assert [(r.number, r.insertion_code) for r in s.residues] == expected


def test_1l2y_has_38_models_and_reads_model_1_by_default():
    path = structure_file("designed", "trp_cage", "1l2y.pdb")
    first = load_structure(path)
    assert first.n_models == 38 and first.model == 1
    line1, line38 = atom_records(path, 1)[0], atom_records(path, 38)[0]
    xyz = lambda line: [float(line[30:38]), float(line[38:46]), float(line[46:54])]  # noqa: E731
    assert np.allclose(first.atoms.coord[0], xyz(line1), atol=1e-3)
    last = load_structure(path, model=38)
    assert np.allclose(last.atoms.coord[0], xyz(line38), atol=1e-3)
    assert len(first.residues) == len(last.residues) == 20
    assert first.has_hydrogens
    with pytest.raises(StructureError, match="model 39"):
        load_structure(path, model=39)


def test_design_complex_has_two_chains_with_hydrogens(tmp_path):
    from _structures_helpers import design_models

    path = design_models(1)[0]
    s = load_structure(path)
    assert s.chains == ["A", "B"]
    assert s.has_hydrogens
    assert len(load_structure(path, keep_hydrogens=False).atoms) < len(s.atoms)
    a = s.select_chains(["A"])
    assert a.chains == ["A"] and len(a.residues) == len(residue_numbers(path, "A"))


def test_mmcif_gives_the_same_residues_as_pdb(tmp_path):
    path = structure_file("designed", "top7", "1QYS.pdb")
    atoms = biotite_pdb.PDBFile.read(str(path)).get_structure(model=1)
    cif = biotite_pdbx.CIFFile()
    biotite_pdbx.set_structure(cif, atoms)
    out = tmp_path / "top7.cif"
    cif.write(str(out))
    assert [r.key for r in load_structure(out).residues] == [r.key for r in load_structure(path).residues]


def test_insertion_codes_identify_residues(tmp_path):
    path = structure_file("designed", "top7", "1QYS.pdb")
    atoms = biotite_pdb.PDBFile.read(str(path)).get_structure(model=1)
    # renumber residue 11 as 10A (an insertion after 10)
    sel = atoms.res_id == 11
    atoms.res_id[sel] = 10
    atoms.ins_code[sel] = "A"
    handle = biotite_pdb.PDBFile()
    handle.set_structure(atoms)
    out = tmp_path / "ins.pdb"
    handle.write(str(out))
    s = load_structure(out)
    labels = [r.label for r in s.residues]
    assert labels[labels.index("A10") + 1] == "A10A"
    mapping = map_sequence_to_structure(s.sequence("A"), s, "A")
    assert mapping.residue_at(labels.index("A10A") + 1) == s.residues[labels.index("A10A")]


def test_mapping_with_unresolved_termini_and_an_internal_gap():
    path = structure_file("designed", "top7", "1QYS.pdb")
    s = load_structure(path)
    full = "MG" + s.sequence("A")  # residues 1-2 are not resolved in 1QYS
    # drop residues 40-45 from the structure: a numbering gap inside the chain
    gapped = load_structure(path)
    gapped.atoms = gapped.atoms[(gapped.atoms.res_id < 40) | (gapped.atoms.res_id > 45)]
    mapping = map_sequence_to_structure(full, gapped, "A")
    assert mapping.identity == 1.0 and not mapping.mismatches
    # with 1QYS numbering starting at 3 and "MG" in front, sequence position p is residue p
    assert mapping.unresolved_positions == [1, 2, *range(40, 46)]
    for p in (3, 39, 46, 94):
        assert mapping.residue_at(p).number == p
    assert mapping.residue_at(1) is None


def test_mapping_reports_a_point_mismatch():
    path = structure_file("designed", "top7", "1QYS.pdb")
    s = load_structure(path)
    seq = list(s.sequence("A"))
    seq[10] = "W" if seq[10] != "W" else "A"
    mapping = map_sequence_to_structure("".join(seq), s, "A")
    assert len(mapping.mismatches) == 1
    m = mapping.mismatches[0]
    assert m.position == 11 and m.residue == s.residues[10]
    assert mapping.summary()["mismatches"][0]["residue"] == s.residues[10].label


def test_unrelated_sequence_is_rejected():
    s = load_structure(structure_file("designed", "top7", "1QYS.pdb"))
    with pytest.raises(StructureError, match="does not match chain A"):
        map_sequence_to_structure(
            "MKWVTFISLLLLFSSAYSRGVFRRDTHKSEIAHRFKDLGEEHFKGLVLIAFSQYLQQCPFDEHVKLVNE", s, "A"
        )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"hello, this is not a structure\n", "not a PDB or mmCIF"),
        (b"\x00\x01\x02binary", "binary"),
    ],
)
def test_bad_files_raise_input_file_error(tmp_path, content, match):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(InputFileError, match=match):
        load_structure(bad)


def test_missing_file_and_missing_chain(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_structure(tmp_path / "nope.pdb")
    with pytest.raises(StructureError, match="chain Z not found.*present: A"):
        load_structure(structure_file("natural", "1dpx.pdb"), chains=["Z"])


def test_water_only_file_has_no_protein(tmp_path):
    path = structure_file("natural", "1dpx.pdb")
    waters = [line for line in atom_records(path) if line[17:20] == "HOH"]
    out = tmp_path / "water.pdb"
    out.write_text("\n".join(waters) + "\nEND\n")
    with pytest.raises(StructureError, match="no amino-acid residues"):
        load_structure(out)


def test_residue_id_and_specs():
    r = ResidueId("B", 100, "A", "GLU")
    assert r.label == "B100A" and r.one_letter == "E" and r.key == ("B", 100, "A")
    assert parse_interface("A_B") == ("A", "B")
    for bad in ("A", "A_A", "A_B_C", "_B"):
        with pytest.raises(StructureError):
            parse_interface(bad)
    assert parse_residue_spec("A45B") == ("A", 45, "B")
    assert parse_residue_spec("AB:-2") == ("AB", -2, "")
    with pytest.raises(StructureError):
        parse_residue_spec("45")


def test_residue_slices_cover_every_atom_once():
    s = load_structure(structure_file("natural", "1dpx.pdb"))
    slices = s.residue_atom_slices()
    assert slices[0].start == 0 and slices[-1].stop == s.atoms.array_length()
    assert all(a.stop == b.start for a, b in zip(slices[:-1], slices[1:], strict=True))
    assert len(slices) == struc.get_residue_count(s.atoms)
