"""What a worker does with one bucket: explain it, compare each design, pack the folders.

Workers never write into the batch folder: each design's outputs are built in
a private temporary folder and returned as ``{relative path: bytes}``; the
driver writes them atomically and records the status. The same function runs
in-process, in a local worker process or as a Ray task, which is why the
engines give identical results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .buckets import BucketTask
from .config import BatchConfig
from .manifest import DesignInput
from .status import describe

#: The file whose presence marks a complete design folder (written last).
DESIGN_FILE = "design.json"


@dataclass
class DesignOutcome:
    """Result of one design of a bucket.

    Attributes
    ----------
    id
        Design id.
    ok
        Whether every stage succeeded.
    stage, error
        Failed stage and message (``None`` when ``ok``).
    files
        Outputs by path relative to the design folder (empty when failed).
    seconds
        The design's share of the bucket's explain time plus its compare time.
    """

    id: str
    ok: bool
    stage: str | None = None
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0


def failed(task: BucketTask, stage: str, err: BaseException | str) -> list[DesignOutcome]:
    """Every pending design of ``task`` failed at ``stage``."""
    message = err if isinstance(err, str) else describe(err)
    return [DesignOutcome(d.id, False, stage, message) for d in task.pending]


_PREDICTORS: dict[tuple, object] = {}


def _predictor(config: BatchConfig, device: str):
    """trRosetta for ``device``, loaded once per process (weights take a while on a cold cache)."""
    from ..predictors.trrosetta import TrRosetta

    e = config.explain
    key = (e["models"], e["weights"], device, e["precision"], e["compile"])
    if key not in _PREDICTORS:
        _PREDICTORS.clear()  # one predictor per process is enough; frees the old device memory
        _PREDICTORS[key] = TrRosetta(
            e["models"],
            device=device,
            weights=e["weights"],
            precision=e["precision"],
            compile=e["compile"],
        )
    return _PREDICTORS[key]


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """cuDNN in deterministic mode on CUDA (same bucket, same numbers); a no-op on CPU."""
    if not device.startswith("cuda"):
        yield
        return
    flags = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags


def _pack(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _design_record(design: DesignInput, task: BucketTask, config: BatchConfig) -> dict:
    return {
        "id": design.id,
        "folder": design.folder,
        "manifest_row": design.row,
        "sequence": design.sequence,
        "length": design.length,
        "msa_depth": None if design.msa is None else design.msa.depth,
        "structure": design.structure,
        "chain": design.chain,
        "interface": None if design.interface is None else "_".join(design.interface),
        "bucket": {"key": task.key, "members": task.ids, "seed": task.seed, "max_batch": task.max_batch},
        "settings_hash": config.settings_hash(),
        "input_hash": design.input_hash,
        "config": config.as_dict(),
    }


def _compare(design: DesignInput, explain_dir: Path, out: Path, config: BatchConfig, device: str) -> None:
    from ..structures.compare import compare_importance_with_structure, read_importance_tsv

    c = config.compare
    # The importance as written (6 digits), like `protscramble compare --importance`, with a
    # source path that does not name the temporary folder.
    importance = dataclasses.replace(
        read_importance_tsv(explain_dir / "importance.tsv"), source="explain/importance.tsv"
    )
    interface = design.interface or (tuple(c.interface.split("_")) if c.interface else None)
    result = compare_importance_with_structure(
        importance,
        design.structure,
        design.chain,
        model=c.model,
        energy_backend=c.backend,
        interface=interface,
        compute_ddg=c.alanine_scan,
        hbnet_backend=c.hbnet_backend,
        top_k=c.top_k,
        n_permutations=c.permutations,
        seed=c.seed,
        device=torch.device(device),
        progress=False,
    )
    result.write(out)


def run_bucket(task: BucketTask, config: BatchConfig, device: str = "cpu") -> list[DesignOutcome]:
    """Explain every member of ``task`` together; compare and pack the pending ones.

    Never raises for a design's fault: failures come back as outcomes.
    """
    from ..explain import Protein, explain_trrosetta

    t0 = time.perf_counter()
    try:
        with deterministic(device):
            predictor = _predictor(config, device)
            results = explain_trrosetta(
                [Protein(d.id, d.sequence, d.msa) for d in task.designs],
                seed=task.seed,
                device=device,
                predictor=predictor,
                progress=False,
                max_batch=task.max_batch,
                **config.scrambler_kwargs(),
            )
    except Exception as err:  # a broken bucket must not stop the batch
        return failed(task, "explain", err)
    share = (time.perf_counter() - t0) / len(task.designs)
    outcomes = []
    for design, result in zip(task.designs, results, strict=True):
        if design.id not in task.todo:
            continue
        t1 = time.perf_counter()
        stage = "write"
        try:
            with tempfile.TemporaryDirectory(prefix="protscramble-batch-") as tmp:
                folder = Path(tmp) / "design"
                result.write(folder / "explain")
                if design.structure is not None and config.compare.enabled:
                    stage = "compare"
                    with deterministic(device):
                        _compare(design, folder / "explain", folder / "compare", config, device)
                    stage = "write"
                text = json.dumps(_design_record(design, task, config), indent=2) + "\n"
                (folder / DESIGN_FILE).write_text(text, encoding="utf-8")
                files = _pack(folder)
        except Exception as err:
            outcomes.append(DesignOutcome(design.id, False, stage, describe(err)))
            continue
        outcomes.append(DesignOutcome(design.id, True, files=files, seconds=share + time.perf_counter() - t1))
    return outcomes
