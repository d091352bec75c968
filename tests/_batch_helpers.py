"""Helpers of the batch tests: tiny inputs written into a temporary folder, output comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path

THREE = dict(
    A="ALA", R="ARG", N="ASN", D="ASP", C="CYS", Q="GLN", E="GLU", G="GLY", H="HIS", I="ILE",
    L="LEU", K="LYS", M="MET", F="PHE", P="PRO", S="SER", T="THR", W="TRP", Y="TYR", V="VAL",
)  # fmt: skip

#: Settings small enough for a whole campaign to run in seconds on one CPU core.
TINY_CONFIG = """
[explain]
steps = 3
samples = 1
eval-samples = 2
precision = "fp32"
compile = "off"  # orchestration tests; the compiled path is tested in test_fast_paths
seed = 7

[compare]
permutations = 200
alanine_scan = false

[batch]
bucket_size = 2
"""

STRUCTURE_SEQUENCE = "MKVLAAGIEELLKKLA"


def write_structure(path: Path, sequence: str = STRUCTURE_SEQUENCE, chain: str = "A") -> Path:
    """A backbone-only helix-like model of ``sequence`` carrying a Rosetta per-residue energy table.

    The geometry is not physical; it only has to load, map onto the sequence
    and give the table backend something to read (no tmol needed).
    """
    lines, serial = [], 1
    for i, aa in enumerate(sequence):
        t = math.radians(100 * i)
        for name, r, dz, element in (("N", 1.6, -0.9, "N"), ("CA", 2.3, 0.0, "C"), ("C", 1.7, 0.9, "C"), ("O", 1.2, 1.6, "O")):  # fmt: skip
            x, y, z = r * math.cos(t), r * math.sin(t), 1.5 * i + dz
            lines.append(
                f"ATOM  {serial:5d}  {name:<3s} {THREE[aa]} {chain}{i + 1:4d}    "
                f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {element}"
            )
            serial += 1
    lines += ["TER", "END", "#BEGIN_POSE_ENERGIES_TABLE test", "label fa_atr fa_rep total"]
    lines += ["weights 1 0.55 NA", "pose -10 5 -5"]
    for i, aa in enumerate(sequence):
        atr, rep = -(i % 5) - 0.5, 0.1 * (i % 3)
        lines.append(f"{THREE[aa]}_{i + 1} {atr:.2f} {rep:.2f} {atr + rep:.2f}")
    lines.append("#END_POSE_ENERGIES_TABLE test")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_small_campaign(folder: Path) -> tuple[Path, Path]:
    """A manifest of 4 good designs in 3 buckets (bucket_size 2), plus its config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch.toml").write_text(TINY_CONFIG)
    rows = [
        "id\tsequence",
        "a1\tMKVLAAGIEELL",
        "a2\tMSTEELLKKAIE",
        "a3\tMAEEKLKKLLEE",
        "b1\tMKKLLEEGAKVIEL",
    ]
    (folder / "designs.tsv").write_text("\n".join(rows) + "\n")
    return folder / "designs.tsv", folder / "batch.toml"


def write_full_campaign(folder: Path) -> tuple[Path, Path]:
    """Every kind of row: sequence, FASTA (single and multi-record), A3M, structure, broken rows."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch.toml").write_text(TINY_CONFIG)
    inputs = folder / "inputs"
    inputs.mkdir(exist_ok=True)
    (inputs / "b1.fasta").write_text(">whatever\nMKKLLEEGAKVIEL\n")
    (inputs / "pool.fasta").write_text(">b2 second design\nMSEEIKKLAEKLLG\n>other\nMKV\n")
    (inputs / "m1.a3m").write_text(">m1\nMKVLAEGIKELLK\n>h1\nMKVLAEGVKEL-K\n>h2\nMRVLAEGIKDLLK\n")
    write_structure(inputs / "s.pdb")
    rows = [
        "# a comment line",
        "id\tsequence\tfasta\ta3m\tstructure\tchain",
        "a1\tMKVLAAGIEELL",
        "a2\tMSTEELLKKAIE",
        "a3\tMAEEKLKKLLEE",
        "b1\t\tinputs/b1.fasta",
        "b2\t\tinputs/pool.fasta",
        "m1\t\t\tinputs/m1.a3m",
        f"s1\t{STRUCTURE_SEQUENCE}\t\t\tinputs/s.pdb\tA",
        "s2\t\t\t\tinputs/s.pdb\tA",
        'odd <id> & "x"\tMKVLAAGIEELLKG',
        "bad_letters\tMKVXZB",
        "missing_file\t\tinputs/nope.fasta",
        "no_chain\tMKV\t\t\tinputs/s.pdb",
        f"bad_chain\t{STRUCTURE_SEQUENCE}\t\t\tinputs/s.pdb\tZ",
        "dup\tMKVLAAGIEELL",
        "dup\tMKVLAAGIEELA",
    ]
    (folder / "designs.tsv").write_text("\n".join(rows) + "\n")
    return folder / "designs.tsv", folder / "batch.toml"


GOOD_IDS = ["a1", "a2", "a3", "b1", "b2", "m1", "s1", "s2", 'odd <id> & "x"']
BROKEN_IDS = ["bad_letters", "missing_file", "no_chain", "bad_chain", "dup"]

#: Summary fields that measure time or the machine, not the result.
VOLATILE = {"wall_seconds", "optimisation_seconds", "versions", "device_name"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def design_outputs(out: Path) -> dict[str, object]:
    """Every result file of a batch folder, timing fields removed (plots excluded: not text)."""
    found: dict[str, object] = {}
    for path in sorted((out / "designs").rglob("*")):
        rel = str(path.relative_to(out))
        if path.suffix == ".json":
            found[rel] = _strip(json.loads(path.read_text()))
        elif path.suffix == ".tsv":
            found[rel] = path.read_text()
        elif path.is_file():
            found[rel] = "<binary>"
    found["campaign.tsv"] = (out / "campaign.tsv").read_text()
    return found


def final_states(out: Path) -> dict[str, tuple]:
    """id -> (state, stage, error) from the status file (asserting one line per id)."""
    records = [json.loads(line) for line in (out / "status.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), f"duplicate status entries: {ids}"
    return {r["id"]: (r["state"], r["stage"], r["error"]) for r in records}


def leftovers(out: Path) -> list[str]:
    """Temporary files or folders of the atomic writers left in a batch folder."""
    hidden = [p for p in (out / "designs").iterdir() if p.name.startswith(".")]
    hidden += [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".batch.lock"]
    return sorted(str(p) for p in hidden)
