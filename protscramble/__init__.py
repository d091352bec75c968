"""protscramble: scrambling attribution for protein structure predictors.

Which residues does a structure predictor rely on, and do they match the
physics? protscramble learns per-residue importance by *scrambling*: each
position's letter is replaced by a PSSM that interpolates between the
sequence and a background, and the importance is optimised to keep
(inclusion) or destroy (occlusion) the prediction under a conservation
budget in bits (Linder et al., Nat. Mach. Intell. 2022).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BackendUnavailableError,
    DeviceMemoryError,
    InputFileError,
    InvalidParameterError,
    InvalidSequenceError,
    ProtscrambleError,
    StructureError,
    WeightsNotFoundError,
)

__all__ = [
    "__version__",
    "BackendUnavailableError",
    "DeviceMemoryError",
    "InputFileError",
    "InvalidParameterError",
    "InvalidSequenceError",
    "ProtscrambleError",
    "StructureError",
    "WeightsNotFoundError",
]
