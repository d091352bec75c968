"""The benchmark's proteins, read in place from the shared reference data.

Sets
----
``hallucinated``  the four hallucinated designs (L = 100, no MSA, native background, 1 bit, 500 updates)
``TR005257``      designed hairpin (L = 72), single-sequence features, MSA background (pseudocount 1), 0.25 bits
``T1001``         CASP13 target (L = 140) with its MSA, scrambled with the query as published (alignment
                  rows towards their gap-including column frequencies, features recomputed per sample,
                  profile floor 0.005, gradients clipped at 0.5); MSA background (pseudocount 20), 1 bit
``top7``          Top7 (1QYS chain A), native background, 1 bit
``designs``       binder chains (A) of the design models with ref2015 tables
``quick``         TR005257 and hallucinated_0417 (the CPU benchmark)
``published``     every row of ``published_results.tsv`` (T1001 at 0.25, 0.5, 1 and 1.5 bits)
``all``           everything above
A comma-separated list of set names and protein names is accepted too; ``NAME@BITS``
(e.g. ``T1001@0.5``) is that protein at another conservation target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from ..errors import InputFileError, InvalidParameterError
from ..io import MSA, read_a3m, read_fasta
from ..predictors.trrosetta.features import PROFILE_FLOOR, SCRAMBLER_PROFILE_FLOOR

#: Default location of the shared reference data (override with ``PROTSCRAMBLE_SHARED_DATA``).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The reference data folder: ``path``, ``$PROTSCRAMBLE_SHARED_DATA`` or ``../shared/data``."""
    d = Path(path or os.environ.get("PROTSCRAMBLE_SHARED_DATA") or DEFAULT_DATA_DIR)
    if not d.is_dir():
        raise InputFileError(f"reference data folder not found: {d} (set --data-dir)")
    return d


def source_protein(name: str) -> str:
    """The reference-data protein of a benchmark entry name: ``T1001@0.5`` -> ``T1001``."""
    return name.split("@")[0]


@dataclass(frozen=True)
class BenchmarkProtein:
    """One benchmark protein with the published explanation settings."""

    name: str
    sequence: str
    msa: MSA | None = None
    msa_features: bool = False
    scramble_msa: bool = False
    profile_floor: float = PROFILE_FLOOR
    clip_value: float | None = None
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

    @property
    def source(self) -> str:
        """The reference-data protein this entry explains (``T1001`` for ``T1001@0.5``)."""
        return source_protein(self.name)

    def at_bits(self, bits: float) -> BenchmarkProtein:
        """This protein at another conservation target, named ``NAME@BITS`` unless it is the default."""
        if bits == self.target_bits:
            return self
        return replace(self, name=f"{self.source}@{bits:g}", target_bits=bits)


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
        # rosetta_utils_with_msa.py: the alignment is scrambled too, its profile gets + 0.005, and
        # Adam's gradients are clipped at 0.5 (the notebook's adam_clipvalue).
        out["T1001"] = BenchmarkProtein(
            "T1001", msa.query, msa, msa_features=True, scramble_msa=True,
            profile_floor=SCRAMBLER_PROFILE_FLOOR, clip_value=0.5,
            background="msa", pseudocount=20.0, group="T1001",
        )  # fmt: skip
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
    root_dir = data_dir(root).resolve()
    cat = _catalogue(root_dir)
    chosen: dict[str, BenchmarkProtein] = {}
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token == "published":
            members = _published_rows(root_dir, cat)
        elif (names := _set_members(token, cat)) is not None:
            members = [cat[n] for n in names]
        else:
            members = [_one_protein(token, cat)]
        chosen.update({p.name: p for p in members if p.name not in chosen})
    if not chosen:
        raise InvalidParameterError(f"no protein selected by {spec!r}")
    return list(chosen.values())


def _one_protein(token: str, cat: dict[str, BenchmarkProtein]) -> BenchmarkProtein:
    name, _, bits = token.partition("@")
    if name not in cat:
        raise InvalidParameterError(f"unknown protein or set {name!r}; sets: {', '.join(PROTEIN_SETS)}")
    if not bits:
        return cat[name]
    try:
        value = float(bits)
    except ValueError:
        value = float("nan")
    if not value > 0:  # also false for NaN
        raise InvalidParameterError(f"target bits in {token!r} must be a number > 0")
    return cat[name].at_bits(value)


def _published_rows(root: Path, cat: dict[str, BenchmarkProtein]) -> list[BenchmarkProtein]:
    """One entry per row of ``published_results.tsv`` (a protein at each of its targets)."""
    from .runner import read_tsv

    path = root / "trrosetta" / "published_results.tsv"
    if not path.exists():
        return [p for p in cat.values() if p.group in ("hallucinated", "TR005257", "T1001")]
    return [cat[r["protein"]].at_bits(float(r["target_bits"])) for r in read_tsv(path) if r["protein"] in cat]
