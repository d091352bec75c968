"""Structure side: per-residue Rosetta energies, H-bond networks, alanine-scan ddG,
and the statistics that relate per-residue importance to them.

Everything reads the user's own PDB/mmCIF files (biotite) and works on one
model at a time. Computed energies come from tmol (Rosetta's energy function in
PyTorch, optional extra ``protscramble[energies]``); Rosetta's own per-residue
table is read from Rosetta-written PDBs; PyRosetta is used when installed.
"""

from .compare import (
    ComparisonResult,
    Importance,
    SpearmanResult,
    TopKResult,
    average_precision,
    compare_importance_with_structure,
    read_importance_tsv,
    spearman_permutation_test,
    topk_permutation_test,
)
from .ddg import DdgTable, alanine_scan, read_ddg_tsv, truncate_to_alanine
from .energies import (
    EnergyBackend,
    EnergyTable,
    PyRosettaBackend,
    TableBackend,
    TmolBackend,
    has_energy_table,
    parse_rosetta_table,
    per_residue_energies,
    select_backend,
)
from .hbnets import HBNetResult, HBond, HBondNetwork, build_networks, find_hbond_networks, find_hbonds
from .io import (
    ResidueId,
    SequenceMapping,
    Structure,
    load_structure,
    map_sequence_to_structure,
    parse_interface,
    parse_residue_spec,
)

__all__ = [
    "ComparisonResult",
    "DdgTable",
    "EnergyBackend",
    "EnergyTable",
    "HBNetResult",
    "HBond",
    "HBondNetwork",
    "Importance",
    "PyRosettaBackend",
    "ResidueId",
    "SequenceMapping",
    "SpearmanResult",
    "Structure",
    "TableBackend",
    "TmolBackend",
    "TopKResult",
    "alanine_scan",
    "average_precision",
    "build_networks",
    "compare_importance_with_structure",
    "find_hbond_networks",
    "find_hbonds",
    "has_energy_table",
    "load_structure",
    "map_sequence_to_structure",
    "parse_interface",
    "parse_residue_spec",
    "parse_rosetta_table",
    "per_residue_energies",
    "read_ddg_tsv",
    "read_importance_tsv",
    "select_backend",
    "spearman_permutation_test",
    "topk_permutation_test",
    "truncate_to_alanine",
]
