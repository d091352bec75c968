"""Grouping designs into buckets: the unit of work of every engine.

A bucket is a set of equal-length designs optimised together in one batch on
one device. Buckets are a pure function of the manifest and the settings:
designs of one length are sorted by id and split into balanced chunks of at
most ``bucket_size``, and every bucket runs with the global seed and a
``max_batch`` fixed from the config (not from the free memory of whichever
worker runs it). What has already finished, the engine, the number of
workers and the order of execution play no part, so an interrupted and
resumed run, a local run and a Ray run compute the same buckets and hence
the same numbers, bit for bit.

With the scrambler's per-example random streams, a design's numbers depend on
its bucket-mates only through the floating-point rounding of the batched
network (about 1e-7 relative), and equal those of ``protscramble explain``
on the design alone with the same seed; fixing the buckets removes even that.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..predictors.trrosetta.model import estimate_memory
from .manifest import DesignInput


@dataclass(frozen=True)
class BucketTask:
    """Designs explained together, and which of them still need outputs.

    Attributes
    ----------
    key
        Readable name, e.g. ``L57-2`` (third bucket of length 57).
    seed
        Seed of the optimisation (evaluation uses ``seed + 1``): the global seed.
    max_batch
        Sequences per network call (fixed here so that it never depends on the
        free memory of the worker that happens to run the bucket).
    designs
        Members, sorted by id.
    todo
        Ids whose outputs are wanted; the others finished earlier and are only
        recomputed because they shape their bucket-mates' results.
    """

    key: str
    seed: int
    max_batch: int
    designs: tuple[DesignInput, ...]
    todo: frozenset[str] = field(default_factory=frozenset)

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.designs]

    @property
    def pending(self) -> list[DesignInput]:
        return [d for d in self.designs if d.id in self.todo]


def _chunks(items: list[DesignInput], size: int) -> list[list[DesignInput]]:
    n = math.ceil(len(items) / size)
    base, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + base + (1 if i < extra else 0)
        out.append(items[start:stop])
        start = stop
    return out


def make_buckets(
    designs: Iterable[DesignInput],
    *,
    bucket_size: int,
    seed: int,
    samples: int,
    memory_gib: float,
    max_batch: int | None = None,
    use_msa_features: bool = True,
    n_models: int = 1,
) -> list[BucketTask]:
    """Deterministic buckets of ``designs`` (every design in exactly one bucket).

    Designs with an alignment that conditions trRosetta run alone (the
    network differs per alignment); the others are grouped by length.
    ``todo`` is set to every member; callers narrow it to unfinished ones.
    ``max_batch`` (sequences per network call) defaults to what fits in
    ``memory_gib`` with ``n_models`` trRosetta models kept for the backward pass.
    """
    groups: dict[tuple, list[DesignInput]] = defaultdict(list)
    for d in designs:
        key = ("msa", d.id) if (d.msa is not None and use_msa_features) else ("len", d.length)
        groups[key].append(d)
    buckets = []
    for key, members in groups.items():
        members = sorted(members, key=lambda d: d.id)
        length = members[0].length
        fits = max(1, int(memory_gib * 2**30 // estimate_memory(length, 1, True)) // n_models)
        for i, chunk in enumerate(_chunks(members, bucket_size if key[0] == "len" else 1)):
            buckets.append(
                BucketTask(
                    key=f"L{length}-{i}" if key[0] == "len" else f"msa-{chunk[0].folder}",
                    seed=seed,
                    max_batch=max_batch or min(samples * len(chunk), fits),
                    designs=tuple(chunk),
                    todo=frozenset(d.id for d in chunk),
                )
            )
    return sorted(buckets, key=lambda b: min(d.row for d in b.designs))
