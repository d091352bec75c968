"""Plumbing shared by the tmol-based energies, H-bond and ddG code.

tmol (PyPI ``tmol``) is Rosetta's energy function re-implemented in PyTorch.
The release used here ships the beta_nov2016 weights (``beta2016``), the
successor of ref2015; it has no ref2015 weight set. Per-residue energies are
obtained like Rosetta's per-residue table: the block-pair (residue-pair)
energy matrix is split half and half between the two residues of every pair,
and one-body terms stay with their residue.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import BackendUnavailableError, InvalidParameterError, StructureError

#: Name of the score function tmol provides.
SCORE_FUNCTION = "beta2016"

_LOGGERS = ("tmol", "atomworks")


def tmol_available() -> bool:
    """Whether ``tmol`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("tmol") is not None


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextlib.contextmanager
def captured_logs(notes: list[str] | None) -> Iterator[None]:
    """Collect tmol/atomworks warnings into ``notes`` instead of printing them."""
    sink = notes if notes is not None else []
    handler = _ListHandler(sink)
    saved = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate


def import_tmol():
    """Import tmol quietly, or raise :class:`BackendUnavailableError`."""
    # atomworks (a tmol dependency) warns at import about unset data-mirror
    # variables that tmol's scoring never uses; a user's own setting still wins.
    os.environ.setdefault("ATOMWORKS_LOG_LEVEL", "ERROR")
    try:
        with captured_logs(None):
            import tmol
            import tmol.io  # noqa: F401
            import tmol.score  # noqa: F401
    except ImportError as err:
        raise BackendUnavailableError(
            f"the tmol backend needs the 'tmol' package (pip install 'protscramble[energies]'): {err}"
        ) from None
    return tmol


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto`` -> CUDA when available, else CPU."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidParameterError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("a CUDA device was asked for but no CUDA GPU is available")
    return dev


def score_function(device: torch.device):
    """tmol's beta_nov2016 score function (memoised per device by tmol)."""
    import_tmol()
    from tmol.score import beta2016_score_function

    return beta2016_score_function(device)


def term_names(sfxn) -> list[str]:
    """Score-type names in the order of the block-pair tensor's first axis."""
    return [st.name for st in sfxn.all_score_types()]


@dataclass
class BuiltPose:
    """A tmol pose and the structure residue each of its blocks comes from."""

    pose: object
    keys: list[tuple[str, int, str]]
    context: object


def _has_hydrogens(atoms) -> bool:
    return bool(np.any(np.isin(atoms.element, ("H", "D"))))


def build_pose(atoms, device: torch.device, context=None, notes: list[str] | None = None) -> BuiltPose:
    """Build a tmol pose from a biotite ``AtomArray``.

    Hydrogens present in the input (Rosetta models carry them) are kept as they
    are; structures without hydrogens get them built and optimised by tmol's
    packer (seeded). Residues tmol cannot use (missing main-chain atoms) are
    skipped by tmol and reported in ``notes``.
    """
    tmol = import_tmol()
    keep_h = _has_hydrogens(atoms)
    kwargs = {"no_optH": keep_h, "packer_seed": 0}
    if context is not None:
        kwargs["context"] = context
    try:
        with captured_logs(notes), torch.no_grad():
            pose, context = tmol.pose_stack_from_atom_array(atoms, device, return_context=True, **kwargs)
    except Exception as err:  # tmol reports unusable chemistry with many exception types
        raise StructureError(
            f"tmol cannot build a pose from this structure: {type(err).__name__}: {err}"
        ) from None
    info = pose.pdb_info
    n = int(pose.n_res_per_pose[0]) if hasattr(pose, "n_res_per_pose") else pose.max_n_blocks
    keys = [
        (
            str(info.chain_labels[0][b]),
            int(info.residue_labels[0][b]),
            str(info.residue_insertion_codes[0][b] or ""),
        )
        for b in range(n)
    ]
    return BuiltPose(pose, keys, context)


def stack_poses(poses: Sequence[object], device: torch.device):
    """Concatenate single-pose stacks into one PoseStack for batched scoring."""
    from tmol.pose import PoseStackBuilder

    return PoseStackBuilder.from_poses(list(poses), device)


def block_pair_energies(pose, sfxn, weighted: bool = True) -> np.ndarray:
    """Residue-pair energies per score term, shape ``(n_terms, n_poses, n_blocks, n_blocks)``.

    Only the upper triangle (``i <= j``) is filled: tmol stores each pair once.
    """
    module = sfxn.render_block_pair_scoring_module(pose)
    with torch.no_grad():
        unweighted = module(pose.coords, sum_terms=False, apply_weights=False)
    if weighted:
        weights = sfxn.weights_tensor().to(unweighted.dtype)
        unweighted = unweighted * weights[:, None, None, None]
    return unweighted.detach().cpu().double().numpy()


def split_pairs(pair: np.ndarray) -> np.ndarray:
    """Per-residue energies from a pair matrix ``(..., n, n)``: own + half of every pair."""
    diag = np.diagonal(pair, axis1=-2, axis2=-1)
    off = pair - np.einsum("...i,ij->...ij", diag, np.eye(pair.shape[-1]))
    return diag + 0.5 * (off.sum(axis=-1) + off.sum(axis=-2))
