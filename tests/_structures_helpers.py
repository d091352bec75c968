"""Shared helpers for the structure-side tests (reference data, independent parsers, CLI runs).

Golden values come from the reference files themselves, parsed here with plain
string operations that share no code with protscramble.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

STRUCTURES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
DESIGNED = STRUCTURES / "designed"

needs_tmol = pytest.mark.skipif(importlib.util.find_spec("tmol") is None, reason="tmol is not installed")


def structure_file(*parts: str) -> Path:
    """Path of a reference structure, skipping the test when the shared data is absent."""
    path = STRUCTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not available: {path} (../shared/data is absent in a fresh clone)")
    return path


def design_models(limit: int | None = None) -> list[Path]:
    """Design models (PD-L1 and SH3 binders) in name order, skipping when absent."""
    files = sorted(DESIGNED.glob("pdl1_binders/*.pdb")) + sorted(DESIGNED.glob("sh3_binders/*.pdb"))
    if not files:
        pytest.skip(f"reference data not available: {DESIGNED}")
    return files if limit is None else files[:limit]


def rosetta_table_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header terms and raw string rows (label first) of a Rosetta per-residue table."""
    lines = path.read_text().splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("#BEGIN_POSE_ENERGIES_TABLE")][0]
    end = [i for i, line in enumerate(lines) if line.startswith("#END_POSE_ENERGIES_TABLE")][0]
    block = [line.split() for line in lines[start + 1 : end]]
    header = block[0][1:]  # after "label"
    return header, block[3:]  # skip "weights" and "pose"


def atom_records(path: Path, model: int = 1) -> list[str]:
    """ATOM/HETATM lines of one model of a PDB file."""
    out, current = [], 1
    for line in path.read_text().splitlines():
        if line.startswith("MODEL "):
            current = int(line[10:14])
        elif line.startswith(("ATOM  ", "HETATM")) and current == model:
            out.append(line)
    return out


def residue_numbers(path: Path, chain: str, model: int = 1) -> list[tuple[int, str]]:
    """Distinct (number, insertion code) of ATOM records of ``chain``, in file order."""
    seen: list[tuple[int, str]] = []
    for line in atom_records(path, model):
        if line.startswith("ATOM  ") and line[21] == chain:
            key = (int(line[22:26]), line[26].strip())
            if key not in seen:
                seen.append(key)
    return seen


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``protscramble`` in-process; return exit code, stdout, stderr."""
    from protscramble.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str) -> None:
    """A user error: exit status 2 and exactly one 'protscramble: error:' line, no traceback."""
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("protscramble: error:")
    assert "Traceback" not in err


def write_importance(path: Path, sequence: str, values) -> Path:
    """Write an importance.tsv as ``protscramble explain`` does."""
    rows = ["position\tresidue\timportance"]
    rows += [f"{i + 1}\t{aa}\t{float(v):.6g}" for i, (aa, v) in enumerate(zip(sequence, values, strict=True))]
    path.write_text("\n".join(rows) + "\n")
    return path
