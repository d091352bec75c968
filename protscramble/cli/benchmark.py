"""``protscramble benchmark``: benchmarks of the explanations.

``protscramble benchmark trrosetta --proteins quick --protocol quick --out DIR``
compares the scramblers with gradient saliency, gradient x input, integrated
gradients, in-silico mutagenesis and random importance on trRosetta (see
:mod:`protscramble.benchmark`). Results are written per protein; a rerun with
the same settings skips finished proteins.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..benchmark import METHODS, PROTEIN_SETS, PROTOCOLS, resolve_proteins, run_benchmark
from ..benchmark.proteins import data_dir
from ..benchmark.protocols import (
    DEFAULT_OCCLUSION_BUDGET,
    OCCLUSION_BUDGETS,
    RESTART_SELECTIONS,
    destroyed_fraction,
)
from ..errors import InvalidParameterError
from ..objectives import KL_DIRECTIONS
from ..predictors.trrosetta.network import INSTANCE_NORMS
from .common import add_device_argument, parse_methods, positive_int, resolve_device


def occlusion_budget(value: str) -> str:
    """A named occlusion budget, or a fraction in (0, 1) written canonically (0.40 -> 0.4)."""
    try:
        frac = destroyed_fraction(value)
    except InvalidParameterError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value if frac is None else str(frac)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="benchmark explanations against attribution baselines")
    bsub = p.add_subparsers(dest="benchmark_command", metavar="SUBCOMMAND", parser_class=type(p))
    bsub.required = True
    t = bsub.add_parser(
        "trrosetta", help="trRosetta: faithfulness, published evaluation KL, structure agreement"
    )
    t.add_argument(
        "--proteins",
        default="quick",
        help=f"comma-separated sets ({', '.join(PROTEIN_SETS)}) or protein names (default quick)",
    )
    t.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        metavar="METHOD",
        help=f"space- or comma-separated, of {', '.join(METHODS)} (default all)",
    )
    t.add_argument("--protocol", choices=sorted(PROTOCOLS), default="quick", help="settings (default quick)")
    t.add_argument("--out", required=True, help="output folder (resumable)")
    t.add_argument("--steps", type=positive_int, help="override the protocol's optimiser steps")
    t.add_argument("--samples", type=positive_int, help="override the scrambler's samples per step")
    t.add_argument(
        "--accumulation-steps",
        type=positive_int,
        help="override the groups of samples whose gradients are clipped each on its own and averaged "
        "into one update (published: 2, as the published Keras AdamAccumulate; quick: 1)",
    )
    t.add_argument("--eval-samples", type=positive_int, help="override the evaluation samples")
    t.add_argument("--faithfulness-samples", type=positive_int, help="override the faithfulness samples")
    t.add_argument(
        "--kl-direction",
        choices=KL_DIRECTIONS,
        help="override the scramblers' training divergence (published: reverse, KL(scrambled || original))",
    )
    t.add_argument(
        "--occlusion-budget",
        type=occlusion_budget,
        metavar="{" + ",".join(OCCLUSION_BUDGETS) + ",X}",
        help="occlusion scrambler's target: a number X in (0, 1) (one scrambler destroying X of the "
        f"sequence's bits; default {DEFAULT_OCCLUSION_BUDGET}), complement (keeps all but the protein's "
        "target bits, destroying as much as inclusion keeps), same (keeps the protein's target bits) or "
        "fractions (one scrambler per curve fraction X, each destroying X of the sequence's bits; rankings "
        "nested)",
    )
    t.add_argument(
        "--occlusion-restarts",
        type=positive_int,
        metavar="N",
        help="run N occlusion scramblers (seeds seed, seed + 1, ...) and keep the best, judged by "
        "--occlusion-restart-select (default 1; each restart costs one scrambler)",
    )
    t.add_argument(
        "--occlusion-restart-select",
        choices=RESTART_SELECTIONS,
        help="how the occlusion restarts are judged: heldout (default; the highest occlusion area under "
        "held-out draws, never the reported curves' draws) or objective (the scrambler's own divergence)",
    )
    t.add_argument(
        "--heldout-samples",
        type=positive_int,
        metavar="N",
        help="samples per fraction of the held-out occlusion curve that judges restarts (default 32)",
    )
    t.add_argument(
        "--precision", choices=("auto", "fp32", "tf32", "bf16"), help="override the protocol's precision"
    )
    t.add_argument(
        "--compile",
        choices=("auto", "on", "off"),
        help="override torch.compile of the network (default auto)",
    )
    t.add_argument(
        "--seed",
        type=int,
        help="seed of every stochastic step (default 0): scramblers, samples, permutations",
    )
    t.add_argument(
        "--instance-norm",
        choices=INSTANCE_NORMS,
        help="trRosetta's normalisation: trrosetta (default, as trained) or keras ((x - mean) / (std + "
        "1e-3), the Keras port behind the published results; for comparing with them)",
    )
    t.add_argument(
        "--optimiser-dropout",
        action="store_true",
        default=None,
        help="run trRosetta's dropout (p = 0.15) while the scramblers optimise, as a Keras fit of the "
        "published port may have; reference, evaluation and curves without",
    )
    t.add_argument("--models", default="xaa", help="trRosetta models (default xaa)")
    t.add_argument("--data-dir", help="reference data folder (default ../shared/data)")
    t.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="run N methods at once, each in its own process with 1/N of the torch threads (default 1; "
        "the same results; each worker compiles its own network)",
    )
    t.add_argument("--no-resume", action="store_true", help="recompute finished proteins")
    t.add_argument("--no-figures", action="store_true", help="skip the figures")
    add_device_argument(t)
    t.set_defaults(func=_run_trrosetta)


def _run_trrosetta(args: argparse.Namespace) -> int:
    methods = parse_methods(args.methods, METHODS)
    if not methods:
        raise InvalidParameterError("--methods none leaves nothing to benchmark")
    protocol = PROTOCOLS[args.protocol].with_overrides(
        steps=args.steps,
        samples=args.samples,
        accumulation_steps=args.accumulation_steps,
        eval_samples=args.eval_samples,
        faithfulness_samples=args.faithfulness_samples,
        precision=args.precision,
        compile=args.compile,
        kl_direction=args.kl_direction,
        seed=args.seed,
        occlusion_budget=args.occlusion_budget,
        occlusion_restarts=args.occlusion_restarts,
        occlusion_restart_select=args.occlusion_restart_select,
        heldout_samples=args.heldout_samples,
        instance_norm=args.instance_norm,
        optimiser_dropout=args.optimiser_dropout,
    )
    proteins = resolve_proteins(args.proteins, args.data_dir)
    published = data_dir(args.data_dir) / "trrosetta" / "published_results.tsv"
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", file=sys.stderr, flush=True)

    out = run_benchmark(
        proteins,
        methods,
        protocol,
        args.out,
        models=args.models,
        device=resolve_device(args.device),
        resume=not args.no_resume,
        figures=not args.no_figures,
        published=published,
        workers=args.workers,
        log=log,
    )
    print(out / "summary.md")
    return 0
