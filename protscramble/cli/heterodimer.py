"""``protscramble heterodimer``: the coiled-coil heterodimer binder predictor and its explanations.

Sub-commands: ``predict``, ``convert-weights``, ``train-scrambler``,
``explain`` and ``benchmark``. Every output is written atomically: a failed
run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import InputFileError, InvalidParameterError
from ..explanation import Explanation
from ..io import atomic_output_dir, atomic_write_json, atomic_write_text
from ..masking import MODES
from ..pairs import (
    DEFAULT_TARGET_BITS,
    OCCLUSION_REFERENCES,
    PAIR_KINDS,
    SUBSETS,
    Explainer,
    PairScrambler,
    benchmark_markdown,
    benchmark_pairs,
    explain_per_example,
    explain_with_network,
    explained_labels,
    hbnet_example,
    pair_digest,
    parse_exclusions,
    select_subset,
    train_pair_scrambler,
)
from ..predictors.heterodimer import (
    CHAIN_LENGTH,
    HeterodimerPredictor,
    PairBackground,
    PairTable,
    load_model,
    make_background,
    read_pairs_tsv,
    save_state_dict,
    write_pairs_tsv,
)
from ..scrambler_network import TrainingSettings
from .common import (
    add_device_argument,
    non_negative_float,
    parse_methods,
    positive_int,
    progress_enabled,
    resolve_device,
)

BASELINE_METHODS = ("random", "saliency", "gradient_x_input", "integrated_gradients", "in_silico_mutagenesis")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "heterodimer", help="coiled-coil heterodimer binder predictor: predict, explain, benchmark"
    )
    hsub = p.add_subparsers(dest="heterodimer_command", metavar="SUBCOMMAND", parser_class=type(p))
    hsub.required = True
    _register_predict(hsub)
    _register_convert(hsub)
    _register_train(hsub)
    _register_explain(hsub)
    _register_benchmark(hsub)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights", required=True, help="predictor weights: the published Keras .h5 or a converted .pt"
    )
    add_device_argument(p)
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="CPU threads for torch (default 1: this RNN's many small ops gain little from more, "
        "and lose badly when another process shares the cores)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _with_threads(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a sub-command with ``--threads`` torch threads, restoring the caller's setting afterwards."""

    def wrapped(args: argparse.Namespace) -> int:
        threads = getattr(args, "threads", None)
        if threads is None:
            return run(args)
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return run(args)
        finally:
            torch.set_num_threads(before)

    return wrapped


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


# ----------------------------------------------------------------------------- predict


def _register_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="binding probability of each pair in a TSV")
    _common(p)
    p.add_argument(
        "--pairs", required=True, help="TSV with columns amino_seq_1, amino_seq_2 (others are kept)"
    )
    p.add_argument("--out", required=True, help="output TSV: the input columns plus 'probability'")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.set_defaults(func=_with_threads(run_predict))


def _predictor(args: argparse.Namespace) -> HeterodimerPredictor:
    return HeterodimerPredictor(load_model(args.weights), resolve_device(args.device))


def run_predict(args: argparse.Namespace) -> int:
    table = read_pairs_tsv(args.pairs)
    predictor = _predictor(args)
    p = predictor.predict_pairs(table.chains_1, table.chains_2, args.batch_size)
    write_pairs_tsv(args.out, table, {"probability": [float(v) for v in p]})
    return 0


# ----------------------------------------------------------------------------- convert-weights


def _register_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-weights", help="save the ported predictor as a plain torch state dict (.pt)")
    p.add_argument("--weights", required=True, help="the published Keras .h5 (or a .pt)")
    p.add_argument("--out", required=True, help="output .pt state dict")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    save_state_dict(load_model(args.weights), args.out)
    return 0


