"""benchmarks/bench_step.py: its update must run at the predictor's arithmetic, as the engine's does.

On a GPU, cuDNN reads the TF32 switch when each kernel launches, the backward's too; a step that
held the switch around the forward alone timed fp32 runs with TF32 gradient kernels (seen in the
H200 profile of 2026-11-30).
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_step.py"


def _load():
    spec = importlib.util.spec_from_file_location("_bench_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class _Recorder:
    """A two-output predictor recording, for every forward and backward, whether its context was on."""

    def __init__(self) -> None:
        self.w = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
        self.active = False
        self.forward_seen: list[bool] = []
        self.backward_seen: list[bool] = []

    @contextlib.contextmanager
    def arithmetic(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.forward_seen.append(self.active)
        h = x @ self.w  # (N, L, 5)
        pair = h.unsqueeze(1) + h.unsqueeze(2)  # (N, L, L, 5)
        if pair.requires_grad:
            pair.register_hook(lambda g: self.backward_seen.append(self.active) or g)
        return {"dist": torch.softmax(pair, -1), "omega": torch.softmax(-pair, -1)}


def test_every_forward_and_backward_of_a_step_runs_in_the_predictors_arithmetic():
    bench = _load()
    pred = _Recorder()
    step = bench.make_step(pred, 12, 4, torch.device("cpu"), groups=2)
    step()
    step()
    assert pred.forward_seen == [True] * 5  # the reference, then 2 updates x 2 groups
    assert pred.backward_seen == [True] * 4
    assert not pred.active


def test_the_naive_baseline_runs_fp32_with_tf32_off_and_restores_the_switches():
    bench = _load()
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    naive = bench._NaivePredict(lambda x: {"dist": x})
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with naive.arithmetic():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        x = torch.ones(2)
        assert naive(x)["dist"] is x
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
