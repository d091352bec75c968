"""``protscramble explain``: per-residue importance for trRosetta's predicted maps."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

from ..backgrounds import BACKGROUND_KINDS
from ..errors import InvalidParameterError
from ..explain import ProteinExplanation, explain_trrosetta, safe_name, settings_match
from ..io import read_a3m
from ..masking import MODES
from ..objectives import KL_DIRECTIONS
from ..predictors.trrosetta import TrRosetta
from ..sampling import SAMPLING_METHODS
from .common import add_device_argument, non_negative_float, positive_float, positive_int, resolve_device
from .inputs import add_input_arguments, read_proteins


def add_scrambler_arguments(p: argparse.ArgumentParser, steps: int = 500, samples: int = 8) -> None:
    p.add_argument(
        "--mode", choices=MODES, default="inclusion", help="keep (inclusion) or destroy (occlusion)"
    )
    p.add_argument(
        "--target-bits",
        type=float,
        default=1.0,
        help="bits per position the scrambled PSSM keeps (default 1.0). For occlusion, the sequence's own "
        "bits (about 4.2 against the native background) minus what to destroy, e.g. 3.2, ranks the most "
        "important residues best (docs/benchmarks.md)",
    )
    p.add_argument("--steps", type=positive_int, default=steps, help=f"optimiser updates (default {steps})")
    p.add_argument(
        "--samples", type=positive_int, default=samples, help=f"samples per update (default {samples})"
    )
    p.add_argument(
        "--background", default="native", help=f"{', '.join(BACKGROUND_KINDS)}, or a .npy (A,)/(L, A)"
    )
    p.add_argument(
        "--pseudocount", type=non_negative_float, default=1.0, help="pseudo-count of the msa background"
    )
    p.add_argument("--background-a3m", help="alignment whose frequencies form the msa background")
    p.add_argument("--no-msa-features", action="store_true", help="single-sequence features even with --a3m")
    p.add_argument(
        "--scramble-msa",
        action="store_true",
        help="scramble the alignment rows with the query, recomputing its features per sample, as the "
        "published with-MSA scrambler (rows fall back to the column frequencies with gaps, --pseudocount)",
    )
    p.add_argument(
        "--clip-value",
        type=positive_float,
        help="clip every gradient element to +-this before each update (published with-MSA: 0.5)",
    )
    p.add_argument(
        "--accumulation-steps",
        type=positive_int,
        default=1,
        help="split each update's samples into this many groups, clip each group's gradient on its "
        "own and average them (published trRosetta runs: 2 groups of 4; only matters with --clip-value)",
    )
    p.add_argument("--models", default="xaa", help="xaa, all, or a comma list of xaa..xae")
    p.add_argument("--weights", help="folder or archive with model.x??.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=0.01)
    p.add_argument("--temperature", type=float, default=0.5, help="Gumbel-softmax temperature")
    p.add_argument("--sampling", choices=SAMPLING_METHODS, default="gumbel_softmax")
    p.add_argument(
        "--entropy-weight", type=non_negative_float, default=10.0, help="conservation penalty weight"
    )
    p.add_argument(
        "--kl-direction",
        choices=KL_DIRECTIONS,
        default="reverse",
        help="training divergence: reverse = KL(P_scrambled || P_original), as the published scrambler "
        "trained (default); forward = KL(P_original || P_scrambled), the evaluation figure",
    )
    p.add_argument("--eval-samples", type=positive_int, default=128, help="sequences drawn to report the KL")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "tf32", "bf16"),
        default="auto",
        help="network arithmetic: auto = bf16 where the device has fast bf16, else fp32; "
        "tf32 on CUDA only (losses stay fp32)",
    )
    p.add_argument(
        "--compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="torch.compile the residual blocks: ~1.6x faster steps after a one-off compile "
        "(auto = where a C++ compiler / Triton exists)",
    )
    p.add_argument(
        "--max-batch", type=positive_int, help="most sequences per network call (default: from memory)"
    )
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain trRosetta's prediction for a protein by scrambling")
    add_input_arguments(p)
    add_scrambler_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="redo proteins already finished in --out")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def _pm(sem: float | None) -> str:
    """`` ± SEM`` after a mean, empty when there is no spread (one evaluation sample)."""
    return "" if sem is None else f" ± {sem:.3f}"


def _background(args: argparse.Namespace) -> str | np.ndarray:
    if args.background in BACKGROUND_KINDS:
        return args.background
    path = Path(args.background)
    if path.suffix != ".npy":
        raise InvalidParameterError(
            f"--background must be one of {', '.join(BACKGROUND_KINDS)} or a .npy file, got {args.background!r}"
        )
    if not path.is_file():
        raise InvalidParameterError(f"background file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise InvalidParameterError(f"cannot read background {path}: {err}") from None


def run_explain(args: argparse.Namespace, proteins: list) -> int:
    if args.target_bits < 0:
        raise InvalidParameterError(f"--target-bits must be >= 0, got {args.target_bits}")
    if args.scramble_msa and (args.no_msa_features or any(p.msa is None for p in proteins)):
        raise InvalidParameterError("--scramble-msa needs an alignment (--a3m) and its features")
    device = resolve_device(args.device)
    background = _background(args)
    background_msa = read_a3m(args.background_a3m) if args.background_a3m else None
    out = Path(args.out)
    multi = len(proteins) > 1
    if multi:
        names = [safe_name(p.name) for p in proteins]
        if len(set(names)) != len(names):
            raise InvalidParameterError("FASTA record names must be unique (they name the output folders)")
    requested = {
        "mode": args.mode,
        "target_bits": args.target_bits,
        "steps": args.steps,
        "samples": args.samples,
        "seed": args.seed,
        "models": args.models.split(",") if args.models != "all" else None,
        "scramble_msa": args.scramble_msa,
        "clip_value": args.clip_value,
        "accumulation_steps": args.accumulation_steps,
    }
    todo = []
    for p in proteins:
        done = out / safe_name(p.name) / "summary.json"
        if multi and not args.overwrite and done.is_file() and settings_match(done, requested):
            print(f"protscramble: {p.name}: already done in {done.parent}, skipped", file=sys.stderr)
            continue
        todo.append(p)
    if not todo:
        return 0
    predictor = TrRosetta(
        args.models,
        device=device,
        weights=args.weights,
        precision=args.precision,
        compile=args.compile,
    )

    def write(res: ProteinExplanation) -> None:
        target = out / safe_name(res.name) if multi else out
        res.write(target)
        if not args.quiet:
            s = res.summary()
            print(
                f"{res.name}: eval KL {s['eval_kl_mean']:.3f}{_pm(s['eval_kl_sem'])} (median {s['eval_kl_median']:.3f}) at "
                f"{s['conservation_bits']:.2f} bits -> {target}",
                file=sys.stderr,
            )

    # Beside the output, so the atomic replacement of a single protein's folder never touches it.
    checkpoints = out.parent / f".{out.name}.checkpoints"
    explain_trrosetta(
        todo,
        mode=args.mode,
        target_bits=args.target_bits,
        background=background,
        pseudocount=args.pseudocount,
        background_msa=background_msa,
        use_msa_features=not args.no_msa_features,
        steps=args.steps,
        samples=args.samples,
        seed=args.seed,
        device=device,
        eval_samples=args.eval_samples,
        predictor=predictor,
        progress=not args.quiet,
        learning_rate=args.learning_rate,
        temperature=args.temperature,
        sampling=args.sampling,
        entropy_weight=args.entropy_weight,
        kl_direction=args.kl_direction,
        max_batch=args.max_batch,
        scramble_msa=args.scramble_msa,
        clip_value=args.clip_value,
        accumulation_steps=args.accumulation_steps,
        checkpoint_dir=checkpoints,
        on_result=write,
    )
    with contextlib.suppress(OSError):  # only when empty: another run may be using it
        checkpoints.rmdir()
    return 0


def run(args: argparse.Namespace) -> int:
    return run_explain(args, read_proteins(args))
