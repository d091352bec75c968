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
        self.to_prob_theta = _Head(channels, HEAD_BINS["theta"])
        self.to_prob_phi = _Head(channels, HEAD_BINS["phi"])
        self.to_distance = _Head(channels, HEAD_BINS["dist"])
        self.to_prob_bb = _Head(channels, HEAD_BINS["bb"])  # beta pairing head: in the weights, not used
        self.to_prob_omega = _Head(channels, HEAD_BINS["omega"])
        self.dropout = False

    def project_pair_features(self, f2d: torch.Tensor | None, length: int) -> torch.Tensor:
        """First-layer contribution of fixed pair features f2d[i, j] as (1, C, j, i), bias included."""
        conv = self.first_block[0]
        bias = conv.bias.view(1, -1, 1, 1)
        if f2d is None:
            return bias.expand(1, -1, length, length)
        w = conv.weight[:, 2 * N_1D :, 0, 0]
        return torch.einsum("ck,ijk->cji", w, f2d.to(w.dtype)).unsqueeze(0) + bias

    def embed(self, f1d: torch.Tensor, pair_term: torch.Tensor) -> torch.Tensor:
        """First block on tiled features: f1d (N, L, 42), pair_term (1|N, C, L, L) -> (N, C, j, i)."""
        w = self.first_block[0].weight[:, :, 0, 0]
        u = torch.einsum("nlk,ck->ncl", f1d, w[:, :N_1D])  # f_i term, along W
        v = torch.einsum("nlk,ck->ncl", f1d, w[:, N_1D : 2 * N_1D])  # f_j term, along H
        h = u.unsqueeze(-2) + v.unsqueeze(-1) + pair_term
        norm = self.first_block[1]
        return F.elu(F.instance_norm(h, weight=norm.weight, bias=norm.bias, eps=_EPS))

    def trunk(self, h: torch.Tensor, checkpoint_segments: int = 0) -> torch.Tensor:
        """The residual blocks; with ``checkpoint_segments`` > 0 and gradients on, activations
        inside each segment are recomputed in the backward pass instead of kept (less memory,
        about one extra forward of compute)."""
        n = len(self.layers)
        if checkpoint_segments <= 0 or not torch.is_grad_enabled():
            return self._blocks(h, 0, n)
        size = -(-n // checkpoint_segments)
        for start in range(0, n, size):
            h = checkpoint(self._blocks, h, start, min(n, start + size), use_reentrant=False)
        return h

    def _blocks(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for block in self.layers[start:stop]:
            conv1, norm1, _, _, conv2, norm2 = block
            y = F.instance_norm(conv1(h), weight=norm1.weight, bias=norm1.bias, eps=_EPS)
            y = F.elu(y)
            if self.dropout:
                y = F.dropout(y, p=0.15, training=True)
            y = F.instance_norm(conv2(y), weight=norm2.weight, bias=norm2.bias, eps=_EPS)
            h = F.elu(h + y)
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
        self, f1d: torch.Tensor, pair_term: torch.Tensor, checkpoint_segments: int = 0
    ) -> dict[str, torch.Tensor]:
        return self.heads(self.trunk(self.embed(f1d, pair_term), checkpoint_segments))
