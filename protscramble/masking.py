"""The scrambling operator and the conservation budget.

Importance ``s_i >= 0`` turns a one-hot sequence ``x`` into a PSSM that
interpolates between the sequence and a background ``b``:

* inclusion: ``p_ic ∝ b_ic exp(s_i (2 x_ic - 1))`` -- important positions keep
  their letter, unimportant ones fall back to the background (``s = 0`` gives
  ``b`` exactly);
* occlusion: the same with ``1 / s_i`` -- important positions are scrambled.

Positions outside ``position_mask`` (padding, fixed residues) are returned
unchanged.
"""

from __future__ import annotations

import math

import torch

Mode = str  # "inclusion" | "occlusion"
MODES = ("inclusion", "occlusion")
#: Inclusion importance that keeps a letter exactly (the others' weight exp(-2e4) underflows to 0).
KEEP_SCORE = 1e4
_LN2 = math.log(2.0)


def _as_batch(background: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    b = background.to(device=like.device, dtype=like.dtype)
    return b.unsqueeze(0) if b.dim() == 2 else b


def scramble_pssm(
    x: torch.Tensor,
    scores: torch.Tensor,
    background: torch.Tensor,
    mode: Mode = "inclusion",
    position_mask: torch.Tensor | None = None,
    min_score: float = 1e-6,
) -> torch.Tensor:
    """Scrambled PSSM of shape (B, L, A) from one-hot ``x`` and importance ``scores`` (B, L).

    Parameters
    ----------
    x
        One-hot (or soft) sequences, shape (B, L, A).
    scores
        Non-negative importance per position, shape (B, L).
    background
        Strictly positive distributions, shape (L, A) or (B, L, A).
    mode
        ``"inclusion"`` or ``"occlusion"``.
    position_mask
        Boolean (B, L); False positions are never scrambled.
    min_score
        Floor on ``s`` before taking ``1 / s`` in occlusion mode.

    Examples
    --------
    >>> import torch
    >>> x = torch.eye(3)[None]
    >>> b = torch.full((3, 3), 1 / 3)
    >>> torch.allclose(scramble_pssm(x, torch.zeros(1, 3), b), b[None])
    True
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    b = _as_batch(background, x)
    s = scores if mode == "inclusion" else 1.0 / scores.clamp_min(min_score)
    logits = torch.log(b) + s.unsqueeze(-1) * (2.0 * x - 1.0)
    pssm = torch.softmax(logits, dim=-1)
    if position_mask is not None:
        pssm = torch.where(position_mask.unsqueeze(-1), pssm, x)
    return pssm


def conservation_bits(
    pssm: torch.Tensor, background: torch.Tensor, position_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean per-position KL(PSSM_i || b_i) in bits, shape (B,).

    Zero when the PSSM is the background; ``log2(1 / b_ic)`` at a one-hot position.
    """
    b = _as_batch(background, pssm)
    kl = (pssm * (torch.log(pssm.clamp_min(1e-12)) - torch.log(b))).sum(-1) / _LN2
    if position_mask is None:
        return kl.mean(-1)
    m = position_mask.to(kl.dtype)
    return (kl * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def conservation_penalty(bits: torch.Tensor, target_bits: float, weight: float) -> torch.Tensor:
    """``weight * (bits - target_bits)^2``: holds the PSSM at the conservation budget."""
    return weight * (bits - target_bits) ** 2
