"""Attribution methods compared by the benchmark, behind one signature.

Every method maps a :class:`MethodInput` to an importance vector (L,)
(higher = more important). Choices:

* gradient methods (Captum, via :mod:`protscramble.baselines`) differentiate
  the log-likelihood of the original prediction's most probable bin of every
  pair and map (the default baseline objective; the KL to the reference has
  zero gradient at the original input); saliency takes the largest
  |gradient| over letters, gradient x input and integrated gradients the
  |sum over letters|; integrated gradients integrate from the background PSSM;
* DeepLIFT (rescale rule on every ELU, Captum) takes the background PSSM as
  its baseline, DeepLIFT-SHAP averages over 8 sequences drawn from the
  background; both report the |sum over letters|;
* in-silico mutagenesis scores all 19 substitutions of a position by the
  forward KL of the four predicted maps and averages them (``ism``) — the
  mean is the expected effect of a random substitution, comparable to
  resampling from a background;
* the scramblers are the per-example scramblers at the protein's published
  background and target bits, inclusion and occlusion.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..baselines import (
    DeepLift,
    DeepLiftShap,
    GradientSaliency,
    GradientXInput,
    InSilicoMutagenesis,
    IntegratedGradients,
    RandomImportance,
)
from ..explanation import Explanation
from ..masking import conservation_bits
from ..predictors.base import Predictor
from ..scrambler import PerExampleScrambler
from .protocols import Protocol


@dataclass
class MethodInput:
    """What a method sees: one protein (batch of 1) and the run's settings."""

    predictor: Predictor
    x: torch.Tensor  # (1, L, A) one-hot
    background: torch.Tensor  # (L, A)
    reference: Mapping[str, torch.Tensor]
    protocol: Protocol
    target_bits: float
    steps: int
    clip_value: float | None = None  # the protein's published gradient clipping (T1001: 0.5)
    extras: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda _: None  # progress of long methods
    checkpoint: Path | None = None  # where a scrambler saves its state, to resume an interrupted run


#: A scrambler reports its progress every this many updates (a published run is 250-500 updates),
#: and at least every this many seconds (an fp32 update with an alignment can take a minute on a CPU).
PROGRESS_EVERY = 50
PROGRESS_SECONDS = 300.0


def occlusion_target_bits(
    x: torch.Tensor, background: torch.Tensor, target_bits: float, budget: str
) -> float:
    """The occlusion scrambler's conservation target for a protein explained at ``target_bits``.

    ``complement``: the sequence's own bits (one-hot vs background) minus ``target_bits``, so the
    occlusion scrambler destroys as much information as the inclusion scrambler keeps and both select
    a comparable set of residues; ``same``: ``target_bits`` (the occlusion scrambler then keeps only
    ``target_bits`` and must rank the residues among the many it scrambles).

    Examples
    --------
    >>> x = torch.eye(4)[None]  # four letters, each 2 bits against a uniform background
    >>> occlusion_target_bits(x, torch.full((4, 4), 0.25), 0.5, "complement")
    1.5
    """
    if budget == "same":
        return target_bits
    full = float(conservation_bits(x.float(), background).mean())
    return max(full - target_bits, 0.0)


@contextlib.contextmanager
def _dropout_on(predictor: Predictor) -> Iterator[None]:
    """The predictor's dropout on inside, as it was after: the evaluation and curves run it as given.

    ``run_benchmark`` has checked that the predictor has ``set_dropout``.
    """
    was_on = bool(getattr(predictor, "dropout", False))
    predictor.set_dropout(True)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        predictor.set_dropout(was_on)  # type: ignore[attr-defined]