# ----------------------------------------------------------------------------- train-scrambler


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-scrambler", help="train a Scrambler network on a pair set (resumable)")
    _common(p)
    p.add_argument("--pairs", required=True, help="training pairs TSV (a validation split is held out)")
    p.add_argument("--out", required=True, help="output scrambler file (.pt)")
    p.add_argument("--mode", choices=MODES, default="inclusion")
    p.add_argument(
        "--epochs", type=positive_int, default=40, help="passes over the training split (default 40)"
    )
    p.add_argument("--architecture", choices=PAIR_KINDS, default="siamese")
    p.add_argument("--channels", type=positive_int, default=32, help="hidden channels (published 32-48)")
    p.add_argument(
        "--target-bits",
        type=non_negative_float,
        help="conservation target (default 0.25 inclusion, 2.4 occlusion)",
    )
    p.add_argument("--entropy-weight", type=non_negative_float, default=10.0)
    p.add_argument("--samples", type=positive_int, default=4, help="samples per pair and update (default 4)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--validation-fraction", type=_fraction, default=0.1)
    p.add_argument("--background", choices=("position", "uniform"), default="position")
    p.add_argument("--pseudocount", type=float, default=0.1)
    p.add_argument(
        "--occlusion-reference",
        choices=OCCLUSION_REFERENCES,
        default="inverted-label",
        help="occlusion target: move towards the inverted label (default; a bounded loss that trains "
        "networks stably) or away from the prediction",
    )
    p.add_argument(
        "--subset",
        choices=SUBSETS,
        help="pairs to train on (default: all for inclusion; predicted-binders for occlusion, because "
        "destroying a 'does not bind' call would mean creating binding)",
    )
    p.add_argument("--no-mask-dropout", action="store_true", help="train without multi-scale mask dropout")
    p.add_argument("--checkpoint", help="checkpoint file (default: OUT.ckpt); an existing one is resumed")
    p.add_argument(
        "--max-minutes", type=float, help="stop after this much training time, keeping the best epoch"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_with_threads(run_train))


def run_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise InputFileError(f"--out is a folder: {out}")
    table = read_pairs_tsv(args.pairs)
    predictor = _predictor(args)
    subset = args.subset or ("all" if args.mode == "inclusion" else "predicted-binders")
    if subset != "all":
        table = table.subset(select_subset(predictor, table, subset))
        if len(table) < 2:
            raise InvalidParameterError(f"only {len(table)} pair(s) in subset {subset} of {args.pairs}")
    settings = TrainingSettings(
        mode=args.mode,
        target_bits=DEFAULT_TARGET_BITS[args.mode] if args.target_bits is None else args.target_bits,
        entropy_weight=args.entropy_weight,
        epochs=args.epochs,
        batch_size=args.batch_size,
        samples=args.samples,
        learning_rate=args.learning_rate,
        mask_dropout=not args.no_mask_dropout,
        seed=args.seed,
        time_limit_seconds=None if args.max_minutes is None else args.max_minutes * 60.0,
    )
    checkpoint = Path(args.checkpoint) if args.checkpoint else out.with_name(out.name + ".ckpt")
    scrambler, history = train_pair_scrambler(
        predictor,
        table,
        kind=args.architecture,
        channels=args.channels,
        settings=settings,
        background=args.background,
        pseudocount=args.pseudocount,
        validation_fraction=args.validation_fraction,
        occlusion_reference=args.occlusion_reference,
        checkpoint_path=checkpoint,
        progress=progress_enabled(args),
    )
    scrambler.meta["subset"] = subset
    scrambler.save(out)
    checkpoint.unlink(missing_ok=True)  # the finished scrambler supersedes it
    if progress_enabled(args):
        best = history.best_epoch
        print(
            f"trained {len(history.train_loss)} epoch(s) in {scrambler.meta['training_seconds']:.0f} s; "
            f"best epoch {best + 1}: validation KL {history.val_divergence[best]:.3f}, "
            f"bits {history.val_bits[best]:.2f} -> {out}",
        )
    return 0


# ----------------------------------------------------------------------------- explain


