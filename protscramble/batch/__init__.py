"""Design campaigns: explain (and compare) thousands of designs, resumably, locally or on Ray.

>>> from protscramble.batch import run_batch                       # doctest: +SKIP
>>> report = run_batch("designs.tsv", "campaign/", "batch.toml")   # doctest: +SKIP
>>> report.failed                                                  # doctest: +SKIP
{'design_17': 'sequence has letters outside the alphabet ...'}

See :mod:`.manifest` for the manifest format, :mod:`.config` for the config
file, :mod:`.buckets` for why results do not depend on resuming or on the
engine, and :mod:`.runner` for the output layout.
"""

from .buckets import BucketTask, make_buckets
from .config import BatchConfig, BatchSettings, CompareSettings, build_config, load_config
from .engines import ENGINES, LocalEngine, RayEngine, make_engine, resolve_devices
from .manifest import DesignInput, InvalidRow, Manifest, folder_name, read_manifest
from .runner import BatchReport, run_batch
from .status import StatusLog, StatusRecord
from .summary import write_campaign
from .worker import DesignOutcome, run_bucket

__all__ = [
    "ENGINES",
    "BatchConfig",
    "BatchReport",
    "BatchSettings",
    "BucketTask",
    "CompareSettings",
    "DesignInput",
    "DesignOutcome",
    "InvalidRow",
    "LocalEngine",
    "Manifest",
    "RayEngine",
    "StatusLog",
    "StatusRecord",
    "build_config",
    "folder_name",
    "load_config",
    "make_buckets",
    "make_engine",
    "read_manifest",
    "resolve_devices",
    "run_batch",
    "run_bucket",
    "write_campaign",
]
