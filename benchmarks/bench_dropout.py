"""Cost of trRosetta's dropout in a scrambling step (``benchmark --optimiser-dropout``).

Times one optimisation step (as ``bench_step.py``: scramble, sample, forward, KL, backward)
with the network's dropout off and on, on the compiled and the eager path, in one process on
the same inputs; prints the medians over repeats and the on/off ratios. The masks are drawn
from torch's global generator (``dropout_keep``), so the ratio is the cost of drawing them and
of the masked multiply.

    python benchmarks/bench_dropout.py [--device cuda] [--lengths 64 100] [--samples 8] [--repeats 5]
        [--precision auto|fp32|bf16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import device_label, time_step  # noqa: E402

from protscramble.predictors.trrosetta import TrRosetta  # noqa: E402
from protscramble.predictors.trrosetta.network import compiler_available  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 100])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "tf32", "bf16"])
    args = ap.parse_args()
    device = torch.device(args.device)
    name = device_label(device)
    paths = ["compiled", "eager"] if compiler_available(device) else ["eager"]
    predictors = {
        p: TrRosetta("xaa", device=device, precision=args.precision, compile=p == "compiled") for p in paths
    }
    precision = next(iter(predictors.values())).precision
    print(
        f"device: {name}; torch {torch.__version__}; precision {precision}; K = {args.samples}; median of {args.repeats}"
    )
    print(f"{'path':>9} {'L':>5} {'off ms/step':>12} {'on ms/step':>11} {'on / off':>9}")
    for path, tr in predictors.items():
        for length in args.lengths:
            tr.set_dropout(False)
            off, _ = time_step(tr, length, args.samples, args.repeats, device)
            tr.set_dropout(True)
            torch.manual_seed(0)
            on, _ = time_step(tr, length, args.samples, args.repeats, device)
            tr.set_dropout(False)
            print(f"{path:>9} {length:>5} {1e3 * off:>12.1f} {1e3 * on:>11.1f} {on / off:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
