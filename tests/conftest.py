"""Shared fixtures: the reference data folder and a loaded trRosetta model."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
