"""Stage, here, what a lent GPU machine needs to run the trRosetta benchmark (``issue7.sh``).

The device machine (the workplace's ``device`` tool) has Python 3.12 with PyTorch, numpy, scipy,
pandas, matplotlib, h5py and tqdm, but not biopython, biotite, captum or logomaker; it cannot
download anything, and a call carries at most 64 MiB besides the checkout. This script builds
``.device/`` (ignored by git) in the repository:

``wheels/``   the missing packages, at the versions installed here, for the device's Python;
              biotite without its 63 MB chemical component dictionary (CCD), replaced by the
              entries of the residues in the reference structures, and logomaker without its
              example data
``weights/``  ``model.xaa.pt``, the one trRosetta model the benchmark runs (18 MB), and
              ``tr_rosetta_pytorch.py``, the naive network ``bench_step.py`` compares with
``data``      a link to the shared reference data, read in place (carried through the link)
``results/``  put ``issue7.tar.gz`` from an earlier call here to continue it

and prints the ``run`` call. Usage::

    python benchmarks/device/prepare_kit.py [--python-version 3.12] [--kit .device]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
#: What the device image lacks (its package list: the device tool's KINDS.md).
KIT_PACKAGES = ("biopython", "biotite", "captum", "logomaker")
CCD_MEMBER = "biotite/structure/info/components.bcif"
#: Wheel members left out: logomaker's example data (10 MB), never imported.
DROP_PREFIXES = ("logomaker/examples/", "logomaker/tutorials/")
#: The twenty amino acids, always kept in the reduced CCD (the alanine scan builds ALA).
AMINO_ACIDS_3 = "ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL".split()
CARRY_LIMIT = 64 * 2**20
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)


def residue_names(folder: Path) -> set[str]:
    """Residue names of every ATOM/HETATM record in the PDB files under ``folder``."""
    names: set[str] = set()
    for pdb in folder.rglob("*.pdb"):
        with open(pdb, errors="replace") as fh:
            names |= {line[17:20].strip() for line in fh if line.startswith(("ATOM  ", "HETATM"))}
    return names - {""}


def reduced_ccd(names: set[str], dest: Path) -> Path:
    """Write the entries of ``names`` from biotite's CCD to ``dest`` (BinaryCIF, sorted as the CCD).

    biotite reads residue templates (atoms, bonds) from this file only; with the residues a
    run meets it behaves as with the whole dictionary, at a thousandth of the size.
    """
    from biotite.structure.info.ccd import _CCD_FILE
    from biotite.structure.io.pdbx import (
        BinaryCIFBlock,
        BinaryCIFCategory,
        BinaryCIFColumn,
        BinaryCIFData,
        BinaryCIFFile,
    )

    full = BinaryCIFFile.read(_CCD_FILE)
    (block_name,) = list(full.keys())
    block = full[block_name]
    out = BinaryCIFBlock()
    for cat_name in block.keys():
        category = block[cat_name]
        id_col = "id" if cat_name == "chem_comp" else "comp_id"
        keep = np.flatnonzero(np.isin(category[id_col].as_array(), sorted(names)))
        columns = {}
        for col_name, column in category.items():
            mask = None if column.mask is None else column.mask.array[keep]
            columns[col_name] = BinaryCIFColumn(
                BinaryCIFData(column.data.array[keep]),
                None if mask is None or not mask.any() else BinaryCIFData(mask),
            )
        out[cat_name] = BinaryCIFCategory(columns)
    file = BinaryCIFFile()
    file[block_name] = out
    dest.parent.mkdir(parents=True, exist_ok=True)
    file.write(dest)
    return dest


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def repack_wheel(src: Path, dest: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()) -> Path:
    """Copy wheel ``src`` to ``dest`` with members replaced or dropped and its RECORD rewritten."""
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist() if not n.startswith(drop)}
    record = next(n for n in members if n.endswith(".dist-info/RECORD"))
    members.update({k: v for k, v in replace.items() if k in members})
    lines = [_record_line(n, d) for n, d in members.items() if n != record] + [f"{record},,"]
    members[record] = ("\n".join(lines) + "\n").encode()
    tmp = dest.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for n, d in members.items():
            zout.writestr(n, d)
    os.replace(tmp, dest)
    return dest


def download(name: str, version: str, python_version: str, dest: Path) -> Path:
    """The wheel of ``name==version`` for the device's Python, from PyPI (here, not there)."""
    dest.mkdir(parents=True, exist_ok=True)
    tag = python_version.replace(".", "")
    cmd = [
        sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp", "-d", str(dest),
        *[a for p in PLATFORMS for a in ("--platform", p)], f"{name}=={version}",
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    stem = name.replace("-", "_").lower()
    found = [
        w
        for w in dest.glob("*.whl")
        if w.name.lower().startswith(f"{stem}-{version}-") and (f"cp{tag}" in w.name or "py3-none" in w.name)
    ]
    if not found:
        raise FileNotFoundError(f"no {name} {version} wheel for Python {python_version} in {dest}")
    return found[0]


def tree_size(paths: list[Path]) -> int:
    """Bytes under ``paths`` (links followed, as the device call carries them)."""
    total = 0
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default=".device", help="folder in the repository (default .device)")
    ap.add_argument("--python-version", default="3.12", help="the device's Python (default 3.12)")
    ap.add_argument("--data", default=None, help="shared reference data (default ../shared/data)")
    args = ap.parse_args(argv)

    from protscramble.benchmark.proteins import data_dir
    from protscramble.predictors.trrosetta.weights import packaged_archive, weights_folder

    kit = (REPO / args.kit).resolve()
    if REPO not in kit.parents:
        raise SystemExit(f"--kit must be inside the repository {REPO}")
    exclude = REPO / ".git" / "info" / "exclude"
    rel = f"/{kit.relative_to(REPO).as_posix()}/"
    if (
        exclude.parent.parent.is_dir()
        and rel not in (exclude.read_text() if exclude.exists() else "").split()
    ):
        exclude.parent.mkdir(exist_ok=True)
        with open(exclude, "a") as fh:
            fh.write(f"{rel}\n")
    data = data_dir(args.data).resolve()

    wheels = kit / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for stale in wheels.glob("*.whl"):
        stale.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        for name in KIT_PACKAGES:
            wheel = download(name, importlib.metadata.version(name), args.python_version, Path(tmp))
            replace: dict[str, bytes] = {}
            if name == "biotite":
                names = residue_names(data / "structures") | set(AMINO_ACIDS_3)
                replace[CCD_MEMBER] = reduced_ccd(names, Path(tmp) / "ccd.bcif").read_bytes()
            repack_wheel(wheel, wheels / wheel.name, replace, DROP_PREFIXES)

    (kit / "weights").mkdir(exist_ok=True)
    shutil.copy2(weights_folder() / "model.xaa.pt", kit / "weights" / "model.xaa.pt")
    # the naive baseline of bench_step.py: tr-rosetta-pytorch's network module, without its wheel
    shutil.copy2(
        packaged_archive().parents[1] / "tr_rosetta_pytorch.py", kit / "weights" / "tr_rosetta_pytorch.py"
    )
    link = kit / "data"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(data, target_is_directory=True)
    (kit / "results").mkdir(exist_ok=True)

    prefix = kit.relative_to(REPO).as_posix()
    carry = [f"{prefix}/wheels", f"{prefix}/weights", f"{prefix}/data/trrosetta", f"{prefix}/data/structures"]
    carry += [f"{prefix}/results"] if any((kit / "results").iterdir()) else []
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    size = tree_size([REPO / c for c in carry]) + tree_size([REPO / t.decode() for t in tracked if t])
    print(f"kit {kit}: {size / 2**20:.1f} MiB with the checkout (limit {CARRY_LIMIT / 2**20:.0f})")
    if size > CARRY_LIMIT:
        print("too large to carry", file=sys.stderr)
        return 1
    print(f'run(command="bash benchmarks/device/issue7.sh", timeout_s=600, carry={carry})')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
