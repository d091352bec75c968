"""The trRosetta predictor adapter."""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from ...alphabet import AMINO_ACIDS, one_hot
from ...backgrounds import alignment_background
from ...errors import DeviceMemoryError, InvalidParameterError
from ...io import MSA
from ...masking import scramble_pssm
from ...sampling import Generators, sample_pssm, sample_sequences
from .features import (
    N_STATES,
    PROFILE_FLOOR,
    alignment_features,
    msa_one_hot,
    onehot_alignment_features,
    sequence_features,
)
from .network import INSTANCE_NORMS, OUTPUTS, TrRosettaNetwork, compiler_available
from .weights import load_state_dict, parse_models

# Bytes kept per residue pair per sample for a backward pass through the 61 blocks (fp32):
# about 8 saved (C = 64) activations per block (measured: L = 100, K = 2 peaks at 2.5 GiB). With checkpointing in S segments only the
# segment inputs plus one segment's internals are alive at once.
_BLOCKS = 61
_SAVED_PER_BLOCK = 8
_TRAIN_BYTES_PER_PAIR = _BLOCKS * _SAVED_PER_BLOCK * 64 * 4
_INFER_BYTES_PER_PAIR = 8 * 64 * 4
CHECKPOINT_SEGMENTS = 8
# A sampled alignment keeps a few float32 (21 L)^2 matrices for its backward pass (the inverse
# covariance, its coupling layout, the contact norm's squares); measured at T1001's size (L = 140,
# 193 rows): 4.3 of them per sample over 4 samples, 7.2 for a single one.
_ALIGNMENT_MATRICES = 6
PRECISIONS = ("fp32", "tf32", "bf16")
#: Largest pair activation (batch x L^2 x 64 channels, float32) a no-grad CPU forward makes by
#: default. Bigger batches allocate blocks glibc maps fresh and page-faults in on every call: a
#: faithfulness curve point unsplit ran at 44-50% system time, and split ran 0.57x its time on
#: T1001 (L = 140) at batch 1 (0.64x at 6), 0.47-0.51x on hallucinated_0417 (L = 100) at batch 1-4
#: (0.53x at 13), while L = 28 needs batch 16 or more to keep two cores busy
#: (benchmarks/bench_inference_batch.py, docs/benchmarks.md, 2026-12-07).
CPU_ACTIVATION_BYTES = 8 * 2**20


