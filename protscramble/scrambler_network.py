"""A trained Scrambler network: one forward pass per sequence instead of an optimisation.

The network (Linder et al. 2022) maps a one-hot sequence to non-negative
importance scores with residual groups of dilated 1-D convolutions -- each
block is norm -> ReLU -> conv -> norm -> ReLU -> conv plus its input, each
group adds a 1x1 "skip" projection of its input to the output, and a 1x1
convolution with softplus gives the scores. It is trained like the
per-example scrambler, on a whole data set at once: scramble with the
predicted scores, sample, compare predictions, and hold the PSSM at a
conservation budget.

Multi-scale *mask dropout* hides random stretches of positions from the
network during training (their scores are forced to 0, i.e. "not used",
and the hidden positions are shown to the network as an extra input
channel), so at inference a user can forbid residues and get an
alternative explanation instead of a degraded one.

Everything here is predictor-agnostic: the trainer talks to a
:class:`~protscramble.predictors.Predictor` and a network whose call is
``network(x, position_mask, keep_mask=None, label=None) -> scores (B, L)``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import InputFileError, InvalidParameterError
from .io import load_checkpoint, save_checkpoint
from .masking import MODES, conservation_bits, conservation_penalty, scramble_pssm
from .objectives import prediction_kl
from .predictors.base import Predictor, scrambled_forward
from .sampling import SAMPLING_METHODS, sample_pssm

Prediction = Mapping[str, torch.Tensor]
Divergence = Callable[[Prediction, Prediction], torch.Tensor]
CHECKPOINT_FORMAT = "protscramble-scrambler-training"


# ----------------------------------------------------------------------------- network


@dataclass(frozen=True)
class ScorerConfig:
    """Shape of a :class:`ResidualDilatedScorer` (published: 5 groups x 4 blocks, width 3).

    Attributes
    ----------
    in_channels
        Input feature channels.
    channels
        Hidden channels (published: 32-48).
    dilations
        One dilation per residual group.
    blocks_per_group
        Residual blocks in each group.
    kernel_size
        Convolution width.
    """

    in_channels: int
    channels: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 2, 1)
    blocks_per_group: int = 4
    kernel_size: int = 3

    def validate(self) -> None:
        if self.in_channels < 1 or self.channels < 1 or self.blocks_per_group < 1:
            raise InvalidParameterError("scorer channels and blocks must be at least 1")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise InvalidParameterError(f"kernel size must be odd and positive, got {self.kernel_size}")
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise InvalidParameterError(f"dilations must be positive, got {self.dilations}")

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> ScorerConfig:
        d = dict(d)
        d["dilations"] = tuple(d["dilations"])  # type: ignore[arg-type]
        return cls(**d)  # type: ignore[arg-type]


class MaskedInstanceNorm(torch.nn.Module):
    """Instance norm over valid positions only, so padding length does not shift the statistics."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(channels))
        self.bias = torch.nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``h`` (B, C, L), zero on padding; ``m`` (B, 1, L) float 0/1."""
        n = m.sum(-1, keepdim=True).clamp_min(1.0)
        mean = h.sum(-1, keepdim=True) / n  # padding rows are zero, so plain sums are masked sums
        var = (h * h).sum(-1, keepdim=True) / n - mean * mean
        scale = self.weight[:, None] * torch.rsqrt(var.clamp_min(0.0) + self.eps)
        return (h * scale + (self.bias[:, None] - mean * scale)) * m


class _ResBlock(torch.nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.norm_0 = MaskedInstanceNorm(channels)
        self.conv_0 = torch.nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.norm_1 = MaskedInstanceNorm(channels)
        self.conv_1 = torch.nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        y = self.conv_0(torch.relu(self.norm_0(h, m))) * m
        y = self.conv_1(torch.relu(self.norm_1(y, m))) * m
        return h + y


class ResidualDilatedScorer(torch.nn.Module):
    """Residual groups of dilated 1-D convolutions -> softplus importance, (B, L, C) -> (B, L).

    Padding positions (``position_mask`` False) are zeroed after every layer,
    so they neither receive scores nor leak into neighbours' features.
    """

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config.channels
        self.conv_in = torch.nn.Conv1d(config.in_channels, c, 1)
        self.skips = torch.nn.ModuleList([torch.nn.Conv1d(c, c, 1) for _ in config.dilations])
        self.groups = torch.nn.ModuleList(
            [
                torch.nn.ModuleList(
                    [_ResBlock(c, config.kernel_size, d) for _ in range(config.blocks_per_group)]
                )
                for d in config.dilations
            ]
        )
        self.conv_last = torch.nn.Conv1d(c, c, 1)
        self.conv_out = torch.nn.Conv1d(c, 1, 1)

    def forward(self, features: torch.Tensor, position_mask: torch.Tensor) -> torch.Tensor:
        m = position_mask.to(features.dtype).unsqueeze(1)  # (B, 1, L)
        h = self.conv_in(features.transpose(1, 2)) * m
        skip_sum = 0.0
        for skip, blocks in zip(self.skips, self.groups, strict=True):
            skip_sum = skip_sum + skip(h)
            for block in blocks:
                h = block(h, m)
        out = self.conv_out(self.conv_last(h) + skip_sum)
        return torch.nn.functional.softplus(out).squeeze(1) * m.squeeze(1)


class SequenceScrambler(torch.nn.Module):
    """Single-sequence scrambler network: one-hot + keep-mask channel -> scores.

    The generic network for any single-chain predictor; pair predictors wrap
    :class:`ResidualDilatedScorer` their own way (see :mod:`protscramble.pairs`).
    """

    kind = "sequence"

    def __init__(self, alphabet_size: int, channels: int = 32, **config: object) -> None:
        super().__init__()
        self.alphabet_size = alphabet_size
        self.scorer = ResidualDilatedScorer(
            ScorerConfig(in_channels=alphabet_size + 1, channels=channels, **config)
        )  # type: ignore[arg-type]

    def config(self) -> dict[str, object]:
        cfg = self.scorer.config.as_dict()
        cfg.pop("in_channels")
        return {"kind": self.kind, "alphabet_size": self.alphabet_size, **cfg}

    def forward(
        self,
        x: torch.Tensor,
        position_mask: torch.Tensor,
        keep_mask: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        keep = position_mask if keep_mask is None else keep_mask & position_mask
        feats = torch.cat([x, keep.to(x.dtype).unsqueeze(-1)], dim=-1)
        return self.scorer(feats, position_mask) * keep.to(x.dtype)


# ----------------------------------------------------------------------------- mask dropout


def multi_scale_mask_dropout(
    position_mask: torch.Tensor,
    scales: tuple[int, ...] = (1, 2, 4, 7),
    min_rate: float = 0.0,
    max_rate: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random keep-mask (B, L) that hides stretches of positions at several scales.

    Each example draws an overall drop rate in [min_rate, max_rate] and random
    weights over the scales; at scale ``s`` blocks of ``s`` consecutive
    positions are hidden with probability ``rate * weight_s``. Padding stays
    False.
    """
    if not 0.0 <= min_rate <= max_rate <= 1.0:
        raise InvalidParameterError(
            f"mask drop rates must satisfy 0 <= min <= max <= 1, got {min_rate}, {max_rate}"
        )
    b, length = position_mask.shape
    dev = position_mask.device
    rates = min_rate + (max_rate - min_rate) * torch.rand(b, 1, generator=generator, device=dev)
    weights = torch.softmax(10.0 * torch.rand(b, len(scales), generator=generator, device=dev) - 5.0, dim=-1)
    keep = position_mask.clone()
    for k, s in enumerate(scales):
        coarse = torch.rand(b, math.ceil(length / s), generator=generator, device=dev)
        dropped = (coarse < rates * weights[:, k : k + 1]).repeat_interleave(s, dim=1)[:, :length]
        keep &= ~dropped
    return keep


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainingSettings:
    """Settings of a scrambler-network training run (all recorded in the checkpoint).

    ``maximize_divergence`` defaults to True in occlusion mode (move away from
    the reference prediction) and False in inclusion mode; pass False in
    occlusion mode when the reference is the inverted label (move towards it).
    """

    mode: str = "inclusion"
    target_bits: float = 0.25
    entropy_weight: float = 10.0
    epochs: int = 10
    batch_size: int = 32
    samples: int = 4
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    temperature: float = 0.5
    sampling: str = "gumbel_softmax"
    maximize_divergence: bool | None = None
    mask_dropout: bool = True
    mask_drop_scales: tuple[int, ...] = (1, 2, 4, 7)
    mask_max_drop_rate: float = 0.5
    seed: int = 0
    checkpoint_every_seconds: float = 60.0
    time_limit_seconds: float | None = None

    def validate(self) -> None:
        if self.mode not in MODES:
            raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (self.target_bits >= 0 and math.isfinite(self.target_bits)):
            raise InvalidParameterError(f"target bits must be a finite number >= 0, got {self.target_bits}")
        for name in ("epochs", "batch_size", "samples"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(
                    f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}"
                )
        if not self.learning_rate > 0:
            raise InvalidParameterError(f"learning rate must be > 0, got {self.learning_rate}")
        if not self.temperature > 0:
            raise InvalidParameterError(f"temperature must be > 0, got {self.temperature}")
        if self.sampling not in SAMPLING_METHODS:
            raise InvalidParameterError(f"sampling must be one of {', '.join(SAMPLING_METHODS)}")
        if self.time_limit_seconds is not None and not self.time_limit_seconds > 0:
            raise InvalidParameterError(f"time limit must be > 0 seconds, got {self.time_limit_seconds}")

    @property
    def sign(self) -> float:
        maximize = self.mode == "occlusion" if self.maximize_divergence is None else self.maximize_divergence
        return -1.0 if maximize else 1.0

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["mask_drop_scales"] = list(self.mask_drop_scales)
        return d

    def fingerprint(self) -> dict[str, object]:
        """The settings that must match for a checkpoint to be resumed."""
        d = self.as_dict()
        for volatile in ("epochs", "checkpoint_every_seconds", "time_limit_seconds"):
            d.pop(volatile)
        return d


