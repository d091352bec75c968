"""Background amino-acid distributions that scrambled positions fall back to.

A background is an array of shape (L, A): one distribution over the
alphabet per position. Every row is strictly positive and sums to one, so
the masking operator can take its logarithm.
"""

from __future__ import annotations

import numpy as np

from .alphabet import AMINO_ACIDS
from .errors import InvalidParameterError
from .io import MSA

#: Native amino-acid frequencies of the PDB used by the published trRosetta
#: scrambler, in ``ARNDCQEGHILKMFPSTWYV`` order.
NATIVE_PDB_FREQUENCIES = np.array(
    [
        0.07892653, 0.04979037, 0.0451488, 0.0603382, 0.01261332, 0.03783883, 0.06592534,
        0.07122109, 0.02324815, 0.05647807, 0.09311339, 0.05980368, 0.02072943, 0.04145316,
        0.04631926, 0.06123779, 0.0547427, 0.01489194, 0.03705282, 0.0691271,
    ]
)  # fmt: skip

BACKGROUND_KINDS = ("uniform", "native", "msa")
_FLOOR = 1e-8


def _normalise(b: np.ndarray) -> np.ndarray:
    b = np.clip(np.asarray(b, dtype=np.float64), _FLOOR, None)
    return b / b.sum(axis=-1, keepdims=True)


def uniform_background(length: int, alphabet_size: int = len(AMINO_ACIDS)) -> np.ndarray:
    """Equal probability for every letter at every position."""
    return np.full((length, alphabet_size), 1.0 / alphabet_size)


def native_background(length: int) -> np.ndarray:
    """Native PDB amino-acid frequencies at every position (20-letter alphabet)."""
    return np.tile(_normalise(NATIVE_PDB_FREQUENCIES), (length, 1))


def _column_counts(msa: MSA, states: int) -> np.ndarray:
    """(L, states) counts of the first ``states`` letter codes in every alignment column."""
    return np.stack([(msa.codes == c).sum(axis=0) for c in range(states)], axis=1).astype(np.float64)


def msa_background(msa: MSA, pseudocount: float = 1.0) -> np.ndarray:
    """Per-column amino-acid frequencies of an alignment, gaps excluded.

    ``b_ic = (n_ic + pc) / (N_i + 20 pc)`` with ``n_ic`` the count of letter c
    in column i and ``N_i`` the number of non-gap letters there.

    Examples
    --------
    >>> from protscramble.io import parse_a3m_text
    >>> b = msa_background(parse_a3m_text(">q\\nAR\\n>s\\nA-\\n"), pseudocount=1.0)
    >>> round(float(b[0, 0]), 4), round(float(b[1, 1]), 4)
    (0.1364, 0.0952)
    """
    if pseudocount < 0:
        raise InvalidParameterError(f"pseudo-count must be >= 0, got {pseudocount}")
    counts = _column_counts(msa, len(AMINO_ACIDS))
    b = (counts + pseudocount) / (counts.sum(axis=1, keepdims=True) + len(AMINO_ACIDS) * pseudocount)
    return _normalise(b)


def alignment_background(msa: MSA, pseudocount: float = 1.0) -> np.ndarray:
    """Per-column letter frequencies of an alignment with the gap as a 21st state, shape (L, 21).

    ``b_ic = (n_ic + pc) / (N + 21 pc)`` over all ``N`` rows (gaps counted as a
    letter, order ``ARNDCQEGHILKMFPSTWYV-``): what the alignment's rows are
    scrambled towards when the alignment itself is scrambled (the published
    with-MSA scrambler's ``x_mean_w_gap``).

    Examples
    --------
    >>> from protscramble.io import parse_a3m_text
    >>> b = alignment_background(parse_a3m_text(">q\\nAR\\n>s\\nA-\\n"), pseudocount=1.0)
    >>> b.shape, round(float(b[1, 20]), 4)
    ((2, 21), 0.087)
    """
    if pseudocount < 0:
        raise InvalidParameterError(f"pseudo-count must be >= 0, got {pseudocount}")
    states = len(AMINO_ACIDS) + 1
    counts = _column_counts(msa, states)
    return _normalise((counts + pseudocount) / (msa.depth + states * pseudocount))


def user_background(matrix: np.ndarray, length: int) -> np.ndarray:
    """Validate a user matrix of shape (A,) or (L, A) and normalise its rows."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 1:
        m = np.tile(m, (length, 1))
    if m.ndim != 2 or m.shape[0] != length:
        raise InvalidParameterError(f"background must have shape (A,) or ({length}, A), got {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m.sum(axis=1) <= 0):
        raise InvalidParameterError("background rows must be finite, non-negative and not all zero")
    return _normalise(m)


def make_background(kind: str, length: int, msa: MSA | None = None, pseudocount: float = 1.0) -> np.ndarray:
    """Build a named background (``uniform``, ``native`` or ``msa``) for a protein of ``length``."""
    if kind == "uniform":
        return uniform_background(length)
    if kind == "native":
        return native_background(length)
    if kind == "msa":
        if msa is None:
            raise InvalidParameterError("the msa background needs an alignment (--a3m)")
        return msa_background(msa, pseudocount)
    raise InvalidParameterError(f"unknown background {kind!r}; choose from {', '.join(BACKGROUND_KINDS)}")
