"""Amino-acid alphabets and one-hot encoding.

The canonical protscramble alphabet is trRosetta's ``ARNDCQEGHILKMFPSTWYV``;
predictors with another channel order declare their own alphabet string.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import InvalidSequenceError

AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYV"
#: Letters of the 20 standard amino acids in trRosetta's order, plus the gap.
MSA_ALPHABET = AMINO_ACIDS + "-"


def validate_sequence(sequence: str, alphabet: str = AMINO_ACIDS, name: str = "sequence") -> str:
    """Return ``sequence`` upper-cased and stripped, or raise on bad letters.

    Parameters
    ----------
    sequence
        Protein sequence in one-letter code. Whitespace is removed.
    alphabet
        Allowed letters.
    name
        How to call the sequence in the error message.

    Raises
    ------
    InvalidSequenceError
        If the sequence is empty or holds a letter outside ``alphabet``.

    Examples
    --------
    >>> validate_sequence(" mkv ")
    'MKV'
    """
    if not isinstance(sequence, str):
        raise InvalidSequenceError(f"{name} must be a string, got {type(sequence).__name__}")
    seq = "".join(sequence.split()).upper()
    if not seq:
        raise InvalidSequenceError(f"{name} is empty")
    bad = sorted({c for c in seq if c not in alphabet})
    if bad:
        first = min(seq.index(c) for c in bad)
        raise InvalidSequenceError(
            f"{name} has letters outside the alphabet {alphabet}: {''.join(bad)} "
            f"(first at position {first + 1})"
        )
    return seq


def encode_indices(sequence: str, alphabet: str = AMINO_ACIDS) -> np.ndarray:
    """Integer codes of a validated sequence, shape (L,)."""
    lut = {c: i for i, c in enumerate(alphabet)}
    return np.fromiter((lut[c] for c in validate_sequence(sequence, alphabet)), dtype=np.int64)


def one_hot(sequence: str, alphabet: str = AMINO_ACIDS) -> torch.Tensor:
    """One-hot tensor of shape (L, len(alphabet)), float32.

    Examples
    --------
    >>> one_hot("AR").argmax(-1).tolist()
    [0, 1]
    """
    idx = torch.from_numpy(encode_indices(sequence, alphabet))
    return torch.nn.functional.one_hot(idx, len(alphabet)).float()


def decode(x: torch.Tensor | np.ndarray, alphabet: str = AMINO_ACIDS) -> str:
    """Most probable letter at each position of a (L, A) one-hot or PSSM."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return "".join(alphabet[i] for i in arr.argmax(-1))
