"""``protscramble hbnets``: side-chain hydrogen-bond networks (HBNet definition)."""

from __future__ import annotations

import argparse

from ..io import atomic_write_text
from ..structures.hbnets import HBNET_BACKENDS, find_hbond_networks
from ..structures.io import parse_interface
from .common import add_device_argument, positive_int, resolve_device
from .energies import add_structure_arguments, check_output_file, report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hbnets", help="side-chain hydrogen-bond networks of a structure")
    add_structure_arguments(p)
    p.add_argument("--interface", help="A_B: keep only networks with residues in both chains")
    p.add_argument("--chain", action="append", help="restrict the search to this chain (repeatable)")
    p.add_argument(
        "--backend", choices=HBNET_BACKENDS, default="geometric", help="H-bond detection (default geometric)"
    )
    p.add_argument(
        "--include-backbone", action="store_true", help="side chain-backbone H-bonds also join residues"
    )
    p.add_argument(
        "--min-size", type=positive_int, default=3, help="smallest network in residues (default 3)"
    )
    p.add_argument(
        "--energy-cutoff", type=float, default=-0.5, help="REU cutoff of the tmol/pyrosetta backends"
    )
    add_device_argument(p)
    p.add_argument("--out", required=True, help="output TSV (one row per network residue)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_file(args.out)
    interface = parse_interface(args.interface) if args.interface else None
    device = resolve_device(args.device) if args.backend == "tmol" else None
    result = find_hbond_networks(
        args.structure,
        interface=interface,
        chains=args.chain,
        backend=args.backend,
        include_backbone=args.include_backbone,
        min_size=args.min_size,
        energy_cutoff=args.energy_cutoff,
        model=args.model,
        device=device,
    )
    atomic_write_text(out, result.to_tsv())
    sizes = ", ".join(str(n.size) for n in result.networks) or "none"
    report("hbnets", f"{len(result.networks)} network(s) (sizes {sizes}) written to {out}", result.notes)
    return 0
