"""Rough 3D model of the predicted fold: distances from trRosetta bins, MDS, refinement, hand, PDB."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_file

from protscramble.errors import InputFileError
from protscramble.predicted_fold import (
    DIST_BIN_CENTRES,
    classical_mds,
    distogram_for,
    distogram_from_distances,
    embed_distogram,
    expected_distances,
    fold_pdb_text,
    kabsch_rmsd,
    pseudo_torsions,
    write_fold_pdb,
)
from protscramble.structures import load_structure


def ideal_helix(n: int = 30) -> np.ndarray:
    """Cα trace of a right-handed α-helix (radius 2.3 Å, 100° and 1.5 Å per residue)."""
    t = np.radians(100.0) * np.arange(n)
    return np.stack([2.3 * np.cos(t), 2.3 * np.sin(t), 1.5 * np.arange(n)], axis=1)


def hairpin_of_helices(n: int = 24) -> np.ndarray:
    """Two antiparallel helices 10 Å apart joined by a short loop (a compact, chiral fold)."""
    first = ideal_helix(n)
    second = ideal_helix(n)[::-1] + np.array([10.0, 0.0, 0.0])
    loop = np.linspace(first[-1], second[0], 5)[1:-1]
    return np.concatenate([first, loop, second])


def distances(coords: np.ndarray) -> np.ndarray:
    return np.linalg.norm(coords[:, None] - coords[None], axis=-1)


def beta_carbons(structure, chain: str) -> np.ndarray:
    """Cβ (Cα for glycine) of every residue of ``chain``: what trRosetta's distances refer to."""
    atoms = structure.atoms
    out = []
    for sl in structure.residue_atom_slices():
        res = atoms[sl]
        if res.chain_id[0] != chain:
            continue
        cb = res.atom_name == "CB"
        out.append(res.coord[cb][0] if cb.any() else res.coord[res.atom_name == "CA"][0])
    return np.asarray(out, dtype=float)


def test_bin_centres_follow_trrosetta():
    # trRosetta: bin 0 = beyond 20 A, bins 1..36 = 2..20 A in 0.5 A steps (folding scripts use 4.25 + 0.5 i from bin 5)
    assert DIST_BIN_CENTRES.shape == (36,)
    assert DIST_BIN_CENTRES[0] == pytest.approx(2.25)
    assert DIST_BIN_CENTRES[4] == pytest.approx(4.25)
    assert DIST_BIN_CENTRES[-1] == pytest.approx(19.75)
    p = np.zeros((3, 3, 37))
    p[..., 0] = 1.0  # every pair "no contact"...
    p[0, 1] = p[1, 0] = 0.0
    p[0, 1, 5] = p[1, 0, 5] = 0.5  # ...but 0-1 is 4.25 A or 4.75 A with equal odds
    p[0, 1, 6] = p[1, 0, 6] = 0.5
    expected, spread, confidence = expected_distances(p)
    assert expected[0, 1] == pytest.approx(4.5)
    assert spread[0, 1] == pytest.approx(0.25)
    assert confidence[0, 1] == pytest.approx(1.0)
    assert confidence[0, 2] == pytest.approx(0.0)


def test_exact_distogram_round_trips_through_the_bins():
    d = distances(ideal_helix(12))
    expected, _, confidence = expected_distances(distogram_from_distances(d))
    near = d < 20.0
    assert np.all(np.abs(expected - d)[near] <= 0.25 + 1e-9)  # half a bin
    assert np.all(confidence[near] == 1.0) and np.all(confidence[~near] == 0.0)


def test_classical_mds_recovers_a_known_geometry_exactly():
    coords = hairpin_of_helices()
    embedded = classical_mds(distances(coords))
    assert kabsch_rmsd(embedded, coords, allow_reflection=True) < 1e-6


def test_classical_mds_recovers_top7_from_its_distance_matrix():
    structure = load_structure(shared_file("structures", "designed", "top7", "1QYS.pdb"), chains=["A"])
    ca = structure.atoms[structure.atoms.atom_name == "CA"].coord.astype(float)
    embedded = classical_mds(distances(ca))
    assert kabsch_rmsd(embedded, ca, allow_reflection=True) < 0.1


def test_pseudo_torsions_of_a_right_handed_helix_are_positive():
    tors = pseudo_torsions(ideal_helix(10))
    assert np.all(tors > 30) and np.all(tors < 70)
    assert np.all(pseudo_torsions(ideal_helix(10) * [-1, 1, 1]) < 0)  # its mirror image


def test_embedding_from_binned_distances_recovers_fold_and_hand():
    coords = hairpin_of_helices()
    fold = embed_distogram(distogram_from_distances(distances(coords)))
    # no reflection allowed: the hand must come out right too
    assert kabsch_rmsd(fold.coords, coords) < 0.5
    assert fold.rmse < 0.5
    mirrored = embed_distogram(distogram_from_distances(distances(coords * [-1, 1, 1])))
    assert (
        kabsch_rmsd(mirrored.coords, coords) < 0.5
    )  # a mirror-image input still gives the right-handed fold


def test_embedding_recovers_top7_from_binned_cb_distances():
    structure = load_structure(shared_file("structures", "designed", "top7", "1QYS.pdb"), chains=["A"])
    cb = beta_carbons(structure, "A")
    fold = embed_distogram(distogram_from_distances(distances(cb)))
    assert kabsch_rmsd(fold.coords, cb) < 1.0  # measured 0.07 A, right-handed


def test_refinement_improves_on_mds_with_uncertain_distances():
    coords = hairpin_of_helices()
    d = distances(coords)
    rng = np.random.default_rng(0)
    # a blurred distogram: each pair spread over its bin and the neighbours, as a network would
    p = sum(w * distogram_from_distances(d + s) for w, s in ((0.25, -0.5), (0.5, 0.0), (0.25, 0.5)))
    p = p + rng.uniform(0, 0.02, p.shape)
    start = embed_distogram(p, max_iterations=0)
    refined = embed_distogram(p)
    assert refined.rmse <= start.rmse
    assert kabsch_rmsd(refined.coords, coords) < 1.5


def test_fold_pdb_is_readable_and_carries_importance(tmp_path):
    coords = ideal_helix(8)
    fold = embed_distogram(distogram_from_distances(distances(coords)))
    importance = np.linspace(0.0, 1.4, 8)
    path = write_fold_pdb(tmp_path / "rough.pdb", fold, "ACDEFGHI", importance)
    text = path.read_text()
    assert "ROUGH MODEL" in text
    atoms = [line for line in text.splitlines() if line.startswith("ATOM")]
    assert [float(line[60:66]) for line in atoms] == pytest.approx(np.round(importance, 2))
    structure = load_structure(path)
    assert structure.sequence("A") == "ACDEFGHI"
    assert np.allclose(structure.atoms.coord, fold.coords, atol=1e-3)
    with pytest.raises(Exception, match="residues"):
        fold_pdb_text(fold, "ACD")


def test_distogram_checks_catch_other_proteins():
    p = distogram_from_distances(distances(ideal_helix(6)))
    with pytest.raises(InputFileError, match="6 residues, the importance for 7"):
        distogram_for({"dist": p}, "ACDEFGH")
    with pytest.raises(InputFileError, match="another sequence"):
        distogram_for({"dist": p, "sequence": np.asarray("AAAAAA")}, "CCCCCC")
    with pytest.raises(InputFileError, match=r"\(L, L, 37\)"):
        distogram_for({"dist": p[..., :20]}, "AAAAAA")
    assert distogram_for({"dist": p[None]}, "AAAAAA").shape == (6, 6, 37)
