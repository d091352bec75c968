"""PyRosetta backends (ref2015); skipped where PyRosetta is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from _structures_helpers import design_models

pytest.importorskip("pyrosetta")

from scipy.stats import spearmanr  # noqa: E402

from protscramble.structures import alanine_scan, find_hbond_networks, per_residue_energies  # noqa: E402


def test_pyrosetta_energies_agree_with_the_rosetta_table():
    path = design_models(1)[0]
    reference = per_residue_energies(path, backend="table")
    computed = per_residue_energies(path, backend="pyrosetta")
    assert computed.score_function == "ref2015"
    assert [r.key for r in computed.residues] == [r.key for r in reference.residues]
    # same score function on a relaxed model: near-identical per-residue totals
    assert spearmanr(computed.total, reference.total)[0] >= 0.95
    assert np.allclose(np.nansum(computed.values, axis=1), computed.total, atol=1e-2)


def test_pyrosetta_hbond_networks_follow_the_same_rules():
    path = design_models(1)[0]
    result = find_hbond_networks(path, backend="pyrosetta", interface=("A", "B"))
    for net in result.networks:
        assert net.size >= 3 and net.chains == ["A", "B"]
        assert all(h.energy is not None and h.energy <= -0.5 for h in net.hbonds)


def test_pyrosetta_alanine_scan_runs_on_two_residues():
    path = design_models(1)[0]
    table = alanine_scan(path, interface=("A", "B"), residues=[("A", 5), ("A", 6)], backend="pyrosetta")
    assert table.score_function == "ref2015"
    assert np.isfinite(table.monomer_ddg).all()
