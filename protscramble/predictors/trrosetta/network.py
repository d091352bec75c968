"""The trRosetta distance/orientation network (Yang et al., PNAS 2020) in PyTorch.

61 dilated residual blocks of 64 channels over 526 pair-feature channels,
with heads for distance (37 bins), omega (25), theta (25) and phi (13).
Parameter names match the state dicts shipped in ``tr-rosetta-pytorch``
(``model.xaa.pt`` ... ``model.xae.pt``), so those load unchanged.

Unlike a plain port, the first 1x1 convolution is applied to the 1-D
features before they are tiled into pairs (``W [f_i, f_j, c_ij] =
W_a f_i + W_b f_j + W_c c_ij``): identical maths, but the (N, 526, L, L)
tensor is never built and the fixed pair features are projected once.
"""

from __future__ import annotations

import shutil
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

N_1D = 42  # 20 sequence + 21 profile + 1 entropy
N_2D = 442  # 21 x 21 couplings + 1 APC contact score
N_FEATURES = 2 * N_1D + N_2D
HEAD_BINS = {"theta": 25, "phi": 13, "dist": 37, "bb": 3, "omega": 25}
OUTPUTS = ("dist", "omega", "theta", "phi")
_CYCLE = (1, 2, 4, 8, 16)
_EPS = 1e-6
#: ``trrosetta``: (x - mean) / sqrt(var + 1e-6), as the network was trained (TensorFlow's instance_norm).
#: ``keras``: (x - mean) / (std + 1e-3), keras_contrib's InstanceNormalization, which the Keras port of
#: trRosetta used by the published scrambler runs; for reproducing those numbers only.
INSTANCE_NORMS = ("trrosetta", "keras")
_KERAS_EPS = 1e-3


def _instance_norm(
    y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, keras: bool = False
) -> torch.Tensor:
    """Instance norm in float32, written out so a compiler fuses it with the ELU and the residual add."""
    y = y.float()
    var, mean = torch.var_mean(y, dim=(2, 3), keepdim=True, correction=0)
    scale = 1.0 / (var.sqrt() + _KERAS_EPS) if keras else torch.rsqrt(var + _EPS)
    return (y - mean) * scale * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


#: trRosetta's training dropout, after the first ELU of every residual block.
DROPOUT_RATE = 0.15


