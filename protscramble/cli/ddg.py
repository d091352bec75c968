"""``protscramble ddg``: alanine-scan ddG per residue (interface and monomer)."""

from __future__ import annotations

import argparse

from ..errors import InvalidParameterError
from ..io import atomic_write_text
from ..structures.ddg import DDG_BACKENDS, alanine_scan
from ..structures.io import parse_interface, parse_residue_spec
from .common import add_device_argument, non_negative_float, positive_int, progress_enabled, resolve_device
from .energies import add_structure_arguments, check_output_file, report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ddg", help="alanine-scan ddG per residue (tmol or PyRosetta)")
    add_structure_arguments(p)
    p.add_argument("--interface", help="A_B: interface ddG across these chains (and monomer ddG)")
    p.add_argument(
        "--chain", action="append", help="chain to scan (repeatable; default the interface chains)"
    )
    p.add_argument("--residues", help="comma list of residues to scan, e.g. A45,A46,B12 (default all)")
    p.add_argument("--backend", choices=DDG_BACKENDS, default="auto", help="auto: tmol, else PyRosetta")
    p.add_argument(
        "--repack-radius",
        type=non_negative_float,
        default=0.0,
        help="repack side chains within this many angstrom of each mutation (default 0: no repacking)",
    )
    p.add_argument("--batch-size", type=positive_int, default=16, help="mutants scored together (default 16)")
    p.add_argument("--seed", type=int, default=0, help="packer seed (with --repack-radius)")
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output TSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    if not args.interface and not args.chain:
        raise InvalidParameterError(
            "give --interface A_B (interface and monomer ddG) or --chain (monomer ddG)"
        )
    interface = parse_interface(args.interface) if args.interface else None
    residues = (
        [parse_residue_spec(r) for r in args.residues.split(",") if r.strip()] if args.residues else None
    )
    table = alanine_scan(
        args.structure,
        interface=interface,
        chains=args.chain,
        residues=residues,
        backend=args.backend,
        repack_radius=args.repack_radius,
        model=args.model,
        device=resolve_device(args.device),
        batch_size=args.batch_size,
        progress=progress_enabled(args),
        seed=args.seed,
    )
    atomic_write_text(out, table.to_tsv())
    report("ddg", f"{len(table.residues)} residues scanned ({table.backend}), written to {out}", table.notes)
    return 0
