"""Wall time of a full per-example explanation and batched throughput.

Runs the published protocol (model xaa, 500 updates x 8 samples, 1 bit,
native background) on random 100-residue designs: one design alone, then
batches of B designs of the same length optimised together, and prints the
seconds per explanation and designs per hour for each B, and the ratio of
batched to single throughput. On a CPU use fewer ``--steps`` and read only
the ratios; absolute figures are meaningful on a GPU.

    python benchmarks/bench_explain.py [--device cuda] [--length 100] [--batches 1 4 16] [--steps 500]
        [--precision auto|fp32|tf32|bf16] [--compile auto|on|off]

The warm-up explanation (2 updates) also compiles, so compile time is not in the figures.
"""

from __future__ import annotations

import argparse
import time

import torch

from protscramble.alphabet import AMINO_ACIDS
from protscramble.explain import Protein, cpu_name, explain_trrosetta
from protscramble.predictors.trrosetta import TrRosetta

#: Evaluation samples of every run, the warm-up's included.
EVAL_SAMPLES = 8


def designs(n: int, length: int, seed: int) -> list[Protein]:
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 20, (n, length), generator=gen)
    return [Protein(f"d{i}", "".join(AMINO_ACIDS[j] for j in row)) for i, row in enumerate(idx.tolist())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "tf32", "bf16"])
    ap.add_argument(
        "--compile", default="auto", choices=["auto", "on", "off"], help="torch.compile the blocks"
    )
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    device = torch.device(args.device)
    tr = TrRosetta("xaa", device=device, precision=args.precision, compile=args.compile)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_name()}, {torch.get_num_threads()} threads"
    )
    print(
        f"device: {name}; precision {tr.precision}, compiled {tr.compile}; L = {args.length}; {args.steps} updates x {args.samples} samples"
    )
    # The warm-up runs every kind of call the timed runs make: torch.compile specialises a batch
    # of one sample, so a 1-sample evaluation here would leave the 8-sample one to compile inside
    # the first timing (the likely cause of batch 1 timing 6x slower per design than batch 4 on
    # the H200, 2026-11-30).
    explain_trrosetta(
        designs(1, args.length, 99),
        steps=2,
        samples=args.samples,
        device=device,
        predictor=tr,
        eval_samples=EVAL_SAMPLES,
    )
    single = None
    print(f"{'batch':>6} {'s/explanation':>14} {'designs/hour':>13} {'vs batch 1':>11}")
    for b in args.batches:
        times = []
        for r in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            explain_trrosetta(
                designs(b, args.length, r),
                steps=args.steps,
                samples=args.samples,
                device=device,
                predictor=tr,
                eval_samples=EVAL_SAMPLES,
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - t0) / b)
        per = sorted(times)[len(times) // 2]
        single = single or per
        print(f"{b:>6} {per:>14.2f} {3600 / per:>13.0f} {single / per:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
