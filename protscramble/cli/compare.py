"""``protscramble compare``: importance against per-residue energies, ddG and H-bond networks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputFileError
from ..structures.compare import compare_importance_with_structure
from ..structures.energies import BACKENDS
from ..structures.hbnets import HBNET_BACKENDS
from ..structures.io import parse_interface
from .common import add_device_argument, positive_int, progress_enabled, resolve_device
from .energies import add_structure_arguments, report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="relate per-residue importance to Rosetta energies, ddG and H-bond networks"
    )
    p.add_argument("--importance", required=True, help="importance.tsv written by protscramble explain")
    add_structure_arguments(p)
    p.add_argument("--chain", required=True, help="chain the importance refers to")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="energy backend (default auto)")
    p.add_argument("--interface", help="A_B: interface ddG and interface H-bond networks")
    p.add_argument("--ddg", help="precomputed ddg.tsv (from protscramble ddg) instead of running a scan")
    p.add_argument("--no-ddg", action="store_true", help="skip the alanine scan and the top-k ddG test")
    p.add_argument("--hbnet-backend", choices=HBNET_BACKENDS, default="geometric")
    p.add_argument(
        "--top-k", type=positive_int, default=10, help="residues in the top-k ddG test (default 10)"
    )
    p.add_argument("--permutations", type=positive_int, default=10_000, help="shuffles per permutation test")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutation tests")
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputFileError(f"--out must be a folder, {args.out} is a file")
    interface = parse_interface(args.interface) if args.interface else None
    result = compare_importance_with_structure(
        args.importance,
        args.structure,
        args.chain,
        model=args.model,
        energy_backend=args.backend,
        interface=interface,
        ddg=args.ddg,
        compute_ddg=not args.no_ddg,
        hbnet_backend=args.hbnet_backend,
        top_k=args.top_k,
        n_permutations=args.permutations,
        seed=args.seed,
        device=resolve_device(args.device),
        progress=progress_enabled(args),
    )
    result.write(args.out)
    rho = result.stats["spearman"]["abs_total"]["rho"]
    rho_text = "n/a" if rho is None else f"{rho:.3f}"
    report("compare", f"Spearman(importance, |energy|) = {rho_text}; results in {args.out}/", result.notes)
    return 0
