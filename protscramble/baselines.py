"""Attribution baselines in the scrambler's harness and output format.

Every class takes any :class:`~protscramble.predictors.Predictor` and a
scalar objective, and its ``attribute(inputs, ..., position_mask=None)``
returns an :class:`~protscramble.explanation.Explanation` like the
scramblers do (importance (B, L), ``.attribution`` shaped like the input).

An objective is ``objective(prediction, reference) -> (N,)``: a scalar per
example computed from the predictor's output on (perturbed) inputs and the
reference prediction on the original inputs (broadcast along the batch).
The default, :func:`predicted_class_log_probability`, is the log-probability
of the originally predicted class, averaged over output positions: for the
heterodimer predictor that is ``log p`` of "binds" (or "does not bind"), for
trRosetta the log-likelihood of each pair's most probable bin. (The
log-likelihood of the soft reference itself would be useless here: its
gradient vanishes at the original input.)

Gradient methods use Captum with the predictor's one-hot input; in-silico
mutagenesis scores every substitution directly because Captum's ablation
methods replace a feature by one baseline, not by each alternative letter.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from .errors import BackendUnavailableError, InvalidParameterError
from .explanation import Explanation
from .objectives import prediction_kl
from .predictors.base import Predictor, arithmetic, layerwise

Prediction = Mapping[str, torch.Tensor]
Objective = Callable[[Prediction, Prediction], torch.Tensor]
Divergence = Callable[[Prediction, Prediction], torch.Tensor]


def predicted_class_log_probability(prediction: Prediction, reference: Prediction) -> torch.Tensor:
    """Sum over outputs of the mean log-probability of the reference's most probable class, (N,)."""
    total = None
    for name, q in prediction.items():
        cls = reference[name].argmax(-1, keepdim=True)
        logp = torch.log(q.float().clamp_min(1e-12)).gather(-1, cls.expand(*q.shape[:-1], 1)).squeeze(-1)
        per_example = logp.reshape(logp.shape[0], -1).mean(-1)
        total = per_example if total is None else total + per_example
    if total is None:
        raise InvalidParameterError("prediction has no outputs")
    return total


def _forward_kl(reference: Prediction, predicted: Prediction) -> torch.Tensor:
    return prediction_kl(reference, predicted, "forward")


def _captum():
    try:
        import captum.attr as attr
    except ImportError as err:  # pragma: no cover - captum is installed in the dev venv
        raise BackendUnavailableError(
            "gradient baselines need Captum: pip install 'protscramble[attribution]'"
        ) from err
    return attr


