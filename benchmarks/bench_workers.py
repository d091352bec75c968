"""Wall time of a trRosetta benchmark run with its methods in worker processes (``--workers``).

Runs ``run_benchmark`` on random designs, first in one process with every torch thread of this
process, then with each ``--workers`` count (each worker 1/N of the threads), each into a fresh
folder, and prints the wall time of each, its ratio to the single process, and the largest
difference of any area under a faithfulness curve from the single process's (the same draws, so
it should be at the arithmetic's noise). Worker start-up and compilation are inside the figures,
as a user meets them; use enough ``--steps`` that they do not dominate.

    python benchmarks/bench_workers.py [--length 64] [--designs 1] [--steps 30] [--workers 2]
        [--methods scrambler_inclusion scrambler_occlusion] [--device cpu] [--compile auto]

Read the ratio on a CPU; absolute seconds only on a GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from protscramble.alphabet import AMINO_ACIDS
from protscramble.benchmark import PROTOCOLS, BenchmarkProtein, run_benchmark
from protscramble.benchmark.runner import read_tsv
from protscramble.explain import cpu_name


def designs(n: int, length: int, seed: int) -> list[BenchmarkProtein]:
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 20, (n, length), generator=gen)
    return [
        BenchmarkProtein(f"d{i}", "".join(AMINO_ACIDS[j] for j in row)) for i, row in enumerate(idx.tolist())
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--designs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--faithfulness-samples", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--methods", nargs="+", default=["scrambler_inclusion", "scrambler_occlusion"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "tf32", "bf16"])
    ap.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    args = ap.parse_args()
    protocol = PROTOCOLS["quick"].with_overrides(
        steps=args.steps,
        eval_samples=8,
        faithfulness_samples=args.faithfulness_samples,
        precision=args.precision,
        compile=args.compile,
    )
    proteins = designs(args.designs, args.length, seed=0)
    threads = torch.get_num_threads()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(
        f"device: {name}, {threads} torch threads; L = {args.length}, {args.designs} design(s), "
        f"methods {' '.join(args.methods)}; {args.steps} updates x {protocol.samples} samples, "
        f"curves {2 * len(protocol.fractions)} x {args.faithfulness_samples} samples"
    )
    with tempfile.TemporaryDirectory() as tmp:
        areas: dict[int, dict[tuple, float]] = {}
        seconds: dict[int, float] = {}
        for n in [1, *args.workers]:
            t0 = time.perf_counter()
            out = run_benchmark(
                proteins, args.methods, protocol, Path(tmp) / f"w{n}", device=device, workers=n, figures=False
            )
            seconds[n] = time.perf_counter() - t0
            areas[n] = {(r["protein"], r["method"], r["mode"]): r["auc"] for r in read_tsv(out / "auc.tsv")}
            per = max(1, threads // n) if n > 1 else threads
            line = f"workers {n} ({per} thread(s) each): {seconds[n]:.1f} s"
            if n > 1:
                diff = max(abs(areas[n][k] - v) for k, v in areas[1].items())
                line += f"; ratio to one process {seconds[1] / seconds[n]:.2f}; largest area difference {diff:.2e}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
