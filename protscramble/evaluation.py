"""How well a PSSM keeps (or destroys) a prediction: sampled divergences."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from .errors import InvalidParameterError
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


@torch.no_grad()
def shared_draw_divergence(
    predictor: Predictor,
    reference: Prediction,
    pssm: torch.Tensor,
    n_draws: int,
    samples_per_draw: int,
    *,
    scores: torch.Tensor,
    mode: str = "inclusion",
    seed: int = 0,
    divergence: Callable[[Prediction, Prediction], torch.Tensor] | None = None,
) -> np.ndarray:
    """Divergences with the predictor's side inputs drawn once per group of sequence samples.

    :func:`sampled_divergence` draws a scrambled side input (trRosetta's alignment) with every
    sequence sample. The published with-MSA evaluation drew one scrambled alignment and scored all
    its 512 query samples under it, so its mean carries that one draw's luck; rows of this array
    are such groups, whose spread (:func:`draw_variance_components`) says how far that estimator
    moves between runs. For a predictor without side inputs every row is an ordinary draw.

    Parameters
    ----------
    reference
        Prediction on the original input, each output (1, ...).
    pssm
        (1, L, A) PSSM of one example.
    n_draws, samples_per_draw
        Side-input draws, and sequence samples scored under each.
    scores, mode
        The importance (1, L) and mode that made ``pssm``; the side inputs are scrambled by them.

    Returns
    -------
    numpy.ndarray
        (n_draws, samples_per_draw) divergences.
    """
    if pssm.dim() != 3 or pssm.shape[0] != 1:
        raise InvalidParameterError(f"one example's PSSM (1, L, A) is needed, got {tuple(pssm.shape)}")
    if n_draws < 1 or samples_per_draw < 1:
        raise InvalidParameterError("n_draws and samples_per_draw must be at least 1")
    div = divergence or prediction_kl
    gen = [torch.Generator(device=pssm.device).manual_seed(seed)]
    out = np.zeros((n_draws, samples_per_draw), dtype=np.float64)
    for d in range(n_draws):
        # one side-input draw, then every sequence of the group scored under it (one at a time:
        # a predictor's scrambled forward holds as many side inputs as it was asked for)
        forward = scrambled_forward(predictor, scores, mode, 1, gen, False)
        for j in range(samples_per_draw):
            s = sample_sequences(pssm, 1, gen)[0]
            out[d, j] = float(div(reference, forward(s)).double().cpu().reshape(-1)[0])
    return out


def draw_variance_components(values: np.ndarray, n_per_estimate: int | None = None) -> dict[str, float]:
    """Split the spread of grouped samples into between-draw and within-draw parts.

    ``values`` (K, N): K side-input draws with N sequence samples each
    (:func:`shared_draw_divergence`). The one-way random-effects estimates (method of moments)
    are ``within`` = mean of the rows' sample variances and ``between`` = max(0, (N x variance of
    the row means - within) / N). ``estimate_sd`` is the standard deviation of a mean of
    ``n_per_estimate`` samples (default N) all under one draw: sqrt(between + within / n).

    Examples
    --------
    >>> v = np.array([[1.0, 3.0], [5.0, 7.0]])
    >>> c = draw_variance_components(v)
    >>> c["within"], c["between"], c["mean"]
    (2.0, 7.0, 4.0)
    >>> round(c["estimate_sd"], 4)
    2.8284
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] < 2:
        raise InvalidParameterError(f"at least 2 draws of 2 samples are needed, got shape {v.shape}")
    n = v.shape[1]
    within = float(np.mean(np.var(v, axis=1, ddof=1)))
    row_means = v.mean(axis=1)
    between = max(0.0, (n * float(np.var(row_means, ddof=1)) - within) / n)
    m = n if n_per_estimate is None else n_per_estimate
    return {
        "mean": float(v.mean()),
        "between": between,
        "within": within,
        "draw_means_sd": float(np.std(row_means, ddof=1)),
        "estimate_sd": float(np.sqrt(between + within / m)),
    }


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
