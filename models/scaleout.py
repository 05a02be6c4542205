"""Run one plain top-level function over many work items: in this process, local worker processes, or Ray.

``map_tasks(fn, items, workers=N, ray_address=None)`` is what batch rendering and the coach's dataset generator
use. ``fn`` must be a module-level function, or a ``functools.partial`` of one (so worker processes and Ray
workers can import it), whose argument and result pickle. Results come back in the order of ``items`` whatever
the backend; worker processes and Ray tasks both run with one thread per CPU they get, so they compute the same
numbers. ``on_result(index, result)`` is called as each item finishes, in finishing order.

``worker_pool(workers)`` keeps its worker processes for a whole block, for a loop that maps many small batches
(tuning a matcher by ear renders a few hundred clips per step): starting processes for each would cost more than
the work.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from models.errors import ReaTimbreError
from models.optional import require

if TYPE_CHECKING:
    from ray._private.worker import RemoteFunction1  # what ray.remote makes of a two-argument function

Item = TypeVar("Item")
Result = TypeVar("Result")

RAY_CONNECT_TIMEOUT_SECONDS = 5.0


def map_tasks(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    workers: int = 1,
    ray_address: str | None = None,
    on_result: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """Apply ``fn`` to every item and return the results in item order.

    ``ray_address`` (``"auto"``, ``"ray://host:10001"``, ``"local"`` for a fresh local instance) runs the items
    as Ray tasks (an already initialised Ray session is reused); otherwise ``workers`` > 1 uses that many local
    worker processes and ``workers`` == 1 runs in this process. An exception raised by ``fn`` stops the run
    and is re-raised here.
    """
    if workers < 1:
        raise ReaTimbreError(f"workers must be at least 1, got {workers}")
    if not items:
        return []
    if ray_address is not None:
        return _map_on_ray(fn, items, ray_address, on_result)
    if workers == 1:
        return _map_in_process(fn, items, on_result)
    return _map_on_processes(fn, items, workers, on_result)


def _map_in_process(
    fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[int, Result], None] | None
) -> list[Result]:
    results = []
    for index, item in enumerate(items):
        result = fn(item)
        if on_result is not None:
            on_result(index, result)
        results.append(result)
    return results


#: The thread-count settings of the native libraries (torch/OpenMP, OpenBLAS, MKL), read when they load.
THREAD_ENV_KEYS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: int = 1) -> bool:
    """Cap the BLAS thread pools of numpy and scipy at ``threads`` in this process, unless the user set one of
    :data:`THREAD_ENV_KEYS` (their choice stands); True if the cap was applied.

    The matrix products here are small (a spectrogram's mel projection is 88 x 1025 by 1025 x 128), and a BLAS
    pool of one thread per core spins on cores that REAPER, a training or another request is using: measured on the
    2-core machine under load, a Vital match with 6 guesses took 1.04 s with the default pool and 0.42 s with one
    thread, an amsynth match 0.50 s and 0.09 s (benchmarks/match_speed.py; docs/match.md). torch keeps its own
    pool (``--threads``)."""
    if any(os.environ.get(key) for key in THREAD_ENV_KEYS):
        return False
    # load both BLAS libraries now, so that there are pools to cap: numpy's, and scipy's own (scipy.linalg, which
    # scipy.signal, librosa and the DSP bring in later; a pool loaded after the cap would keep a thread per core)
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    return True


def _limit_threads(threads_per_worker: int) -> None:
    """Worker-process initializer: share the CPU cores among the workers instead of oversubscribing. It runs
    before the worker imports the task's module, so numpy and torch load with these settings."""
    for key in THREAD_ENV_KEYS:
        os.environ[key] = str(threads_per_worker)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads_per_worker)


def _limit_threads_ignore_interrupt(threads_per_worker: int) -> None:
    """Worker initializer of :func:`worker_pool`: as :func:`_limit_threads`, and Ctrl-C is the parent's to handle
    (a terminal sends it to the whole process group; a worker killed by it would break the pool mid-map)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads(threads_per_worker)


@contextmanager
def worker_pool(workers: int) -> Iterator[Callable[[Callable[[Item], Result], Sequence[Item]], list[Result]]]:
    """A ``map(fn, items)`` (results in item order) over ``workers`` local processes that live as long as the
    block; with 1 worker, in this process. ``fn`` is a module-level function, as for :func:`map_tasks`."""
    if workers < 1:
        raise ReaTimbreError(f"workers must be at least 1, got {workers}")
    if workers == 1:
        yield lambda fn, items: [fn(item) for item in items]
        return
    threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_limit_threads_ignore_interrupt,
        initargs=(threads_per_worker,),
    )
    try:
        yield lambda fn, items: list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _map_on_processes(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    on_result: Callable[[int, Result], None] | None,
) -> list[Result]:
    threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # fork after torch/threads is unsafe
    results: dict[int, Result] = {}
    with ProcessPoolExecutor(
        max_workers=min(workers, len(items)),
        mp_context=context,
        initializer=_limit_threads,
        initargs=(threads_per_worker,),
    ) as pool:
        pending: dict[Future[Result], int] = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    results[index] = future.result()
                    if on_result is not None:
                        on_result(index, results[index])
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return [results[i] for i in range(len(items))]


def _map_on_ray(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    address: str,
    on_result: Callable[[int, Result], None] | None,
) -> list[Result]:
    ray = require("ray", "running on a Ray cluster (--ray-address)")

    _check_reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ReaTimbreError(f"cannot connect to Ray at {address!r}: {_first_line(exc)}") from exc
    # a wrapper, so fn may also be a functools.partial
    remote_apply: RemoteFunction1[Result, Callable[[Item], Result], Item] = ray.remote(num_cpus=1)(_apply)
    fn_ref = ray.put(fn)
    pending: dict[Any, int] = {remote_apply.remote(fn_ref, item): i for i, item in enumerate(items)}
    results: dict[int, Result] = {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    results[index] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None  # the task's own exception type
                if on_result is not None:
                    on_result(index, results[index])
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    return [results[i] for i in range(len(items))]


def _apply(fn: Callable[[Item], Result], item: Item) -> Result:
    """What each Ray task runs."""
    return fn(item)


def _check_reachable(address: str, timeout_seconds: float = RAY_CONNECT_TIMEOUT_SECONDS) -> None:
    """Fail fast on a ``host:port`` (or ``ray://host:port``) nobody listens on; Ray itself waits minutes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ReaTimbreError(f"Ray address must be 'auto', 'local', HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds).close()
    except OSError as exc:
        raise ReaTimbreError(f"cannot connect to Ray at {address!r}: {exc.strerror or exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
