"""How well a PSSM keeps (or destroys) a prediction: sampled divergences."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from .objectives import prediction_kl
from .predictors.base import Predictor, scrambled_forward
from .sampling import sample_sequences

Prediction = Mapping[str, torch.Tensor]


@torch.no_grad()
def sampled_divergence(
    predictor: Predictor,
    reference: Prediction,
    pssm: torch.Tensor,
    n_samples: int,
    *,
    seed: int | list[int] = 0,
    batch_size: int = 8,
    divergence: Callable[[Prediction, Prediction], torch.Tensor] | None = None,
    position_mask: torch.Tensor | None = None,
    x: torch.Tensor | None = None,
    scores: torch.Tensor | None = None,
    mode: str = "inclusion",
) -> np.ndarray:
    """Divergence of predictions on hard sequences drawn from ``pssm`` from ``reference``.

    This is the published evaluation: forward KL(P_original || P_sample)
    summed over output maps, averaged over positions/pairs, for each of
    ``n_samples`` sequences drawn from the PSSM (dropout as the predictor
    is set, off by default).

    Parameters
    ----------
    reference
        Prediction on the original inputs, each output (B, ...).
    pssm
        (B, L, A) PSSMs to sample from.
    position_mask, x
        Positions outside the mask are copied from ``x`` (e.g. padding).
    scores, mode
        The importance (B, L) and mode that made ``pssm``: a predictor with other
        scrambled inputs (an alignment) draws them from these with every sample
        (:func:`~protscramble.predictors.base.scrambled_forward`).

    Returns
    -------
    numpy.ndarray
        (B, n_samples) divergences.
    """
    div = divergence or prediction_kl
    b, length, a = pssm.shape
    # One stream per example: an example's samples do not depend on its batch-mates.
    seeds = [seed] * pssm.shape[0] if isinstance(seed, int) else list(seed)
    gen = [torch.Generator(device=pssm.device).manual_seed(s) for s in seeds]
    out = np.zeros((b, n_samples), dtype=np.float64)
    per_call = max(1, batch_size // b) if b <= batch_size else 1
    done = 0
    while done < n_samples:
        k = min(per_call, n_samples - done)
        s = sample_sequences(pssm, k, gen)
        if position_mask is not None and x is not None:
            s = torch.where(position_mask.unsqueeze(-1), s, x.unsqueeze(0))
        forward = predictor
        if scores is not None:
            forward = scrambled_forward(predictor, scores, mode, k, gen, False, position_mask)
        pred = forward(s.reshape(k * b, length, a))
        ref = {
            n: t.unsqueeze(0).expand(k, *t.shape).reshape(k * b, *t.shape[1:]) for n, t in reference.items()
        }
        out[:, done : done + k] = div(ref, pred).reshape(k, b).T.double().cpu().numpy()
        done += k
    return out


def standard_error(values: np.ndarray) -> float | None:
    """Standard error of the mean of ``values`` (sample standard deviation over sqrt(n)).

    An evaluation KL is a mean over sampled sequences; this says how far another draw of as many
    samples would move it, which decides whether a difference from a published mean is more than
    sampling noise. ``None`` for fewer than two values.

    Examples
    --------
    >>> round(standard_error(np.array([1.0, 2.0, 3.0, 4.0])), 4)
    0.6455
    >>> standard_error(np.array([2.5])) is None
    True
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        return None
    return float(np.std(v, ddof=1) / np.sqrt(v.size))


def keep_top_pssm(
    x: torch.Tensor,
    importance: torch.Tensor,
    background: torch.Tensor,
    fraction: float,
    mode: str = "inclusion",
    position_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """PSSM that keeps the top ``fraction`` of positions by importance (inclusion)
    and resamples the rest from the background, or resamples the top (occlusion).

    Ties are broken by position so the choice is deterministic.
    """
    b, length, _ = x.shape
    mask = (
        torch.ones(b, length, dtype=torch.bool, device=x.device) if position_mask is None else position_mask
    )
    bg = background.to(x).expand(b, length, -1) if background.dim() == 2 else background.to(x)
    keep = torch.zeros(b, length, dtype=torch.bool, device=x.device)
    for i in range(b):
        idx = torch.nonzero(mask[i]).flatten()
        n_top = int(round(fraction * idx.numel()))
        order = torch.argsort(importance[i, idx].float(), descending=True, stable=True)
        keep[i, idx[order[:n_top]]] = True
    if mode == "occlusion":
        keep = mask & ~keep
    elif mode != "inclusion":
        raise ValueError(f"mode must be inclusion or occlusion, got {mode!r}")
    keep = keep | ~mask
    return torch.where(keep.unsqueeze(-1), x, bg)
