"""benchmarks/device/prepare_kit.py: the slimmed wheels a GPU machine gets must behave as the originals."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import load_script, shared_file


@pytest.fixture(scope="module")
def kit():
    return load_script("device/prepare_kit.py")


def test_repacked_wheel_has_a_true_record_and_installs(kit, tmp_path):
    src = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("demo_pkg/__init__.py", "VALUE = 1\n")
        z.writestr("demo_pkg/big.dat", b"x" * 1000)
        z.writestr("demo_pkg/examples/data.txt", "not needed\n")
        z.writestr("demo_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
        z.writestr(
            "demo_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr("demo_pkg-1.0.dist-info/RECORD", "stale\n")
    out = kit.repack_wheel(src, tmp_path / "out.whl", {"demo_pkg/big.dat": b"small"}, ("demo_pkg/examples/",))
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert "demo_pkg/examples/data.txt" not in names and z.read("demo_pkg/big.dat") == b"small"
        record = z.read("demo_pkg-1.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            assert name in names
            if name.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = z.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))
        assert len(record) == len(names)
    target = tmp_path / "site"
    wheel = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    out.replace(wheel)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    assert (target / "demo_pkg" / "big.dat").read_bytes() == b"small"


def test_reduced_ccd_gives_the_same_structure_metrics(kit, tmp_path):
    """What a device run computes on a design (Spearman with ref2015 terms, H-bond networks) is the
    same with the reduced chemical component dictionary as with biotite's whole one."""
    import biotite.structure.info as info
    from biotite.structure.info.ccd import _CCD_FILE

    from protscramble.benchmark.metrics import structure_rows
    from protscramble.structures import load_structure

    pdb = shared_file("structures", "designed", "sh3_binders", "sh3_r1_110_r2_15.pdb")
    names = kit.residue_names(pdb.parent) | set(kit.AMINO_ACIDS_3)
    assert {"ALA", "TRP"} <= names and all(len(n) <= 3 for n in names)
    reduced = kit.reduced_ccd(names, tmp_path / "ccd.bcif")
    assert reduced.stat().st_size < _CCD_FILE.stat().st_size / 100

    def metrics():
        seq = load_structure(pdb, chains=["A"]).sequence("A")
        imp = {"random": np.random.default_rng(0).random(len(seq))}
        rows, notes = structure_rows(imp, seq, str(pdb), "A", 10, 30, 0, compute_ddg=False)
        return rows, notes, info.residue("TRP").array_length(), info.bond_type("ALA", "CA", "CB")

    full = metrics()
    original = _CCD_FILE
    info.set_ccd_path(reduced)
    try:
        assert metrics() == full
        assert info.residue("TRP").array_length() == full[2]
        with pytest.raises(KeyError):
            info.residue("ATP")  # left out of the reduced dictionary
    finally:
        info.set_ccd_path(original)
    assert info.residue("ATP").array_length() > 0
