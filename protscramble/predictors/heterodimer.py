"""The published coiled-coil heterodimer binder predictor, ported to torch.

The original network (Linder et al. 2022, ``ppi_rnn_keras.h5``) reads two
designed coiled-coil chains, each one-hot encoded over
``DEVKRLSTNHAIGPQYWMF#`` and zero-padded to 81 residues, runs one shared
bidirectional GRU (64 units) over each chain, concatenates the two final
128-d states and classifies them with ``Dense(128, relu) -> Dense(1, sigmoid)``.

This module holds the exact port (:class:`HeterodimerRNN`), the Keras HDF5
reader (h5py only, no TensorFlow), plain state-dict save/load, encoding and
pair-TSV reading with row-named errors, 19-letter backgrounds and the
:class:`HeterodimerPredictor` adapter the scrambling engine talks to.

Engine-facing layout: a pair is one (162, 19) matrix -- chain 1 padded to 81
rows, then chain 2 padded to 81 rows -- with all-zero padding rows that
``position_mask`` excludes from scrambling. The adapter adds the always-zero
``#`` channel itself and returns ``{"binding": (N, 1, 2)}`` = ``[1 - p, p]``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputFileError, InvalidParameterError, InvalidSequenceError, WeightsNotFoundError
from ..io import atomic_write_text, load_checkpoint, save_checkpoint

#: The 19 amino acids of the published predictor, in its channel order (no Cys).
ALPHABET = "DEVKRLSTNHAIGPQYWMF"
#: The Keras model's 20 input channels: the 19 amino acids plus the pad letter ``#``.
KERAS_ALPHABET = ALPHABET + "#"
#: Longest chain the predictor accepts; every chain is zero-padded to this length.
CHAIN_LENGTH = 81
#: Rows of the engine-facing pair matrix (chain 1 block, then chain 2 block).
PAIR_LENGTH = 2 * CHAIN_LENGTH
GRU_UNITS = 64
#: Default pseudo-count of position-specific backgrounds (the published value).
DEFAULT_PSEUDOCOUNT = 0.1
#: Column names of a pair table.
SEQ_COLUMNS = ("amino_seq_1", "amino_seq_2")
LABEL_COLUMN = "interacts"
OUTPUT_NAME = "binding"

_H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_GRU_PREFIX = "bidirectional_1/bidirectional_1/{direction}_cu_dnngru_1/{name}:0"


# ----------------------------------------------------------------------------- model


class HeterodimerRNN(torch.nn.Module):
    """Torch twin of the published Keras heterodimer binder RNN.

    ``torch.nn.GRU`` is the reset-after GRU that cuDNN (and so Keras'
    ``CuDNNGRU``) computes, so the port is exact up to float rounding.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(len(KERAS_ALPHABET), GRU_UNITS, batch_first=True, bidirectional=True)
        self.dropout = torch.nn.Dropout(0.25)
        self.dense_1 = torch.nn.Linear(4 * GRU_UNITS, 128)
        self.dense_2 = torch.nn.Linear(128, 1)

    def embed(self, chains: torch.Tensor) -> torch.Tensor:
        """Final (forward, backward) GRU states of (N, 81, 20) chains -> (N, 128)."""
        _, h_n = self.gru(chains)
        return torch.cat([h_n[0], h_n[1]], dim=-1)

    def forward(self, chain_1: torch.Tensor, chain_2: torch.Tensor) -> torch.Tensor:
        """Binding logit, shape (N,), from two (N, 81, 20) one-hot chains."""
        n = chain_1.shape[0]
        # One GRU call over both chains: the GRU is shared, and one big batch is faster on CPU.
        states = self.dropout(self.embed(torch.cat([chain_1, chain_2], dim=0)))
        hidden = torch.relu(self.dense_1(torch.cat([states[:n], states[n:]], dim=-1)))
        return self.dense_2(hidden).squeeze(-1)


