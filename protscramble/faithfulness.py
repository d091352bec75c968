"""How faithful is an importance map? Resample residues and watch the prediction move.

Generic over the :class:`~protscramble.predictors.Predictor` protocol and a
divergence function, so every predictor's benchmark uses the same code:

* **inclusion**: keep the top X% residues (per group, e.g. per chain) as
  they are and resample every other residue from the background; a faithful
  map keeps the prediction (low divergence is better);
* **occlusion**: resample the top X% residues and keep the rest; a faithful
  map destroys the prediction (high divergence is better).

The divergence defaults to KL(P_original || P_sample) per example, averaged
over the hard one-hot samples (128 by default, as published).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import InvalidParameterError
from .masking import KEEP_SCORE
from .objectives import prediction_kl
from .predictors.base import Predictor, scrambled_forward
from .sampling import sample_sequences

Prediction = Mapping[str, torch.Tensor]
Divergence = Callable[[Prediction, Prediction], torch.Tensor]
FAITHFULNESS_MODES = ("inclusion", "occlusion")


def _forward_kl(reference: Prediction, predicted: Prediction) -> torch.Tensor:
    return prediction_kl(reference, predicted, "forward")


def top_count(fraction: float, n: int) -> int:
    """How many of ``n`` positions make the top ``fraction``: ``max(1, round(fraction * n))``, halves up.

    Examples
    --------
    >>> top_count(0.1, 95), top_count(0.5, 5)
    (10, 3)
    """
    return max(1, int(np.floor(fraction * n + 0.5)))


def top_fraction_mask(
    importance: torch.Tensor | np.ndarray,
    fraction: float,
    position_mask: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Boolean (B, L) mask of the top ``fraction`` of valid positions per group.

    Each group (e.g. chain) of valid positions contributes
    ``top_count(fraction, n_group)`` positions; ties are broken at random
    (seeded), so constant maps (all zeros) do not favour the first residues.

    Examples
    --------
    >>> top_fraction_mask(torch.tensor([[0.1, 0.9, 0.5, 0.2]]), 0.5).tolist()
    [[False, True, True, False]]
    """
    if not 0.0 < fraction <= 1.0:
        raise InvalidParameterError(f"top fraction must be in (0, 1], got {fraction}")
    imp = torch.as_tensor(np.asarray(importance), dtype=torch.float64)
    b, length = imp.shape
    mask = torch.ones(b, length, dtype=torch.bool) if position_mask is None else position_mask.cpu().bool()
    grp = torch.zeros(b, length, dtype=torch.long) if groups is None else groups.cpu().long()
    gen = torch.Generator().manual_seed(seed)
    jitter = torch.rand(b, length, generator=gen, dtype=torch.float64)
    out = torch.zeros(b, length, dtype=torch.bool)
    for i in range(b):
        for g in torch.unique(grp[i]).tolist():
            idx = torch.nonzero(mask[i] & (grp[i] == g)).flatten()
            if idx.numel() == 0:
                continue
            k = top_count(fraction, idx.numel())
            # Lexicographic order: importance first, random jitter only among exact ties.
            order = np.lexsort((-jitter[i, idx].numpy(), -imp[i, idx].numpy()))
            out[i, idx[torch.from_numpy(order[:k])]] = True
    return out


