"""``protscramble report``: one self-contained HTML page per explanation."""

from __future__ import annotations

import argparse

from ..structures.energies import BACKENDS
from ..structures.io import parse_interface
from .common import add_device_argument, positive_int, resolve_device
from .energies import report as report_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="self-contained HTML report of an explanation (figures, 3D view, correlations, table)"
    )
    p.add_argument("dir", help="explanation folder written by protscramble explain (or a folder of them)")
    p.add_argument("--structure", help="PDB or mmCIF file to compare with and view on")
    p.add_argument("--chain", help="chain the importance refers to (default: the chain that matches)")
    p.add_argument("--model", type=positive_int, default=1, help="model to read (default 1)")
    p.add_argument("--interface", help="A_B: interface H-bond networks")
    p.add_argument("--energy-backend", choices=BACKENDS, default="auto", help="energy backend (default auto)")
    p.add_argument("--a3m", help="alignment to predict the distograms with (when the explanation used one)")
    p.add_argument(
        "--no-predict",
        action="store_true",
        help="never run trRosetta (distogram panels only from DIR/predictions.npz)",
    )
    p.add_argument(
        "--samples",
        type=positive_int,
        default=8,
        help="sequences drawn from the PSSM for the scrambled distogram",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the samples and permutation tests")
    p.add_argument("--top-k", type=positive_int, default=10, help="residues highlighted (default 10)")
    p.add_argument("--permutations", type=positive_int, default=10_000, help="shuffles per permutation test")
    p.add_argument("--js", help="local 3Dmol-min.js to inline, so the page works offline (default: CDN)")
    p.add_argument("--figures", help="also write every figure as PDF and PNG into this folder")
    add_device_argument(p)
    p.add_argument("--out", required=True, help="report.html (a folder when DIR holds several explanations)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import read_a3m
    from ..report import write_report

    msa = read_a3m(args.a3m) if args.a3m else None
    pages = write_report(
        args.dir,
        args.out,
        js=args.js,
        figures_dir=args.figures,
        top_k=args.top_k,
        structure=args.structure,
        chain=args.chain,
        model=args.model,
        msa=msa,
        energy_backend=args.energy_backend,
        interface=parse_interface(args.interface) if args.interface else None,
        predict=not args.no_predict,
        n_samples=args.samples,
        seed=args.seed,
        device=str(resolve_device(args.device)),
        n_permutations=args.permutations,
    )
    report_line("report", f"wrote {', '.join(str(p) for p in pages)}", [])
    return 0
