"""The fast paths (bf16 autocast, activation checkpointing, sample chunking) against fp32."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from protscramble.alphabet import one_hot
from protscramble.backgrounds import native_background
from protscramble.errors import InvalidParameterError
from protscramble.predictors.trrosetta import TrRosetta, estimate_memory
from protscramble.scrambler import PerExampleScrambler

SEQ = "QQYTAKIKGRTFRNEKELRDFIEKFKGR"


def _importance(predictor, seed, steps=60):
    x = one_hot(SEQ)[None]
    bg = torch.tensor(native_background(len(SEQ)), dtype=torch.float32)
    sc = PerExampleScrambler(predictor, steps=steps, samples=2, learning_rate=0.05)
    return sc.attribute(x, bg, seed=seed).importance[0]


@pytest.fixture(scope="module")
def fp32_importances(trrosetta_xaa):
    """fp32 importance from two optimisation seeds: the agreement any fast path must match."""
    return _importance(trrosetta_xaa, 0), _importance(trrosetta_xaa, 1)


def test_bf16_importance_agrees_with_fp32_at_least_as_well_as_seeds_do(trrosetta_xaa, fp32_importances):
    fast = trrosetta_xaa.with_msa(None)
    fast.precision = "bf16"
    fp32_a, fp32_b = fp32_importances
    bf16_a = _importance(fast, 0)
    seed_agreement = spearmanr(fp32_a, fp32_b).statistic
    precision_agreement = spearmanr(fp32_a, bf16_a).statistic
    assert precision_agreement >= seed_agreement, (precision_agreement, seed_agreement)


def test_bf16_outputs_are_float32_probabilities(trrosetta_xaa):
    fast = trrosetta_xaa.with_msa(None)
    fast.precision = "bf16"
    x = one_hot(SEQ)[None]
    with torch.no_grad():
        a, b = trrosetta_xaa(x), fast(x)
    for k in a:
        assert b[k].dtype == torch.float32
        assert torch.allclose(b[k].sum(-1), torch.ones_like(b[k][..., 0]), atol=1e-4)
        assert (a[k] - b[k]).abs().max() < 0.1


def test_checkpointing_gives_identical_gradients(trrosetta_xaa):
    ck = trrosetta_xaa.with_msa(None)
    ck.checkpoint = True
    assert ck.checkpoint_segments(30) > 0 and trrosetta_xaa.checkpoint_segments(30) == 0
    x = torch.softmax(torch.randn(2, 30, 20, generator=torch.Generator().manual_seed(0)), -1).requires_grad_()
    grads = []
    for pred in (trrosetta_xaa, ck):
        out = pred(x)
        (g,) = torch.autograd.grad(sum(v.log().sum() for v in out.values()), x)
        grads.append(g)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-3)
    assert estimate_memory(300, 1, True, 8) < estimate_memory(300, 1, True) / 3


def test_auto_checkpointing_and_batch_size_follow_free_memory(monkeypatch):
    import protscramble.predictors.trrosetta.model as model

    tr = TrRosetta("xaa", precision="fp32")
    monkeypatch.setattr(model, "available_memory", lambda device: 12 * 2**30)
    assert tr.checkpoint_segments(100) == 0
    assert tr.checkpoint_segments(300) > 0  # L = 300 needs ~11 GiB per sample without checkpointing
    tr.check_fits(300, 1, with_grad=True)  # but fits with it
    big, small = tr.max_batch(64), tr.max_batch(150)
    assert big > small >= 1
    monkeypatch.setattr(model, "available_memory", lambda device: 3 * 2**30)
    assert tr.max_batch(64) < big
    assert tr.checkpoint_segments(150) > 0  # L = 150 on a small machine: recompute rather than fail


def test_chunked_samples_match_one_call(trrosetta_xaa):
    x = one_hot(SEQ[:16])[None]
    bg = torch.tensor(native_background(16), dtype=torch.float32)
    one = PerExampleScrambler(trrosetta_xaa, steps=3, samples=4).attribute(x, bg, seed=2)
    chunked = PerExampleScrambler(trrosetta_xaa, steps=3, samples=4, max_batch=1).attribute(x, bg, seed=2)
    assert np.allclose(one.importance, chunked.importance, atol=1e-4)


def _needs_compiler():
    from protscramble.predictors.trrosetta.network import compiler_available

    if not compiler_available(torch.device("cpu")):
        pytest.skip("torch.compile needs a C++ compiler on CPU; none found")


def _maps_and_grad(predictor, x):
    x = x.clone().requires_grad_()
    out = predictor(x)
    (g,) = torch.autograd.grad(sum((v * v.clamp_min(1e-8).log()).sum() for v in out.values()), x)
    return {k: v.detach() for k, v in out.items()}, g


def test_compiled_fp32_matches_eager_across_lengths_and_checkpointing(trrosetta_xaa):
    _needs_compiler()
    fast = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", compile=True)
    assert fast.compile
    gen = torch.Generator().manual_seed(3)
    for length, checkpointing in ((23, False), (31, False), (31, True)):
        fast.checkpoint = checkpointing
        x = torch.softmax(3 * torch.randn(2, length, 20, generator=gen), -1)
        (eager_maps, eager_grad), (maps, grad) = _maps_and_grad(trrosetta_xaa, x), _maps_and_grad(fast, x)
        for k in eager_maps:
            assert (maps[k] - eager_maps[k]).abs().max() < 1e-4, k
        assert torch.allclose(grad, eager_grad, rtol=1e-3, atol=1e-4 * eager_grad.abs().max().item())


def test_compiled_keras_instance_norm_matches_eager(trrosetta_xaa):
    _needs_compiler()
    eager = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", instance_norm="keras")
    fast = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", compile=True, instance_norm="keras")
    x = torch.softmax(3 * torch.randn(2, 27, 20, generator=torch.Generator().manual_seed(5)), -1)
    (eager_maps, eager_grad), (maps, grad) = _maps_and_grad(eager, x), _maps_and_grad(fast, x)
    default = trrosetta_xaa(x)
    for k in eager_maps:
        assert (maps[k] - eager_maps[k]).abs().max() < 1e-4, k
        assert (maps[k] - default[k]).abs().max() > 1e-3, k  # the compiled blocks did use the other norm
    assert torch.allclose(grad, eager_grad, rtol=1e-3, atol=1e-4 * eager_grad.abs().max().item())


def test_compiled_dropout_draws_the_eager_masks_with_and_without_checkpointing(trrosetta_xaa):
    _needs_compiler()
    eager = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32")
    fast = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", compile=True)
    x = torch.softmax(3 * torch.randn(2, 23, 20, generator=torch.Generator().manual_seed(7)), -1)
    plain = trrosetta_xaa(x)
    eager.set_dropout(True)  # the networks are shared: on for every predictor until switched off
    try:
        torch.manual_seed(11)
        eager_maps, eager_grad = _maps_and_grad(eager, x)
        for checkpointing in (False, True):  # recomputed blocks must redraw the same masks
            fast.checkpoint = checkpointing
            torch.manual_seed(11)
            maps, grad = _maps_and_grad(fast, x)
            for k in eager_maps:
                assert (maps[k] - eager_maps[k]).abs().max() < 1e-4, (k, checkpointing)
                assert (maps[k] - plain[k]).abs().max() > 1e-3, k  # the masks did act
            assert torch.allclose(grad, eager_grad, rtol=1e-3, atol=1e-4 * eager_grad.abs().max().item())
    finally:
        eager.set_dropout(False)
    assert torch.equal(trrosetta_xaa(x)["dist"], plain["dist"])


def test_compiled_bf16_importance_agrees_with_fp32_at_least_as_well_as_seeds_do(
    trrosetta_xaa, fp32_importances
):
    _needs_compiler()
    fast = TrRosetta(networks=trrosetta_xaa.networks, precision="bf16", compile=True)
    fp32_a, fp32_b = fp32_importances
    fast_a = _importance(fast, 0)
    assert spearmanr(fp32_a, fast_a).statistic >= spearmanr(fp32_a, fp32_b).statistic


def test_compiled_path_with_chunked_samples_matches_one_call(trrosetta_xaa):
    """Chunks accumulate gradients with retain_graph=True through the compiled blocks."""
    _needs_compiler()
    fast = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", compile=True)
    x = one_hot(SEQ[:16])[None]
    bg = torch.tensor(native_background(16), dtype=torch.float32)
    kw = {"steps": 3, "samples": 4, "learning_rate": 0.003}
    one = PerExampleScrambler(fast, **kw).attribute(x, bg, seed=2)
    chunked = PerExampleScrambler(fast, max_batch=1, **kw).attribute(x, bg, seed=2)
    eager = PerExampleScrambler(trrosetta_xaa, max_batch=1, **kw).attribute(x, bg, seed=2)
    # Compiled kernels for 1 and 4 sequences round differently, and Adam's first steps
    # (update ~ lr x sign of the gradient, against logits of spread sqrt(2 / 17)) magnify
    # that; with this small learning rate the results agree to about 1%.
    assert np.allclose(one.importance, chunked.importance, rtol=0.03, atol=1e-3)
    assert np.allclose(chunked.importance, eager.importance, rtol=0.03, atol=1e-3)


def test_compiled_path_follows_newly_loaded_weights():
    _needs_compiler()
    from protscramble.predictors.trrosetta import load_state_dict

    fast = TrRosetta("xaa", precision="fp32", compile=True)
    x = one_hot(SEQ[:20])[None]
    before, _ = _maps_and_grad(fast, x)
    fast.networks[0].load_state_dict(load_state_dict("xab"))
    after, _ = _maps_and_grad(fast, x)
    expected, _ = _maps_and_grad(TrRosetta("xab", precision="fp32"), x)
    assert (after["dist"] - before["dist"]).abs().max() > 1e-2  # the weights really differ
    assert (after["dist"] - expected["dist"]).abs().max() < 1e-4


def test_compile_and_precision_arguments(monkeypatch, trrosetta_xaa):
    import protscramble.predictors.trrosetta.model as model

    with pytest.raises(InvalidParameterError, match="compile"):
        TrRosetta(networks=trrosetta_xaa.networks, compile="sometimes")
    with pytest.raises(InvalidParameterError, match="tf32 needs a CUDA device"):
        TrRosetta(networks=trrosetta_xaa.networks, precision="tf32")
    assert TrRosetta(networks=trrosetta_xaa.networks, compile="off").compile is False
    monkeypatch.setattr(model, "compiler_available", lambda device: False)
    with pytest.raises(InvalidParameterError, match="C\\+\\+ compiler"):
        TrRosetta(networks=trrosetta_xaa.networks, compile=True)
    assert TrRosetta(networks=trrosetta_xaa.networks, compile="auto").compile is False  # falls back to eager


def test_bf16_on_a_cpu_without_bf16_units_warns_and_auto_takes_fp32(monkeypatch):
    """Emulated bf16 is an order of magnitude slower than fp32: asking for it says so; auto avoids it."""
    import warnings

    import protscramble.predictors.trrosetta.model as model

    cpu = torch.device("cpu")
    monkeypatch.setattr(model, "bf16_supported", lambda device: False)
    with pytest.warns(UserWarning, match="emulated"):
        assert model.resolve_precision("bf16", cpu) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.resolve_precision("auto", cpu) == "fp32"
        assert model.resolve_precision("fp32", cpu) == "fp32"
    monkeypatch.setattr(model, "bf16_supported", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.resolve_precision("bf16", cpu) == "bf16"
        assert model.resolve_precision("auto", cpu) == "bf16"


def test_bf16_supported_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    import protscramble.predictors.trrosetta.model as model

    real_open = builtins.open
    fake = tmp_path / "cpuinfo"
    monkeypatch.setattr(
        builtins, "open", lambda f, *a, **k: real_open(fake if f == "/proc/cpuinfo" else f, *a, **k)
    )
    for flags, expected in [
        ("fpu avx2 fma", False),
        ("avx2 avx512f avx512_bf16", True),
        ("avx2 amx_bf16", True),
    ]:
        fake.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert model.bf16_supported(torch.device("cpu")) is expected


def test_tf32_switch_is_scoped_to_the_call_and_restored_on_error():
    """fp32 means IEEE float32 on CUDA (TF32 off), tf32 turns it on; both restore the caller's setting."""
    from protscramble.predictors.trrosetta.model import _tf32_switch

    cuda = torch.device("cuda")  # only flags are touched: no GPU is needed
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with _tf32_switch(cuda, "fp32"):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        with pytest.raises(RuntimeError), _tf32_switch(cuda, "tf32"):
            assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
            raise RuntimeError("boom")
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_layerwise_runs_every_elu_module_once_and_restores_the_fast_path(trrosetta_xaa):
    from collections import Counter

    tr = TrRosetta(networks=trrosetta_xaa.networks, precision="fp32", compile="auto", checkpoint=True)
    compiled = tr.compile
    calls: Counter[int] = Counter()
    elus = [m for net in tr.networks for m in net.modules() if isinstance(m, torch.nn.ELU)]
    hooks = [m.register_forward_hook(lambda mod, *_: calls.update([id(mod)])) for m in elus]
    try:
        with tr.layerwise() as modules:
            assert modules == tr.networks and tr.compile is False and tr.checkpoint is False
            tr(one_hot("MKVLAAGIEELLKKLAEHGW")[None])
    finally:
        for h in hooks:
            h.remove()
    # 1 after the first block + 2 per residual block, each its own module, each run exactly once
    assert len(elus) == 1 + 2 * 61 and len(calls) == len(elus) and set(calls.values()) == {1}
    assert tr.compile == compiled and tr.checkpoint is True


