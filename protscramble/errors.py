"""Exception classes raised by protscramble's API.

Every error a user can cause (bad sequence, bad file, impossible setting) is a
:class:`ProtscrambleError`; the CLI turns these into one line on stderr and a
non-zero exit status. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ProtscrambleError(Exception):
    """Base class for every user-facing protscramble error."""


class InvalidSequenceError(ProtscrambleError, ValueError):
    """A sequence is empty or holds letters outside the predictor's alphabet."""


class InputFileError(ProtscrambleError, OSError):
    """An input file is missing, unreadable, binary or malformed."""


class InvalidParameterError(ProtscrambleError, ValueError):
    """A setting is out of range (negative bits, zero samples, unknown mode...)."""


class WeightsNotFoundError(ProtscrambleError, FileNotFoundError):
    """Pretrained weights could not be located."""


class DeviceMemoryError(ProtscrambleError, MemoryError):
    """The problem cannot fit in the selected device's memory."""


class StructureError(ProtscrambleError, ValueError):
    """A structure file or chain selection cannot be used."""


class BackendUnavailableError(ProtscrambleError, ImportError):
    """An optional backend (tmol, PyRosetta, captum, ...) is not installed."""


class WorkerError(ProtscrambleError, RuntimeError):
    """A worker process died before it finished its task (killed for memory, for instance)."""