def _keras_gru_to_torch(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """Convert one direction of a Keras ``CuDNNGRU`` to torch ``weight_ih/weight_hh/bias_ih/bias_hh``.

    Keras keeps cuDNN's gate order [z, r, h] and its memory layout: each
    (20, 64) input block is the flat cuDNN (64, 20) matrix, so it must be
    *reshaped* (not transposed); recurrent blocks are used as stored. torch
    wants the gates as [r, z, n].
    """
    units = recurrent.shape[0]
    in_dim = kernel.shape[0]
    if (
        kernel.shape != (in_dim, 3 * units)
        or recurrent.shape != (units, 3 * units)
        or bias.shape != (6 * units,)
    ):
        raise InputFileError(
            f"unexpected CuDNNGRU weight shapes {kernel.shape}, {recurrent.shape}, {bias.shape}"
        )
    blocks = [slice(g * units, (g + 1) * units) for g in range(3)]  # z, r, h
    w_in = [np.ascontiguousarray(kernel[:, s]).reshape(units, in_dim) for s in blocks]
    w_rec = [recurrent[:, s] for s in blocks]
    b_in, b_rec = bias[: 3 * units].reshape(3, units), bias[3 * units :].reshape(3, units)
    order = (1, 0, 2)  # [z, r, h] -> [r, z, n]
    return {
        "weight_ih": np.concatenate([w_in[g] for g in order]),
        "weight_hh": np.concatenate([w_rec[g] for g in order]),
        "bias_ih": np.concatenate([b_in[g] for g in order]),
        "bias_hh": np.concatenate([b_rec[g] for g in order]),
    }


def _h5_dataset(weights: object, path: str, source: Path) -> np.ndarray:
    try:
        return np.asarray(weights[path][()], dtype=np.float32)  # type: ignore[index]
    except KeyError:
        raise InputFileError(
            f"{source} is not the heterodimer predictor: it lacks the weight {path!r}"
        ) from None


def load_keras_h5(path: str | os.PathLike) -> HeterodimerRNN:
    """Read the published Keras HDF5 weights into a :class:`HeterodimerRNN` (h5py only).

    Raises
    ------
    WeightsNotFoundError
        The file does not exist.
    InputFileError
        Not an HDF5 file, or not this model's weights.
    """
    import h5py

    source = Path(path)
    if not source.is_file():
        raise WeightsNotFoundError(f"weights file not found: {source}")
    try:
        handle = h5py.File(source, "r")
    except OSError as err:
        raise InputFileError(f"{source} is not a readable HDF5 file ({err})") from None
    with handle:
        weights = handle["model_weights"] if "model_weights" in handle else handle
        sd: dict[str, torch.Tensor] = {}
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            parts = [
                _h5_dataset(weights, _GRU_PREFIX.format(direction=direction, name=name), source)
                for name in ("kernel", "recurrent_kernel", "bias")
            ]
            for name, value in _keras_gru_to_torch(*parts).items():
                sd[f"gru.{name}_l0{suffix}"] = torch.from_numpy(value)
        for layer in ("dense_1", "dense_2"):
            kernel = _h5_dataset(weights, f"{layer}/{layer}/kernel:0", source)
            sd[f"{layer}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.T))
            sd[f"{layer}.bias"] = torch.from_numpy(_h5_dataset(weights, f"{layer}/{layer}/bias:0", source))
    return _model_from_state_dict(sd, source)


def _model_from_state_dict(sd: dict[str, torch.Tensor], source: Path) -> HeterodimerRNN:
    model = HeterodimerRNN()
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise InputFileError(f"{source} does not hold heterodimer predictor weights: {first}") from None
    return model.eval()


def save_state_dict(model: HeterodimerRNN, path: str | os.PathLike) -> None:
    """Save the ported weights as a plain torch state dict (atomically)."""
    save_checkpoint(path, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})


def load_state_dict(path: str | os.PathLike) -> HeterodimerRNN:
    """Load weights written by :func:`save_state_dict` (``weights_only=True``)."""
    sd = load_checkpoint(path, what="weights file", missing_error=WeightsNotFoundError)
    return _model_from_state_dict(sd, Path(path))


def load_model(path: str | os.PathLike) -> HeterodimerRNN:
    """Load the predictor from Keras HDF5 (``.h5``) or a torch state dict (``.pt``), by content."""
    source = Path(path)
    if not source.is_file():
        raise WeightsNotFoundError(f"weights file not found: {source}")
    with open(source, "rb") as fh:
        head = fh.read(len(_H5_SIGNATURE))
    return load_keras_h5(source) if head == _H5_SIGNATURE else load_state_dict(source)


# ----------------------------------------------------------------------------- encoding


def validate_chain(sequence: str, name: str = "chain") -> str:
    """Upper-cased chain, or an :class:`InvalidSequenceError` naming ``name``.

    Letters must come from the predictor's 19-letter alphabet and the chain
    must fit the model's 81 positions.
    """
    if not isinstance(sequence, str):
        raise InvalidSequenceError(f"{name} must be a string, got {type(sequence).__name__}")
    seq = "".join(sequence.split()).upper()
    if not seq:
        raise InvalidSequenceError(f"{name} is empty")
    bad = sorted({c for c in seq if c not in ALPHABET})
    if bad:
        first = min(seq.index(c) for c in bad)
        raise InvalidSequenceError(
            f"{name} has letters outside the predictor's 19-letter alphabet {ALPHABET}: "
            f"{''.join(bad)} (first at position {first + 1})"
        )
    if len(seq) > CHAIN_LENGTH:
        raise InvalidSequenceError(
            f"{name} has {len(seq)} residues; the predictor accepts at most {CHAIN_LENGTH}"
        )
    return seq


def encode_chain(sequence: str) -> torch.Tensor:
    """One-hot (81, 19) float32 matrix of a validated chain, zero rows as padding."""
    seq = validate_chain(sequence)
    x = torch.zeros(CHAIN_LENGTH, len(ALPHABET))
    idx = torch.tensor([ALPHABET.index(c) for c in seq])
    x[torch.arange(len(seq)), idx] = 1.0
    return x


def encode_pairs(chains_1: Sequence[str], chains_2: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Engine-facing encoding of pairs.

    Returns
    -------
    x
        (N, 162, 19) one-hot pairs: chain 1 in rows 0-80, chain 2 in rows 81-161.
    position_mask
        (N, 162) bool, True on residues and False on padding rows.
    """
    if len(chains_1) != len(chains_2):
        raise InvalidParameterError(f"got {len(chains_1)} first chains but {len(chains_2)} second chains")
    if not chains_1:
        return torch.zeros(0, PAIR_LENGTH, len(ALPHABET)), torch.zeros(0, PAIR_LENGTH, dtype=torch.bool)
    x = torch.stack(
        [torch.cat([encode_chain(a), encode_chain(b)]) for a, b in zip(chains_1, chains_2, strict=True)]
    )
    return x, position_mask_of(x)


def position_mask_of(x: torch.Tensor) -> torch.Tensor:
    """True where a row holds a residue (any non-zero channel); padding rows are all-zero."""
    return x.abs().sum(-1) > 0


def chain_ids(batch: int = 1) -> torch.Tensor:
    """(batch, 162) long tensor: 0 on chain-1 rows, 1 on chain-2 rows (per-chain grouping)."""
    ids = torch.cat([torch.zeros(CHAIN_LENGTH), torch.ones(CHAIN_LENGTH)]).long()
    return ids.unsqueeze(0).expand(batch, PAIR_LENGTH).clone()


def split_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 162, A) -> the chain-1 and chain-2 blocks, each (..., 81, A)."""
    return x[..., :CHAIN_LENGTH, :], x[..., CHAIN_LENGTH:, :]


# ----------------------------------------------------------------------------- adapter


class HeterodimerPredictor:
    """:class:`~protscramble.predictors.Predictor` adapter around :class:`HeterodimerRNN`.

    Parameters
    ----------
    model
        The ported network (put in eval mode; its weights are frozen).
    device
        Where to run it.

    Calling it on ``x`` (N, 162, 19) -- one-hot pairs, PSSMs or relaxed
    samples -- returns ``{"binding": (N, 1, 2)}`` with ``[1 - p, p]``.

    Examples
    --------
    >>> pred = HeterodimerPredictor(HeterodimerRNN())
    >>> x, mask = encode_pairs(["DEVK"], ["LLKE"])
    >>> pred(x)["binding"].shape
    torch.Size([1, 1, 2])
    """

    alphabet = ALPHABET

    def __init__(self, model: HeterodimerRNN, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> HeterodimerPredictor:
        """Load ``.h5`` (Keras) or ``.pt`` (state dict) weights."""
        return cls(load_model(path), device)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """Binding logit (N,) of (N, 162, 19) pairs."""
        if x.dim() != 3 or x.shape[1:] != (PAIR_LENGTH, len(ALPHABET)):
            raise InvalidParameterError(
                f"heterodimer inputs must have shape (N, {PAIR_LENGTH}, {len(ALPHABET)}), got {tuple(x.shape)}"
            )
        x = x.to(self.device, torch.float32)
        pad = torch.zeros(*x.shape[:-1], 1, device=x.device, dtype=x.dtype)  # the '#' channel, never set
        full = torch.cat([x, pad], dim=-1)
        return self.model(full[:, :CHAIN_LENGTH], full[:, CHAIN_LENGTH:])

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p = torch.sigmoid(self.logit(x))
        return {OUTPUT_NAME: torch.stack([1.0 - p, p], dim=-1).unsqueeze(1)}

    def predict(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Binding probability (N,) without gradients, in batches."""
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                out.append(torch.sigmoid(self.logit(x[start : start + batch_size])).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def predict_pairs(
        self, chains_1: Sequence[str], chains_2: Sequence[str], batch_size: int = 256
    ) -> np.ndarray:
        """Binding probability of pairs given as strings."""
        x, _ = encode_pairs(chains_1, chains_2)
        return self.predict(x, batch_size)


def binding_probability(prediction: dict[str, torch.Tensor]) -> torch.Tensor:
    """p(binding), shape (N,), from a :class:`HeterodimerPredictor` output."""
    return prediction[OUTPUT_NAME][:, 0, 1]


def label_reference(labels: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
    """A prediction-shaped reference ``{"binding": (N, 1, 2)}`` from 0/1 (or soft) labels."""
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float32).reshape(-1)
    return {OUTPUT_NAME: torch.stack([1.0 - y, y], dim=-1).unsqueeze(1)}


# ----------------------------------------------------------------------------- pair tables


@dataclass
class PairTable:
    """Pairs read from a TSV, with every original column kept for output.

    Attributes
    ----------
    columns
        Header names, in file order.
    rows
        One dict per data row (all values as read).
    chains_1, chains_2
        Validated, upper-cased chains.
    labels
        ``interacts`` as 0/1 ints when that column exists, else None.
    source
        Where the pairs came from (for messages).
    """

    columns: list[str]
    rows: list[dict[str, str]]
    chains_1: list[str]
    chains_2: list[str]
    labels: np.ndarray | None = None
    source: str = "<pairs>"

    def __len__(self) -> int:
        return len(self.chains_1)

    def encode(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 162, 19) inputs and (N, 162) position mask."""
        return encode_pairs(self.chains_1, self.chains_2)

    def subset(self, index: Sequence[int] | np.ndarray) -> PairTable:
        """The rows at ``index``, in that order."""
        idx = [int(i) for i in index]
        return PairTable(
            columns=list(self.columns),
            rows=[self.rows[i] for i in idx],
            chains_1=[self.chains_1[i] for i in idx],
            chains_2=[self.chains_2[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
            source=self.source,
        )

    @classmethod
    def from_chains(
        cls, chains_1: Sequence[str], chains_2: Sequence[str], source: str = "<command line>"
    ) -> PairTable:
        """A table from chains given directly (validated)."""
        c1 = [validate_chain(s, f"chain 1 of pair {i + 1}") for i, s in enumerate(chains_1)]
        c2 = [validate_chain(s, f"chain 2 of pair {i + 1}") for i, s in enumerate(chains_2)]
        rows = [{SEQ_COLUMNS[0]: a, SEQ_COLUMNS[1]: b} for a, b in zip(c1, c2, strict=True)]
        return cls(columns=list(SEQ_COLUMNS), rows=rows, chains_1=c1, chains_2=c2, source=source)


def _parse_label(value: str, where: str) -> int:
    try:
        y = float(value)
    except ValueError:
        raise InputFileError(f"{where}: {LABEL_COLUMN} must be 0 or 1, got {value!r}") from None
    if y not in (0.0, 1.0):
        raise InputFileError(f"{where}: {LABEL_COLUMN} must be 0 or 1, got {value!r}")
    return int(y)


def read_pairs_tsv(path: str | os.PathLike) -> PairTable:
    """Read a tab-separated pair table with columns ``amino_seq_1``, ``amino_seq_2`` (+ optional ``interacts``).

    Other columns are kept untouched. Every problem names the data row
    (1-based, header excluded) and its line in the file.

    Raises
    ------
    InputFileError
        Missing/binary/empty file, missing columns, ragged rows, bad labels.
    InvalidSequenceError
        A chain with letters outside ``DEVKRLSTNHAIGPQYWMF`` or longer than 81.
    """
    source = Path(path)
    if not source.exists():
        raise InputFileError(f"pairs file not found: {source}")
    if not source.is_file():
        raise InputFileError(f"pairs path is not a regular file: {source}")
    data = source.read_bytes()
    if b"\x00" in data[:65536]:
        raise InputFileError(f"{source} is a binary file, expected a tab-separated pair table")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{source} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = [
        (n + 1, line) for n, line in enumerate(text.splitlines()) if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise InputFileError(f"{source} is empty; expected a header with {', '.join(SEQ_COLUMNS)}")
    header = [h.strip() for h in lines[0][1].split("\t")]
    missing = [c for c in SEQ_COLUMNS if c not in header]
    if missing:
        raise InputFileError(
            f"{source} lacks the column(s) {', '.join(missing)} (tab-separated header found: {header})"
        )
    table = PairTable(columns=header, rows=[], chains_1=[], chains_2=[], source=str(source))
    labels: list[int] = []
    for row_no, (line_no, line) in enumerate(lines[1:], start=1):
        where = f"{source} row {row_no} (line {line_no})"
        fields = next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(fields) != len(header):
            raise InputFileError(f"{where} has {len(fields)} fields, the header has {len(header)}")
        row = dict(zip(header, fields, strict=True))
        table.rows.append(row)
        table.chains_1.append(validate_chain(row[SEQ_COLUMNS[0]], f"{where} {SEQ_COLUMNS[0]}"))
        table.chains_2.append(validate_chain(row[SEQ_COLUMNS[1]], f"{where} {SEQ_COLUMNS[1]}"))
        if LABEL_COLUMN in row:
            labels.append(_parse_label(row[LABEL_COLUMN].strip(), where))
    if not table.rows:
        raise InputFileError(f"{source} has a header but no pairs")
    if LABEL_COLUMN in header:
        table.labels = np.asarray(labels, dtype=np.int64)
    return table


def write_pairs_tsv(path: str | os.PathLike, table: PairTable, extra: dict[str, Sequence[object]]) -> None:
    """Write ``table``'s original columns plus ``extra`` columns (atomically)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    names = list(table.columns) + [k for k in extra if k not in table.columns]
    writer.writerow(names)
    for i, row in enumerate(table.rows):
        values = {**row, **{k: _fmt(v[i]) for k, v in extra.items()}}
        writer.writerow([values.get(n, "") for n in names])
    atomic_write_text(path, buf.getvalue())


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.7g}"
    return str(value)


# ----------------------------------------------------------------------------- backgrounds


def uniform_background(length: int = PAIR_LENGTH) -> torch.Tensor:
    """Uniform (length, 19) background."""
    return torch.full((length, len(ALPHABET)), 1.0 / len(ALPHABET))


class PairBackground:
    """Position-specific backgrounds per chain length, estimated from a pair set.

    For every chain length ``L`` seen in the pairs, ``b[L][i, c] = (n_ic + pc) /
    (N + 19 pc)`` counts letter ``c`` at position ``i`` over all chains of
    length ``L`` (chain 1 and chain 2 pooled: both come from the same designs
    and the predictor was trained on flipped pairs). A length never seen falls
    back to the position-specific frequencies over all chains. Padding rows
    get the uniform distribution (never used, but must be positive).

    Parameters
    ----------
    table
        (82, 81, 19) per-length tables (index = chain length), as returned by
        :meth:`estimate`, or None for a uniform background.
    """

    def __init__(self, table: torch.Tensor | None = None) -> None:
        if table is not None and tuple(table.shape) != (CHAIN_LENGTH + 1, CHAIN_LENGTH, len(ALPHABET)):
            raise InvalidParameterError(f"background table must be (82, 81, 19), got {tuple(table.shape)}")
        self.table = None if table is None else table.float()

    @property
    def kind(self) -> str:
        return "uniform" if self.table is None else "position"

    @classmethod
    def estimate(
        cls, chains_1: Sequence[str], chains_2: Sequence[str], pseudocount: float = DEFAULT_PSEUDOCOUNT
    ) -> PairBackground:
        """Estimate per-length tables from the chains of a pair set."""
        if not pseudocount > 0:
            raise InvalidParameterError(f"pseudo-count must be > 0, got {pseudocount}")
        counts = np.zeros((CHAIN_LENGTH + 1, CHAIN_LENGTH, len(ALPHABET)))
        lut = {c: i for i, c in enumerate(ALPHABET)}
        for seq in list(chains_1) + list(chains_2):
            counts[len(seq), np.arange(len(seq)), [lut[c] for c in seq]] += 1.0
        pooled = counts.sum(0)  # any length, per position: the fallback
        tables = np.empty_like(counts)
        for length in range(CHAIN_LENGTH + 1):
            c = counts[length] if counts[length].sum() > 0 else pooled
            tables[length] = (c + pseudocount) / (c.sum(-1, keepdims=True) + len(ALPHABET) * pseudocount)
        return cls(torch.from_numpy(tables).float())

    def for_lengths(self, lengths_1: Sequence[int], lengths_2: Sequence[int]) -> torch.Tensor:
        """(B, 162, 19) backgrounds for pairs with the given chain lengths."""
        b = len(lengths_1)
        out = uniform_background().unsqueeze(0).repeat(b, 1, 1)
        if self.table is None:
            return out
        for k, (l1, l2) in enumerate(zip(lengths_1, lengths_2, strict=True)):
            out[k, :l1] = self.table[l1, :l1]
            out[k, CHAIN_LENGTH : CHAIN_LENGTH + l2] = self.table[l2, :l2]
        return out

    def for_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 162, 19) backgrounds for encoded pairs (chain lengths read from the padding)."""
        mask = position_mask_of(x.cpu())
        l1 = mask[:, :CHAIN_LENGTH].sum(-1).tolist()
        l2 = mask[:, CHAIN_LENGTH:].sum(-1).tolist()
        return self.for_lengths(l1, l2)

    def state(self) -> dict[str, object]:
        """Plain tensors/values for a ``weights_only`` checkpoint."""
        return {"kind": self.kind, "table": self.table}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> PairBackground:
        table = state.get("table")
        return cls(table if isinstance(table, torch.Tensor) else None)


def make_background(
    kind: str, table: PairTable | None = None, pseudocount: float = DEFAULT_PSEUDOCOUNT
) -> PairBackground:
    """``uniform`` or ``position`` (per chain length, estimated from ``table``)."""
    if kind == "uniform":
        return PairBackground(None)
    if kind == "position":
        if table is None:
            raise InvalidParameterError("a position-specific background needs a pair set to estimate it from")
        return PairBackground.estimate(table.chains_1, table.chains_2, pseudocount)
    raise InvalidParameterError(f"unknown background {kind!r}; choose uniform or position")
