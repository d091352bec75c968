"""Per-example scrambling: optimise importance scores for each input.

The published protocol (Linder et al. 2022, trRosetta section) is the
default: scores are the softplus of instance-normalised free logits, Adam
(lr 0.01, betas 0.5/0.9), Gumbel-softmax samples at temperature 0.5, 8
samples per update, conservation penalty weight 10, 500 updates.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import InvalidParameterError
from .explanation import Explanation
from .io import load_checkpoint, save_checkpoint
from .masking import MODES, conservation_bits, conservation_penalty, scramble_pssm
from .objectives import KL_DIRECTIONS, prediction_kl
from .predictors.base import Predictor, arithmetic, scrambled_forward
from .sampling import SAMPLING_METHODS, sample_pssm

Prediction = Mapping[str, torch.Tensor]
#: ``divergence(reference, predicted) -> (N,)``: how far predictions moved.
Divergence = Callable[[Prediction, Prediction], torch.Tensor]


@dataclass(frozen=True)
class ScramblerSettings:
    """Settings of a per-example scrambling run (all recorded in results)."""

    mode: str = "inclusion"
    target_bits: float = 1.0
    entropy_weight: float = 10.0
    steps: int = 500
    samples: int = 8
    learning_rate: float = 0.01
    betas: tuple[float, float] = (0.5, 0.9)
    temperature: float = 0.5
    sampling: str = "gumbel_softmax"
    kl_direction: str = "forward"
    clip_value: float | None = None
    max_batch: int | None = None
    # Keras AdamAccumulate as published: the samples form this many equal groups whose gradients
    # are clipped each on its own, then averaged into one update. Only matters with ``clip_value``
    # (element-wise clipping is not linear); the published trRosetta runs used 2 groups of 4.
    accumulation_steps: int = 1

    def validate(self) -> None:
        if self.mode not in MODES:
            raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (self.target_bits >= 0 and math.isfinite(self.target_bits)):
            raise InvalidParameterError(f"target bits must be a finite number >= 0, got {self.target_bits}")
        if self.steps < 1:
            raise InvalidParameterError(f"steps must be at least 1, got {self.steps}")
        if self.samples < 1:
            raise InvalidParameterError(f"samples must be at least 1, got {self.samples}")
        if self.entropy_weight < 0:
            raise InvalidParameterError(f"entropy weight must be >= 0, got {self.entropy_weight}")
        if not self.learning_rate > 0:
            raise InvalidParameterError(f"learning rate must be > 0, got {self.learning_rate}")
        if not self.temperature > 0:
            raise InvalidParameterError(f"temperature must be > 0, got {self.temperature}")
        if self.sampling not in SAMPLING_METHODS:
            raise InvalidParameterError(f"sampling must be one of {', '.join(SAMPLING_METHODS)}")
        if self.kl_direction not in KL_DIRECTIONS:
            raise InvalidParameterError(f"KL direction must be one of {', '.join(KL_DIRECTIONS)}")
        if self.clip_value is not None and not self.clip_value > 0:
            raise InvalidParameterError(f"gradient clip value must be > 0, got {self.clip_value}")
        if self.max_batch is not None and self.max_batch < 1:
            raise InvalidParameterError(f"max batch must be at least 1, got {self.max_batch}")
        if self.accumulation_steps < 1 or self.samples % self.accumulation_steps:
            raise InvalidParameterError(
                f"accumulation steps must divide the {self.samples} samples per update, "
                f"got {self.accumulation_steps}"
            )

    def fingerprint_fields(self) -> dict[str, object]:
        """The settings that identify a run, without fields added later at their old value
        (so a checkpoint written before such a field existed still resumes)."""
        d = asdict(self)
        if d["accumulation_steps"] == 1:
            del d["accumulation_steps"]
        return d


_NORM_EPS = 1e-5


def _masked_mean_var(z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance of ``z`` over the positions where ``mask`` is 1, per row."""
    n = mask.sum(-1, keepdim=True).clamp_min(1.0)
    mean = (z * mask).sum(-1, keepdim=True) / n
    return mean, (((z - mean) * mask) ** 2).sum(-1, keepdim=True) / n


