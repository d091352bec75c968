"""``protscramble predict``: trRosetta distance/orientation maps."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import InvalidParameterError
from ..io import atomic_savez
from ..predictors.trrosetta import TrRosetta
from .common import add_device_argument, resolve_device
from .inputs import add_input_arguments, read_proteins


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict trRosetta distance/orientation maps")
    add_input_arguments(p)
    p.add_argument("--models", default="xaa", help="xaa, all, or a comma list of xaa..xae (averaged)")
    p.add_argument(
        "--weights", help="folder or archive with model.x??.pt (default: the tr-rosetta-pytorch wheel)"
    )
    add_device_argument(p)
    p.add_argument(
        "--out", required=True, help="output .npz with float32 dist, omega, theta, phi (L, L, bins)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    proteins = read_proteins(args)
    if len(proteins) != 1:
        raise InvalidParameterError(f"predict takes one protein, the input has {len(proteins)}")
    (protein,) = proteins
    if not args.out.endswith(".npz"):
        raise InvalidParameterError("--out must end in .npz")
    tr = TrRosetta(args.models, device=resolve_device(args.device), msa=protein.msa, weights=args.weights)
    maps = tr.predict_sequence(protein.sequence)
    atomic_savez(args.out, **{k: v.astype(np.float32) for k, v in maps.items()})
    return 0