def available_memory(device: torch.device) -> int:
    """Free bytes on ``device`` (CUDA: driver free memory; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 40


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` has fast bfloat16 arithmetic (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return "avx512_bf16" in flags.split() or "amx_bf16" in flags.split()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device has fast bf16, else ``fp32``."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision not in PRECISIONS:
        raise InvalidParameterError(
            f"precision must be auto or one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if precision == "tf32" and device.type != "cuda":
        raise InvalidParameterError("precision tf32 needs a CUDA device (TF32 is a tensor-core format)")
    if precision == "bf16" and device.type == "cpu" and not bf16_supported(device):
        # Without AVX512-BF16/AMX, PyTorch emulates bf16 through fp32 conversions: measured 13x
        # slower than fp32 on a 2-core AVX2 AMD EPYC (docs/benchmarks.md, 2026-12-02).
        warnings.warn(
            "precision bf16 on a CPU without AVX512-BF16/AMX is emulated and far slower than fp32 "
            "(about 13x measured); use precision auto or fp32 here",
            stacklevel=2,
        )
    return precision


def cpu_inference_batch(length: int) -> int:
    """Sequences of ``length`` per no-grad CPU forward whose pair activations fit :data:`CPU_ACTIVATION_BYTES`.

    Examples
    --------
    >>> cpu_inference_batch(28), cpu_inference_batch(64), cpu_inference_batch(140)
    (41, 8, 1)
    """
    return max(1, CPU_ACTIVATION_BYTES // (length * length * 64 * 4))


def resolve_inference_batch(inference_batch: int | str | None, device: torch.device) -> int | str | None:
    """Validate ``inference_batch``; ``auto`` stays ``auto`` on CPU (sized per length) and is no limit elsewhere."""
    if inference_batch == "auto":
        return "auto" if device.type == "cpu" else None
    if inference_batch is None:
        return None
    if isinstance(inference_batch, bool) or not isinstance(inference_batch, int) or inference_batch < 1:
        raise InvalidParameterError(
            f"inference batch must be 'auto', None or a positive integer, got {inference_batch!r}"
        )
    return inference_batch


@contextlib.contextmanager
def _tf32_switch(device: torch.device, precision: str) -> Iterator[None]:
    """On CUDA, TF32 on for ``tf32`` and off otherwise, for this block only (restored after)."""
    if device.type != "cuda" or precision == "bf16":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def estimate_memory(length: int, n_sequences: int, with_grad: bool, checkpoint_segments: int = 0) -> int:
    """Rough peak bytes for ``n_sequences`` of ``length`` through one model."""
    if not with_grad:
        per_pair = _INFER_BYTES_PER_PAIR
    elif checkpoint_segments > 0:
        seg = -(-_BLOCKS // checkpoint_segments)
        per_pair = (checkpoint_segments + seg * _SAVED_PER_BLOCK + 48) * 64 * 4
    else:
        per_pair = _TRAIN_BYTES_PER_PAIR
    return int(n_sequences * length * length * per_pair + 256 * 2**20)


class TrRosetta:
    """trRosetta as a :class:`~protscramble.predictors.Predictor`.

    Calling it on (N, L, 20) one-hot or soft sequences returns the four
    probability maps ``dist`` (N, L, L, 37), ``omega`` (25), ``theta`` (25)
    and ``phi`` (13), indexed [i, j] as the original (theta and phi are not
    symmetric), averaged over the chosen models. Weights are frozen; dropout
    is off unless asked for.

    Parameters
    ----------
    models
        ``"xaa"``, ``"all"``, ``"xaa,xab"`` or a sequence of names.
    device
        Where the network runs.
    msa
        Optional alignment. By default its profile and couplings are fixed
        features and only the query sequence is varied.
    scramble_msa
        Scramble the alignment with the query, as the published with-MSA
        scrambler does (:meth:`scrambled_forward`): every row is interpolated
        with the query's importance towards the alignment's column frequencies
        (gaps included, ``msa_pseudocount``), sampled, and the
        profile and couplings are recomputed from each sampled alignment (and
        differentiated through). Plain calls still use the original alignment.
    msa_pseudocount
        Pseudo-count of the 21-state (gap-including) column background the
        alignment rows are scrambled towards (:func:`~protscramble.backgrounds.alignment_background`).
    profile_floor
        Added to every profile frequency before its entropy: 1e-9 in the original
        trRosetta (default; reproduces its predictions), 0.005 in the published
        with-MSA scrambler's feature code.
    weights
        Folder or archive with the ``.pt`` files (see :mod:`.weights`).
    dropout
        Keep dropout on (p = 0.15) in the residual blocks, as in training; the masks come
        from torch's global generator (``torch.manual_seed`` repeats them, on either path).
    checkpoint
        ``"auto"`` (default): recompute activations in the backward pass only
        when a single sequence would not fit otherwise; ``True``/``False`` force it.
    precision
        ``"fp32"`` (IEEE float32 throughout, TF32 off on CUDA), ``"tf32"`` (CUDA only:
        float32 storage with TF32 tensor-core convolutions), ``"bf16"`` (convolutions in
        bfloat16; GPUs and CPUs with bf16 units) or ``"auto"`` (bf16 where fast, else fp32).
        The output maps and every loss are computed in float32 either way.
    compile
        Run the residual blocks through ``torch.compile`` in channels-last layout, with
        instance norm, ELU and the residual add fused (about 1.6x faster steps on a 2-core
        AVX-512 CPU; see ``benchmarks/bench_step.py``). The first call compiles (tens of
        seconds on CPU; kernels are cached on disk for later runs), so it pays for
        optimisations, not single predictions. ``"auto"`` turns it on where a compiler is
        available (a C++ compiler on CPU, Triton on CUDA); ``"on"``/``"off"`` are accepted
        for ``True``/``False``.
    instance_norm
        ``"trrosetta"`` (default): the normalisation the weights were trained with,
        (x - mean) / sqrt(var + 1e-6). ``"keras"``: (x - mean) / (std + 1e-3), as in the
        Keras port of trRosetta behind the published scrambler results (keras_contrib's
        InstanceNormalization); the two predictions differ by a KL of about 5e-4 on T1001.
        Only for setting results beside the published ones.
    inference_batch
        Most sequences one forward pass without gradients runs at once; larger calls
        (the 128 samples of a faithfulness curve) are split into chunks of this size and
        joined, so the result is the same up to float rounding. ``"auto"`` (default): on CPU,
        as many as keep the pair activations within :data:`CPU_ACTIVATION_BYTES`
        (:func:`cpu_inference_batch`; bigger batches spend their time page-faulting fresh
        memory), no limit on GPUs; ``None``: no limit.
        Calls with gradients, or with dropout on (its masks would be drawn in other
        shapes), are never split.

    Examples
    --------
    >>> tr = TrRosetta("xaa")                          # doctest: +SKIP
    >>> maps = tr.predict_sequence("MKVLAAGIE")        # doctest: +SKIP
    >>> maps["dist"].shape                             # doctest: +SKIP
    (9, 9, 37)
    """

    alphabet = AMINO_ACIDS
    outputs = OUTPUTS

    def __init__(
        self,
        models: str | Sequence[str] = "xaa",
        device: str | torch.device = "cpu",
        msa: MSA | None = None,
        weights: str | os.PathLike | None = None,
        dropout: bool = False,
        networks: list[TrRosettaNetwork] | None = None,
        precision: str = "fp32",
        checkpoint: bool | str = "auto",
        compile: bool | str = False,
        scramble_msa: bool = False,
        msa_pseudocount: float = 1.0,
        profile_floor: float = PROFILE_FLOOR,
        instance_norm: str = "trrosetta",
        inference_batch: int | str | None = "auto",
    ) -> None:
        if instance_norm not in INSTANCE_NORMS:
            raise InvalidParameterError(
                f"instance norm must be one of {', '.join(INSTANCE_NORMS)}, got {instance_norm!r}"
            )
        if scramble_msa and msa is None:
            raise InvalidParameterError("scramble_msa needs an alignment (msa)")
        if not profile_floor >= 0:
            raise InvalidParameterError(f"profile floor must be >= 0, got {profile_floor}")
        if checkpoint not in (True, False, "auto"):
            raise InvalidParameterError(f"checkpoint must be True, False or 'auto', got {checkpoint!r}")
        compile = {"on": True, "off": False}.get(compile, compile) if isinstance(compile, str) else compile
        if compile not in (True, False, "auto"):
            raise InvalidParameterError(
                f"compile must be True, False, 'auto', 'on' or 'off', got {compile!r}"
            )
        self.checkpoint = checkpoint
        self.models = parse_models(models if not isinstance(models, list) else tuple(models))
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.inference_batch = resolve_inference_batch(inference_batch, self.device)
        self.weights = weights
        if networks is None:
            networks = []
            for name in self.models:
                net = TrRosettaNetwork()
                net.load_state_dict(load_state_dict(name, weights))
                networks.append(net)
        self.networks = [self._freeze(n) for n in networks]
        self.set_dropout(dropout)
        self.instance_norm = instance_norm
        can_compile = compiler_available(self.device)
        if compile is True and not can_compile:
            raise InvalidParameterError(
                "compile=True needs a C++ compiler (CPU) or Triton (CUDA) for torch.compile; none was found"
            )
        self.compile = bool(compile) and can_compile
        self.msa = msa
        self.scramble_msa = bool(scramble_msa)
        self.msa_pseudocount = msa_pseudocount
        self.profile_floor = profile_floor
        self._profile: torch.Tensor | None = None
        self._pair_terms: list[torch.Tensor] | None = None
        self._pair_length: int | None = None
        if msa is not None:
            if self.scramble_msa:
                # Rows laid end to end, (1, N L, 21), with the column background tiled to match, once:
                # every optimisation step scrambles them as one long sequence per example.
                self._msa_rows = msa_one_hot(msa).reshape(1, -1, N_STATES).to(self.device)
                bg = torch.tensor(alignment_background(msa, msa_pseudocount), dtype=torch.float32)
                self._msa_rows_background = bg.repeat(msa.depth, 1).to(self.device)
            profile, pair = alignment_features(msa, profile_floor)
            self._profile = profile.to(self.device)
            with torch.no_grad():
                p = None if pair is None else pair.to(self.device)
                self._pair_terms = [n.project_pair_features(p, msa.length) for n in self.networks]
            self._pair_length = msa.length

    def _freeze(self, net: TrRosettaNetwork) -> TrRosettaNetwork:
        net = net.to(self.device).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def set_dropout(self, enabled: bool) -> None:
        self.dropout = bool(enabled)
        for net in self.networks:
            net.dropout = self.dropout

    def with_msa(
        self,
        msa: MSA | None,
        scramble_msa: bool | None = None,
        msa_pseudocount: float | None = None,
        profile_floor: float | None = None,
    ) -> TrRosetta:
        """The same networks conditioned on another alignment (or none).

        Alignment settings left ``None`` keep this predictor's (scrambling is
        always off without an alignment).
        """
        scramble = self.scramble_msa if scramble_msa is None else scramble_msa
        return TrRosetta(
            self.models,
            self.device,
            msa,
            self.weights,
            self.dropout,
            self.networks,
            self.precision,
            self.checkpoint,
            self.compile,
            scramble_msa=scramble and msa is not None,
            msa_pseudocount=self.msa_pseudocount if msa_pseudocount is None else msa_pseudocount,
            profile_floor=self.profile_floor if profile_floor is None else profile_floor,
            instance_norm=self.instance_norm,
            inference_batch=self.inference_batch,
        )

    def arithmetic(self) -> contextlib.AbstractContextManager:
        """Context for a forward and backward pass at this predictor's precision.

        The engine wraps each optimisation step in it: cuDNN reads the TF32 switch
        when each backward kernel launches, so setting it around the forward alone is
        not enough. bf16 autocast needs nothing here (the backward follows the forward's dtypes).
        """
        return _tf32_switch(self.device, self.precision)

    @contextlib.contextmanager
    def layerwise(self) -> Iterator[list[torch.nn.Module]]:
        """Context in which every ELU runs as its own module, once per forward pass.

        Yields the networks, whose ``nn.ELU`` modules layer-wise attribution rules
        (Captum's DeepLift) hook. Inside, the eager kernels run (compiled blocks
        bypass the modules) and activations are kept (checkpointing would run
        every module twice).
        """
        saved = self.compile, self.checkpoint
        self.compile, self.checkpoint = False, False
        try:
            yield list(self.networks)
        finally:
            self.compile, self.checkpoint = saved

    def _pair_term(self, k: int, net: TrRosettaNetwork, length: int) -> torch.Tensor:
        if self._pair_terms is not None:
            return self._pair_terms[k]
        return net.project_pair_features(None, length)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._forward(x, self._profile, None)

    def scrambled_forward(
        self,
        scores: torch.Tensor,
        mode: str,
        n_samples: int,
        generator: Generators = None,
        differentiable: bool = True,
        position_mask: torch.Tensor | None = None,
    ) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
        """The predictor on ``n_samples`` alignments per example scrambled by ``scores`` (B, L).

        Every alignment row is interpolated with the query's importance towards
        the 21-state column background (the scrambling operator, ``mode``
        inclusion or occlusion), one alignment per sample is drawn (straight-through
        categorical samples when ``differentiable``, as published; hard draws
        otherwise), and its profile and couplings are recomputed. The returned
        function takes the (n_samples * B, L, 20) query samples, ordered sample-major
        as the engine flattens (K, B); example b draws from ``generator[b]``.
        Columns outside ``position_mask`` (B, L) keep their letters. Without
        ``scramble_msa`` it is the plain predictor.
        """
        if not self.scramble_msa:
            return self
        b, length = scores.shape
        rows = self.msa.depth
        x = self._msa_rows.expand(b, -1, -1)
        s = scores.to(self.device, torch.float32).repeat(1, rows)
        keep = None if position_mask is None else position_mask.to(self.device).repeat(1, rows)
        pssm = scramble_pssm(x, s, self._msa_rows_background, mode, keep)
        if differentiable:
            draws = sample_pssm(pssm, n_samples, "categorical_st", generator=generator)
        else:
            draws = sample_sequences(pssm, n_samples, generator)
        profiles, terms = [], [[] for _ in self.networks]
        for msa1hot in draws.reshape(n_samples * b, rows, length, N_STATES):
            profile, pair = onehot_alignment_features(msa1hot, self.profile_floor)
            profiles.append(profile)
            for k, net in enumerate(self.networks):
                terms[k].append(net.project_pair_features(pair, length))
        return functools.partial(
            self._forward, profile=torch.stack(profiles), pair_terms=[torch.cat(t) for t in terms]
        )

    def _forward(
        self, x: torch.Tensor, profile: torch.Tensor | None, pair_terms: list[torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        if x.dim() != 3 or x.shape[-1] != len(AMINO_ACIDS):
            raise InvalidParameterError(f"trRosetta input must be (N, L, 20), got {tuple(x.shape)}")
        if self._pair_length is not None and x.shape[1] != self._pair_length:
            raise InvalidParameterError(
                f"sequence length {x.shape[1]} does not match the alignment length {self._pair_length}"
            )
        if profile is not None and profile.dim() == 3 and profile.shape[0] != x.shape[0]:
            raise InvalidParameterError(f"{profile.shape[0]} scrambled alignments for {x.shape[0]} sequences")
        chunk = cpu_inference_batch(x.shape[1]) if self.inference_batch == "auto" else self.inference_batch
        dropout = any(net.dropout for net in self.networks)  # shared networks carry the switch
        if chunk is not None and x.shape[0] > chunk and not torch.is_grad_enabled() and not dropout:
            return self._forward_in_chunks(x, profile, pair_terms, chunk)
        x = x.to(self.device, torch.float32)
        f1d = sequence_features(x, profile)
        total: dict[str, torch.Tensor] | None = None
        segments = self.checkpoint_segments(x.shape[1])
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        for k, net in enumerate(self.networks):
            term = pair_terms[k] if pair_terms is not None else self._pair_term(k, net, x.shape[1])
            with autocast, self.arithmetic():
                out = net(f1d, term, segments, self.compile, self.instance_norm)
            total = out if total is None else {n: total[n] + out[n] for n in OUTPUTS}
        assert total is not None
        if len(self.networks) > 1:
            total = {n: v / len(self.networks) for n, v in total.items()}
        return total

    def _forward_in_chunks(
        self, x: torch.Tensor, profile: torch.Tensor | None, pair_terms: list[torch.Tensor] | None, n: int
    ) -> dict[str, torch.Tensor]:
        # Per-sequence inputs (a scrambled alignment's profile and couplings) are sliced with the
        # sequences; shared ones (the bound alignment's, batch 1) go to every chunk as they are.
        def part(t: torch.Tensor | None, i: int) -> torch.Tensor | None:
            return t[i : i + n] if t is not None and t.dim() > 2 and t.shape[0] == x.shape[0] else t

        parts = [
            self._forward(
                x[i : i + n],
                part(profile, i),
                None if pair_terms is None else [part(t, i) for t in pair_terms],  # type: ignore[misc]
            )
            for i in range(0, x.shape[0], n)
        ]
        return {k: torch.cat([p[k] for p in parts]) for k in OUTPUTS}

    def checkpoint_segments(self, length: int, safety: float = 0.7) -> int:
        """Checkpoint segments to use for ``length`` (0 = keep every activation)."""
        if self.checkpoint == "auto":
            fits = estimate_memory(length, 1, True) <= available_memory(self.device) * safety
            return 0 if fits else CHECKPOINT_SEGMENTS
        return CHECKPOINT_SEGMENTS if self.checkpoint else 0

    def check_fits(self, length: int, n_sequences: int, with_grad: bool) -> None:
        """Raise :class:`DeviceMemoryError` if even one sequence cannot fit."""
        segments = self.checkpoint_segments(length) if with_grad else 0
        need = estimate_memory(length, 1 if with_grad else n_sequences, with_grad, segments)
        need += self._alignment_bytes(length) if with_grad else 0
        free = available_memory(self.device)
        if need > free:
            raise DeviceMemoryError(
                f"a length-{length} protein needs about {need / 2**30:.1f} GiB on {self.device}, "
                f"only {free / 2**30:.1f} GiB is free"
            )

    def max_batch(self, length: int, safety: float = 0.7) -> int:
        """How many sequences of ``length`` fit through forward + backward at once."""
        free = available_memory(self.device) * safety
        per_sequence = estimate_memory(length, 1, True, self.checkpoint_segments(length, safety))
        per_sequence += self._alignment_bytes(length)
        return max(1, int(free // per_sequence)) // len(self.networks) or 1

    def _alignment_bytes(self, length: int) -> int:
        """Memory a scrambled alignment's features hold per sample until the backward pass."""
        return _ALIGNMENT_MATRICES * (N_STATES * length) ** 2 * 4 if self.scramble_msa else 0

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 8) -> dict[str, np.ndarray]:
        """Probability maps for a batch of sequences (N, L, 20), as float32 numpy."""
        self.check_fits(x.shape[1], min(batch_size, x.shape[0]), with_grad=False)
        parts = [self(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return {n: torch.cat([p[n] for p in parts]).cpu().numpy().astype(np.float32) for n in OUTPUTS}

    def predict_sequence(self, sequence: str) -> dict[str, np.ndarray]:
        """Maps (L, L, bins) for one sequence (the query of the bound alignment if any)."""
        return {n: v[0] for n, v in self.predict(one_hot(sequence)[None]).items()}
