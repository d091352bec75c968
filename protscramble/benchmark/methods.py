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
  background and target bits, inclusion and occlusion; the occlusion
  scrambler's budget follows ``Protocol.occlusion_budget`` (with
  ``fractions``, one scrambler per curve fraction and their rankings nested;
  with a number X, one scrambler destroying X of the sequence's bits), and
  ``Protocol.occlusion_restarts`` keeps the best of several seeds by a
  held-out occlusion curve or by the scrambler's own objective
  (``Protocol.occlusion_restart_select``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from ..errors import InvalidParameterError
from ..explanation import Explanation
from ..faithfulness import top_count
from ..masking import conservation_bits
from ..predictors.base import Predictor
from ..scrambler import PerExampleScrambler
from .metrics import heldout_occlusion_area
from .protocols import Protocol, destroyed_fraction


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


def sequence_bits(x: torch.Tensor, background: torch.Tensor) -> float:
    """The one-hot sequence's mean conservation in bits against ``background``."""
    return float(conservation_bits(x.float(), background).mean())


def occlusion_target_bits(
    x: torch.Tensor, background: torch.Tensor, target_bits: float, budget: str
) -> float:
    """The occlusion scrambler's conservation target for a protein explained at ``target_bits``.

    ``complement``: the sequence's own bits (one-hot vs background) minus ``target_bits``, so the
    occlusion scrambler destroys as much information as the inclusion scrambler keeps and both select
    a comparable set of residues; ``same``: ``target_bits`` (the occlusion scrambler then keeps only
    ``target_bits`` and must rank the residues among the many it scrambles); a number X in (0, 1): the
    sequence's bits times (1 - X), destroying the fraction X of its information.

    Examples
    --------
    >>> x = torch.eye(4)[None]  # four letters, each 2 bits against a uniform background
    >>> occlusion_target_bits(x, torch.full((4, 4), 0.25), 0.5, "complement")
    1.5
    >>> occlusion_target_bits(x, torch.full((4, 4), 0.25), 0.5, "0.25")
    1.5
    """
    if budget == "same":
        return target_bits
    frac = destroyed_fraction(budget)
    if frac is not None:
        return sequence_bits(x, background) * (1.0 - frac)
    return max(sequence_bits(x, background) - target_bits, 0.0)


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


def nested_ranking(importances: Sequence[np.ndarray], fractions: Sequence[float]) -> np.ndarray:
    """One ranking from one importance vector per fraction, each trusted for its own top set.

    The top ``round(f_1 L)`` positions are those of the first vector; each next vector adds its
    highest-ranked positions not yet taken until ``round(f_i L)`` are taken (the sizes the
    faithfulness curves use); the last vector orders the rest. Returns scores in (0, 1], higher
    for earlier ranks, so the curves' top X% is the nested set.

    Examples
    --------
    >>> a = np.array([4.0, 3.0, 2.0, 1.0])  # trusted for the top quarter: position 0
    >>> b = np.array([0.0, 1.0, 3.0, 2.0])  # trusted for the top half: adds position 2
    >>> nested_ranking([a, b], [0.25, 0.5])
    array([1.  , 0.25, 0.75, 0.5 ])
    """
    if len(importances) != len(fractions) or not importances:
        raise InvalidParameterError("nested ranking needs one importance vector per fraction")
    length = len(importances[0])
    order: list[int] = []
    taken = np.zeros(length, dtype=bool)
    for imp, frac in zip(importances, fractions, strict=True):
        k = top_count(frac, length)
        for pos in np.argsort(-np.asarray(imp, dtype=np.float64), kind="stable"):
            if len(order) >= k:
                break
            if not taken[pos]:
                order.append(int(pos))
                taken[pos] = True
    rest = [int(i) for i in np.argsort(-np.asarray(importances[-1], dtype=np.float64), kind="stable")]
    order += [i for i in rest if not taken[i]]
    scores = np.empty(length)
    scores[order] = (length - np.arange(length)) / length
    return scores


def _optimise(
    m: MethodInput, mode: str, target: float, checkpoint: Path | None, label: str, seed: int | None = None
) -> Explanation:
    """One per-example scrambler at ``target`` bits, logging its progress as ``label``.

    ``seed`` (default: the protocol's) seeds the scrambler's initialisation and samples.
    """
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
                m.log(f"{label}: resumed at update {step + 1}/{m.steps}")
        now = time.monotonic()
        done = step + 1
        if done % PROGRESS_EVERY and done != m.steps and now - last_log[0] < PROGRESS_SECONDS:
            return
        kl, bits = float(trace["divergence"].mean()), float(trace["bits"].mean())
        rate = (now - last_log[0]) / (done - last_log[1])  # the first line includes setup
        last_log[:] = [now, done]
        m.log(
            f"{label}: update {done}/{m.steps}, KL {kl:.3f}, {bits:.2f} bits, "
            f"{rate:.1f} s/update, ~{rate * (m.steps - done) / 60:.0f} min left"
        )

    dropout = m.protocol.optimiser_dropout
    with _dropout_on(m.predictor) if dropout else contextlib.nullcontext():
        return scr.attribute(
            m.x, m.background, reference=m.reference, seed=m.protocol.seed if seed is None else seed,
            callback=progress,
            checkpoint=checkpoint, run_key={"optimiser_dropout": True} if dropout else None,
        )  # fmt: skip


def objective_divergence(exp: Explanation) -> float:
    """The divergence a scrambler reached: its training divergence averaged over the last tenth of
    its updates (at least one), so one noisy update does not decide."""
    div = np.asarray(exp.trace["divergence"], dtype=np.float64)
    return float(div[-max(1, len(div) // 10) :].mean())


def _occlusion_restarts(m: MethodInput, target: float, checkpoint: Path | None, label: str) -> Explanation:
    """``Protocol.occlusion_restarts`` occlusion scramblers at ``target`` (seeds seed, seed + 1, ...);
    the best is kept, judged by ``Protocol.occlusion_restart_select``.

    ``heldout`` (default): the restart with the highest occlusion area under held-out draws
    (``heldout_occlusion_area``), never the draws of the reported curves. ``objective``: the restart whose
    own objective reached the highest divergence, so the curves take no part in the choice. Restart 0 is
    the single run (same seed and checkpoint), so one restart is the plain scrambler; every restart's seed,
    divergence, bits, importance (and held-out area) stay on record (``settings["restarts"]``).
    """
    n = m.protocol.occlusion_restarts
    if n == 1:
        return _optimise(m, "occlusion", target, checkpoint, label)
    runs: list[Explanation] = []
    for k in range(n):
        # each restart keeps its own checkpoint, so a resumed run skips the finished ones
        ckpt = (
            checkpoint
            if checkpoint is None or k == 0
            else checkpoint.with_name(f"{checkpoint.stem}.r{k}.ckpt")
        )
        runs.append(
            _optimise(m, "occlusion", target, ckpt, f"{label} restart {k + 1}/{n}", seed=m.protocol.seed + k)
        )
    divergences = [objective_divergence(e) for e in runs]
    heldout: list[float] | None = None
    if m.protocol.occlusion_restart_select == "heldout":
        heldout = [
            heldout_occlusion_area(
                m.predictor,
                m.x,
                importance_of(e),
                m.background,
                m.reference,
                m.protocol.fractions,
                m.protocol.heldout_samples,
                m.protocol.seed,
            )  # fmt: skip
            for e in runs
        ]
    scores = divergences if heldout is None else heldout
    best = int(np.argmax(scores))  # the first of equals
    judge = "divergence" if heldout is None else "held-out occlusion area"
    m.log(f"{label}: kept restart {best + 1}/{n} ({judge} " + ", ".join(f"{v:.3f}" for v in scores) + ")")
    kept = runs[best]
    settings = {
        **kept.settings,
        "optimisation_seconds": sum(e.settings["optimisation_seconds"] for e in runs),
        "seconds_before_resume": sum(e.settings.get("seconds_before_resume", 0.0) for e in runs),
        "restarts": [
            {
                "seed": m.protocol.seed + k,
                "objective_divergence": v,
                **({} if heldout is None else {"heldout_occlusion_area": heldout[k]}),
                "bits": float(e.bits[0]),
                "optimisation_seconds": e.settings["optimisation_seconds"],
                "kept": k == best,
                # each restart's ranking, so whether the choice found the better curve can be checked
                # afterwards (benchmarks/occlusion_parts.py)
                "importance": importance_of(e).tolist(),
            }
            for k, (e, v) in enumerate(zip(runs, divergences, strict=True))
        ],
    }
    return dataclasses.replace(kept, settings=settings)


def _fraction_scramblers(m: MethodInput) -> Explanation:
    """Occlusion at the ``fractions`` budget: one scrambler per curve fraction, rankings nested."""
    fractions = m.protocol.fractions
    parts: list[Explanation] = []
    for frac in fractions:
        # each part keeps its own checkpoint, so a resumed run skips the finished ones (the runner
        # removes them once the nested result is cached)
        ckpt = None if m.checkpoint is None else m.checkpoint.with_name(f"{m.checkpoint.stem}.f{frac:g}.ckpt")
        # the numeric budget X: keep (1 - X) of the sequence's bits, destroying the fraction X the curve
        # resamples (str(float) round-trips, so a part equals the run at that budget on its own)
        target = occlusion_target_bits(m.x, m.background, m.target_bits, str(frac))
        parts.append(_occlusion_restarts(m, target, ckpt, f"scrambler_occlusion (destroying {frac:.0%})"))
    scores = nested_ranking([importance_of(e) for e in parts], fractions)
    settings = {
        "method": "scrambler",
        "mode": "occlusion",
        "occlusion_budget": "fractions",
        "seed": m.protocol.seed,
        "optimisation_seconds": sum(e.settings["optimisation_seconds"] for e in parts),
        "seconds_before_resume": sum(e.settings.get("seconds_before_resume", 0.0) for e in parts),
        # each fraction's scrambler, so its own ranking and the bits it reached stay on record
        "components": [
            {
                "fraction": frac,
                "target_bits": e.settings["target_bits"],
                "bits": float(e.bits[0]),
                "final_kl": float(e.trace["divergence"][-1].mean()),
                "importance": importance_of(e).tolist(),
            }
            for frac, e in zip(fractions, parts, strict=True)
        ],
    }
    # no single PSSM stands for the nested ranking, so it gets no evaluation KL
    return Explanation(
        importance=scores[None], method="scrambler_occlusion", inputs=m.x.cpu().numpy(), settings=settings
    )


def _scrambler(mode: str) -> Callable[[MethodInput], Explanation]:
    def run(m: MethodInput) -> Explanation:
        target = m.target_bits
        if mode == "occlusion":
            if m.protocol.occlusion_budget == "fractions":
                return _fraction_scramblers(m)
            target = occlusion_target_bits(m.x, m.background, m.target_bits, m.protocol.occlusion_budget)
            return _occlusion_restarts(m, target, m.checkpoint, "scrambler_occlusion")
        return _optimise(m, mode, target, m.checkpoint, f"scrambler_{mode}")

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
