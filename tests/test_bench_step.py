"""benchmarks/bench_step.py: its update must run at the predictor's arithmetic, as the engine's does.

On a GPU, cuDNN reads the TF32 switch when each kernel launches, the backward's too; a step that
held the switch around the forward alone timed fp32 runs with TF32 gradient kernels (seen in the
H200 profile of 2026-11-30).
"""

from __future__ import annotations

import torch
from _predictor_helpers import ArithmeticRecorder
from conftest import load_script


def _load():
    return load_script("bench_step.py")


def test_every_forward_and_backward_of_a_step_runs_in_the_predictors_arithmetic():
    bench = _load()
    pred = ArithmeticRecorder([1, 4])
    step = bench.make_step(pred, 12, 4, torch.device("cpu"), groups=2)
    step()
    step()
    assert pred.forward_seen == [True] * 5  # the reference, then 2 updates x 2 groups
    assert pred.seen == [True] * 4
    assert not pred.active


def test_the_naive_baseline_runs_fp32_with_tf32_off_and_restores_the_switches():
    bench = _load()
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    # a CUDA device object needs no GPU: the switches are process-wide flags
    naive = bench._NaivePredict(lambda x: {"dist": x}, torch.device("cuda"))
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with naive.arithmetic():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        x = torch.ones(2)
        assert naive(x)["dist"] is x
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_per_block_calls_runs_the_compiled_blocks_one_call_per_block(monkeypatch, trrosetta_xaa):
    import protscramble.predictors.trrosetta.model as model_module
    import protscramble.predictors.trrosetta.network as network
    from protscramble.predictors.trrosetta import TrRosetta

    bench = _load()
    calls = []

    def recording(h, weights, dilations, keras=False, keeps=None):  # the compiled function, eager
        calls.append(dilations)
        return network.fused_blocks(h, weights, dilations, keras, keeps)

    monkeypatch.setattr(network, "_compiled_blocks", lambda: recording)
    monkeypatch.setattr(model_module, "compiler_available", lambda device: True)
    fast = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", compile=True, checkpoint=False)
    layers = trrosetta_xaa.networks[0].layers
    x = torch.softmax(torch.randn(1, 15, 20, generator=torch.Generator().manual_seed(2)), -1)
    with torch.no_grad():
        expected = trrosetta_xaa(x)
        with bench.per_block_calls(fast):
            maps = fast(x)
        assert calls == [(block[0].dilation[0],) for block in layers]
        calls.clear()
        fast(x)  # restored on exit: runs of one dilation cycle again
    assert len(calls) < len(layers) // 2
    for k in expected:
        assert (maps[k] - expected[k]).abs().max() < 1e-4, k
