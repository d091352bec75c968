"""The benchmark's methods side by side in worker processes (``--workers N``).

Each (protein, method) left to compute runs in one of N processes with 1/N of the torch threads,
so that methods that keep extra threads poorly busy (small convolutions on a CPU) run side by side
rather than one after another (measured in ``benchmarks/bench_workers.py``; a worker compiles its
network once, so short runs gain little). Each task computes what the serial run would
(the method's importance, evaluation KL and faithfulness curves, with the same seeded draws) and
writes it to the method cache; the serial pass then only collects the results per protein.

Workers are spawned (CUDA cannot be forked), build their predictor once, and stop like the serial
run: on Ctrl-C, SIGTERM of the driver, or another worker's error, each running scrambler saves its
checkpoint, so a rerun resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidParameterError, WorkerError
from ..predictors.base import Predictor
from .proteins import BenchmarkProtein
from .protocols import Protocol
from .runner import add_curves, method_entry, protein_inputs

#: Longest first, so that the scramblers do not start last and leave the other workers idle.
COST_ORDER = (
    "scrambler_occlusion",
    "scrambler_inclusion",
    "ism",
    "deeplift_shap",
    "integrated_gradients",
    "deeplift",
    "saliency",
    "gradient_x_input",
    "random",
)


@dataclass(frozen=True)
class MethodTask:
    """One method on one protein: its result goes to ``cache / f"{method}.json"``."""

    protein: BenchmarkProtein
    method: str
    settings: Mapping[str, Any]
    cache: Path


def by_cost(tasks: Sequence[MethodTask]) -> list[MethodTask]:
    """``tasks`` protein by protein (in the given order), each protein's costliest method first."""
    first_seen = {name: i for i, name in reversed(list(enumerate(t.protein.name for t in tasks)))}
    rank = {m: i for i, m in enumerate(COST_ORDER)}
    return sorted(tasks, key=lambda t: (first_seen[t.protein.name], rank.get(t.method, -1)))


def _returns(obj: Any) -> Any:
    return obj


def predictor_builder(predictor: Predictor | None, build: Callable[[], Predictor]) -> Callable[[], Predictor]:
    """What a worker calls for its predictor: ``build`` or, when one is given, a copy of ``predictor``.

    Raises
    ------
    InvalidParameterError
        When a given predictor cannot be sent to another process.
    """
    builder = build if predictor is None else partial(_returns, predictor)
    try:
        pickle.dumps(builder)
    except Exception as err:  # pickling fails with many types
        raise InvalidParameterError(
            f"workers > 1 needs a predictor that can be sent to another process ({err}); "
            "run with one worker or let the benchmark build trRosetta"
        ) from None
    return builder


# ----------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}  # this worker process's builder, predictor, stop event and log settings


def _watch(parent: int, stop: Any) -> None:
    # A killed driver must not leave orphans; a stopping one has the running method checkpoint
    # (SIGINT is ignored between tasks, so an idle worker just waits to be shut down).
    while not stop.wait(1.0):
        if os.getppid() != parent:
            os._exit(1)
    signal.raise_signal(signal.SIGINT)


def _init_worker(
    build: Callable[[], Predictor], threads: int, parent: int, stop: Any, t0: float, verbose: bool
) -> None:
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C stops tasks, not idle workers
    _WORKER.update(build=build, predictor=None, stop=stop, t0=t0, verbose=verbose)
    threading.Thread(target=_watch, args=(parent, stop), daemon=True).start()


def _log(msg: str) -> None:
    if _WORKER["verbose"]:
        print(f"[{time.time() - _WORKER['t0']:7.0f} s] {msg}", file=sys.stderr, flush=True)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # where the task is: a scrambler saves its checkpoint


def _run_task(task: MethodTask, protocol: Protocol) -> None:
    # handlers first, then the check: a stop signalled in between still interrupts the task
    previous = signal.signal(signal.SIGINT, _interrupted), signal.signal(signal.SIGTERM, _interrupted)
    try:
        if _WORKER["stop"].is_set():  # queued before the run was stopped
            raise KeyboardInterrupt
        if _WORKER["predictor"] is None:  # built on first use, so its errors reach the driver
            _WORKER["predictor"] = _WORKER["build"]()
        predictor = _WORKER["predictor"]
        precision = getattr(predictor, "precision", None)
        inputs = protein_inputs(task.protein, predictor)
        entry = method_entry(
            task.protein, inputs, task.method, protocol, task.settings, task.cache, _log, precision
        )
        add_curves(inputs, {task.method: entry}, protocol, task.cache, _log, precision)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


# ----------------------------------------------------------------- driver side


def run_tasks(
    tasks: Sequence[MethodTask],
    protocol: Protocol,
    build: Callable[[], Predictor],
    workers: int,
    threads: int,
    log: Callable[[str], None],
    verbose: bool = True,
) -> None:
    """Run ``tasks`` on ``workers`` spawned processes of ``threads`` torch threads each.

    Returns when every task has written its method cache entry; raises the first task's error (the
    other workers stop and checkpoint first).

    Raises
    ------
    WorkerError
        A worker process died (killed for memory, for instance).
    """
    if not tasks:
        return
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    log(f"{len(tasks)} method run(s) on {workers} worker(s) of {threads} thread(s)")
    pool = ProcessPoolExecutor(
        workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(build, threads, os.getpid(), stop, time.time(), verbose),
    )
    try:
        futures: dict[Future, MethodTask] = {pool.submit(_run_task, t, protocol): t for t in by_cost(tasks)}
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            err = future.exception()
            if isinstance(err, BrokenProcessPool):
                task = futures[future]
                raise WorkerError(
                    f"a benchmark worker died while running {task.method} on {task.protein.name} "
                    "(killed for memory?); rerun with fewer workers to resume"
                ) from None
            if err is not None:
                raise err
    except BaseException:
        stop.set()  # running scramblers checkpoint; queued tasks return at once
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
