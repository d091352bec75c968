"""Shared fixtures: the reference data folder, a loaded trRosetta model, benchmark scripts as modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(relpath: str) -> ModuleType:
    """A script under ``benchmarks/`` (not a package) loaded as a module, e.g. ``"bench_step.py"``."""
    path = BENCHMARKS / relpath
    spec = importlib.util.spec_from_file_location("_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def shared_file(*parts: str) -> Path:
    """Path of a reference file in ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not available: {path} (../shared/data is absent in a fresh clone)")
    return path


@pytest.fixture(scope="session")
def trrosetta_xaa():
    """trRosetta model xaa, fp32 on CPU (loaded once per test session)."""
    from protscramble.predictors.trrosetta import TrRosetta

    return TrRosetta("xaa", device="cpu", precision="fp32")
