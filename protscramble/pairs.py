"""Scrambling explanations for pair predictors (two chains, one prediction).

Pairs use the heterodimer adapter's layout: one (162, 19) matrix per pair,
chain 1 in rows 0-80 and chain 2 in rows 81-161, zero rows as padding.

* :class:`SiamesePairScrambler` applies one scorer network to each chain;
* :class:`JointPairScrambler` sees both chains at once, plus a chain-id and
  a label channel;
* :func:`train_pair_scrambler`, :func:`explain_with_network`,
  :func:`explain_per_example` (optionally fine-tuning the network's scores)
  and :func:`benchmark_pairs` tie them to a predictor.

Occlusion has two references: the *inverted label* (move the prediction
towards the other class, a bounded minimisation; the default for training
networks) or the *prediction* itself (move away from it, as the engine's
occlusion does; the default per example and for fine-tuning).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import InputFileError, InvalidParameterError
from .explanation import Explanation
from .faithfulness import average_precision, evaluate_faithfulness
from .io import load_checkpoint, save_checkpoint
from .masking import conservation_bits, scramble_pssm
from .objectives import prediction_kl
from .predictors.heterodimer import (
    ALPHABET,
    CHAIN_LENGTH,
    PAIR_LENGTH,
    HeterodimerPredictor,
    PairBackground,
    PairTable,
    chain_ids,
    label_reference,
    make_background,
)
from .scrambler import PerExampleScrambler
from .scrambler_network import (
    ResidualDilatedScorer,
    ScorerConfig,
    ScramblerTrainer,
    TrainingData,
    TrainingHistory,
    TrainingSettings,
)

PAIR_KINDS = ("siamese", "joint")
OCCLUSION_REFERENCES = ("inverted-label", "prediction")
#: Published conservation targets per mode, in bits.
DEFAULT_TARGET_BITS = {"inclusion": 0.25, "occlusion": 2.4}
SCRAMBLER_FORMAT = "protscramble-pair-scrambler"
Prediction = Mapping[str, torch.Tensor]


# ----------------------------------------------------------------------------- networks


class PairScramblerNetwork(torch.nn.Module):
    """Base of the pair networks: ``network(x, position_mask, keep_mask, label) -> (B, 162)`` scores."""

    kind = "pair"
    extra_channels = 1  # the keep-mask channel

    def __init__(self, channels: int = 32, **config: object) -> None:
        super().__init__()
        in_channels = len(ALPHABET) + self.extra_channels
        self.scorer = ResidualDilatedScorer(
            ScorerConfig(in_channels=in_channels, channels=channels, **config)
        )  # type: ignore[arg-type]

    def config(self) -> dict[str, object]:
        cfg = self.scorer.config.as_dict()
        cfg.pop("in_channels")
        return {"kind": self.kind, **cfg}

    @staticmethod
    def _keep(position_mask: torch.Tensor, keep_mask: torch.Tensor | None) -> torch.Tensor:
        return position_mask if keep_mask is None else keep_mask.to(position_mask.device) & position_mask


class SiamesePairScrambler(PairScramblerNetwork):
    """One scorer network applied to each chain separately (shared weights)."""

    kind = "siamese"

    def forward(
        self,
        x: torch.Tensor,
        position_mask: torch.Tensor,
        keep_mask: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        keep = self._keep(position_mask, keep_mask)
        feats = torch.cat([x, keep.to(x.dtype).unsqueeze(-1)], dim=-1)
        b = x.shape[0]
        # Both chains as one batch of 2B sequences of 81 rows.
        chains = torch.cat([feats[:, :CHAIN_LENGTH], feats[:, CHAIN_LENGTH:]], dim=0)
        masks = torch.cat([position_mask[:, :CHAIN_LENGTH], position_mask[:, CHAIN_LENGTH:]], dim=0)
        scores = self.scorer(chains, masks)
        return torch.cat([scores[:b], scores[b:]], dim=1) * keep.to(x.dtype)


class JointPairScrambler(PairScramblerNetwork):
    """One network over both chains (162 rows) with chain-id and label input channels.

    The label is the class being explained (1 = binds); without one the
    caller passes the predicted class.
    """

    kind = "joint"
    extra_channels = 3  # chain id, label, keep mask

    def forward(
        self,
        x: torch.Tensor,
        position_mask: torch.Tensor,
        keep_mask: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        keep = self._keep(position_mask, keep_mask)
        b = x.shape[0]
        chain = chain_ids(b).to(x.device, x.dtype)
        y = torch.zeros(b, device=x.device) if label is None else label.to(x.device, x.dtype).reshape(b)
        lab = y[:, None].expand(b, PAIR_LENGTH)
        feats = torch.cat([x, chain.unsqueeze(-1), lab.unsqueeze(-1), keep.to(x.dtype).unsqueeze(-1)], dim=-1)
        return self.scorer(feats, position_mask) * keep.to(x.dtype)


def build_pair_network(kind: str = "siamese", channels: int = 32, **config: object) -> PairScramblerNetwork:
    """A fresh pair scrambler network (``siamese`` or ``joint``), seeded by the caller's torch RNG."""
    if kind == "siamese":
        return SiamesePairScrambler(channels, **config)
    if kind == "joint":
        return JointPairScrambler(channels, **config)
    raise InvalidParameterError(
        f"unknown scrambler architecture {kind!r}; choose from {', '.join(PAIR_KINDS)}"
    )


