"""trRosetta input features, as the original computes them.

1-D features (42 per position): the query sequence (20), the alignment
profile with a gap column (21) and its entropy (1). Pair features (442):
the inverse of the shrunk, sequence-weighted covariance of the one-hot
alignment (21 x 21 per pair) and its APC-corrected Frobenius norm.

Single-sequence features are differentiable in a soft (PSSM) sequence. The
alignment features are fixed per protein and computed once, or, when the
alignment itself is scrambled, recomputed from every sampled alignment and
differentiated through (:func:`onehot_alignment_features`).
"""

from __future__ import annotations

import numpy as np
import torch

from ...io import MSA

N_STATES = 21  # 20 amino acids + gap
IDENTITY_CUTOFF = 0.8
DCA_PENALTY = 4.5
#: What the original trRosetta adds to the alignment profile before its entropy.
PROFILE_FLOOR = 1e-9
#: What the published with-MSA scrambler's feature code adds instead (``msa2pssm``).
SCRAMBLER_PROFILE_FLOOR = 0.005


def _profile_with_entropy(f: torch.Tensor, floor: float = PROFILE_FLOOR) -> torch.Tensor:
    f = f + floor
    return torch.cat([f, -(f * torch.log(f)).sum(-1, keepdim=True)], dim=-1)


def sequence_features(x: torch.Tensor, profile: torch.Tensor | None = None) -> torch.Tensor:
    """1-D features (N, L, 42) for (soft) sequences ``x`` of shape (N, L, 20).

    Without an alignment the profile is the sequence itself (a one-row MSA)
    with an empty gap column and zero entropy: for a hard sequence that is what
    trRosetta computes from a one-row alignment, and for a soft (sampled)
    sequence it is what the published scrambler feeds the network (its entropy
    is not passed on). With an alignment, ``profile`` holds the (L, 22)
    profile-plus-entropy of the alignment, or one (N, L, 22) per sequence
    (sampled alignments).
    """
    if profile is None:
        zeros = torch.zeros_like(x[..., :1])
        prof = torch.cat([x, zeros, zeros], dim=-1)
    elif profile.dim() == 3:
        prof = profile.to(x)
    else:
        prof = profile.to(x).unsqueeze(0).expand(x.shape[0], -1, -1)
    return torch.cat([x, prof], dim=-1)


def msa_one_hot(msa: MSA, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, L, 21) one-hot alignment."""
    return torch.nn.functional.one_hot(torch.from_numpy(msa.codes.astype(np.int64)), N_STATES).to(dtype)


def sequence_weights(msa1hot: torch.Tensor, cutoff: float = IDENTITY_CUTOFF) -> torch.Tensor:
    """1 / (number of rows more than ``cutoff`` identical, gaps counted as letters)."""
    identity = torch.einsum("ikl,jkl->ij", msa1hot, msa1hot)
    return 1.0 / (identity > msa1hot.shape[1] * cutoff).to(msa1hot.dtype).sum(-1)


def msa_profile(msa1hot: torch.Tensor, weights: torch.Tensor, floor: float = PROFILE_FLOOR) -> torch.Tensor:
    """Weighted profile with gaps (L, 21) plus its entropy: (L, 22), ``floor`` added to every frequency."""
    f = (weights[:, None, None] * msa1hot).sum(0) / weights.sum()
    return _profile_with_entropy(f, floor)


def _regularised_inverse(x: torch.Tensor, ridge: torch.Tensor, num_points: torch.Tensor) -> torch.Tensor:
    """inv(x^T x / num_points + ridge I) for centred, weighted rows ``x`` (N, D).

    With fewer rows than columns (deep features, shallow alignments: T1001 has
    193 rows and 140 x 21 = 2,940 columns) the Woodbury identity needs only an
    N x N solve, inv = (I - x^T (ridge num_points I + x x^T)^-1 x) / ridge: the same
    matrix, 3x faster forward and backward at T1001's size (benchmarks/bench_msa_features.py).
    """
    n_rows, dim = x.shape
    if n_rows >= dim:
        cov = x.T @ x / num_points
        return torch.linalg.inv(cov + torch.eye(dim, dtype=x.dtype, device=x.device) * ridge)
    small = x @ x.T + torch.eye(n_rows, dtype=x.dtype, device=x.device) * (ridge * num_points)
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    return (eye - x.T @ torch.linalg.solve(small, x)) / ridge


def dca_features(msa1hot: torch.Tensor, weights: torch.Tensor, penalty: float = DCA_PENALTY) -> torch.Tensor:
    """Shrunk-covariance DCA couplings (L, L, 441) and APC contact score (L, L, 1)."""
    n_rows, length, states = msa1hot.shape
    eye_l = torch.eye(length, dtype=msa1hot.dtype, device=msa1hot.device)
    x = msa1hot.reshape(n_rows, length * states)
    num_points = weights.sum() - torch.sqrt(weights.mean())
    mean = (x * weights[:, None]).sum(0, keepdim=True) / num_points
    x = (x - mean) * torch.sqrt(weights[:, None])
    inv = _regularised_inverse(x, penalty / torch.sqrt(weights.sum()), num_points)
    inv = inv.reshape(length, states, length, states)
    couplings = inv.permute(0, 2, 1, 3).reshape(length, length, states * states)
    norm = torch.sqrt((inv[:, :-1, :, :-1] ** 2).sum(dim=(1, 3))) * (1 - eye_l)
    apc = norm.sum(0, keepdim=True) * norm.sum(1, keepdim=True) / norm.sum()
    contacts = (norm - apc) * (1 - eye_l)
    return torch.cat([couplings, contacts[:, :, None]], dim=-1)


def onehot_alignment_features(
    msa1hot: torch.Tensor, profile_floor: float = PROFILE_FLOOR
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Profile (L, 22) and pair features (L, L, 442) or None of a one-hot alignment (N, L, 21).

    Differentiable in ``msa1hot`` (a straight-through sample of a scrambled
    alignment); the sequence weights count identities of the hard letters and
    are constants, as in the original.
    """
    weights = sequence_weights(msa1hot.detach().round())
    profile = msa_profile(msa1hot, weights, profile_floor)
    pair = dca_features(msa1hot, weights) if msa1hot.shape[0] > 1 else None
    return profile, pair


def alignment_features(
    msa: MSA, profile_floor: float = PROFILE_FLOOR
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fixed features of an alignment: profile (L, 22) and pair features (L, L, 442) or None.

    Computed in float64 (the covariance inverse is ill-conditioned) and
    returned as float32. A one-row alignment has no pair features, as in
    the original.
    """
    profile, pair = onehot_alignment_features(msa_one_hot(msa, torch.float64), profile_floor)
    return profile.float(), None if pair is None else pair.float()
