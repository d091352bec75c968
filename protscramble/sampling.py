"""Differentiable sampling of sequences from a PSSM.

``gumbel_softmax``: relaxed one-hot samples (soft, temperature ``tau``);
``gumbel_st``: hard one-hot forward, Gumbel-softmax gradient (straight-through);
``categorical_st``: hard categorical samples with the PSSM's gradient.
All randomness comes from explicit ``torch.Generator`` objects: either one
for the whole batch, or one per example (a list), so that an example's draws
do not depend on which other examples share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None

SAMPLING_METHODS = ("gumbel_softmax", "gumbel_st", "categorical_st")


def _uniform(shape: tuple[int, ...], like: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Uniform noise of ``shape`` = (K, B, ...); with a list, example b draws from ``generator[b]``."""
    if generator is None or isinstance(generator, torch.Generator):
        u = torch.rand(shape, generator=generator, device=like.device, dtype=torch.float32)
    else:
        if len(generator) != shape[1]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[1]}")
        per = (shape[0], *shape[2:])
        u = torch.stack(
            [torch.rand(per, generator=g, device=like.device, dtype=torch.float32) for g in generator], 1
        )
    return u.to(like.dtype).clamp(1e-10, 1.0 - 1e-7)


def sample_pssm(
    pssm: torch.Tensor,
    n_samples: int,
    method: str = "gumbel_softmax",
    temperature: float = 0.5,
    generator: Generators = None,
    position_mask: torch.Tensor | None = None,
    x: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``n_samples`` sequences per PSSM: (B, L, A) -> (K, B, L, A).

    Positions outside ``position_mask`` are copied from ``x`` (e.g. all-zero
    padding rows), never sampled.
    """
    if method not in SAMPLING_METHODS:
        raise ValueError(f"sampling method must be one of {SAMPLING_METHODS}, got {method!r}")
    shape = (n_samples, *pssm.shape)
    p = pssm.unsqueeze(0).expand(shape)
    logp = torch.log(p.clamp_min(1e-12))
    if method == "categorical_st":
        idx = torch.argmax(logp - torch.log(-torch.log(_uniform(shape, pssm, generator))), dim=-1)
        hard = torch.nn.functional.one_hot(idx, pssm.shape[-1]).to(pssm.dtype)
        out = hard - p.detach() + p
    else:
        gumbel = -torch.log(-torch.log(_uniform(shape, pssm, generator)))
        soft = torch.softmax((logp + gumbel) / temperature, dim=-1)
        if method == "gumbel_st":
            hard = torch.nn.functional.one_hot(soft.argmax(-1), pssm.shape[-1]).to(pssm.dtype)
            out = hard - soft.detach() + soft
        else:
            out = soft
    if position_mask is not None:
        keep = x if x is not None else pssm
        out = torch.where(position_mask.unsqueeze(-1), out, keep.unsqueeze(0))
    return out


def sample_sequences(pssm: torch.Tensor, n_samples: int, generator: Generators = None) -> torch.Tensor:
    """Hard one-hot samples (K, B, L, A) from a PSSM, no gradient (for evaluation)."""
    with torch.no_grad():
        # Gumbel-max: an exact categorical draw that shares the per-example noise machinery.
        logp = torch.log(pssm.float().clamp_min(1e-30)).unsqueeze(0)
        noise = -torch.log(-torch.log(_uniform((n_samples, *pssm.shape), pssm.float(), generator)))
        idx = torch.argmax(logp + noise, dim=-1)
        return torch.nn.functional.one_hot(idx, pssm.shape[-1]).to(pssm.dtype)