def network_from_config(config: Mapping[str, object]) -> PairScramblerNetwork:
    """Rebuild an (untrained) network from the ``config()`` stored with it."""
    cfg = dict(config)
    kind = str(cfg.pop("kind"))
    cfg["dilations"] = tuple(cfg["dilations"])  # type: ignore[arg-type]
    return build_pair_network(kind, **cfg)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- trained scrambler files


@dataclass
class PairScrambler:
    """A trained pair scrambler network with everything needed to use it.

    Attributes
    ----------
    network
        The trained :class:`SiamesePairScrambler` or :class:`JointPairScrambler`.
    background
        Backgrounds it was trained with (reused when explaining).
    mode
        ``inclusion`` or ``occlusion``.
    target_bits
        Conservation target it was trained at.
    occlusion_reference
        ``inverted-label`` or ``prediction`` (occlusion only).
    training_pairs
        SHA-1 digests of the training pairs (to hold them out of benchmarks).
    meta
        Settings, history and timing of the training run.
    """

    network: PairScramblerNetwork
    background: PairBackground
    mode: str
    target_bits: float
    occlusion_reference: str = "inverted-label"
    training_pairs: list[str] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        save_checkpoint(
            path,
            {
                "format": SCRAMBLER_FORMAT,
                "version": 1,
                "network_config": self.network.config(),
                "network_state": {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()},
                "background": self.background.state(),
                "mode": self.mode,
                "target_bits": float(self.target_bits),
                "occlusion_reference": self.occlusion_reference,
                "training_pairs": list(self.training_pairs),
                "meta": self.meta,
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> PairScrambler:
        state = load_checkpoint(path)
        if state.get("format") != SCRAMBLER_FORMAT:
            raise InputFileError(
                f"{path} is not a trained pair scrambler (make one with `protscramble heterodimer train-scrambler`)"
            )
        network = network_from_config(state["network_config"])  # type: ignore[arg-type]
        network.load_state_dict(state["network_state"])  # type: ignore[arg-type]
        return cls(
            network=network.to(device).eval(),
            background=PairBackground.from_state(state["background"]),  # type: ignore[arg-type]
            mode=str(state["mode"]),
            target_bits=float(state["target_bits"]),  # type: ignore[arg-type]
            occlusion_reference=str(state.get("occlusion_reference", "inverted-label")),
            training_pairs=list(state.get("training_pairs", [])),  # type: ignore[arg-type]
            meta=dict(state.get("meta", {})),  # type: ignore[arg-type]
        )


def pair_digest(chain_1: str, chain_2: str) -> str:
    """Stable identifier of a pair (order matters)."""
    return hashlib.sha1(f"{chain_1}\t{chain_2}".encode()).hexdigest()


# ----------------------------------------------------------------------------- references


def explained_labels(
    predictor: HeterodimerPredictor, x: torch.Tensor, labels: np.ndarray | torch.Tensor | None = None
) -> torch.Tensor:
    """The class being explained per pair: given labels, else the predicted class (p > 0.5)."""
    if labels is not None:
        return torch.as_tensor(np.asarray(labels), dtype=torch.float32).reshape(-1)
    return torch.from_numpy((predictor.predict(x) > 0.5).astype(np.float32))


def occlusion_objective(
    reference_kind: str, labels: torch.Tensor
) -> tuple[dict[str, torch.Tensor] | None, bool]:
    """(reference, maximise?) for occlusion: the inverted label to move towards, or the prediction to leave."""
    if reference_kind == "inverted-label":
        return label_reference(1.0 - labels), False
    if reference_kind == "prediction":
        return None, True
    raise InvalidParameterError(
        f"occlusion reference must be one of {', '.join(OCCLUSION_REFERENCES)}, got {reference_kind!r}"
    )


def _negated_forward_kl(reference: Prediction, predicted: Prediction) -> torch.Tensor:
    # The engine maximises divergence in occlusion mode; minimising KL to the inverted label is maximising -KL.
    return -prediction_kl(reference, predicted, "forward")


# ----------------------------------------------------------------------------- pair subsets

#: ``all`` pairs; ``binders`` labelled 1; ``predicted-binders`` labelled 1 (when labelled) and p > 0.5.
SUBSETS = ("all", "binders", "predicted-binders")


def select_subset(predictor: HeterodimerPredictor, table: PairTable, subset: str) -> np.ndarray:
    """Row indices of ``table`` in ``subset`` (see :data:`SUBSETS`)."""
    if subset not in SUBSETS:
        raise InvalidParameterError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    keep = np.ones(len(table), dtype=bool)
    if subset != "all":
        if table.labels is not None:
            keep &= table.labels == 1
        elif subset == "binders":
            raise InvalidParameterError(f"subset 'binders' needs an 'interacts' column in {table.source}")
    if subset == "predicted-binders":
        keep &= predictor.predict(table.encode()[0]) > 0.5
    return np.nonzero(keep)[0]


# ----------------------------------------------------------------------------- training


def split_indices(table: PairTable, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) split decided pair by pair.

    A pair is in validation when a seeded hash of its sequences falls below
    ``validation_fraction``, so the split of any subset of a pair set is that
    subset of the split: scramblers trained on different subsets (e.g. all
    pairs for inclusion, binders for occlusion) hold out the same pairs.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise InvalidParameterError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    u = np.array(
        [
            int(hashlib.sha1(f"{seed}|{pair_digest(a, b)}".encode()).hexdigest()[:13], 16) / 16.0**13
            for a, b in zip(table.chains_1, table.chains_2, strict=True)
        ]
    )
    val = u < validation_fraction
    if val.all():
        raise InvalidParameterError(
            f"{len(table)} pairs leave nothing to train on with validation fraction {validation_fraction}"
        )
    return np.nonzero(~val)[0], np.nonzero(val)[0]


def train_pair_scrambler(
    predictor: HeterodimerPredictor,
    table: PairTable,
    *,
    kind: str = "siamese",
    channels: int = 32,
    network_config: Mapping[str, object] | None = None,
    settings: TrainingSettings | None = None,
    background: str = "position",
    pseudocount: float = 0.1,
    validation_fraction: float = 0.1,
    occlusion_reference: str = "inverted-label",
    checkpoint_path: str | os.PathLike | None = None,
    progress: bool = False,
    stop_after_steps: int | None = None,
) -> tuple[PairScrambler, TrainingHistory]:
    """Train a pair scrambler network on a pair table (own seeded train/validation split).

    The background is estimated from the training split only. Returns the
    trained :class:`PairScrambler` and the per-epoch history.
    """
    st = settings or TrainingSettings()
    st.validate()
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(st.seed)
        network = build_pair_network(kind, channels, **dict(network_config or {}))
    train_idx, val_idx = split_indices(table, validation_fraction, st.seed)
    bg = make_background(background, table.subset(train_idx), pseudocount)

    x, mask = table.encode()
    labels = explained_labels(predictor, x, table.labels)
    if st.mode == "inclusion":
        p = torch.from_numpy(predictor.predict(x))
        reference, maximize = label_reference(p), False
    else:
        reference, maximize = occlusion_objective(occlusion_reference, labels)
        if reference is None:
            reference = label_reference(torch.from_numpy(predictor.predict(x)))
    st = dataclasses.replace(st, maximize_divergence=maximize)
    data = TrainingData(
        inputs=x, position_mask=mask, background=bg.for_inputs(x), reference=reference, labels=labels
    )

    trainer = ScramblerTrainer(predictor, network, st, device=predictor.device)
    t0 = time.perf_counter()
    history = trainer.fit(
        _subset(data, train_idx),
        _subset(data, val_idx) if len(val_idx) else None,
        checkpoint_path=checkpoint_path,
        progress=progress,
        stop_after_steps=stop_after_steps,
        data_fingerprint=_data_fingerprint(table, train_idx, bg, validation_fraction, occlusion_reference),
    )
    meta = {
        "settings": st.as_dict(),
        "history": history.as_dict(),
        "training_seconds": trainer.elapsed_seconds,
        "wall_seconds_this_session": time.perf_counter() - t0,
        "n_train": len(train_idx),
        "n_validation": len(val_idx),
        "background": bg.kind,
        "pseudocount": pseudocount,
        "source": table.source,
    }
    scrambler = PairScrambler(
        network=trainer.network.eval(),
        background=bg,
        mode=st.mode,
        target_bits=st.target_bits,
        occlusion_reference=occlusion_reference,
        training_pairs=[pair_digest(table.chains_1[i], table.chains_2[i]) for i in train_idx],
        meta=meta,
    )
    return scrambler, history


def _data_fingerprint(
    table: PairTable, train_idx: np.ndarray, bg: PairBackground, validation_fraction: float, occ: str
) -> str:
    h = hashlib.sha1()
    for i in train_idx:
        h.update(pair_digest(table.chains_1[i], table.chains_2[i]).encode())
    if table.labels is not None:
        h.update(np.ascontiguousarray(table.labels).tobytes())
    if bg.table is not None:
        h.update(bg.table.numpy().tobytes())
    h.update(f"{len(table)}|{validation_fraction}|{occ}".encode())
    return h.hexdigest()


def _subset(data: TrainingData, idx: np.ndarray) -> TrainingData:
    t = torch.as_tensor(idx, dtype=torch.long)
    return TrainingData(
        inputs=data.inputs[t],
        position_mask=data.position_mask[t],
        background=data.background[t],
        reference={k: v[t] for k, v in data.reference.items()},
        labels=None if data.labels is None else data.labels[t],
    )


# ----------------------------------------------------------------------------- explaining


def explain_with_network(
    predictor: HeterodimerPredictor,
    scrambler: PairScrambler,
    x: torch.Tensor,
    position_mask: torch.Tensor,
    labels: torch.Tensor | np.ndarray | None = None,
    keep_mask: torch.Tensor | None = None,
    batch_size: int = 256,
) -> Explanation:
    """Importance from one forward pass of a trained network.

    ``keep_mask`` (B, 162) bool: False residues are forbidden as features
    (importance 0), asking the network for an alternative explanation.
    """
    t0 = time.perf_counter()
    dev = predictor.device
    y = explained_labels(predictor, x, labels)
    bg = scrambler.background.for_inputs(x)
    net = scrambler.network.to(dev).eval()
    scores, pssms, bits = [], [], []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            sl = slice(s, s + batch_size)
            xb, mb, bgb = x[sl].to(dev), position_mask[sl].to(dev), bg[sl].to(dev)
            kb = None if keep_mask is None else keep_mask[sl].to(dev)
            sc = net(xb, mb, kb, y[sl].to(dev))
            pssm = scramble_pssm(xb, sc, bgb, scrambler.mode, mb)
            scores.append(sc.cpu())
            pssms.append(pssm.cpu())
            bits.append(conservation_bits(pssm, bgb, mb).cpu())
    return Explanation(
        importance=torch.cat(scores).numpy(),
        method=f"scrambler_network_{scrambler.mode}",
        inputs=x.cpu().numpy(),
        pssm=torch.cat(pssms).numpy(),
        bits=torch.cat(bits).numpy(),
        settings={
            "method": "scrambler_network",
            "mode": scrambler.mode,
            "target_bits": scrambler.target_bits,
            "architecture": scrambler.network.kind,
            "seconds": time.perf_counter() - t0,
        },
    )


def explain_per_example(
    predictor: HeterodimerPredictor,
    x: torch.Tensor,
    position_mask: torch.Tensor,
    background: torch.Tensor,
    *,
    mode: str = "inclusion",
    target_bits: float | None = None,
    steps: int = 500,
    samples: int = 8,
    entropy_weight: float = 10.0,
    learning_rate: float = 0.01,
    labels: torch.Tensor | np.ndarray | None = None,
    occlusion_reference: str = "prediction",
    init_scores: torch.Tensor | np.ndarray | None = None,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> Explanation:
    """Optimise importance for each pair (both chains at once; padding never scrambled).

    ``init_scores`` (B, 162) starts from given scores -- e.g. a trained
    network's -- which turns this into per-example fine-tuning.

    Occlusion defaults to moving *away from the prediction*: per example, the
    unbounded KL keeps concentrating the scrambled residues, whereas the
    inverted-label target is met by diffuse scrambling and then stops ranking
    residues (measured: median occlusion KL 3.55 vs 1.87 at top 10%, 24 pairs).
    """
    bits = DEFAULT_TARGET_BITS[mode] if target_bits is None else target_bits
    reference, divergence = None, None
    if mode == "occlusion":
        ref, maximize = occlusion_objective(occlusion_reference, explained_labels(predictor, x, labels))
        if not maximize:
            reference, divergence = ref, _negated_forward_kl
    scrambler = PerExampleScrambler(
        predictor,
        divergence,
        mode=mode,
        target_bits=bits,
        steps=steps,
        samples=samples,
        entropy_weight=entropy_weight,
        learning_rate=learning_rate,
    )
    init = None if init_scores is None else torch.as_tensor(np.asarray(init_scores), dtype=torch.float32)
    parts = []
    for s in range(0, x.shape[0], batch_size):
        sl = slice(s, s + batch_size)
        ref = None if reference is None else {k: v[sl].to(predictor.device) for k, v in reference.items()}
        parts.append(
            scrambler.attribute(
                x[sl].to(predictor.device),
                background[sl].to(predictor.device),
                position_mask=position_mask[sl].to(predictor.device),
                reference=ref,
                init_scores=None if init is None else init[sl].to(predictor.device),
                seed=seed + s,
                progress=progress,
            )
        )
    out = _concat_explanations(parts)
    if divergence is not None:  # report the KL to the inverted label, not its negation
        out.trace["divergence"] = -out.trace["divergence"]
    out.method = f"scrambler_{'fine_tuned' if init_scores is not None else 'per_example'}_{mode}"
    out.settings["occlusion_reference"] = occlusion_reference if mode == "occlusion" else None
    return out


def _concat_explanations(parts: Sequence[Explanation]) -> Explanation:
    first = parts[0]

    def cat(name: str) -> np.ndarray | None:
        return None if getattr(first, name) is None else np.concatenate([getattr(p, name) for p in parts])

    trace = {k: np.concatenate([p.trace[k] for p in parts], axis=1) for k in first.trace}
    settings = dict(first.settings)
    settings["optimisation_seconds"] = float(sum(p.settings.get("optimisation_seconds", 0.0) for p in parts))
    return Explanation(
        importance=cat("importance"),
        method=first.method,
        inputs=cat("inputs"),
        pssm=cat("pssm"),
        bits=cat("bits"),
        trace=trace,
        settings=settings,
    )


def parse_exclusions(spec: str | None, lengths: Sequence[tuple[int, int]]) -> torch.Tensor | None:
    """Keep-mask from ``"1:9,1:12-15,2:16"`` (chain:position or chain:start-end, 1-based).

    Returns (B, 162) bool, False at the excluded residues of every pair.
    """
    if spec is None or not spec.strip():
        return None
    keep = torch.ones(len(lengths), PAIR_LENGTH, dtype=torch.bool)
    for item in spec.split(","):
        item = item.strip()
        try:
            chain_s, pos_s = item.split(":")
            chain = int(chain_s)
            start_s, _, end_s = pos_s.partition("-")
            start, end = int(start_s), int(end_s or start_s)
        except ValueError:
            raise InvalidParameterError(
                f"cannot read exclusion {item!r}; use CHAIN:POS or CHAIN:START-END, e.g. 1:9,2:12-15"
            ) from None
        if chain not in (1, 2) or start < 1 or end < start:
            raise InvalidParameterError(f"bad exclusion {item!r}: chain must be 1 or 2 and 1 <= start <= end")
        for k, (l1, l2) in enumerate(lengths):
            if end > (l1 if chain == 1 else l2):
                raise InvalidParameterError(
                    f"exclusion {item!r} is past the end of chain {chain} of pair {k + 1}"
                )
            off = (chain - 1) * CHAIN_LENGTH
            keep[k, off + start - 1 : off + end] = False
    return keep


# ----------------------------------------------------------------------------- benchmark

Explainer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Explanation]


@dataclass
class HBNetExample:
    """A pair with known important residues (e.g. DHD_154's hydrogen-bond network)."""

    name: str
    x: torch.Tensor  # (1, 162, 19)
    position_mask: torch.Tensor  # (1, 162)
    positives: torch.Tensor  # (1, 162) bool
    background: torch.Tensor  # (1, 162, 19)


@dataclass
class BenchmarkResult:
    """Benchmark rows and per-pair values."""

    rows: list[dict[str, object]]
    per_pair: dict[str, dict[tuple[str, float], np.ndarray]]
    n_pairs: int
    hbnet_importance: dict[str, np.ndarray] = field(default_factory=dict)


def benchmark_pairs(
    predictor: HeterodimerPredictor,
    x: torch.Tensor,
    position_mask: torch.Tensor,
    background: torch.Tensor,
    explainers: Mapping[str, Explainer],
    *,
    fractions: Sequence[float] = (0.1, 0.2),
    n_samples: int = 128,
    seed: int = 0,
    hbnet: HBNetExample | None = None,
    log: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Run every explainer on the same pairs and score it with the same resampling.

    Each explainer is ``fn(x, position_mask, background) -> Explanation``.
    The HBNet example (if any) is explained in the same call, then scored by
    the average precision of its importance for the known positions.
    """
    n = x.shape[0]
    groups = chain_ids(n)
    rows: list[dict[str, object]] = []
    per_pair: dict[str, dict[tuple[str, float], np.ndarray]] = {}
    hb_imp: dict[str, np.ndarray] = {}
    xs, ms, bgs = x, position_mask, background
    if hbnet is not None:
        xs = torch.cat([x, hbnet.x])
        ms = torch.cat([position_mask, hbnet.position_mask])
        bgs = torch.cat([background, hbnet.background])
    with torch.no_grad():
        reference = {k: v.float() for k, v in predictor(x).items()}
    for name, explain in explainers.items():
        t0 = time.perf_counter()
        exp = explain(xs, ms, bgs)
        seconds = time.perf_counter() - t0
        if log is not None:
            log(f"{name}: explained {n + (hbnet is not None)} pairs in {seconds:.1f} s; scoring")
        imp = np.asarray(exp.importance, dtype=np.float64)
        values = evaluate_faithfulness(
            predictor,
            x,
            imp[:n],
            background,
            fractions=fractions,
            n_samples=n_samples,
            position_mask=position_mask,
            groups=groups,
            reference=reference,
            seed=seed,
        )
        per_pair[name] = values
        for (mode, frac), v in values.items():
            rows.append(
                {
                    "method": name,
                    "metric": f"{mode}_kl_median",
                    "top_fraction": frac,
                    "value": float(np.median(v)),
                }
            )
            rows.append(
                {
                    "method": name,
                    "metric": f"{mode}_kl_mean",
                    "top_fraction": frac,
                    "value": float(np.mean(v)),
                }
            )
        if hbnet is not None:
            m = hbnet.position_mask[0].numpy()
            hb_imp[name] = imp[n]
            ap = average_precision(imp[n][m], hbnet.positives[0].numpy()[m])
            rows.append(
                {
                    "method": name,
                    "metric": f"{hbnet.name}_hbnet_average_precision",
                    "top_fraction": "",
                    "value": ap,
                }
            )
        rows.append({"method": name, "metric": "seconds", "top_fraction": "", "value": seconds})
        if log is not None:
            log(f"{name}: scored in {time.perf_counter() - t0 - seconds:.1f} s")
    return BenchmarkResult(rows=rows, per_pair=per_pair, n_pairs=n, hbnet_importance=hb_imp)


def benchmark_markdown(result: BenchmarkResult, fractions: Sequence[float] = (0.2, 0.1)) -> str:
    """A markdown table: one row per method, medians per mode and top fraction, HBNet AP and time."""
    methods = list(dict.fromkeys(r["method"] for r in result.rows))
    lookup = {(r["method"], r["metric"], r["top_fraction"]): r["value"] for r in result.rows}
    ap_metric = next(
        (r["metric"] for r in result.rows if str(r["metric"]).endswith("average_precision")), None
    )
    cols = [
        (f"inclusion KL top {round(f * 100)}% (lower better)", "inclusion_kl_median", f) for f in fractions
    ]
    cols += [
        (f"occlusion KL top {round(f * 100)}% (higher better)", "occlusion_kl_median", f) for f in fractions
    ]
    header = ["method"] + [c[0] for c in cols] + (["HBNet AP"] if ap_metric else []) + ["seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in methods:
        cells = [m] + [_cell(lookup.get((m, metric, float(f)))) for _, metric, f in cols]
        if ap_metric:
            cells.append(_cell(lookup.get((m, ap_metric, ""))))
        cells.append(_cell(lookup.get((m, "seconds", "")), digits=1))
        lines.append("| " + " | ".join(cells) + " |")
    note = f"\nMedian binary KL(p_original || p_sample) over {result.n_pairs} pairs, 128 samples per pair and setting.\n"
    return "\n".join(lines) + "\n" + note


def _cell(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def hbnet_example(path: str | os.PathLike, background: PairBackground) -> HBNetExample:
    """Load a worked example JSON with ``chain_1``, ``chain_2`` and ``hbnet_positions_0based``."""
    import json

    from .predictors.heterodimer import encode_pairs, validate_chain

    source = Path(path)
    if not source.is_file():
        raise InputFileError(f"HBNet example not found: {source}")
    try:
        d = json.loads(source.read_text())
        c1 = validate_chain(d["chain_1"], f"{source} chain_1")
        c2 = validate_chain(d["chain_2"], f"{source} chain_2")
        hb = d["hbnet_positions_0based"]
        pos = [int(i) for i in hb["chain_1"]] + [CHAIN_LENGTH + int(i) for i in hb["chain_2"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputFileError(f"{source} is not an HBNet example JSON ({type(err).__name__}: {err})") from None
    x, mask = encode_pairs([c1], [c2])
    positives = torch.zeros(1, PAIR_LENGTH, dtype=torch.bool)
    positives[0, pos] = True
    if (positives & ~mask).any():
        raise InputFileError(f"{source}: an HBNet position is past the end of its chain")
    return HBNetExample(str(d.get("name", source.stem)), x, mask, positives, background.for_inputs(x))