def resampling_pssm(
    x: torch.Tensor, keep: torch.Tensor, background: torch.Tensor, position_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """PSSM that keeps ``x`` where ``keep`` (or outside ``position_mask``) and is the background elsewhere."""
    b = background.to(x.device, x.dtype)
    b = b.unsqueeze(0).expand_as(x) if b.dim() == 2 else b
    fixed = keep.to(x.device)
    if position_mask is not None:
        fixed = fixed | ~position_mask.to(x.device)
    return torch.where(fixed.unsqueeze(-1), x, b)


def sampled_divergence(
    predictor: Predictor,
    x: torch.Tensor,
    pssm: torch.Tensor,
    reference: Prediction,
    n_samples: int = 128,
    position_mask: torch.Tensor | None = None,
    divergence: Divergence | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean divergence(reference, predictor(sample)) over ``n_samples`` hard samples of ``pssm``, shape (B,).

    ``keep`` (B, L) marks the positions ``pssm`` keeps; a predictor with other
    scrambled inputs (an alignment) keeps those columns too and resamples the rest.
    """
    div = divergence or _forward_kl
    b = x.shape[0]
    out = torch.zeros(b)
    per_chunk = max(1, batch_size // max(1, n_samples))
    with torch.no_grad():
        for s in range(0, b, per_chunk):
            xs, ps = x[s : s + per_chunk], pssm[s : s + per_chunk]
            n = xs.shape[0]
            # Zero rows (padding) are not distributions; sample them uniformly and restore them below.
            ps = torch.where(ps.sum(-1, keepdim=True) > 0, ps, torch.full_like(ps, 1.0 / ps.shape[-1]))
            samples = sample_sequences(ps, n_samples, generator)  # (K, n, L, A)
            if position_mask is not None:  # padding rows are all-zero, never a sampled letter
                m = position_mask[s : s + per_chunk].to(samples.device)
                samples = torch.where(m[None, ..., None], samples, xs.unsqueeze(0))
            ref = {k: v[s : s + per_chunk] for k, v in reference.items()}
            forward = predictor
            if keep is not None:
                kept = keep[s : s + per_chunk].to(x.device).float() * KEEP_SCORE
                mask = None if position_mask is None else position_mask[s : s + per_chunk].to(x.device)
                forward = scrambled_forward(predictor, kept, "inclusion", n_samples, generator, False, mask)
            pred = forward(samples.reshape(n_samples * n, *xs.shape[1:]))
            # Divergences a few samples at a time: the reference repeated for all of them at once
            # would hold n_samples copies of every map (a GiB at L = 140, 128 samples).
            step = max(1, batch_size // n)
            divs = []
            for k in range(0, n_samples, step):
                kk = min(step, n_samples - k)
                ref_rep = {m: v.unsqueeze(0).expand(kk, *v.shape).flatten(0, 1) for m, v in ref.items()}
                divs.append(div(ref_rep, {m: v[k * n : (k + kk) * n] for m, v in pred.items()}).float())
            out[s : s + n] = torch.cat(divs).reshape(n_samples, n).mean(0).cpu()
    return out


def evaluate_faithfulness(
    predictor: Predictor,
    inputs: torch.Tensor,
    importance: torch.Tensor | np.ndarray,
    background: torch.Tensor,
    *,
    fractions: Sequence[float] = (0.1, 0.2),
    modes: Sequence[str] = FAITHFULNESS_MODES,
    n_samples: int = 128,
    position_mask: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    reference: Prediction | None = None,
    divergence: Divergence | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[tuple[str, float], np.ndarray]:
    """Per-example divergence after inclusion/occlusion resampling of the top residues.

    Parameters
    ----------
    predictor
        Any predictor; called on hard one-hot samples (N, L, A).
    inputs
        (B, L, A) one-hot sequences.
    importance
        (B, L) importance to rank residues by (higher = more important).
    background
        (L, A) or (B, L, A) distributions resampled residues are drawn from.
    fractions
        Top fractions X to evaluate (per group).
    modes
        ``inclusion`` and/or ``occlusion``.
    n_samples
        Samples per example and setting.
    position_mask
        (B, L) bool; False rows (padding) are never ranked or resampled.
    groups
        (B, L) integer group ids (e.g. chain index); the top X% is taken per group.
    reference
        Prediction to compare against; by default the predictor's output on ``inputs``.
    divergence
        ``divergence(reference, predicted) -> (N,)``; default forward KL.
    seed
        Seeds tie-breaking and sampling (each setting gets its own stream).
    batch_size
        Sequences per call: ``batch_size // n_samples`` examples (at least one) have their
        samples drawn and predicted together, and divergences are taken ``batch_size`` samples at
        a time. How the predictor splits a call is its own setting (trRosetta's ``inference_batch``);
        neither changes the draws.

    Returns
    -------
    dict
        ``{(mode, fraction): (B,) array}``.
    """
    for mode in modes:
        if mode not in FAITHFULNESS_MODES:
            raise InvalidParameterError(f"faithfulness mode must be inclusion or occlusion, got {mode!r}")
    if n_samples < 1:
        raise InvalidParameterError(f"samples must be at least 1, got {n_samples}")
    x = inputs.float()
    if reference is None:
        with torch.no_grad():
            reference = {k: v.detach().float() for k, v in predictor(x).items()}
    results: dict[tuple[str, float], np.ndarray] = {}
    for fi, fraction in enumerate(fractions):
        top = top_fraction_mask(importance, fraction, position_mask, groups, seed=seed)
        for mode in modes:
            keep = top if mode == "inclusion" else ~top
            pssm = resampling_pssm(x, keep, background, position_mask)
            # seeded by the mode itself, not its place in ``modes``: asking for one mode draws what both would
            mi = FAITHFULNESS_MODES.index(mode)
            gen = torch.Generator(device=x.device).manual_seed(seed * 1000 + fi * 10 + mi)
            results[(mode, float(fraction))] = sampled_divergence(
                predictor, x, pssm, reference, n_samples, position_mask, divergence, gen, batch_size, keep
            ).numpy()
    return results


def evaluate_many(
    predictor: Predictor,
    inputs: torch.Tensor,
    importances: Mapping[str, torch.Tensor | np.ndarray],
    background: torch.Tensor,
    progress: bool = False,
    **kwargs: object,
) -> dict[str, dict[tuple[str, float], np.ndarray]]:
    """:func:`evaluate_faithfulness` for several methods with one shared reference and seed."""
    x = inputs.float()
    if kwargs.get("reference") is None:
        with torch.no_grad():
            kwargs["reference"] = {k: v.detach().float() for k, v in predictor(x).items()}
    out = {}
    for name, imp in tqdm(importances.items(), desc="faithfulness", disable=not progress, leave=False):
        out[name] = evaluate_faithfulness(predictor, x, imp, background, **kwargs)  # type: ignore[arg-type]
    return out


# ----------------------------------------------------------------------------- ranking metrics


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of ``scores`` for binary ``labels`` (sum over positives of precision at their rank).

    Tied scores are grouped as one threshold (like scikit-learn).

    Examples
    --------
    >>> average_precision(np.array([0.9, 0.8, 0.1, 0.7]), np.array([1, 0, 0, 1]))
    0.8333333333333333
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if y.sum() == 0:
        raise InvalidParameterError("average precision needs at least one positive label")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.diff(s) != 0, True]
    tp = np.cumsum(y)[last_of_tie]
    n = (np.arange(1, len(s) + 1))[last_of_tie]
    precision = tp / n
    recall_step = np.diff(np.r_[0, tp]) / y.sum()
    return float((precision * recall_step).sum())


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties counted half.

    Examples
    --------
    >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise InvalidParameterError("ROC AUC needs both positive and negative labels")
    ranks = rankdata(np.asarray(scores, dtype=np.float64).ravel())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