def _register_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="per-residue importance for both chains of each pair")
    _common(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--scrambler", help="trained scrambler file (from train-scrambler)")
    how.add_argument("--per-example", action="store_true", help="optimise importance for each pair")
    p.add_argument("--pairs", help="TSV with columns amino_seq_1, amino_seq_2")
    p.add_argument("--chain1", help="first chain (with --chain2, instead of --pairs)")
    p.add_argument("--chain2", help="second chain")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--mode", choices=MODES, help="per-example mode (default inclusion; a scrambler has its own)"
    )
    p.add_argument("--target-bits", type=non_negative_float, help="per-example conservation target")
    p.add_argument("--steps", type=positive_int, default=500, help="per-example updates (default 500)")
    p.add_argument(
        "--fine-tune-steps", type=int, default=0, help="with --scrambler: per-example updates from its scores"
    )
    p.add_argument("--samples", type=positive_int, default=8, help="per-example samples per update")
    p.add_argument(
        "--occlusion-reference",
        choices=OCCLUSION_REFERENCES,
        help="per-example/fine-tuning occlusion target (default prediction: move away from it)",
    )
    p.add_argument(
        "--exclude",
        help="with --scrambler: residues the explanation may not use, e.g. 1:9,1:12-15,2:16 (chain:pos, 1-based)",
    )
    p.add_argument("--background", choices=("position", "uniform"), help="per-example background")
    p.add_argument("--background-pairs", help="pair TSV to estimate the position-specific background from")
    p.add_argument("--pseudocount", type=float, default=0.1)
    p.add_argument(
        "--max-figures", type=int, default=10, help="draw one figure per pair up to this many pairs"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_with_threads(run_explain))


def _read_explain_pairs(args: argparse.Namespace) -> PairTable:
    if args.pairs and (args.chain1 or args.chain2):
        raise InvalidParameterError("give either --pairs or --chain1/--chain2, not both")
    if args.pairs:
        return read_pairs_tsv(args.pairs)
    if not (args.chain1 and args.chain2):
        raise InvalidParameterError("give --pairs FILE or both --chain1 and --chain2")
    return PairTable.from_chains([args.chain1], [args.chain2])


def _background(
    args: argparse.Namespace, scrambler: PairScrambler | None, fallback: PairTable | None
) -> PairBackground:
    """--background uniform wins; then --background-pairs; then the scrambler's; then ``fallback`` or uniform."""
    if args.background == "uniform":
        return PairBackground(None)
    if args.background_pairs:
        return make_background("position", read_pairs_tsv(args.background_pairs), args.pseudocount)
    if scrambler is not None and args.background is None:
        return scrambler.background
    if args.background == "position" and fallback is None:
        raise InvalidParameterError("--background position needs --background-pairs FILE")
    return (
        make_background("position", fallback, args.pseudocount) if fallback is not None else PairBackground()
    )


def run_explain(args: argparse.Namespace) -> int:
    table = _read_explain_pairs(args)
    if args.fine_tune_steps < 0:
        raise InvalidParameterError(f"--fine-tune-steps must be >= 0, got {args.fine_tune_steps}")
    if args.exclude and (args.per_example or args.fine_tune_steps):
        raise InvalidParameterError(
            "--exclude needs --scrambler without fine-tuning (the network honours it)"
        )
    if args.scrambler and (args.mode or args.target_bits is not None):
        raise InvalidParameterError("--mode/--target-bits apply to --per-example; a scrambler has its own")
    predictor = _predictor(args)
    scrambler = PairScrambler.load(args.scrambler, predictor.device) if args.scrambler else None
    x, mask = table.encode()
    background = _background(args, scrambler, table if args.background == "position" and args.pairs else None)
    keep = parse_exclusions(
        args.exclude, list(zip(map(len, table.chains_1), map(len, table.chains_2), strict=True))
    )
    progress = progress_enabled(args)
    if scrambler is not None:
        exp = explain_with_network(predictor, scrambler, x, mask, table.labels, keep)
        if args.fine_tune_steps:
            exp = explain_per_example(
                predictor,
                x,
                mask,
                scrambler.background.for_inputs(x),
                mode=scrambler.mode,
                target_bits=scrambler.target_bits,
                steps=args.fine_tune_steps,
                samples=args.samples,
                labels=table.labels,
                occlusion_reference=args.occlusion_reference or "prediction",
                init_scores=exp.importance,
                seed=args.seed,
                progress=progress,
            )
    else:
        mode = args.mode or "inclusion"
        exp = explain_per_example(
            predictor,
            x,
            mask,
            background.for_inputs(x),
            mode=mode,
            target_bits=args.target_bits,
            steps=args.steps,
            samples=args.samples,
            labels=table.labels,
            occlusion_reference=args.occlusion_reference or "prediction",
            seed=args.seed,
            progress=progress,
        )
    probability = predictor.predict(x)
    with atomic_output_dir(args.out) as tmp:
        _write_explanation(tmp, table, exp, probability)
        if len(table) <= args.max_figures:
            (tmp / "figures").mkdir()
            for i in range(len(table)):
                _pair_figure(tmp / "figures" / f"pair_{i + 1:04d}.png", table, exp, i, float(probability[i]))
        atomic_write_json(
            tmp / "settings.json",
            {
                **_jsonable(exp.settings),
                "method": exp.method,
                "n_pairs": len(table),
                "background": background.kind,
            },
        )
    return 0