def test_deeplift_on_trrosetta_applies_the_rescale_rule(trrosetta_xaa):
    from protscramble.baselines import DeepLift, predicted_class_log_probability

    x = one_hot("MKVLAAGIEELLKKLAEHGW")[None]
    bg = torch.full((20, 20), 0.05)
    exp = DeepLift(trrosetta_xaa, signed=True).attribute(x, background=bg)
    assert exp.importance.shape == (1, 20) and np.isfinite(exp.importance).all()
    assert exp.importance.std() > 0
    # Plain gradient x (input - baseline) is what DeepLift would return if no ELU module were hooked.
    with torch.no_grad():
        ref = trrosetta_xaa(x)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(predicted_class_log_probability(trrosetta_xaa(xg), ref).sum(), xg)
    linearised = ((x - bg) * grad).sum(-1).numpy()
    assert not np.allclose(exp.importance, linearised, rtol=0.05, atol=1e-4)


def test_compiled_block_builds_in_a_fresh_process():
    # The first use of the compiled path in a process must not rely on another module having
    # imported torch's compiler configuration first (it failed this way on the first GPU run).
    code = (
        "import torch\n"
        "from protscramble.predictors.trrosetta.network import _compiled_blocks, compiler_available\n"
        "fn = _compiled_blocks()\n"
        "compiler_available(torch.device('cpu'))\n"
        "import torch._functorch.config as c\n"
        "assert callable(fn) and c.donated_buffer is False\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("checkpointing", [False, True])
def test_compiled_path_runs_the_blocks_one_dilation_cycle_per_call(monkeypatch, trrosetta_xaa, checkpointing):
    # Each compiled call carries fixed guard and launch work that dominated the update on a GPU:
    # the 61 blocks go through in runs of one dilation cycle, not one call per block.
    import protscramble.predictors.trrosetta.model as model_module
    import protscramble.predictors.trrosetta.network as network

    calls = []

    def recording(h, weights, dilations, keras=False, keeps=None):
        calls.append(dilations)
        return network.fused_blocks(h, weights, dilations, keras, keeps)

    monkeypatch.setattr(network, "_compiled_blocks", lambda: recording)
    monkeypatch.setattr(model_module, "compiler_available", lambda device: True)
    fast = TrRosetta(
        networks=trrosetta_xaa.networks, precision="fp32", compile=True, checkpoint=checkpointing
    )
    x = torch.softmax(3 * torch.randn(2, 19, 20, generator=torch.Generator().manual_seed(4)), -1)
    (eager_maps, eager_grad), (maps, grad) = _maps_and_grad(trrosetta_xaa, x), _maps_and_grad(fast, x)
    for k in eager_maps:
        assert (maps[k] - eager_maps[k]).abs().max() < 1e-4, k
    assert torch.allclose(grad, eager_grad, rtol=1e-3, atol=1e-4 * eager_grad.abs().max().item())

    layers = trrosetta_xaa.networks[0].layers
    cycle = len(network._CYCLE)
    forward = calls[: len(calls) // 2] if checkpointing else calls
    if checkpointing:  # the backward recomputes every segment's forward once (last segment first)
        assert sorted(calls[len(calls) // 2 :]) == sorted(forward)
    assert [d for run in forward for d in run] == [block[0].dilation[0] for block in layers]
    start = 0
    for run in forward:  # no run crosses a cycle boundary
        assert start // cycle == (start + len(run) - 1) // cycle, (start, run)
        start += len(run)
    runs = -(-len(layers) // cycle)  # 13: twelve full cycles and the last block
    if checkpointing:  # segment boundaries split some cycles
        assert runs < len(forward) < len(layers) // 2
    else:
        assert len(forward) == runs
