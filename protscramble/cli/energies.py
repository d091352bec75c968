"""``protscramble energies``: per-residue Rosetta energies of a structure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputFileError
from ..io import atomic_write_text
from ..structures.energies import BACKENDS, per_residue_energies
from .common import add_device_argument, positive_int, resolve_device


def add_structure_arguments(p: argparse.ArgumentParser) -> None:
    """``--structure`` and ``--model``, shared by the structure sub-commands."""
    p.add_argument("--structure", required=True, help="PDB or mmCIF file")
    p.add_argument("--model", type=positive_int, default=1, help="model to read (default 1)")


def check_output_file(path: str) -> Path:
    """Refuse an output path that is a folder (before any work is done)."""
    out = Path(path)
    if out.is_dir():
        raise InputFileError(f"--out must be a file path, {out} is a folder")
    return out


def report(command: str, message: str, notes: list[str]) -> None:
    """One summary line and the notes, on stderr."""
    print(f"protscramble {command}: {message}", file=sys.stderr)
    for note in notes:
        print(f"  note: {note}", file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("energies", help="per-residue Rosetta energies (Rosetta table, tmol or PyRosetta)")
    add_structure_arguments(p)
    p.add_argument("--chain", action="append", help="chain to report (repeatable; default all)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: the file's Rosetta table if present, else tmol, else PyRosetta",
    )
    add_device_argument(p)
    p.add_argument("--out", required=True, help="output TSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    device = resolve_device(args.device)
    table = per_residue_energies(
        args.structure, chains=args.chain, backend=args.backend, model=args.model, device=device
    )
    atomic_write_text(out, table.to_tsv())
    report(
        "energies",
        f"{len(table)} residues, backend {table.backend} ({table.score_function}), written to {out}",
        table.notes,
    )
    return 0
