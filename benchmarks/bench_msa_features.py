"""Time the features of one sampled alignment: forward and backward, Woodbury vs the direct inverse.

Scrambling the alignment (``TrRosetta(scramble_msa=True)``) recomputes the
profile and the DCA couplings of every sampled alignment and differentiates
through them. The couplings are the inverse of a regularised (L x 21)^2
covariance; with fewer rows than columns the Woodbury identity needs only an
N x N solve. This script times both on the same straight-through sample
(random alignment of T1001's shape by default, or an A3M), checks they agree,
and prints medians, their ratio and the device.

    python benchmarks/bench_msa_features.py [--a3m T1001.a3m] [--rows 193 --length 140]
        [--dtype float32|float64] [--repeats 5] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from protscramble.explain import device_name
from protscramble.io import read_a3m
from protscramble.predictors.trrosetta.features import (
    N_STATES,
    _regularised_inverse,
    msa_one_hot,
    onehot_alignment_features,
)


def direct_inverse(x: torch.Tensor, ridge: torch.Tensor, num_points: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return torch.linalg.inv(x.T @ x / num_points + eye * ridge)


def timed(fn, msa1hot: torch.Tensor, repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    times, pair = [], None
    for _ in range(repeats + 1):  # the first call warms up
        leaf = msa1hot.clone().requires_grad_()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        _, pair = fn(leaf)
        pair.square().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:]), pair.detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a3m", help="alignment to sample from (default: random, --rows x --length)")
    ap.add_argument("--rows", type=int, default=193)
    ap.add_argument("--length", type=int, default=140)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    if args.a3m:
        msa1hot = msa_one_hot(read_a3m(args.a3m))
    else:
        codes = torch.randint(0, N_STATES, (args.rows, args.length), generator=gen)
        msa1hot = torch.nn.functional.one_hot(codes, N_STATES).float()
    msa1hot = msa1hot.to(device, dtype)
    import protscramble.predictors.trrosetta.features as features

    woodbury_s, woodbury = timed(onehot_alignment_features, msa1hot, args.repeats, device)
    features._regularised_inverse = direct_inverse  # same features, direct inverse
    try:
        direct_s, direct = timed(onehot_alignment_features, msa1hot, args.repeats, device)
    finally:
        features._regularised_inverse = _regularised_inverse
    rows, length = msa1hot.shape[:2]
    name = device_name(device)
    print(f"device: {name}, threads {torch.get_num_threads()}, {args.dtype}")
    print(f"alignment: {rows} rows x {length} columns ({length * N_STATES} covariance columns)")
    print(f"direct inverse   fwd+bwd median {direct_s * 1e3:9.1f} ms")
    print(f"woodbury         fwd+bwd median {woodbury_s * 1e3:9.1f} ms")
    print(f"max |difference| of the pair features: {(woodbury - direct).abs().max().item():.2e}")
    print(f"speedup_woodbury: {direct_s / woodbury_s:.2f}")


if __name__ == "__main__":
    main()