class ScoreParameterisation(torch.nn.Module):
    """Scores = softplus(gamma * instance_norm(logits) + beta), per example.

    Instance normalisation over positions keeps the logits' scale from
    running away, so the conservation penalty is met by ``gamma``/``beta``
    and the logits only decide the ranking of positions.

    The logits are stored standardised and scaled to ``logit_scale`` with
    ``gamma``/``beta`` holding the given logits' spread and mean, so the start
    reproduces ``softplus(logits)`` (to the normalisation's epsilon: 1e-5 / (2
    logit_scale^2), 0.05% at L = 100). The scale matters because Adam moves
    every logit by about the learning rate per update whatever its size: the
    published scrambler draws its (1, L) logit embedding glorot-normal, standard
    deviation sqrt(2 / (1 + L)) (:func:`published_logit_scale`), and a ranking
    stored at unit scale would move about sqrt(L / 2) times slower.
    """

    def __init__(self, logits: torch.Tensor, position_mask: torch.Tensor, logit_scale: float = 1.0) -> None:
        super().__init__()
        if not logit_scale > 0:
            raise InvalidParameterError(f"logit scale must be > 0, got {logit_scale}")
        self.register_buffer("mask", position_mask.to(logits.dtype))
        mean, std = self._moments(logits)
        self.logits = torch.nn.Parameter((logits - mean) / std * logit_scale)
        self.gamma = torch.nn.Parameter(std.clone())
        self.beta = torch.nn.Parameter(mean.clone())

    def _moments(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = _masked_mean_var(z, self.mask)
        return mean, torch.sqrt(var + _NORM_EPS)

    def forward(self) -> torch.Tensor:
        mean, std = self._moments(self.logits)
        z = (self.logits - mean) / std
        return torch.nn.functional.softplus(self.gamma * z + self.beta) * self.mask


def published_logit_scale(length: int) -> float:
    """Standard deviation of the published per-example logits: glorot-normal for a (1, L) embedding."""
    return math.sqrt(2.0 / (1 + length))


def _inverse_softplus(s: torch.Tensor) -> torch.Tensor:
    s = s.clamp_min(1e-4)
    return s + torch.log(-torch.expm1(-s))


#: Format tag of a per-example optimisation checkpoint.
CHECKPOINT_FORMAT = "protscramble-per-example"


def _update_seed(seeds: Sequence[int], step: int) -> int:
    """Seed of the global generator for update ``step`` of a run with per-example ``seeds``."""
    digest = hashlib.sha256(f"{list(seeds)}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _seed_global(seed: int, device: torch.device) -> None:
    """Seed the global generators a predictor on ``device`` draws from (only those: fork_rng restores them)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _fingerprint(*tensors: torch.Tensor | None, extra: object = None) -> str:
    """SHA-256 of the tensors' bytes and ``repr(extra)``: what a checkpoint must have been run on."""
    h = hashlib.sha256(repr(extra).encode())
    for t in tensors:
        h.update(b"none" if t is None else t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


#: Relative tolerance for a checkpoint's reference prediction: the same predictor run with another
#: thread count (or BLAS) sums in another order and differs in the last bits, which must not void a
#: checkpoint, while another input or predictor changes the prediction by far more.
REFERENCE_RTOL = 1e-3


def _reference_signature(reference: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per map and example, four fixed random projections of the reference prediction (float64).

    The reference is computed by the predictor, so its bytes depend on the arithmetic's summation
    order; the signature is compared with a tolerance (:data:`REFERENCE_RTOL`) instead of hashed.
    """
    sig = {}
    for name in sorted(reference):
        t = reference[name].detach().cpu().double()
        flat = t.reshape(t.shape[0], -1)
        directions = torch.randn(
            flat.shape[1], 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        sig[name] = flat @ directions
    return sig


def _same_reference(saved: object, current: Mapping[str, torch.Tensor]) -> bool:
    if not isinstance(saved, dict) or sorted(saved) != sorted(current):
        return False
    for name, now in current.items():
        then = saved[name]
        if not isinstance(then, torch.Tensor) or then.shape != now.shape:
            return False
        if torch.linalg.vector_norm(then - now) > REFERENCE_RTOL * torch.linalg.vector_norm(now) + 1e-12:
            return False
    return True


def _repeat_reference(reference: Prediction, k: int) -> dict[str, torch.Tensor]:
    return {
        n: t.unsqueeze(0).expand(k, *t.shape).reshape(k * t.shape[0], *t.shape[1:])
        for n, t in reference.items()
    }


class PerExampleScrambler:
    """Scrambler that optimises importance for each input separately.

    Parameters
    ----------
    predictor
        Any :class:`~protscramble.predictors.Predictor`.
    divergence
        ``divergence(reference, predicted) -> (N,)``; defaults to
        :func:`~protscramble.objectives.prediction_kl` in the direction of
        ``settings.kl_direction``. Forward KL(P_original || P_scrambled) is the
        default: it is the published evaluation figure and it is mass-covering
        (it punishes scrambled predictions that lose any mode the original
        prediction had). The published trRosetta scrambler trained on the
        reverse, KL(P_scrambled || P_original) (``kl_direction="reverse"``), which
        the benchmark's protocols use.
    **settings
        Fields of :class:`ScramblerSettings`.

    Examples
    --------
    >>> import torch
    >>> class Toy:
    ...     alphabet = "AB"
    ...     def __call__(self, x):
    ...         return {"y": torch.softmax(x[:, :1, :] * 5, -1)}  # only position 0 matters
    >>> x = torch.eye(2)[[0, 1, 1, 0]][None]
    >>> bg = torch.full((4, 2), 0.5)
    >>> exp = PerExampleScrambler(Toy(), steps=150, samples=4, target_bits=0.25).attribute(x, bg)
    >>> int(exp.importance[0].argmax())
    0
    """

    def __init__(
        self, predictor: Predictor, divergence: Divergence | None = None, **settings: object
    ) -> None:
        self.predictor = predictor
        self.settings = ScramblerSettings(**settings)  # type: ignore[arg-type]
        self.settings.validate()
        direction = self.settings.kl_direction
        self.divergence = divergence or (lambda ref, pred: prediction_kl(ref, pred, direction))

    def attribute(
        self,
        inputs: torch.Tensor,
        background: torch.Tensor,
        *,
        position_mask: torch.Tensor | None = None,
        reference: Prediction | None = None,
        init_scores: torch.Tensor | None = None,
        seed: int | Sequence[int] = 0,
        progress: bool = False,
        callback: Callable[[int, dict[str, np.ndarray]], None] | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 25,
        run_key: object = None,
    ) -> Explanation:
        """Optimise importance for a batch of equal-length inputs.

        Parameters
        ----------
        inputs
            One-hot sequences (B, L, A) on the device to run on.
        background
            (L, A) or (B, L, A) strictly positive background distributions.
        position_mask
            (B, L) bool; False positions (padding) are never scrambled and get
            importance 0.
        reference
            Prediction to keep (inclusion) or move away from (occlusion); by
            default the predictor's output on ``inputs``, computed once.
        init_scores
            (B, L) starting importance (e.g. from a trained scrambler network).
        seed
            Seeds the initial logits and every Gumbel draw. Each example has
            its own random streams, so an example's result does not depend
            on the other examples in its batch; a list gives one seed per
            example. A predictor with stochastic layers (dropout) draws from
            torch's global generator, which is seeded at every update from the
            seeds and the update's index (and restored afterwards), so such
            runs repeat and resume exactly too; its draws are shared by the batch.
        progress
            Show a progress bar on stderr.
        callback
            Called after every update with the step index and per-example
            ``loss``/``divergence``/``bits``.
        checkpoint
            File to save the optimisation state to every ``checkpoint_every``
            updates and on ``KeyboardInterrupt`` (Ctrl-C; SIGTERM through the CLI)
            as of the start of the interrupted update (atomically). When it holds
            the state of the same run (same settings, seeds, inputs, background,
            mask and start, and a reference prediction equal within
            :data:`REFERENCE_RTOL`), the run continues from
            it, bit for bit the result of an uninterrupted run on the same machine and
            thread count; a checkpoint of another run is replaced, with a warning.
        run_key
            JSON-like record of anything else the result depends on that the
            engine cannot see (e.g. the predictor's dropout being on); a
            checkpoint saved under another key is another run.
        """
        st = self.settings
        if inputs.dim() != 3:
            raise InvalidParameterError(f"inputs must be (B, L, A), got shape {tuple(inputs.shape)}")
        b, length, a = inputs.shape
        if a != len(self.predictor.alphabet):
            raise InvalidParameterError(
                f"inputs have {a} channels, the predictor's alphabet has {len(self.predictor.alphabet)}"
            )
        device = inputs.device
        x = inputs.detach().float()
        bg = background.to(device=device, dtype=torch.float32)
        if bg.shape[-2:] != (length, a):
            raise InvalidParameterError(
                f"background shape {tuple(bg.shape)} does not match inputs ({length}, {a})"
            )
        mask = (
            torch.ones(b, length, dtype=torch.bool, device=device)
            if position_mask is None
            else position_mask.to(device)
        )

        t0 = time.perf_counter()
        seeds = [int(seed)] * b if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != b:
            raise InvalidParameterError(f"{len(seeds)} seeds for a batch of {b}")
        # The predictor's own randomness (dropout) comes from the global generator: fork it, and seed
        # each update from (seeds, update), so a resumed run draws what the uninterrupted one did.
        rng_devices: list[int] = []
        if device.type == "cuda":
            rng_devices = [torch.cuda.current_device() if device.index is None else device.index]
        if reference is None:
            with torch.no_grad(), torch.random.fork_rng(devices=rng_devices):
                _seed_global(_update_seed(seeds, -1), device)
                reference = {k: v.detach().float() for k, v in self.predictor(x).items()}
        if init_scores is None:
            # Random logits standardised over the scrambleable positions, so gamma = 1 and beta = 0
            # at the start, as published (the instance norm removes the draw's own mean and spread).
            logits0 = torch.stack(
                [torch.randn(length, generator=torch.Generator().manual_seed(s)) for s in seeds]
            ).to(device)
            mean, var = _masked_mean_var(logits0, mask.float())
            logits0 = (logits0 - mean) * torch.rsqrt(var + _NORM_EPS)
        else:
            logits0 = _inverse_softplus(init_scores.detach().float().to(device))
        params = ScoreParameterisation(logits0, mask, published_logit_scale(length)).to(device)
        opt = torch.optim.Adam(params.parameters(), lr=st.learning_rate, betas=st.betas)
        gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        trace = {k: np.zeros((st.steps, b), dtype=np.float32) for k in ("loss", "divergence", "bits")}
        if checkpoint_every < 1:
            raise InvalidParameterError(f"checkpoint interval must be at least 1, got {checkpoint_every}")
        # The reference enters by shape here and by a tolerant signature below (see REFERENCE_RTOL).
        run_id = _fingerprint(
            x, bg, mask, init_scores,
            extra=(st.fingerprint_fields(), seeds, {k: tuple(v.shape) for k, v in sorted(reference.items())})
            + (() if run_key is None else (run_key,)),  # no key: the fingerprint of earlier checkpoints
        )  # fmt: skip
        ref_signature = _reference_signature(reference) if checkpoint is not None else {}
        first, seconds_before = 0, 0.0
        if checkpoint is not None and os.path.exists(checkpoint):
            state = load_checkpoint(checkpoint)
            same_run = (
                state.get("format") == CHECKPOINT_FORMAT
                and state.get("run") == run_id
                and _same_reference(state.get("reference_signature"), ref_signature)
            )
            # CPU and CUDA generators are different algorithms: a run saved on one kind of device
            # cannot continue its random streams on the other, so it is another run here.
            saved_generators: list[torch.Tensor] = state.get("generators", [])  # type: ignore[assignment]
            same_device = [g.get_state().shape for g in gens] == [t.shape for t in saved_generators]
            if same_run and not same_device:
                warnings.warn(
                    f"{checkpoint} was saved on another kind of device ({device.type} here), whose "
                    "random streams cannot continue here; starting from update 1 and replacing it",
                    stacklevel=2,
                )
            elif same_run:
                params.load_state_dict(state["params"])  # type: ignore[arg-type]
                opt.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
                for g, g_state in zip(gens, state["generators"], strict=True):  # type: ignore[arg-type]
                    g.set_state(g_state)
                for k in trace:
                    trace[k][:] = state["trace"][k].numpy()  # type: ignore[index]
                first, seconds_before = int(state["step"]), float(state["seconds"])  # type: ignore[arg-type]
            else:
                warnings.warn(
                    f"{checkpoint} holds another run (settings, seeds, inputs or reference differ); "
                    "starting from update 1 and replacing it",
                    stacklevel=2,
                )

        last_saved = [first]

        def save(step: int, generator_states: list[torch.Tensor]) -> None:
            save_checkpoint(checkpoint, {
                "format": CHECKPOINT_FORMAT, "run": run_id, "step": step,
                "reference_signature": ref_signature,
                "seconds": seconds_before + time.perf_counter() - t0,
                "params": params.state_dict(), "optimizer": opt.state_dict(),
                "generators": generator_states,
                "trace": {k: torch.from_numpy(v) for k, v in trace.items()},
            })  # fmt: skip
            last_saved[0] = step

        chunk = st.samples if st.max_batch is None else max(1, st.max_batch // b)
        sign = 1.0 if st.mode == "inclusion" else -1.0
        bar = tqdm(range(first, st.steps), desc=f"scrambling ({st.mode})", disable=not progress, leave=False)
        # An interrupted update is redone from its start. Until opt.step() begins, parameters and
        # optimiser still hold that state (``unchanged``); only the generators' earlier states are kept.
        step, unchanged, gens_at_start = first, False, []
        try:
            with arithmetic(self.predictor), torch.random.fork_rng(devices=rng_devices):
                for step in bar:
                    _seed_global(_update_seed(seeds, step), device)
                    if checkpoint is not None:
                        gens_at_start = [g.get_state() for g in gens]
                        unchanged = True
                    opt.zero_grad(set_to_none=True)
                    scores = params()
                    pssm = scramble_pssm(x, scores, bg, st.mode, mask)
                    bits = conservation_bits(pssm, bg, mask)
                    penalty = conservation_penalty(bits, st.target_bits, st.entropy_weight)
                    div_sum = torch.zeros(b, device=device)
                    groups = st.accumulation_steps
                    group_size = st.samples // groups
                    summed: list[torch.Tensor] = []  # clipped gradients of the groups so far
                    for group in range(groups):
                        done = 0
                        while done < group_size:
                            k = min(chunk, group_size - done)
                            samples = sample_pssm(pssm, k, st.sampling, st.temperature, gens, mask, x)
                            forward = scrambled_forward(
                                self.predictor, scores, st.mode, k, gens, position_mask=mask
                            )
                            pred = forward(samples.reshape(k * b, length, a))
                            div = self.divergence(_repeat_reference(reference, k), pred).reshape(k, b).sum(0)
                            last = done + k >= group_size
                            # Accumulate gradients chunk by chunk so memory is bounded by max_batch;
                            # each group's loss is its mean divergence plus the penalty, as a Keras step.
                            chunk_loss = (sign * div / group_size).sum() + (penalty.sum() if last else 0.0)
                            chunk_loss.backward(retain_graph=not (last and group == groups - 1))
                            div_sum += div.detach()
                            done += k
                        # element-wise, as Keras' clipvalue (published with-MSA); per group, as AdamAccumulate
                        if st.clip_value is not None:
                            torch.nn.utils.clip_grad_value_(params.parameters(), st.clip_value)
                        # set the group's gradients aside; the next group starts from zero
                        grads = [p.grad for p in params.parameters()]
                        summed = grads if not summed else [s + g for s, g in zip(summed, grads, strict=True)]
                        opt.zero_grad(set_to_none=True)
                    # AdamAccumulate: the mean of the groups' clipped gradients (one group: unchanged, x / 1 is exact)
                    for p, s in zip(params.parameters(), summed, strict=True):
                        p.grad = s / groups
                    unchanged = False
                    opt.step()
                    div_mean = (div_sum / st.samples).cpu().numpy()
                    trace["divergence"][step] = div_mean
                    trace["bits"][step] = bits.detach().cpu().numpy()
                    trace["loss"][step] = sign * div_mean + penalty.detach().cpu().numpy()
                    if progress:
                        bar.set_postfix(kl=f"{div_mean.mean():.3f}", bits=f"{trace['bits'][step].mean():.2f}")
                    if checkpoint is not None and (
                        (step + 1) % checkpoint_every == 0 or step + 1 == st.steps
                    ):
                        save(step + 1, [g.get_state() for g in gens])
                    if callback is not None:
                        callback(step, {k: v[step] for k, v in trace.items()})
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM via the CLI, a budget stop: keep what is done
            if unchanged and step > last_saved[0]:
                save(step, gens_at_start)
            raise

        with torch.no_grad():
            scores = params()
            pssm = scramble_pssm(x, scores, bg, st.mode, mask)
            bits = conservation_bits(pssm, bg, mask)
        settings = asdict(st) | {
            "seed": seed,
            "method": "scrambler",
            "optimisation_seconds": seconds_before + time.perf_counter() - t0,
        }
        if first:  # continued from a checkpoint
            settings |= {"resumed_at_step": first, "seconds_before_resume": seconds_before}
        return Explanation(
            importance=scores.cpu().numpy(),
            method=f"scrambler_{st.mode}",
            inputs=x.cpu().numpy(),
            pssm=pssm.cpu().numpy(),
            bits=bits.cpu().numpy(),
            trace=trace,
            settings=settings,
        )
