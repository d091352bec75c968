"""Where the time of one scrambling update goes: torch.profiler over a few updates of trRosetta.

The update is ``bench_step.py``'s (scramble, sample, forward, KL, input-gradient backward), with
the published protocol's shape by default: 8 samples in two groups of 4 at L = 100. Prints the
wall time per update, the device's busy time per update (the sum of its kernels; on a GPU, busy
/ wall far below 1 means the update waits on kernel launches and Python, which faster arithmetic
such as bf16 will not help), the kernels launched per update, and the operators that take the
most self time.

    python benchmarks/profile_step.py [--device cuda] [--length 100] [--samples 8] [--groups 2]
        [--precision auto|fp32|tf32|bf16] [--compile auto|on|off] [--repeats 3] [--rows 15]
        [--block-calls cycle|block|both]

``--block-calls``: the compiled path's calls, one per dilation cycle of five blocks (the library's) or
one per block (as before 2026-11-30); ``both`` profiles each in turn in one process and prints their
wall-time ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import device_label, make_step, per_block_calls  # noqa: E402

from protscramble.predictors.trrosetta import TrRosetta  # noqa: E402


def _self_device_us(event) -> float:
    # renamed from self_cuda_time_total in newer torch
    return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "tf32", "bf16"])
    ap.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--block-calls", default="cycle", choices=["cycle", "block", "both"])
    args = ap.parse_args()
    if args.samples % args.groups:
        ap.error(f"--samples {args.samples} does not split into --groups {args.groups}")
    device = torch.device(args.device)
    tr = TrRosetta("xaa", device=device, precision=args.precision, compile=args.compile)
    modes = ["cycle", "block"] if args.block_calls == "both" else [args.block_calls]
    walls = {}
    for mode in modes:
        with per_block_calls(tr) if mode == "block" else contextlib.nullcontext():
            walls[mode] = profile_update(tr, args, device, mode)
    if len(walls) == 2:
        print(f"per-block / per-cycle wall: {walls['block'] / walls['cycle']:.2f}")


def profile_update(tr: TrRosetta, args: argparse.Namespace, device: torch.device, mode: str) -> float:
    """Profile ``args.repeats`` updates (blocks compiled one call per ``mode``); the wall s/update."""
    cuda = device.type == "cuda"
    step = make_step(tr, args.length, args.samples, device, args.groups)
    step()  # warm-up: compilation, allocator, autotuning
    step()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            step()
        sync()
        wall = (time.perf_counter() - t0) / args.repeats
    print(
        f"device: {device_label(device)}; torch {torch.__version__}; precision {tr.precision}, "
        f"compiled {tr.compile} (one call per {mode if tr.compile else 'n/a'}); "
        f"L = {args.length}, K = {args.samples} in {args.groups} group(s); "
        f"{args.repeats} updates profiled"
    )
    print(f"wall ms/update (profiled): {1e3 * wall:.1f}")
    averages = prof.key_averages()
    if cuda:
        kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
        busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e3 / args.repeats  # us -> ms
        print(f"device busy ms/update: {busy:.1f} ({busy / (1e3 * wall):.0%} of wall)")
        print(f"kernels/update: {len(kernels) / args.repeats:.0f}")
        table = averages.table(sort_by="self_cuda_time_total", row_limit=args.rows)
    else:
        table = averages.table(sort_by="self_cpu_time_total", row_limit=args.rows)
    top = max(averages, key=_self_device_us if cuda else (lambda e: e.self_cpu_time_total))
    print(f"top operator: {top.key}")
    print(table)
    return wall


if __name__ == "__main__":
    main()
