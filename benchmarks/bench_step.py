"""Time one scrambling optimisation step: protscramble's trRosetta path vs a naive port.

One step = scramble a PSSM, draw K Gumbel-softmax samples, run trRosetta
forward, KL against the reference prediction, backward to the scores. The
naive baseline is the ``tr-rosetta-pytorch`` network (fp32, eager, frozen
weights) fed the full (K, 526, L, L) feature tensor, as its own
``preprocess`` builds it. Both run in the same process on the same inputs;
the script prints medians over repeats, their ratio, peak memory and the
device, and ends with ``speedup_vs_naive: X`` for L = 64, K = 2.

    python benchmarks/bench_step.py [--device cuda] [--lengths 64 100 150] [--samples 2] [--repeats 5]
        [--precision auto|fp32|bf16] [--compile auto|on|off] [--naive-source tr_rosetta_pytorch.py]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

from protscramble.alphabet import AMINO_ACIDS
from protscramble.backgrounds import native_background
from protscramble.explain import cpu_name
from protscramble.masking import scramble_pssm
from protscramble.objectives import prediction_kl
from protscramble.predictors.base import arithmetic
from protscramble.predictors.trrosetta import TrRosetta, load_state_dict
from protscramble.predictors.trrosetta.features import sequence_features
from protscramble.predictors.trrosetta.model import _tf32_switch
from protscramble.predictors.trrosetta.weights import packaged_archive
from protscramble.sampling import sample_pssm


def naive_network(device: torch.device, source: str | None = None) -> torch.nn.Module:
    """The tr-rosetta-pytorch network, loaded from its file without importing the package (no .pyc writes).

    ``source``: that file elsewhere (a device machine gets the 2 kB module, not the 89 MB wheel)."""
    if source is None:
        archive = packaged_archive()
        if archive is None:
            sys.exit("tr-rosetta-pytorch is not installed (or give --naive-source)")
        path = archive.parents[1] / "tr_rosetta_pytorch.py"
    else:
        path = Path(source)
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location("_naive_trrosetta", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    net = module.trRosettaNetwork()
    net.load_state_dict(load_state_dict("xaa"))
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class _NaivePredict:
    """The naive network as a predictor: fp32 throughout, TF32 off on CUDA (forward and backward)."""

    def __init__(self, fn, device: torch.device) -> None:
        self._fn = fn
        self.device = device

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._fn(x)

    def arithmetic(self) -> contextlib.AbstractContextManager:
        # PyTorch lets cuDNN use TF32 by default; the baseline is plain fp32, like ours at --precision fp32
        return _tf32_switch(self.device, "fp32")


def naive_predict(net: torch.nn.Module) -> _NaivePredict:
    def predict(x: torch.Tensor) -> dict[str, torch.Tensor]:
        n, length, _ = x.shape
        f1d = sequence_features(x)
        f2d = torch.cat(
            [
                f1d[:, :, None].expand(-1, -1, length, -1),
                f1d[:, None].expand(-1, length, -1, -1),
                torch.zeros(n, length, length, 442, device=x.device),
            ],
            -1,
        ).permute(0, 3, 2, 1)
        theta, phi, dist, omega = net(f2d)
        return {
            k: v.permute(0, 3, 2, 1)
            for k, v in zip(("theta", "phi", "dist", "omega"), (theta, phi, dist, omega), strict=True)
        }

    return _NaivePredict(predict, next(net.parameters()).device)


@contextlib.contextmanager
def per_block_calls(predictor: TrRosetta):
    """Run ``predictor``'s compiled blocks one compiled call per block, as before 2026-11-30.

    The library runs them in runs of one dilation cycle per call (fewer calls, each with fixed
    guard and launch work); this sets the run length to 1 so one process measures both.
    """
    saved = [net.blocks_per_call for net in predictor.networks]
    for net in predictor.networks:
        net.blocks_per_call = 1
    try:
        yield
    finally:
        for net, run in zip(predictor.networks, saved, strict=True):
            net.blocks_per_call = run


def make_step(predict, length: int, samples: int, device: torch.device, groups: int = 1):
    """One scrambling update on a random sequence of ``length``, as a closure.

    ``groups`` splits the ``samples`` into that many network calls, each with its own backward
    (the published protocol's two clipped groups of four)."""
    if samples % groups:
        raise ValueError(f"{samples} samples do not split into {groups} groups")
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.nn.functional.one_hot(
        torch.randint(0, 20, (1, length), generator=gen, device=device), 20
    ).float()
    bg = torch.tensor(native_background(length), dtype=torch.float32, device=device)
    with torch.no_grad(), arithmetic(predict):
        reference = {k: v.float() for k, v in predict(x).items()}
    per_group = samples // groups
    ref = {k: v.expand(per_group, *v.shape[1:]) for k, v in reference.items()}
    scores = torch.rand(1, length, device=device, generator=gen).requires_grad_()

    def step() -> None:
        # as the engine does: the predictor's arithmetic (TF32 on or off on CUDA) held through the
        # backward too, which cuDNN reads when each gradient kernel launches
        with arithmetic(predict):
            pssm = scramble_pssm(x, scores, bg)
            for _ in range(groups):
                s = sample_pssm(pssm, per_group, generator=gen).reshape(per_group, length, len(AMINO_ACIDS))
                prediction_kl(ref, predict(s)).mean().backward(retain_graph=groups > 1)

    return step


def time_step(predict, length: int, samples: int, repeats: int, device: torch.device) -> tuple[float, float]:
    step = make_step(predict, length, samples, device)
    step()  # warm-up: allocator, kernels, autocast caches, compilation
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return statistics.median(times), peak


def device_label(device: torch.device) -> str:
    """The GPU's name, or the CPU's with the thread count, for a benchmark's first line."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 100, 150])
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "tf32", "bf16"])
    ap.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off"],
        help="torch.compile our residual blocks (auto: where a compiler exists); compile time is not timed",
    )
    ap.add_argument("--naive-source", default=None, help="tr_rosetta_pytorch.py (default: the installed one)")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = device_label(device)
    ours = TrRosetta("xaa", device=device, precision=args.precision, compile=args.compile)
    naive = naive_predict(naive_network(device, args.naive_source))
    print(
        f"device: {name}; torch {torch.__version__}; ours precision {ours.precision}, compiled {ours.compile}; K = {args.samples}; median of {args.repeats}"
    )
    print(
        f"{'L':>5} {'ours ms/step':>13} {'naive ms/step':>14} {'speedup':>8} {'ours peak GiB':>14} {'naive peak GiB':>15}"
    )
    speedup_64 = None
    for length in args.lengths:
        t_ours, m_ours = time_step(ours, length, args.samples, args.repeats, device)
        t_naive, m_naive = time_step(naive, length, args.samples, args.repeats, device)
        ratio = t_naive / t_ours
        if length == 64:
            speedup_64 = ratio
        print(
            f"{length:>5} {1e3 * t_ours:>13.1f} {1e3 * t_naive:>14.1f} {ratio:>8.2f} {m_ours:>14.2f} {m_naive:>15.2f}",
            flush=True,
        )
    if speedup_64 is not None and args.samples == 2:
        print(f"speedup_vs_naive: {speedup_64:.2f}")


if __name__ == "__main__":
    main()