def _jsonable(d: dict[str, object]) -> dict[str, object]:
    return json.loads(json.dumps(d, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _write_explanation(folder: Path, table: PairTable, exp: Explanation, probability: np.ndarray) -> None:
    lines = ["pair\tchain\tposition\tresidue\timportance"]
    for i in range(len(table)):
        for chain, seq in ((1, table.chains_1[i]), (2, table.chains_2[i])):
            off = (chain - 1) * CHAIN_LENGTH
            for j, aa in enumerate(seq):
                lines.append(f"{i + 1}\t{chain}\t{j + 1}\t{aa}\t{exp.importance[i, off + j]:.6g}")
    atomic_write_text(folder / "importance.tsv", "\n".join(lines) + "\n")
    extra: dict[str, list[object]] = {
        "probability": [float(p) for p in probability],
        "method": [exp.method] * len(table),
    }
    if exp.bits is not None:
        extra["bits"] = [float(b) for b in exp.bits]
    write_pairs_tsv(folder / "pairs.tsv", table, extra)


def _pair_figure(path: Path, table: PairTable, exp: Explanation, i: int, probability: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chains = (table.chains_1[i], table.chains_2[i])
    fig, axes = plt.subplots(2, 1, figsize=(14, 4.2), sharey=True)
    for k, (ax, seq) in enumerate(zip(axes, chains, strict=True)):
        imp = exp.importance[i, k * CHAIN_LENGTH : k * CHAIN_LENGTH + len(seq)]
        ax.bar(np.arange(len(seq)), imp, color="#3b6fb6" if k == 0 else "#c0504d", width=0.85)
        ax.set_xlim(-0.6, CHAIN_LENGTH - 0.4)
        ax.set_xticks(np.arange(len(seq)))
        ax.set_xticklabels(list(seq), fontsize=6, family="monospace")
        ax.set_ylabel(f"chain {k + 1}")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_title(f"pair {i + 1}: p(binding) = {probability:.3f}, {exp.method}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    path.write_bytes(buf.getvalue())  # inside the atomic output folder


# ----------------------------------------------------------------------------- benchmark


def _register_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark", help="scramblers vs attribution baselines: inclusion/occlusion KL, HBNet AP"
    )
    _common(p)
    p.add_argument("--pairs", required=True, help="pairs TSV to benchmark on")
    p.add_argument("--scrambler", action="append", default=[], help="trained scrambler file (repeatable)")
    p.add_argument("--per-example", action="store_true", help="also run per-example scramblers (both modes)")
    p.add_argument("--per-example-steps", type=positive_int, default=500)
    p.add_argument("--fine-tune-steps", type=int, default=0, help="also fine-tune each scrambler's scores")
    p.add_argument(
        "--methods",
        default=",".join(BASELINE_METHODS),
        help=f"comma list of baselines (default all: {','.join(BASELINE_METHODS)}); 'none' for none",
    )
    p.add_argument("--max-pairs", type=positive_int, help="benchmark at most this many pairs (seeded choice)")
    p.add_argument("--subset", choices=SUBSETS, default="predicted-binders", help="which pairs to explain")
    p.add_argument(
        "--include-training-pairs",
        action="store_true",
        help="keep pairs a given scrambler was trained on (held out by default)",
    )
    p.add_argument(
        "--samples", type=positive_int, default=128, help="resampled sequences per pair and setting"
    )
    p.add_argument("--fractions", default="0.1,0.2", help="top fractions per chain (default 0.1,0.2)")
    p.add_argument("--hbnet", help="worked-example JSON with HBNet positions (e.g. DHD_154.json) for the AP")
    p.add_argument("--background-pairs", help="pairs TSV for the resampling background (default: --pairs)")
    p.add_argument("--pseudocount", type=float, default=0.1)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_with_threads(run_benchmark))


def _parse_fractions(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidParameterError(f"--fractions must be a comma list of numbers, got {text!r}") from None
    if not values or any(not 0.0 < v <= 1.0 for v in values):
        raise InvalidParameterError(f"--fractions must be in (0, 1], got {text!r}")
    return values


def _select_pairs(
    args: argparse.Namespace,
    table: PairTable,
    predictor: HeterodimerPredictor,
    scramblers: list[PairScrambler],
) -> tuple[np.ndarray, dict[str, object]]:
    idx = select_subset(predictor, table, args.subset)
    held_out = 0
    if not args.include_training_pairs and scramblers:
        seen = set().union(*(s.training_pairs for s in scramblers))
        in_train = np.array(
            [pair_digest(table.chains_1[i], table.chains_2[i]) in seen for i in idx], dtype=bool
        )
        held_out = int(in_train.sum())
        idx = idx[~in_train]
    if args.max_pairs is not None and len(idx) > args.max_pairs:
        idx = np.sort(np.random.default_rng(args.seed).choice(idx, args.max_pairs, replace=False))
    if len(idx) == 0:
        raise InvalidParameterError(f"no pairs left to benchmark in {table.source} (subset {args.subset})")
    return idx, {"subset": args.subset, "excluded_training_pairs": held_out}


def run_benchmark(args: argparse.Namespace) -> int:
    from ..baselines import (
        GradientSaliency,
        GradientXInput,
        InSilicoMutagenesis,
        IntegratedGradients,
        RandomImportance,
    )

    fractions = _parse_fractions(args.fractions)
    methods = parse_methods(args.methods, BASELINE_METHODS)
    if args.fine_tune_steps < 0:
        raise InvalidParameterError(f"--fine-tune-steps must be >= 0, got {args.fine_tune_steps}")
    table = read_pairs_tsv(args.pairs)
    predictor = _predictor(args)
    scramblers = [PairScrambler.load(s, predictor.device) for s in args.scrambler]
    if not (methods or scramblers or args.per_example):
        raise InvalidParameterError("nothing to benchmark: give baselines, --scrambler or --per-example")
    bg_table = read_pairs_tsv(args.background_pairs) if args.background_pairs else table
    background = make_background("position", bg_table, args.pseudocount)
    hb = hbnet_example(args.hbnet, background) if args.hbnet else None
    idx, selection = _select_pairs(args, table, predictor, scramblers)
    bench = table.subset(idx)
    x, mask = bench.encode()
    bg = background.for_inputs(x)
    progress = progress_enabled(args)

    def labels_for(xs: torch.Tensor) -> torch.Tensor:
        return explained_labels(predictor, xs)  # the predicted class, for every method alike

    explainers: dict[str, Explainer] = {}
    baselines = {
        "random": lambda xs, ms, bs: RandomImportance(seed=args.seed).attribute(xs, position_mask=ms),
        "saliency": lambda xs, ms, bs: GradientSaliency(predictor).attribute(xs, position_mask=ms),
        "gradient_x_input": lambda xs, ms, bs: GradientXInput(predictor).attribute(xs, position_mask=ms),
        "integrated_gradients": lambda xs, ms, bs: IntegratedGradients(predictor).attribute(
            xs, background=bs, position_mask=ms, progress=progress
        ),
        "in_silico_mutagenesis": lambda xs, ms, bs: InSilicoMutagenesis(predictor).attribute(
            xs, position_mask=ms, progress=progress
        ),
    }
    for m in methods:
        explainers[m] = baselines[m]
    for k, sc in enumerate(scramblers):
        same_mode = [s for s in scramblers if s.mode == sc.mode]
        name = f"scrambler_network_{sc.mode}" + (f"_{k + 1}" if len(same_mode) > 1 else "")
        explainers[name] = _network_explainer(predictor, sc, labels_for)
        if args.fine_tune_steps:
            explainers[name.replace("network", "fine_tuned")] = _network_explainer(
                predictor, sc, labels_for, args.fine_tune_steps, args.seed, progress
            )
    if args.per_example:
        for mode in MODES:
            explainers[f"scrambler_per_example_{mode}"] = _per_example_explainer(
                predictor, mode, args.per_example_steps, labels_for, args.seed, progress
            )
    log = (lambda msg: print(f"benchmark: {msg}", flush=True)) if progress else None
    t0 = time.perf_counter()
    result = benchmark_pairs(
        predictor,
        x,
        mask,
        bg,
        explainers,
        fractions=fractions,
        n_samples=args.samples,
        seed=args.seed,
        hbnet=hb,
        log=log,
    )
    with atomic_output_dir(args.out) as tmp:
        lines = ["method\tmetric\ttop_fraction\tvalue"]
        lines += [
            f"{r['method']}\t{r['metric']}\t{r['top_fraction']}\t{float(r['value']):.6g}" for r in result.rows
        ]
        atomic_write_text(tmp / "benchmark.tsv", "\n".join(lines) + "\n")
        header = (
            f"# Heterodimer benchmark\n\n{result.n_pairs} pairs from `{table.source}` "
            f"(subset {selection['subset']}, {selection['excluded_training_pairs']} scrambler training pairs held out), "
            f"{args.samples} samples per pair and setting, seed {args.seed}.\n\n"
        )
        atomic_write_text(
            tmp / "benchmark.md", header + benchmark_markdown(result, sorted(fractions, reverse=True))
        )
        per_pair = ["pair_row\tmethod\tmetric\ttop_fraction\tvalue"]
        for name, values in result.per_pair.items():
            for (mode, frac), v in values.items():
                per_pair += [
                    f"{int(idx[i]) + 1}\t{name}\t{mode}_kl\t{frac}\t{float(v[i]):.6g}" for i in range(len(v))
                ]
        atomic_write_text(tmp / "per_pair.tsv", "\n".join(per_pair) + "\n")
        atomic_write_json(
            tmp / "settings.json",
            {
                "pairs": str(args.pairs),
                "pair_rows": [int(i) + 1 for i in idx],
                "pairs_sha1": hashlib.sha1("".join(bench.chains_1 + bench.chains_2).encode()).hexdigest(),
                "methods": list(explainers),
                "fractions": fractions,
                "samples": args.samples,
                "seed": args.seed,
                "hbnet": args.hbnet,
                "per_example_steps": args.per_example_steps if args.per_example else None,
                "fine_tune_steps": args.fine_tune_steps,
                "seconds": time.perf_counter() - t0,
                "torch_threads": torch.get_num_threads(),
                **selection,
            },
        )
    return 0


def _network_explainer(
    predictor: HeterodimerPredictor,
    scrambler: PairScrambler,
    labels_for: Callable[[torch.Tensor], torch.Tensor],
    fine_tune_steps: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> Explainer:
    def explain(xs: torch.Tensor, ms: torch.Tensor, bs: torch.Tensor) -> Explanation:
        exp = explain_with_network(predictor, scrambler, xs, ms, labels_for(xs))
        if not fine_tune_steps:
            return exp
        return explain_per_example(
            predictor,
            xs,
            ms,
            scrambler.background.for_inputs(xs),
            mode=scrambler.mode,
            target_bits=scrambler.target_bits,
            steps=fine_tune_steps,
            labels=labels_for(xs),
            occlusion_reference="prediction",
            init_scores=exp.importance,
            seed=seed,
            progress=progress,
        )

    return explain


def _per_example_explainer(
    predictor: HeterodimerPredictor,
    mode: str,
    steps: int,
    labels_for: Callable[[torch.Tensor], torch.Tensor],
    seed: int,
    progress: bool,
) -> Explainer:
    def explain(xs: torch.Tensor, ms: torch.Tensor, bs: torch.Tensor) -> Explanation:
        return explain_per_example(
            predictor, xs, ms, bs, mode=mode, steps=steps, labels=labels_for(xs), seed=seed, progress=progress
        )

    return explain
