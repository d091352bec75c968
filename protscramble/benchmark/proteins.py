"""The benchmark's proteins, read in place from the shared reference data.

Sets
----
``hallucinated``  the four hallucinated designs (L = 100, no MSA, native background, 1 bit, 500 updates)
``TR005257``      designed hairpin (L = 72), single-sequence features, MSA background (pseudocount 1), 0.25 bits
``T1001``         CASP13 target (L = 140) with its MSA as features and background (pseudocount 20), 1 bit
``top7``          Top7 (1QYS chain A), native background, 1 bit
``designs``       binder chains (A) of the design models with ref2015 tables
``quick``         TR005257 and hallucinated_0417 (the CPU benchmark)
``published``     every protein of ``published_results.tsv``
``all``           everything above
A comma-separated list of set names and protein names is accepted too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import InputFileError, InvalidParameterError
from ..io import MSA, read_a3m, read_fasta

#: Default location of the shared reference data (override with ``PROTSCRAMBLE_SHARED_DATA``).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The reference data folder: ``path``, ``$PROTSCRAMBLE_SHARED_DATA`` or ``../shared/data``."""
    d = Path(path or os.environ.get("PROTSCRAMBLE_SHARED_DATA") or DEFAULT_DATA_DIR)
    if not d.is_dir():
        raise InputFileError(f"reference data folder not found: {d} (set --data-dir)")
    return d


@dataclass(frozen=True)
class BenchmarkProtein:
    """One benchmark protein with the published explanation settings."""

    name: str
    sequence: str
    msa: MSA | None = None
    msa_features: bool = False
    background: str = "native"
    pseudocount: float = 1.0
    target_bits: float = 1.0
    published_steps: int = 250
    structure: Path | None = None
    chain: str = "A"
    group: str = ""

    @property
    def length(self) -> int:
        return len(self.sequence)


def _trrosetta(root: Path) -> dict[str, BenchmarkProtein]:
    base = root / "trrosetta"
    out: dict[str, BenchmarkProtein] = {}
    fasta = base / "hallucinated_designs.fasta"
    if fasta.exists():
        for rec in read_fasta(fasta):
            name = rec.name.split()[0]
            out[name] = BenchmarkProtein(name, rec.sequence, published_steps=500, group="hallucinated")
    if (base / "TR005257.a3m").exists():
        msa = read_a3m(base / "TR005257.a3m")
        out["TR005257"] = BenchmarkProtein(
            "TR005257", msa.query, msa, background="msa", pseudocount=1.0, target_bits=0.25, group="TR005257"
        )
    if (base / "T1001.a3m").exists():
        msa = read_a3m(base / "T1001.a3m")
        out["T1001"] = BenchmarkProtein(
            "T1001", msa.query, msa, msa_features=True, background="msa", pseudocount=20.0, group="T1001"
        )
    return out


def _structures(root: Path) -> dict[str, BenchmarkProtein]:
    from ..structures import has_energy_table, load_structure

    base = root / "structures" / "designed"
    out: dict[str, BenchmarkProtein] = {}
    top7 = base / "top7" / "1QYS.pdb"
    if top7.exists():
        seq = load_structure(top7).sequence("A")
        out["top7"] = BenchmarkProtein(
            "top7", seq, structure=top7 if has_energy_table(top7) else None, group="top7"
        )
    for sub in ("pdl1_binders", "sh3_binders"):
        for pdb in sorted((base / sub).glob("*.pdb")):
            if not has_energy_table(pdb):
                continue
            seq = load_structure(pdb, chains=["A"]).sequence("A")
            out[pdb.stem] = BenchmarkProtein(pdb.stem, seq, structure=pdb, group="designs")
    return out


@cache
def _catalogue(root: Path) -> dict[str, BenchmarkProtein]:
    return {**_trrosetta(root), **_structures(root)}


def _set_members(name: str, cat: dict[str, BenchmarkProtein]) -> list[str] | None:
    groups = {
        "hallucinated": ["hallucinated"],
        "designs": ["designs"],
        "published": ["hallucinated", "TR005257", "T1001"],
        "all": ["hallucinated", "TR005257", "T1001", "top7", "designs"],
    }
    if name == "quick":
        return [n for n in ("TR005257", "hallucinated_0417") if n in cat]
    if name in groups:
        return [n for n, p in cat.items() if p.group in groups[name]]
    return None


PROTEIN_SETS = ("quick", "published", "hallucinated", "designs", "all", "TR005257", "T1001", "top7")


def resolve_proteins(spec: str, root: str | os.PathLike | None = None) -> list[BenchmarkProtein]:
    """Proteins named by ``spec`` (comma-separated set or protein names), in order, without repeats."""
    cat = _catalogue(data_dir(root).resolve())
    names: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        members = _set_members(token, cat)
        if members is None:
            if token not in cat:
                raise InvalidParameterError(
                    f"unknown protein or set {token!r}; sets: {', '.join(PROTEIN_SETS)}"
                )
            members = [token]
        names += [n for n in members if n not in names]
    if not names:
        raise InvalidParameterError(f"no protein selected by {spec!r}")
    return [cat[n] for n in names]
