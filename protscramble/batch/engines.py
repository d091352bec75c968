"""Engines run buckets somewhere and hand back their outcomes as they finish.

``local``
    Every GPU of this machine (one worker process each), else CPU workers.
    A single worker runs in-process; several run in spawned processes, each
    pinned to one device.
``ray``
    One Ray task per bucket, on a local Ray instance or on the cluster at
    ``address``; tasks ask for one GPU when the cluster has GPUs.

Both call :func:`~protscramble.batch.worker.run_bucket` with the same
buckets, the same torch thread count and the same settings, so on the same
kind of device they return the same numbers.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

import torch

from ..errors import BackendUnavailableError, InvalidParameterError
from ..predictors.trrosetta.model import available_memory
from .buckets import BucketTask
from .config import BatchConfig
from .worker import DesignOutcome, failed, run_bucket

ENGINES = ("local", "ray")
Outcomes = Iterator[tuple[BucketTask, list[DesignOutcome]]]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads (CPU results depend on the count in the last digits)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_devices(spec: str | Sequence[str], cpu_threads: int = 1, memory_gib: float = 8.0) -> list[str]:
    """Worker devices of the local engine.

    ``auto``: one worker per CUDA GPU; without GPUs, as many CPU workers as
    there are cores for ``cpu_threads`` threads each and memory for
    ``memory_gib`` each. Otherwise a comma list such as ``cuda:0,cuda:1`` or
    ``cpu,cpu`` (one worker per entry).
    """
    from ..cli.common import resolve_device

    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise InvalidParameterError("--devices is empty")
    if names == ["auto"]:
        if torch.cuda.is_available() and torch.cuda.device_count() > 0:
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        by_cores = (os.cpu_count() or 1) // cpu_threads
        by_memory = int(available_memory(torch.device("cpu")) // ((memory_gib + 1) * 2**30))
        return ["cpu"] * max(1, min(by_cores, by_memory))
    devices = []
    for name in names:
        dev = resolve_device(name)
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidParameterError(
                f"--devices names {name} but only {torch.cuda.device_count()} GPU(s) exist"
            )
        devices.append(str(dev))
    return devices


# ------------------------------------------------------------------ local


_WORKER_DEVICE = "cpu"


def _watch_parent(parent: int) -> None:
    # A killed driver must not leave orphan workers computing for nobody.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(devices: mp.Queue, threads: int, parent: int) -> None:
    global _WORKER_DEVICE
    _WORKER_DEVICE = devices.get()
    torch.set_num_threads(threads)
    if _WORKER_DEVICE.startswith("cuda"):
        torch.cuda.set_device(torch.device(_WORKER_DEVICE))
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _run_in_worker(task: BucketTask, config: BatchConfig) -> list[DesignOutcome]:
    return run_bucket(task, config, _WORKER_DEVICE)


class LocalEngine:
    """Buckets on this machine's devices.

    Parameters
    ----------
    devices
        One worker per entry (see :func:`resolve_devices`).
    threads
        Torch intra-op threads per worker.
    """

    name = "local"

    def __init__(self, devices: Sequence[str], threads: int = 1) -> None:
        self.devices = list(devices)
        self.threads = threads

    def describe(self) -> str:
        return f"local engine, {len(self.devices)} worker(s) on {', '.join(self.devices)}"

    def run(self, tasks: Sequence[BucketTask], config: BatchConfig) -> Outcomes:
        if not tasks:
            return
        if len(self.devices) == 1:
            with torch_threads(self.threads):
                for task in tasks:
                    yield task, run_bucket(task, config, self.devices[0])
            return
        ctx = mp.get_context("spawn")  # CUDA cannot be forked; spawn also isolates crashes
        queue = ctx.Queue()
        for device in self.devices:
            queue.put(device)
        pool = ProcessPoolExecutor(
            len(self.devices),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(queue, self.threads, os.getpid()),
        )
        try:
            futures: dict[Future, BucketTask] = {pool.submit(_run_in_worker, t, config): t for t in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcomes = future.result()
                except Exception as err:  # the worker process died (e.g. killed for memory)
                    outcomes = failed(task, "worker", err)
                yield task, outcomes
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# -------------------------------------------------------------------- ray


def _ray_bucket(task: BucketTask, config: BatchConfig, threads: int) -> list[DesignOutcome]:
    import ray

    torch.set_num_threads(threads)
    device = "cuda" if ray.get_gpu_ids() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per task
    return run_bucket(task, config, device)


class RayEngine:
    """One Ray task per bucket.

    Parameters
    ----------
    address
        Cluster address (``auto``, ``ray://host:10001``...); ``None`` uses the
        Ray instance this process already joined, or starts a local one.
    threads
        CPUs asked for (and torch threads used) per task.

    Notes
    -----
    Workers need protscramble, the trRosetta weights and the design files
    (structure paths are read by the tasks) at the same paths as the driver;
    the driver alone writes the outputs.
    """

    name = "ray"

    def __init__(self, address: str | None = None, threads: int = 1) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(
                "the ray engine needs Ray: pip install 'ray' (or protscramble[ray])"
            ) from None
        self.address = address
        self.threads = threads

    def describe(self) -> str:
        return f"ray engine ({self.address or 'local instance'}), {self.threads} CPU(s) per task"

    def _connect(self) -> bool:
        import ray

        if ray.is_initialized():
            return False
        kwargs = {"address": self.address} if self.address else {"include_dashboard": False}
        try:
            ray.init(**kwargs, log_to_driver=False, logging_level="warning")
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise InvalidParameterError(
                f"cannot start or reach Ray at {self.address or 'local'}: {err}"
            ) from None
        return True

    def run(self, tasks: Sequence[BucketTask], config: BatchConfig) -> Outcomes:
        import ray

        if not tasks:
            return
        started = self._connect()
        try:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0))
            remote = ray.remote(_ray_bucket).options(num_cpus=self.threads, num_gpus=1 if gpus else 0)
            capacity = gpus or max(1, int(resources.get("CPU", 1) // self.threads))
            config_ref = ray.put(config)
            queue = list(tasks)
            in_flight: dict = {}
            while queue or in_flight:
                # A bounded window keeps finished results from piling up in the object store.
                while queue and len(in_flight) < 2 * capacity:
                    task = queue.pop(0)
                    in_flight[remote.remote(task, config_ref, self.threads)] = task
                [ready], _ = ray.wait(list(in_flight), num_returns=1)
                task = in_flight.pop(ready)
                try:
                    outcomes = ray.get(ready)
                except Exception as err:  # task or worker failure
                    outcomes = failed(task, "worker", err)
                yield task, outcomes
        finally:
            if started:
                ray.shutdown()


def make_engine(
    name: str,
    devices: str | Sequence[str] = "auto",
    address: str | None = None,
    config: BatchConfig | None = None,
) -> LocalEngine | RayEngine:
    """An engine by name, with its devices checked before any work starts."""
    config = config or BatchConfig()
    threads = config.batch.cpu_threads
    if name == "local":
        if address:
            raise InvalidParameterError("--ray-address needs --engine ray")
        return LocalEngine(resolve_devices(devices, threads, config.batch.memory_gib), threads)
    if name == "ray":
        if devices not in ("auto", ["auto"]):
            raise InvalidParameterError(
                "--devices applies to the local engine; Ray places tasks by its resources"
            )
        return RayEngine(address, threads)
    raise InvalidParameterError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