def _scrambler(mode: str) -> Callable[[MethodInput], Explanation]:
    def run(m: MethodInput) -> Explanation:
        target = m.target_bits
        if mode == "occlusion":
            target = occlusion_target_bits(m.x, m.background, m.target_bits, m.protocol.occlusion_budget)
        scr = PerExampleScrambler(
            m.predictor,
            mode=mode,
            target_bits=target,
            steps=m.steps,
            samples=m.protocol.samples,
            learning_rate=m.protocol.learning_rate,
            kl_direction=m.protocol.kl_direction,
            clip_value=m.clip_value,
            accumulation_steps=m.protocol.accumulation_steps,
        )

        # (time, updates done) at the last progress line: the rate is over the updates since then,
        # so "min left" follows a change of load (a shared CPU) instead of the run's average.
        first: list[int] = []  # the first update this process ran (> 0 when resumed)
        last_log = [time.monotonic(), 0]

        def progress(step: int, trace: dict[str, np.ndarray]) -> None:
            if not first:
                first.append(step)
                last_log[1] = step
                if step > 0:
                    m.log(f"scrambler_{mode}: resumed at update {step + 1}/{m.steps}")
            now = time.monotonic()
            done = step + 1
            if done % PROGRESS_EVERY and done != m.steps and now - last_log[0] < PROGRESS_SECONDS:
                return
            kl, bits = float(trace["divergence"].mean()), float(trace["bits"].mean())
            rate = (now - last_log[0]) / (done - last_log[1])  # the first line includes setup
            last_log[:] = [now, done]
            m.log(
                f"scrambler_{mode}: update {done}/{m.steps}, KL {kl:.3f}, {bits:.2f} bits, "
                f"{rate:.1f} s/update, ~{rate * (m.steps - done) / 60:.0f} min left"
            )

        dropout = m.protocol.optimiser_dropout
        with _dropout_on(m.predictor) if dropout else contextlib.nullcontext():
            return scr.attribute(
                m.x, m.background, reference=m.reference, seed=m.protocol.seed, callback=progress,
                checkpoint=m.checkpoint, run_key={"optimiser_dropout": True} if dropout else None,
            )  # fmt: skip

    return run


def _saliency(m: MethodInput) -> Explanation:
    return GradientSaliency(m.predictor).attribute(m.x, reference=m.reference, max_batch=8)


def _gxi(m: MethodInput) -> Explanation:
    return GradientXInput(m.predictor).attribute(m.x, reference=m.reference, max_batch=8)


def _ig(m: MethodInput) -> Explanation:
    ig = IntegratedGradients(m.predictor, n_steps=m.protocol.ig_steps)
    return ig.attribute(m.x, background=m.background, reference=m.reference, max_batch=8)


def _deeplift(m: MethodInput) -> Explanation:
    return DeepLift(m.predictor).attribute(m.x, background=m.background, reference=m.reference)


#: Baseline sequences drawn from the background for DeepLIFT-SHAP.
SHAP_BASELINES = 8


def _deeplift_shap(m: MethodInput) -> Explanation:
    dls = DeepLiftShap(m.predictor, n_baselines=SHAP_BASELINES, seed=m.protocol.seed)
    return dls.attribute(m.x, background=m.background, reference=m.reference)


def _ism(m: MethodInput) -> Explanation:
    return InSilicoMutagenesis(m.predictor, reduction="mean").attribute(
        m.x, reference=m.reference, max_batch=16
    )


def _random(m: MethodInput) -> Explanation:
    return RandomImportance(seed=m.protocol.seed).attribute(m.x)


#: Method name -> function; the order is the tables' order.
METHODS: dict[str, Callable[[MethodInput], Explanation]] = {
    "scrambler_inclusion": _scrambler("inclusion"),
    "scrambler_occlusion": _scrambler("occlusion"),
    "saliency": _saliency,
    "gradient_x_input": _gxi,
    "integrated_gradients": _ig,
    "deeplift": _deeplift,
    "deeplift_shap": _deeplift_shap,
    "ism": _ism,
    "random": _random,
}


def importance_of(exp: Explanation) -> np.ndarray:
    """The (L,) importance of a batch-of-one explanation."""
    return np.asarray(exp.importance, dtype=np.float64)[0]
