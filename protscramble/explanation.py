"""The result every attribution method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Explanation:
    """Per-position importance for a batch of sequences.

    Attributes
    ----------
    importance
        (B, L) importance per position (higher = more relied upon).
    method
        Name of the attribution method.
    inputs
        (B, L, A) one-hot inputs that were explained.
    pssm
        (B, L, A) final scrambled PSSM (scrambling methods only).
    bits
        (B,) conservation of the final PSSM in bits (scrambling methods only).
    trace
        Per-step curves, each (steps, B): ``loss``, ``divergence``, ``bits``.
    settings
        Every setting needed to reproduce the run (seed included).
    """

    importance: np.ndarray
    method: str
    inputs: np.ndarray
    pssm: np.ndarray | None = None
    bits: np.ndarray | None = None
    trace: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def attribution(self) -> np.ndarray:
        """Importance spread onto the input's letters, shaped like the input (B, L, A)."""
        return self.importance[..., None] * self.inputs

    def __getitem__(self, i: int) -> Explanation:
        """The explanation of example ``i`` as a batch of one."""
        sl = slice(i, i + 1)
        return Explanation(
            importance=self.importance[sl],
            method=self.method,
            inputs=self.inputs[sl],
            pssm=None if self.pssm is None else self.pssm[sl],
            bits=None if self.bits is None else self.bits[sl],
            trace={k: v[:, sl] for k, v in self.trace.items()},
            settings=dict(self.settings),
        )