class _Baseline:
    """Shared plumbing: reference prediction, masks, Explanation assembly."""

    method = "baseline"

    def __init__(self, predictor: Predictor, objective: Objective | None = None) -> None:
        self.predictor = predictor
        self.objective = objective or predicted_class_log_probability

    def _prepare(
        self, inputs: torch.Tensor, position_mask: torch.Tensor | None, reference: Prediction | None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if inputs.dim() != 3:
            raise InvalidParameterError(f"inputs must be (B, L, A), got shape {tuple(inputs.shape)}")
        if inputs.shape[-1] != len(self.predictor.alphabet):
            raise InvalidParameterError(
                f"inputs have {inputs.shape[-1]} channels, the predictor's alphabet has {len(self.predictor.alphabet)}"
            )
        x = inputs.detach().float()
        mask = (
            torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            if position_mask is None
            else position_mask.to(x.device).bool()
        )
        if reference is None:
            with torch.no_grad():
                reference = self.predictor(x)
        ref = {k: v.detach().float() for k, v in reference.items()}
        return x, mask, ref

    def _forward(self, ref_keys: list[str]) -> Callable[..., torch.Tensor]:
        """Captum forward: reference tensors travel as additional args so Captum expands them with the inputs."""

        def forward(x: torch.Tensor, *ref_values: torch.Tensor) -> torch.Tensor:
            return self.objective(self.predictor(x), dict(zip(ref_keys, ref_values, strict=True)))

        return forward

    @staticmethod
    def _in_slices(
        attribute: Callable[..., torch.Tensor],
        x: torch.Tensor,
        ref: dict[str, torch.Tensor],
        per_call: int,
        baselines: torch.Tensor | None = None,
        progress: str | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Captum's ``attribute`` over slices of ``per_call`` examples, concatenated.

        The reference maps (and baselines) are sliced alongside, in the order of
        ``list(ref)`` that :meth:`_forward` unpacks; ``progress`` names a bar.
        """
        starts = range(0, x.shape[0], per_call)
        parts = []
        for s in tqdm(starts, desc=progress, disable=progress is None, leave=False):
            sl = slice(s, s + per_call)
            if baselines is not None:
                kwargs["baselines"] = baselines[sl]
            parts.append(
                attribute(
                    x[sl].clone().requires_grad_(True),
                    additional_forward_args=tuple(v[sl] for v in ref.values()),
                    **kwargs,
                ).detach()
            )
        return torch.cat(parts)

    def _explanation(
        self, importance: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, t0: float, **settings
    ) -> Explanation:
        imp = torch.where(
            mask, importance.detach().float(), torch.zeros_like(importance, dtype=torch.float32)
        )
        return Explanation(
            importance=imp.cpu().numpy(),
            method=self.method,
            inputs=x.cpu().numpy(),
            settings={"method": self.method, "seconds": time.perf_counter() - t0, **settings},
        )


class GradientSaliency(_Baseline):
    """Saliency map: per position, the largest absolute gradient over letters (Simonyan et al. 2014)."""

    method = "saliency"

    def attribute(
        self,
        inputs: torch.Tensor,
        *,
        position_mask: torch.Tensor | None = None,
        reference: Prediction | None = None,
        max_batch: int = 256,
    ) -> Explanation:
        t0 = time.perf_counter()
        x, mask, ref = self._prepare(inputs, position_mask, reference)
        sal = _captum().Saliency(self._forward(list(ref)))
        with arithmetic(self.predictor):
            grads = self._in_slices(sal.attribute, x, ref, max_batch, abs=True)
        return self._explanation(grads.amax(-1), x, mask, t0)


class _SignedBaseline(_Baseline):
    """A baseline whose importance is |sum over letters| of its attribution, or the signed sum."""

    def __init__(
        self, predictor: Predictor, objective: Objective | None = None, signed: bool = False
    ) -> None:
        super().__init__(predictor, objective)
        self.signed = signed


class GradientXInput(_SignedBaseline):
    """Gradient x input: for one-hot inputs, the gradient at each position's own letter.

    ``signed=False`` (default) ranks by magnitude, since a residue that
    strongly opposes the prediction is as relied upon as one that supports it.
    """

    method = "gradient_x_input"

    def attribute(
        self,
        inputs: torch.Tensor,
        *,
        position_mask: torch.Tensor | None = None,
        reference: Prediction | None = None,
        max_batch: int = 256,
    ) -> Explanation:
        t0 = time.perf_counter()
        x, mask, ref = self._prepare(inputs, position_mask, reference)
        ixg = _captum().InputXGradient(self._forward(list(ref)))
        with arithmetic(self.predictor):
            per_pos = self._in_slices(ixg.attribute, x, ref, max_batch).sum(-1)
        return self._explanation(per_pos if self.signed else per_pos.abs(), x, mask, t0, signed=self.signed)


class IntegratedGradients(_Baseline):
    """Integrated gradients (Sundararajan et al. 2017) via Captum.

    The baseline is the background PSSM on scrambleable positions (the
    "expected" sequence) and the input itself on fixed/padding rows, so
    padding never receives attribution. Importance = |sum over letters|
    (or the signed sum).
    """

    method = "integrated_gradients"

    def __init__(
        self,
        predictor: Predictor,
        objective: Objective | None = None,
        n_steps: int = 50,
        signed: bool = False,
    ) -> None:
        super().__init__(predictor, objective)
        if n_steps < 1:
            raise InvalidParameterError(f"integration steps must be at least 1, got {n_steps}")
        self.n_steps = n_steps
        self.signed = signed

    def attribute(
        self,
        inputs: torch.Tensor,
        *,
        background: torch.Tensor | None = None,
        position_mask: torch.Tensor | None = None,
        reference: Prediction | None = None,
        max_batch: int = 256,
        progress: bool = False,
    ) -> Explanation:
        """``background``: (L, A) or (B, L, A); default uniform over the alphabet."""
        t0 = time.perf_counter()
        x, mask, ref = self._prepare(inputs, position_mask, reference)
        base = _baseline_pssm(x, mask, background)
        ig = _captum().IntegratedGradients(self._forward(list(ref)))
        per_call = max(1, max_batch // self.n_steps)  # examples per Captum call
        with arithmetic(self.predictor):
            per_pos = self._in_slices(
                ig.attribute,
                x,
                ref,
                per_call,
                baselines=base,
                progress="integrated gradients" if progress else None,
                n_steps=self.n_steps,
                internal_batch_size=max_batch,
            ).sum(-1)
        return self._explanation(
            per_pos if self.signed else per_pos.abs(), x, mask, t0, n_steps=self.n_steps, signed=self.signed
        )


class _ObjectiveModule(nn.Module):
    """The objective as an ``nn.Module`` over the predictor's activation modules (what DeepLift hooks)."""

    def __init__(self, forward: Callable[..., torch.Tensor], parts: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self._objective = forward

    def forward(self, x: torch.Tensor, *ref_values: torch.Tensor) -> torch.Tensor:
        return self._objective(x, *ref_values)


def _baseline_pssm(x: torch.Tensor, mask: torch.Tensor, background: torch.Tensor | None) -> torch.Tensor:
    """Background PSSM on scrambleable positions, the input itself on fixed/padding rows."""
    if background is None:
        base = torch.full_like(x, 1.0 / x.shape[-1])
    else:
        bg = background.to(x.device, torch.float32)
        base = (bg.unsqueeze(0) if bg.dim() == 2 else bg).expand_as(x)
    return torch.where(mask.unsqueeze(-1), base, x)


class DeepLift(_SignedBaseline):
    """DeepLIFT with the rescale rule (Shrikumar et al. 2017) via Captum.

    Every nonlinearity the predictor runs as a module of its own (trRosetta:
    its 123 ELUs) gets the rescale rule, Δoutput / Δinput between the input
    and the baseline; operations without a module (instance norm, softmax,
    the objective's log) pass plain gradients. Needs a predictor with a
    ``layerwise()`` context (:func:`~protscramble.predictors.base.layerwise`);
    inside it trRosetta runs its eager kernels. The baseline is the
    background PSSM on scrambleable positions (the "expected" sequence, as
    for integrated gradients). Importance = |sum over letters| of the
    attribution (or the signed sum).

    Examples
    --------
    >>> dl = DeepLift(TrRosetta("xaa"))                               # doctest: +SKIP
    >>> exp = dl.attribute(one_hot(seq)[None], background=bg)         # doctest: +SKIP
    >>> exp.importance.shape                                          # doctest: +SKIP
    (1, L)
    """

    method = "deeplift"

    def _attributions(
        self, x: torch.Tensor, baselines: torch.Tensor, ref: dict[str, torch.Tensor], max_batch: int
    ) -> torch.Tensor:
        """(x - baseline) x DeepLIFT multipliers, shaped like ``x``; ``max_batch`` counts inputs and baselines."""
        per_call = max(1, max_batch // 2)  # Captum runs inputs and baselines as one batch
        with layerwise(self.predictor) as modules, arithmetic(self.predictor), warnings.catch_warnings():
            # Captum announces its (temporary) hooks on every call.
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            dl = _captum().DeepLift(_ObjectiveModule(self._forward(list(ref)), modules))
            return self._in_slices(dl.attribute, x, ref, per_call, baselines=baselines)

    def attribute(
        self,
        inputs: torch.Tensor,
        *,
        background: torch.Tensor | None = None,
        position_mask: torch.Tensor | None = None,
        reference: Prediction | None = None,
        max_batch: int = 8,
    ) -> Explanation:
        """``background``: (L, A) or (B, L, A); default uniform over the alphabet."""
        t0 = time.perf_counter()
        x, mask, ref = self._prepare(inputs, position_mask, reference)
        baselines = self.baseline_sequences(x, mask, background)
        per_pos = sum(self._attributions(x, b, ref, max_batch) for b in baselines).sum(-1) / len(baselines)
        return self._explanation(
            per_pos if self.signed else per_pos.abs(), x, mask, t0, signed=self.signed, **self._settings()
        )

    def baseline_sequences(
        self, x: torch.Tensor, mask: torch.Tensor, background: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """The baselines attributions are averaged over: here the background PSSM alone."""
        return [_baseline_pssm(x, mask, background)]

    def _settings(self) -> dict[str, object]:
        return {}


class DeepLiftShap(DeepLift):
    """DeepLIFT averaged over baseline sequences sampled from the background (DeepSHAP).

    ``n_baselines`` sequences are drawn letter by letter from the background
    PSSM (seeded); the attribution is the mean of the DeepLIFT attributions
    against each, as Captum's ``DeepLiftShap`` computes, but one baseline at a
    time so memory stays that of a single DeepLIFT pass.
    """

    method = "deeplift_shap"

    def __init__(
        self,
        predictor: Predictor,
        objective: Objective | None = None,
        n_baselines: int = 8,
        signed: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(predictor, objective, signed)
        if n_baselines < 1:
            raise InvalidParameterError(f"number of baselines must be at least 1, got {n_baselines}")
        self.n_baselines = n_baselines
        self.seed = seed

    def baseline_sequences(
        self, x: torch.Tensor, mask: torch.Tensor, background: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """The ``n_baselines`` one-hot baselines (each shaped like ``x``) drawn from the background (seeded).

        Fixed and padding rows keep the input's letters.
        """
        # Draw on padding rows too (they may be all-zero, not a distribution), then restore them.
        pssm = _baseline_pssm(x, torch.ones_like(mask), background).reshape(-1, x.shape[-1]).cpu()
        gen = torch.Generator().manual_seed(self.seed)
        out = []
        for _ in range(self.n_baselines):
            letters = torch.multinomial(pssm, 1, generator=gen)
            sample = torch.zeros_like(pssm).scatter_(1, letters, 1.0).reshape(x.shape).to(x.device)
            out.append(torch.where(mask.unsqueeze(-1), sample, x))
        return out

    def _settings(self) -> dict[str, object]:
        return {"n_baselines": self.n_baselines, "seed": self.seed}


class InSilicoMutagenesis(_Baseline):
    """Perturbation by every single substitution.

    For each scrambleable position and each alternative letter, the mutant's
    divergence from the reference prediction is computed; a position's
    importance is the mean (or max) over its substitutions.

    Parameters
    ----------
    predictor
        Any predictor.
    divergence
        ``divergence(reference, predicted) -> (N,)``; default forward KL.
    reduction
        ``mean`` or ``max`` over the substitutions at a position.
    """

    method = "in_silico_mutagenesis"

    def __init__(
        self, predictor: Predictor, divergence: Divergence | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(predictor, None)
        if reduction not in ("mean", "max"):
            raise InvalidParameterError(f"reduction must be mean or max, got {reduction!r}")
        self.divergence = divergence or _forward_kl
        self.reduction = reduction

    def attribute(
        self,
        inputs: torch.Tensor,
        *,
        position_mask: torch.Tensor | None = None,
        reference: Prediction | None = None,
        max_batch: int = 256,
        progress: bool = False,
    ) -> Explanation:
        t0 = time.perf_counter()
        x, mask, ref = self._prepare(inputs, position_mask, reference)
        b, length, a = x.shape
        importance = torch.zeros(b, length)
        for i in tqdm(range(b), desc="in-silico mutagenesis", disable=not progress, leave=False):
            positions = torch.nonzero(mask[i]).flatten()
            # All (position, letter) substitutions of example i, the original letter excluded.
            pos = positions.repeat_interleave(a)
            letters = torch.arange(a, device=x.device).repeat(positions.numel())
            keep = x[i, pos, letters] < 0.5
            pos, letters = pos[keep], letters[keep]
            scores = torch.zeros(pos.numel())
            with torch.no_grad():
                for s in range(0, pos.numel(), max_batch):
                    p, c = pos[s : s + max_batch], letters[s : s + max_batch]
                    mutants = x[i].unsqueeze(0).repeat(p.numel(), 1, 1)
                    rows = torch.arange(p.numel(), device=x.device)
                    mutants[rows, p] = 0.0
                    mutants[rows, p, c] = 1.0
                    ref_i = {k: v[i : i + 1].expand(p.numel(), *v.shape[1:]) for k, v in ref.items()}
                    scores[s : s + p.numel()] = self.divergence(ref_i, self.predictor(mutants)).float().cpu()
            importance[i] = _reduce_by_position(scores, pos.cpu(), length, self.reduction)
        return self._explanation(importance.to(x.device), x, mask, t0, reduction=self.reduction)


def _reduce_by_position(scores: torch.Tensor, pos: torch.Tensor, length: int, reduction: str) -> torch.Tensor:
    out = torch.zeros(length)
    if pos.numel() == 0:
        return out
    if reduction == "max":
        return out.scatter_reduce(0, pos, scores, reduce="amax", include_self=False)
    counts = torch.zeros(length).scatter_add(0, pos, torch.ones_like(scores))
    return out.scatter_add(0, pos, scores) / counts.clamp_min(1.0)


class RandomImportance(_Baseline):
    """Uniform random importance: the floor every method must clear."""

    method = "random"

    def __init__(self, predictor: Predictor | None = None, seed: int = 0) -> None:
        self.predictor = predictor  # type: ignore[assignment]
        self.seed = seed

    def attribute(
        self, inputs: torch.Tensor, *, position_mask: torch.Tensor | None = None, **_: object
    ) -> Explanation:
        t0 = time.perf_counter()
        x = inputs.detach().float()
        mask = (
            torch.ones(x.shape[:2], dtype=torch.bool) if position_mask is None else position_mask.cpu().bool()
        )
        gen = torch.Generator().manual_seed(self.seed)
        imp = torch.rand(x.shape[:2], generator=gen)
        return self._explanation(imp, x.cpu(), mask, t0, seed=self.seed)
