"""``run_batch``: explain (and compare) every design of a manifest, resumably.

Layout of the batch folder::

    OUT/status.jsonl            one record per design outcome (the truth for resuming)
    OUT/designs/<folder>/       explain/, compare/ (with a structure), design.json
    OUT/campaign.tsv, .html     the campaign summary

A design is written by renaming a complete temporary folder into place, and
only then recorded as done, so a kill at any moment loses at most the designs
in flight. A rerun skips designs whose record is ``done`` with the same
settings and inputs and whose folder is complete; failed designs are retried.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError
from ..io import atomic_output_dir
from ..predictors.trrosetta.weights import parse_models
from .buckets import BucketTask, make_buckets
from .config import BatchConfig, load_config
from .engines import make_engine
from .manifest import DesignInput, Manifest, read_manifest
from .status import DONE, FAILED, StatusLog, StatusRecord, batch_lock, now
from .summary import read_json, write_campaign
from .worker import DESIGN_FILE, DesignOutcome

STATUS_FILE = "status.jsonl"
DESIGNS_DIR = "designs"


@dataclass
class BatchReport:
    """What a run did.

    Attributes
    ----------
    done
        Designs finished by this run.
    skipped
        Designs already finished by an earlier run.
    failed
        Design id -> error, for every design that is failed now (manifest
        rows included).
    """

    out: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    summary_tsv: Path | None = None
    summary_html: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def log_to_stderr(message: str) -> None:
    print(f"protscramble batch: {message}", file=sys.stderr, flush=True)


def clean_leftovers(out: Path) -> None:
    """Remove temporary files and folders a killed run may have left (we hold the lock)."""
    designs = out / DESIGNS_DIR
    if designs.is_dir():
        for entry in designs.iterdir():
            if entry.name.startswith("."):  # .<name>.tmp-*, .<name>.old-* of atomic_output_dir
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    for name in (STATUS_FILE, "campaign.tsv", "campaign.html"):
        for tmp in out.glob(f".{name}.*"):  # atomic_write_text's temporary files
            tmp.unlink(missing_ok=True)


def is_finished(record: StatusRecord | None, design: DesignInput, settings_hash: str, out: Path) -> bool:
    """Done with these settings and inputs, and the folder on disk says the same."""
    if record is None or record.state != DONE:
        return False
    if record.settings_hash != settings_hash or record.input_hash != design.input_hash:
        return False
    written = read_json(out / DESIGNS_DIR / design.folder / DESIGN_FILE)
    return written.get("settings_hash") == settings_hash and written.get("input_hash") == design.input_hash


def _write_design(out: Path, design: DesignInput, files: dict[str, bytes]) -> None:
    with atomic_output_dir(out / DESIGNS_DIR / design.folder) as tmp:
        # design.json last: the folder is renamed into place whole anyway, but a complete
        # folder is then also recognisable by that file alone.
        for rel in sorted(files, key=lambda r: r == DESIGN_FILE):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[rel])


def run_batch(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    config: BatchConfig | str | os.PathLike | None = None,
    *,
    engine: str = "local",
    devices: str | Sequence[str] = "auto",
    address: str | None = None,
    log: Callable[[str], None] | None = log_to_stderr,
) -> BatchReport:
    """Explain every design of ``manifest`` into ``out``; resume what an earlier run left.

    Parameters
    ----------
    manifest
        Manifest path (see :mod:`protscramble.batch.manifest`) or a parsed one.
    out
        Batch folder (created if needed).
    config
        :class:`BatchConfig`, a TOML/JSON config path, or ``None`` for defaults.
    engine
        ``local`` or ``ray``.
    devices
        Local engine devices (``auto``, ``cpu``, ``cuda:0,cuda:1``...).
    address
        Ray cluster address (``None``: the running or a new local instance).
    log
        Progress messages (``None`` = silent).

    Returns
    -------
    BatchReport
        Finished, skipped and failed designs and the summary paths.
    """
    cfg = config if isinstance(config, BatchConfig) else load_config(config)
    parsed = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    runner = make_engine(engine, devices, address, cfg)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"--out must be a folder, {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _: None)
    report = BatchReport(out)
    with batch_lock(out):
        clean_leftovers(out)
        status = StatusLog(out / STATUS_FILE)
        latest = status.latest()
        settings_hash = cfg.settings_hash()

        for bad in parsed.invalid:
            record = StatusRecord(bad.id, FAILED, bad.reason, "manifest", now(), settings_hash)
            if not record.same_outcome(latest.get(bad.id)):
                status.append(record)
            say(f"{bad.id}: invalid manifest row {bad.row}: {bad.reason}")

        finished = {d.id for d in parsed.designs if is_finished(latest.get(d.id), d, settings_hash, out)}
        report.skipped = [d.id for d in parsed.designs if d.id in finished]
        e = cfg.explain
        buckets = make_buckets(
            parsed.designs,
            bucket_size=cfg.batch.bucket_size,
            seed=e["seed"],
            samples=e["samples"],
            memory_gib=cfg.batch.memory_gib,
            max_batch=e["max_batch"],
            use_msa_features=not e["no_msa_features"],
            n_models=len(parse_models(e["models"])),
        )
        todo = [
            BucketTask(b.key, b.seed, b.max_batch, b.designs, frozenset(b.todo - finished))
            for b in buckets
            if b.todo - finished
        ]
        n_todo = sum(len(t.todo) for t in todo)
        say(
            f"{len(parsed.designs)} valid designs, {len(parsed.invalid)} invalid rows, "
            f"{len(finished)} already done, {n_todo} to run in {len(todo)} bucket(s); {runner.describe()}"
        )
        by_id = {d.id: d for d in parsed.designs}
        count = 0
        for task, outcomes in runner.run(todo, cfg):
            for outcome in outcomes:
                count += 1
                record = _record(out, by_id[outcome.id], outcome, settings_hash)
                status.append(record)
                if record.state == DONE:
                    report.done.append(record.id)
                    say(f"[{count}/{n_todo}] {record.id}: done ({task.key}, {outcome.seconds:.1f} s)")
                else:
                    say(f"[{count}/{n_todo}] {record.id}: failed at {record.stage}: {record.error}")

        latest = status.compact(order=parsed.ids)
        report.failed = {
            i: latest[i].error or "" for i in parsed.ids if i in latest and latest[i].state == FAILED
        }
        report.summary_tsv, report.summary_html = write_campaign(out, parsed, latest)
    say(
        f"{len(report.done)} done now, {len(report.skipped)} done before, {len(report.failed)} failed; "
        f"summary in {report.summary_html}"
    )
    return report


def _record(out: Path, design: DesignInput, outcome: DesignOutcome, settings_hash: str) -> StatusRecord:
    """Write a finished design's folder and return the status record of the outcome."""
    if outcome.ok:
        try:
            _write_design(out, design, outcome.files)
        except OSError as err:
            outcome = DesignOutcome(design.id, False, "write", f"cannot write outputs: {err}")
        else:
            return StatusRecord(
                design.id,
                DONE,
                time=now(),
                settings_hash=settings_hash,
                input_hash=design.input_hash,
                folder=f"{DESIGNS_DIR}/{design.folder}",
                seconds=round(outcome.seconds, 3),
            )
    return StatusRecord(
        design.id, FAILED, outcome.error, outcome.stage, now(), settings_hash, design.input_hash
    )