def dropout_keep(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """Keep mask (True with probability 1 - DROPOUT_RATE) from the global generator.

    Drawn in contiguous (N, C, H, W) order whatever the layout it is used in, so the eager and the
    compiled (channels-last) blocks draw the same masks from the same seed.
    """
    return torch.rand(shape, device=device) >= DROPOUT_RATE


def _dropped(y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``y`` through dropout with the mask ``keep`` (kept values scaled up, as in training)."""
    return y * keep * (1.0 / (1.0 - DROPOUT_RATE))


def _eager_norm(h: torch.Tensor, norm: nn.Module, keras: bool) -> torch.Tensor:
    if keras:
        return _instance_norm(h, norm.weight, norm.bias, keras=True).to(h.dtype)
    return F.instance_norm(h, weight=norm.weight, bias=norm.bias, eps=_EPS)


def fused_block(
    h: torch.Tensor,
    w1: torch.Tensor,
    g1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    g2: torch.Tensor,
    b2: torch.Tensor,
    dilation: int,
    keras: bool = False,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """One residual block for the compiled path; the same maths as the eager block.

    The convolution biases are left out: a per-channel constant is removed exactly by
    the instance norm that follows each convolution. ``keep`` is a dropout mask
    (:func:`dropout_keep`), or ``None`` for none.
    """
    y = F.conv2d(h, w1, None, padding=dilation, dilation=dilation)
    y = F.elu(_instance_norm(y, g1, b1, keras))
    if keep is not None:
        y = _dropped(y, keep)
    y = y.to(h.dtype)
    y = F.conv2d(y, w2, None, padding=dilation, dilation=dilation)
    return F.elu(h.float() + _instance_norm(y, g2, b2, keras)).to(h.dtype)


def fused_blocks(
    h: torch.Tensor,
    weights: list[tuple[torch.Tensor, ...]],
    dilations: tuple[int, ...],
    keras: bool = False,
    keeps: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Consecutive residual blocks (:func:`fused_block`), one per dilation, as one compiled graph.

    ``keeps`` holds one dropout mask per block, or is ``None`` for none.
    """
    for i, dilation in enumerate(dilations):
        h = fused_block(h, *weights[i], dilation, keras, None if keeps is None else keeps[i])
    return h


def compiler_available(device: torch.device) -> bool:
    """Whether ``torch.compile`` can generate kernels here (a C++ compiler on CPU, Triton on CUDA)."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return True
    if device.type != "cpu":
        return False
    import torch._inductor.config as inductor_config  # a submodule is an attribute only once imported

    cxx = inductor_config.cpp.cxx[-1]
    return cxx is not None and shutil.which(cxx) is not None


@cache
def _compiled_blocks():
    # One compiled function shared by every network: the kernels depend only on dtype and
    # dilations, never on the weights (they are arguments). Shapes are symbolic from the start so
    # a new length does not recompile and the kernels (hence the numbers) never depend on which
    # lengths a process happened to see first.
    # The engine accumulates sample chunks with backward(retain_graph=True), which compiled
    # backwards with donated buffers refuse; the backward is compiled lazily, outside any
    # context we could scope, so donation (a memory optimisation only) is switched off here.
    import torch._functorch.config as functorch_config  # see compiler_available

    functorch_config.donated_buffer = False
    return torch.compile(fused_blocks, dynamic=True)


class _Conv(nn.Conv2d):
    def __init__(self, c_in: int, c_out: int, kernel: int = 1, dilation: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)


class _Norm(nn.InstanceNorm2d):
    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=True, eps=_EPS)


class _Head(nn.Sequential):
    def __init__(self, channels: int, bins: int) -> None:
        super().__init__(_Conv(channels, bins))


class _Block(nn.Sequential):
    """conv-norm-elu-dropout-conv-norm; indices match the published state dict (0, 1, 4, 5)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__(
            _Conv(channels, channels, 3, dilation),
            _Norm(channels),
            nn.ELU(),
            nn.Dropout(p=0.15),
            _Conv(channels, channels, 3, dilation),
            _Norm(channels),
        )


class TrRosettaNetwork(nn.Module):
    """trRosetta's residual network; ``forward`` maps 1-D and pair features to four maps.

    Parameters
    ----------
    channels, num_blocks
        64 and 61 for the published models.
    """

    def __init__(self, channels: int = 64, num_blocks: int = 61) -> None:
        super().__init__()
        self.first_block = nn.Sequential(_Conv(N_FEATURES, channels), _Norm(channels), nn.ELU())
        self.layers = nn.ModuleList(_Block(channels, _CYCLE[i % len(_CYCLE)]) for i in range(num_blocks))
        # One module per use of every ELU (no parameters, so the state dict is unchanged): layer-wise
        # attribution rules (DeepLift) hook each nonlinearity and need each to run once per pass.
        self.residual_activations = nn.ModuleList(nn.ELU() for _ in range(num_blocks))
        self.to_prob_theta = _Head(channels, HEAD_BINS["theta"])
        self.to_prob_phi = _Head(channels, HEAD_BINS["phi"])
        self.to_distance = _Head(channels, HEAD_BINS["dist"])
        self.to_prob_bb = _Head(channels, HEAD_BINS["bb"])  # beta pairing head: in the weights, not used
        self.to_prob_omega = _Head(channels, HEAD_BINS["omega"])
        self.dropout = False
        # Blocks per compiled call (see _compiled_blocks): one dilation cycle; 1 calls block by block.
        self.blocks_per_call = len(_CYCLE)
        self._fast_weights: dict[tuple[torch.dtype, torch.device], list[tuple[torch.Tensor, ...]]] = {}

    def load_state_dict(self, *args, **kwargs):  # noqa: D102
        self._fast_weights = {}  # cast copies of the old weights are stale
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), .half() all pass through here
        self._fast_weights = {}
        return super()._apply(fn, recurse)

    def project_pair_features(self, f2d: torch.Tensor | None, length: int) -> torch.Tensor:
        """First-layer contribution of fixed pair features f2d[i, j] as (1, C, j, i), bias included."""
        conv = self.first_block[0]
        bias = conv.bias.view(1, -1, 1, 1)
        if f2d is None:
            return bias.expand(1, -1, length, length)
        w = conv.weight[:, 2 * N_1D :, 0, 0]
        return torch.einsum("ck,ijk->cji", w, f2d.to(w.dtype)).unsqueeze(0) + bias

    def embed(self, f1d: torch.Tensor, pair_term: torch.Tensor, keras_norm: bool = False) -> torch.Tensor:
        """First block on tiled features: f1d (N, L, 42), pair_term (1|N, C, L, L) -> (N, C, j, i)."""
        w = self.first_block[0].weight[:, :, 0, 0]
        u = torch.einsum("nlk,ck->ncl", f1d, w[:, :N_1D])  # f_i term, along W
        v = torch.einsum("nlk,ck->ncl", f1d, w[:, N_1D : 2 * N_1D])  # f_j term, along H
        h = u.unsqueeze(-2) + v.unsqueeze(-1) + pair_term
        norm, act = self.first_block[1], self.first_block[2]
        return act(_eager_norm(h, norm, keras_norm))

    def trunk(
        self,
        h: torch.Tensor,
        checkpoint_segments: int = 0,
        compiled: bool = False,
        keras_norm: bool = False,
    ) -> torch.Tensor:
        """The residual blocks; with ``checkpoint_segments`` > 0 and gradients on, activations
        inside each segment are recomputed in the backward pass instead of kept (less memory,
        about one extra forward of compute). ``compiled`` runs them through ``torch.compile``
        in channels-last layout."""
        n = len(self.layers)
        blocks = self._blocks
        if compiled:
            blocks = self._compiled_blocks
            if torch.is_autocast_enabled(h.device.type):  # the compiled blocks cast explicitly
                h = h.to(torch.get_autocast_dtype(h.device.type))
            h = h.contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout
        if checkpoint_segments <= 0 or not torch.is_grad_enabled():
            return blocks(h, 0, n, keras_norm)
        size = -(-n // checkpoint_segments)
        for start in range(0, n, size):
            h = checkpoint(blocks, h, start, min(n, start + size), keras_norm, use_reentrant=False)
        return h

    def _weights_for(self, dtype: torch.dtype, device: torch.device) -> list[tuple[torch.Tensor, ...]]:
        """Block weights cast once to the compute dtype in channels-last (the weights are frozen)."""
        key = (dtype, device)
        if key not in self._fast_weights:
            cl = torch.channels_last
            self._fast_weights[key] = [
                (
                    b[0].weight.detach().to(dtype).contiguous(memory_format=cl),
                    b[1].weight.detach().float(),
                    b[1].bias.detach().float(),
                    b[4].weight.detach().to(dtype).contiguous(memory_format=cl),
                    b[5].weight.detach().float(),
                    b[5].bias.detach().float(),
                )
                for b in self.layers
            ]
        return self._fast_weights[key]

    def _compiled_blocks(self, h: torch.Tensor, start: int, stop: int, keras: bool) -> torch.Tensor:
        fn = _compiled_blocks()
        weights = self._weights_for(h.dtype, h.device)
        run = self.blocks_per_call
        # Blocks go through in runs of one dilation cycle (blocks 5c .. 5c + 4), one compiled call
        # each: every call costs fixed guard and launch work, which on a GPU outweighed the blocks'
        # own kernels (docs/benchmarks.md). Runs stop at multiples of the run length, so the full
        # cycles of a pass (and of every checkpoint segment) share one graph; partial runs add a few.
        # Those x grad/no-grad x dtypes exceed dynamo's default of 8 variants per function;
        # a compiler failure falls back to the eager kernels (same maths) instead of stopping a run.
        patch = torch._dynamo.config.patch(recompile_limit=64, suppress_errors=True)
        with patch, torch.autocast(h.device.type, enabled=False):
            i = start
            while i < stop:
                j = min(stop, (i // run + 1) * run)
                keeps = None
                if self.dropout:  # drawn block by block, in the eager path's order
                    keeps = [
                        dropout_keep(h.shape, h.device).contiguous(memory_format=torch.channels_last)
                        for _ in range(i, j)
                    ]
                dilations = tuple(self.layers[k][0].dilation[0] for k in range(i, j))
                h = fn(h, weights[i:j], dilations, keras, keeps)
                i = j
        return h

    def _blocks(self, h: torch.Tensor, start: int, stop: int, keras: bool) -> torch.Tensor:
        for i in range(start, stop):
            conv1, norm1, act, _, conv2, norm2 = self.layers[i]
            y = act(_eager_norm(conv1(h), norm1, keras))
            if self.dropout:  # the compiled path's masks, drawn in the same order
                y = _dropped(y, dropout_keep(y.shape, y.device))
            y = _eager_norm(conv2(y), norm2, keras)
            h = self.residual_activations[i](h + y)
        return h

    def heads(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Probability maps (N, L, L, bins), indexed [i, j] as the original writes them."""
        out = {
            "theta": self.to_prob_theta(h),
            "phi": self.to_prob_phi(h),
        }
        hs = 0.5 * (h + h.transpose(-1, -2))  # distance and omega are symmetric in (i, j)
        out["dist"] = self.to_distance(hs)
        out["omega"] = self.to_prob_omega(hs)
        # Internal layout is (N, C, j, i): the published weights were converted for it.
        return {k: torch.softmax(out[k].float(), dim=1).permute(0, 3, 2, 1) for k in OUTPUTS}

    def forward(
        self,
        f1d: torch.Tensor,
        pair_term: torch.Tensor,
        checkpoint_segments: int = 0,
        compiled: bool = False,
        instance_norm: str = "trrosetta",
    ) -> dict[str, torch.Tensor]:
        """``instance_norm``: one of :data:`INSTANCE_NORMS`."""
        keras = instance_norm == "keras"
        h = self.embed(f1d, pair_term, keras)
        return self.heads(self.trunk(h, checkpoint_segments, compiled, keras))
