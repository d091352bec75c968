"""Divergences between predictions, computed in float32 whatever the model ran in.

A prediction is a mapping of output names (``dist``, ``omega``, ...) to
tensors of shape (N, ..., C) whose last axis is a probability distribution.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

KL_DIRECTIONS = ("forward", "reverse")
_EPS = 1e-8


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis."""
    p = p.float()
    q = q.float()
    return (p * (torch.log(p + _EPS) - torch.log(q + _EPS))).sum(-1)


def prediction_kl(
    reference: Mapping[str, torch.Tensor],
    predicted: Mapping[str, torch.Tensor],
    direction: str = "forward",
) -> torch.Tensor:
    """KL between two predictions, summed over outputs and averaged over positions/pairs.

    ``forward`` is KL(reference || predicted), the figure the published
    trRosetta results report; ``reverse`` swaps the arguments. The reference
    broadcasts against the batch of predictions. Returns shape (N,).
    """
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"KL direction must be one of {KL_DIRECTIONS}, got {direction!r}")
    total = None
    for name, q in predicted.items():
        p = reference[name]
        kl = categorical_kl(p, q) if direction == "forward" else categorical_kl(q, p.expand_as(q))
        per_example = kl.reshape(kl.shape[0], -1).mean(-1)
        total = per_example if total is None else total + per_example
    if total is None:
        raise ValueError("prediction has no outputs")
    return total
