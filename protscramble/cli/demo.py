"""``protscramble demo``: explain a bundled designed protein with light CPU settings."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from ..explain import Protein
from ..io import read_fasta
from .common import add_device_argument, positive_int
from .explain import run_explain

DEMO_STEPS = 300
DEMO_SAMPLES = 6


def demo_protein() -> Protein:
    """The bundled example: FSD-1, a 28-residue computationally designed beta-beta-alpha fold."""
    with resources.as_file(resources.files("protscramble") / "data" / "demo.fasta") as path:
        (rec,) = read_fasta(path)
    return Protein("FSD-1", rec.sequence)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="explain a bundled designed protein (FSD-1, 28 residues; a few minutes on a 2-core CPU)"
    )
    p.add_argument("--out", default="protscramble_demo", help="output folder (default protscramble_demo)")
    p.add_argument(
        "--steps", type=positive_int, default=DEMO_STEPS, help=f"optimiser updates (default {DEMO_STEPS})"
    )
    p.add_argument("--samples", type=positive_int, default=DEMO_SAMPLES)
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    protein = demo_protein()
    if not args.quiet:
        print(
            f"protscramble demo: explaining {protein.name} ({len(protein.sequence)} residues) with trRosetta xaa, "
            f"{args.steps} updates x {args.samples} samples, inclusion at 1 bit",
            file=sys.stderr,
        )
    ns = argparse.Namespace(
        mode="inclusion", target_bits=1.0, background="native", pseudocount=1.0, background_a3m=None,
        no_msa_features=False, scramble_msa=False, clip_value=None, accumulation_steps=1, models="xaa", weights=None, learning_rate=0.01, temperature=0.5,
        sampling="gumbel_softmax", entropy_weight=10.0, kl_direction="reverse", eval_samples=16, max_batch=None, precision="auto", compile="auto",
        overwrite=True, **vars(args),
    )  # fmt: skip
    run_explain(ns, [protein])
    if not args.quiet:
        print(
            f"protscramble demo: wrote importance.tsv, pssm.tsv, summary.json and figures to {args.out}/",
            file=sys.stderr,
        )
    return 0