@dataclass
class TrainingData:
    """Examples to train on, all tensors indexed by example.

    Attributes
    ----------
    inputs
        (N, L, A) one-hot sequences.
    position_mask
        (N, L) bool, False on padding.
    background
        (N, L, A) background per example.
    reference
        Prediction-shaped dict of (N, ...) tensors to keep or move from/to.
    labels
        Optional (N,) float labels, passed to networks that take a label input.
    """

    inputs: torch.Tensor
    position_mask: torch.Tensor
    background: torch.Tensor
    reference: dict[str, torch.Tensor]
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batch(self, idx: torch.Tensor, device: torch.device) -> TrainingData:
        return TrainingData(
            inputs=self.inputs[idx].to(device),
            position_mask=self.position_mask[idx].to(device),
            background=self.background[idx].to(device),
            reference={k: v[idx].to(device) for k, v in self.reference.items()},
            labels=None if self.labels is None else self.labels[idx].to(device),
        )


@dataclass
class TrainingHistory:
    """Per-epoch curves of a training run."""

    train_loss: list[float] = field(default_factory=list)
    train_divergence: list[float] = field(default_factory=list)
    train_bits: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_divergence: list[float] = field(default_factory=list)
    val_bits: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class ScramblerTrainer:
    """Train a scrambler network against any predictor, with resumable checkpoints.

    Parameters
    ----------
    predictor
        The frozen predictor to explain.
    network
        ``network(x, position_mask, keep_mask=None, label=None) -> (B, L)`` scores.
    settings
        :class:`TrainingSettings`.
    divergence
        ``divergence(reference, predicted) -> (N,)``; default forward KL.
    device
        Where to train.
    """

    def __init__(
        self,
        predictor: Predictor,
        network: torch.nn.Module,
        settings: TrainingSettings,
        divergence: Divergence | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        settings.validate()
        self.predictor = predictor
        self.device = torch.device(device)
        self.network = network.to(self.device)
        self.settings = settings
        self.divergence = divergence or (lambda ref, pred: prediction_kl(ref, pred, "forward"))
        self.optimizer = torch.optim.Adam(
            network.parameters(), lr=settings.learning_rate, betas=settings.betas
        )
        self.elapsed_seconds = 0.0

    # -- one batch -------------------------------------------------------------------------

    def batch_loss(
        self, data: TrainingData, generator: torch.Generator, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean loss, per-example divergence and bits of one batch."""
        st = self.settings
        x, mask = data.inputs, data.position_mask
        keep = None
        if train and st.mask_dropout:
            keep = multi_scale_mask_dropout(mask, st.mask_drop_scales, 0.0, st.mask_max_drop_rate, generator)
        scores = self.network(x, mask, keep, data.labels)
        pssm = scramble_pssm(x, scores, data.background, st.mode, mask)
        bits = conservation_bits(pssm, data.background, mask)
        k, b = st.samples, x.shape[0]
        samples = sample_pssm(pssm, k, st.sampling, st.temperature, generator, mask, x)
        forward = scrambled_forward(self.predictor, scores, st.mode, k, generator, position_mask=mask)
        pred = forward(samples.reshape(k * b, *x.shape[1:]))
        ref = {
            n: t.unsqueeze(0).expand(k, *t.shape).reshape(k * b, *t.shape[1:])
            for n, t in data.reference.items()
        }
        div = self.divergence(ref, pred).reshape(k, b).mean(0)
        loss = st.sign * div + conservation_penalty(bits, st.target_bits, st.entropy_weight)
        return loss.mean(), div.detach(), bits.detach()

    def evaluate(self, data: TrainingData, seed: int = 12345) -> tuple[float, float, float]:
        """Mean loss, divergence and bits on ``data`` (no mask dropout, fixed sampling seed)."""
        self.network.eval()
        gen = torch.Generator(device=self.device).manual_seed(seed)
        totals = np.zeros(3)
        with torch.no_grad():
            for s in range(0, len(data), self.settings.batch_size):
                idx = torch.arange(s, min(s + self.settings.batch_size, len(data)))
                loss, div, bits = self.batch_loss(data.batch(idx, self.device), gen, train=False)
                totals += np.array([loss.item() * len(idx), div.sum().item(), bits.sum().item()])
        self.network.train()
        return tuple(float(v) for v in totals / max(1, len(data)))  # type: ignore[return-value]

    # -- checkpoints -----------------------------------------------------------------------

    def _checkpoint(self, state: dict[str, object]) -> dict[str, object]:
        return {
            "format": CHECKPOINT_FORMAT,
            "settings": self.settings.as_dict(),
            "fingerprint": self.settings.fingerprint(),
            "network_config": _network_config(self.network),
            "network_state": {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()},
            "optimizer_state": self.optimizer.state_dict(),
            **state,
        }

    def _resume(self, path: Path, data_fingerprint: str) -> dict[str, object] | None:
        if not path.exists():
            return None
        ckpt = load_checkpoint(path)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise InputFileError(f"{path} is not a scrambler training checkpoint")
        same = (
            ckpt["fingerprint"] == self.settings.fingerprint()
            and ckpt["network_config"] == _network_config(self.network)
            and ckpt.get("data_fingerprint", "") == data_fingerprint
        )
        if not same:
            raise InvalidParameterError(
                f"checkpoint {path} was written by a run with different settings; "
                "delete it (or choose another checkpoint path) to start afresh"
            )
        self.network.load_state_dict(ckpt["network_state"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(ckpt["optimizer_state"])  # type: ignore[arg-type]
        return ckpt

    # -- the loop --------------------------------------------------------------------------

    def fit(
        self,
        train: TrainingData,
        validation: TrainingData | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        progress: bool = False,
        stop_after_steps: int | None = None,
        data_fingerprint: str = "",
    ) -> TrainingHistory:
        """Train for ``settings.epochs`` epochs (resuming from ``checkpoint_path`` if it exists).

        The network ends with the weights of the epoch with the lowest
        validation loss (the last epoch when there is no validation set).
        ``stop_after_steps`` interrupts the run after that many updates, as
        a crash would (used to test resuming). ``data_fingerprint`` identifies
        the training data; a checkpoint of other data is not resumed.
        """
        st = self.settings
        if len(train) == 0:
            raise InvalidParameterError("no training examples")
        ckpt_path = None if checkpoint_path is None else Path(checkpoint_path)
        history = TrainingHistory()
        epoch, step_in_epoch, best_loss, best_state = 0, 0, math.inf, None
        gen = torch.Generator(device=self.device).manual_seed(st.seed)
        elapsed_before = 0.0
        ckpt = None if ckpt_path is None else self._resume(ckpt_path, data_fingerprint)
        if ckpt is not None:
            history = TrainingHistory(**ckpt["history"])  # type: ignore[arg-type]
            epoch, step_in_epoch = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])  # type: ignore[arg-type]
            best_loss = float(ckpt["best_loss"])  # type: ignore[arg-type]
            best_state = ckpt.get("best_state")
            gen.set_state(ckpt["generator_state"])  # type: ignore[arg-type]
            elapsed_before = float(ckpt["elapsed_seconds"])  # type: ignore[arg-type]
            running = ckpt["running"]
        else:
            running = [0.0, 0.0, 0.0, 0]

        t_start = time.perf_counter()
        last_ckpt = t_start
        steps_done = 0
        n_batches = math.ceil(len(train) / st.batch_size)

        def save(complete: bool = False) -> None:
            if ckpt_path is None:
                return
            state = {
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "history": history.as_dict(),
                "best_loss": best_loss,
                "best_state": best_state,
                "generator_state": gen.get_state(),
                "elapsed_seconds": elapsed_before + time.perf_counter() - t_start,
                "running": list(running),
                "complete": complete,
                "data_fingerprint": data_fingerprint,
            }
            save_checkpoint(ckpt_path, self._checkpoint(state))

        self.network.train()
        bar = tqdm(
            total=st.epochs * n_batches,
            initial=epoch * n_batches + step_in_epoch,
            desc=f"training ({st.mode})",
            disable=not progress,
        )
        while epoch < st.epochs:
            # The epoch's order depends only on (seed, epoch), so a resumed run sees the same batches.
            order = torch.randperm(
                len(train), generator=torch.Generator().manual_seed(st.seed * 100_003 + epoch)
            )
            t_epoch = time.perf_counter()
            while step_in_epoch < n_batches:
                idx = order[step_in_epoch * st.batch_size : (step_in_epoch + 1) * st.batch_size]
                self.optimizer.zero_grad(set_to_none=True)
                loss, div, bits = self.batch_loss(train.batch(idx, self.device), gen, train=True)
                loss.backward()
                self.optimizer.step()
                running = [
                    running[0] + loss.item() * len(idx),
                    running[1] + div.sum().item(),
                    running[2] + bits.sum().item(),
                    running[3] + len(idx),
                ]
                step_in_epoch += 1
                steps_done += 1
                bar.update(1)
                bar.set_postfix(
                    loss=f"{running[0] / running[3]:.3f}",
                    kl=f"{running[1] / running[3]:.3f}",
                    bits=f"{running[2] / running[3]:.2f}",
                )
                now = time.perf_counter()
                if stop_after_steps is not None and steps_done >= stop_after_steps:
                    save()
                    bar.close()
                    return history
                if (
                    st.time_limit_seconds is not None
                    and elapsed_before + now - t_start > st.time_limit_seconds
                ):
                    history.stopped_early = True
                    break
                if now - last_ckpt > st.checkpoint_every_seconds:
                    save()
                    last_ckpt = now
            n = max(1, running[3])
            history.train_loss.append(running[0] / n)
            history.train_divergence.append(running[1] / n)
            history.train_bits.append(running[2] / n)
            history.epoch_seconds.append(time.perf_counter() - t_epoch)
            if validation is not None and len(validation) > 0:
                vl, vd, vb = self.evaluate(validation)
            else:
                vl, vd, vb = history.train_loss[-1], history.train_divergence[-1], history.train_bits[-1]
            history.val_loss.append(vl)
            history.val_divergence.append(vd)
            history.val_bits.append(vb)
            if vl < best_loss or validation is None:
                best_loss = vl
                history.best_epoch = epoch
                best_state = {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}
            epoch += 1
            step_in_epoch = 0
            running = [0.0, 0.0, 0.0, 0]
            if history.stopped_early:
                break
            save()
            last_ckpt = time.perf_counter()
        bar.close()
        if best_state is not None:
            self.network.load_state_dict(best_state)  # type: ignore[arg-type]
        save(complete=True)
        self.elapsed_seconds = elapsed_before + time.perf_counter() - t_start
        return history


def _network_config(network: torch.nn.Module) -> dict[str, object]:
    config = getattr(network, "config", None)
    return config() if callable(config) else {"class": type(network).__name__}
