"""The example notebooks run top to bottom (light settings) and are stored without outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, shared_file

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_designed_binder", "02_heterodimer_dhd154", "03_natural_protein_msa"]
#: Reference data a notebook cannot run without (01 falls back to the bundled example).
NEEDS = {"02_heterodimer_dhd154": ("heterodimer",), "03_natural_protein_msa": ("trrosetta", "T1001.a3m")}


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, "outputs must be stripped in git"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_with_light_settings(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient", reason="nbclient (and ipykernel) run the notebooks")
    pytest.importorskip("ipykernel")
    if name in NEEDS:
        shared_file(*NEEDS[name])  # skips with the reason in a fresh clone without ../shared
    monkeypatch.setenv("PROTSCRAMBLE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("PROTSCRAMBLE_SHARED_DATA", str(SHARED_DATA))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    t0 = time.perf_counter()
    client.execute()
    print(f"{name}: {time.perf_counter() - t0:.0f} s")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(Path(tmp_path, "notebook_outputs", name).iterdir())
