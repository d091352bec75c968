"""``protscramble batch``: explain every design of a manifest, resumably, locally or on Ray."""

from __future__ import annotations

import argparse

from ..batch.engines import ENGINES
from ..batch.runner import log_to_stderr, run_batch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="explain (and compare with energies) every design of a manifest; rerun to resume",
        description=(
            "Each manifest row (TSV: id, sequence|fasta|a3m, optional structure, chain, interface) is "
            "explained with the shared settings of --config and, when it has a structure, compared with "
            "its per-residue energies. Outputs go to OUT/designs/<id>/, outcomes to OUT/status.jsonl, "
            "the summary to OUT/campaign.tsv and OUT/campaign.html. Rerunning resumes; failed designs "
            "are retried. Exit status 0: all done, 1: some designs failed, 2: unusable input."
        ),
    )
    p.add_argument("--manifest", required=True, help="tab-separated design list with a header line")
    p.add_argument("--out", required=True, help="batch folder (created; reused to resume)")
    p.add_argument(
        "--config", help="TOML or JSON settings: [explain], [compare], [batch] (default: defaults)"
    )
    p.add_argument("--engine", choices=ENGINES, default="local", help="local (default) or ray")
    p.add_argument(
        "--devices",
        default="auto",
        help="local engine workers: auto (every GPU, else CPU workers), cpu, cpu,cpu, cuda:0,cuda:1...",
    )
    p.add_argument("--ray-address", help="Ray cluster address (default: a local Ray instance)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = run_batch(
        args.manifest,
        args.out,
        args.config,
        engine=args.engine,
        devices=args.devices,
        address=args.ray_address,
        log=None if args.quiet else log_to_stderr,
    )
    return 0 if report.ok else 1
