"""Time one faithfulness-curve point at several trRosetta inference batch sizes and count page faults.

A faithfulness curve scores ``n`` hard samples per fraction without gradients
(128 at the published protocol). ``TrRosetta(inference_batch=...)`` splits such a
call into forwards of that many sequences. On CPU a big batch allocates
activation blocks that glibc maps fresh and page-faults in on every call.
This script runs the same curve point (``evaluate_faithfulness``, one fraction,
inclusion, the same seed) at each batch size in one process, interleaved over
repeats, and prints the median seconds per sequence, minor page faults and system
time per sequence, the ratio to the first size listed, and the largest difference of
the curve point from the unsplit one (the draws are the same; only rounding may
differ). The protein is a benchmark protein from the reference data (T1001, with
its alignment scrambled as published, by default) or the
bundled demo sequence (``--protein demo``).

    python benchmarks/bench_inference_batch.py [--protein T1001] [--samples 64] [--batches 0 1 4 16]
        [--repeats 3] [--threads 2] [--precision auto] [--device cpu]

``0`` in ``--batches`` is the unsplit call; the first size listed is the ratios' baseline.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from importlib.resources import files

import numpy as np
import torch

from protscramble.alphabet import one_hot
from protscramble.backgrounds import native_background
from protscramble.errors import ProtscrambleError
from protscramble.explain import device_name
from protscramble.faithfulness import evaluate_faithfulness
from protscramble.io import read_fasta
from protscramble.predictors.trrosetta import TrRosetta


def inputs(name: str, device: torch.device, precision: str):
    """(predictor, x, background, label) for a benchmark protein, or ``demo``: the bundled sequence."""
    pred = TrRosetta("xaa", device=device, precision=precision, compile=False)
    if name == "demo":
        seq = read_fasta(files("protscramble.data") / "demo.fasta")[0].sequence
        x = one_hot(seq).unsqueeze(0).to(device)
        bg = torch.as_tensor(native_background(x.shape[1]), dtype=torch.float32, device=device)
        return pred, x, bg, f"demo (L = {x.shape[1]}, no alignment)"
    from protscramble.benchmark import resolve_proteins
    from protscramble.benchmark.runner import protein_inputs

    try:
        (p,) = resolve_proteins(name)
    except (ProtscrambleError, ValueError) as err:
        sys.exit(f"{name}: {err} (the reference data is needed; --protein demo runs without it)")
    pred, x, bg, _ = protein_inputs(p, pred)
    kind = "none" if not p.msa_features else ("scrambled" if p.scramble_msa else "fixed")
    return pred, x, bg, f"{p.name} (L = {p.length}, alignment {kind})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protein", default="T1001")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[0, 1, 4, 16])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pred, x, bg, label = inputs(args.protein, device, args.precision)
    importance = torch.rand(1, x.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = {k: v.float() for k, v in pred(x).items()}

    def point(batch: int) -> float:
        pred.inference_batch = batch or None
        res = evaluate_faithfulness(
            pred, x, importance, bg, fractions=(0.1,), modes=("inclusion",), n_samples=args.samples,
            reference=reference, seed=0, batch_size=8,
        )  # fmt: skip
        return float(res[("inclusion", 0.1)][0])

    print(f"# {label}, {args.samples} samples, precision {pred.precision}, {args.threads} threads, "
          f"{device_name(device)}, torch {torch.__version__}")  # fmt: skip
    for b in args.batches:
        point(b)  # warm-up: first-call allocations and kernel selection
    stats: dict[int, dict[str, list[float]]] = {
        b: {"s": [], "flt": [], "sys": [], "kl": []} for b in args.batches
    }
    for _ in range(args.repeats):
        for b in args.batches:  # interleaved, so drift in the machine hits every size alike
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            kl = point(b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            st = stats[b]
            st["s"].append(wall / args.samples)
            st["flt"].append((r1.ru_minflt - r0.ru_minflt) / args.samples)
            st["sys"].append((r1.ru_stime - r0.ru_stime) / cpu if cpu > 0 else float("nan"))
            st["kl"].append(kl)
    base = args.batches[0]
    base_s = statistics.median(stats[base]["s"])
    base_kl = np.array(stats[base]["kl"])
    print("batch\ts_per_seq\tratio_to_first\tminflt_per_seq\tsys_fraction\tcurve_point\tmax_abs_diff")
    for b in args.batches:
        st = stats[b]
        med = statistics.median(st["s"])
        diff = float(np.max(np.abs(np.array(st["kl"]) - base_kl)))
        print(f"{b or 'all'}\t{med:.3f}\t{med / base_s:.3f}\t{statistics.median(st['flt']):.0f}\t"
              f"{statistics.median(st['sys']):.2f}\t{st['kl'][0]:.6f}\t{diff:.2e}")  # fmt: skip
    print(f"peak_rss_gib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")


if __name__ == "__main__":
    main()
