"""The protocol every predictor adapter follows.

The scrambling engine only ever calls a predictor on a batch of (soft)
sequences and reads back probability distributions; it never knows which
network is behind it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from ..errors import BackendUnavailableError


@runtime_checkable
class Predictor(Protocol):
    """A differentiable model from sequences to categorical predictions.

    Attributes
    ----------
    alphabet
        The letters of the input channels, in order; inputs have
        ``len(alphabet)`` channels.

    Calling the predictor on ``x`` of shape (N, L, A) -- one-hot rows, soft
    PSSM rows or relaxed samples -- returns a dict of tensors of shape
    (N, ..., C), each a probability distribution over its last axis
    (e.g. trRosetta's ``dist`` (N, L, L, 37)).
    """

    alphabet: str

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]: ...


def arithmetic(predictor: object) -> contextlib.AbstractContextManager:
    """The predictor's arithmetic settings for a forward *and* backward pass.

    Predictors may expose ``arithmetic()`` returning a context manager (trRosetta
    uses it for TF32 on CUDA, which PyTorch reads when each backward kernel runs,
    not when the forward is recorded); the engine wraps every step in it.
    """
    fn = getattr(predictor, "arithmetic", None)
    return fn() if callable(fn) else contextlib.nullcontext()


def layerwise(predictor: object) -> contextlib.AbstractContextManager[list[torch.nn.Module]]:
    """Context in which the predictor computes every nonlinearity by a module of its own.

    Layer-wise attribution rules (DeepLift) replace the gradient of each
    nonlinearity module; they need each module called once per forward pass
    and no compiled or recomputed (checkpointed) passes. Predictors that can
    guarantee this expose ``layerwise()``, a context manager yielding the
    ``torch.nn.Module`` objects that hold those activation modules.

    Raises
    ------
    BackendUnavailableError
        If the predictor has no ``layerwise()``.
    """
    fn = getattr(predictor, "layerwise", None)
    if not callable(fn):
        raise BackendUnavailableError(
            f"{type(predictor).__name__} does not expose its activation modules (a layerwise() context), "
            "which DeepLift needs"
        )
    return fn()


def scrambled_forward(
    predictor: Predictor,
    scores: torch.Tensor,
    mode: str,
    n_samples: int,
    generator: torch.Generator | list[torch.Generator] | None = None,
    differentiable: bool = True,
    position_mask: torch.Tensor | None = None,
) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """The predictor with its other per-position inputs scrambled by the same importance.

    Some predictors read more than the sequence at each position (trRosetta can
    read an alignment's columns). When such an input is scrambled together with
    the sequence, the predictor exposes ``scrambled_forward(scores, mode,
    n_samples, generator, differentiable, position_mask)``: it draws ``n_samples``
    scrambled versions of that input per example from importance ``scores`` (B, L),
    keeping the positions outside ``position_mask`` (B, L) as they are, and
    returns the function to call on the (n_samples * B, L, A) sequence samples,
    flattened sample-major from (K, B). Every other predictor is returned as is.
    The per-example engine, the trained scrambler networks, the evaluation and the
    faithfulness curves all go through here, so what is scrambled is the predictor's
    business, not theirs.
    """
    fn = getattr(predictor, "scrambled_forward", None)
    if fn is None:
        return predictor
    return fn(scores, mode, n_samples, generator, differentiable, position_mask)
