"""Where the runs of a ``cv`` go (issue 28.4-5): one after another, in worker processes on this machine, or on a
Ray cluster. Every executor runs the same task function on the same arguments, so the results do not depend on
which one ran them — bit for bit across processes when each process uses the same number of CPU threads
(PyTorch's CPU reductions may group sums differently with another thread count; the serial path is given the
workers' count when they run beside it).

- ``serial``: in this process, in order (the default, ``jobs=1``).
- ``process``: ``jobs`` worker processes on this machine (``fork`` where the platform has it and CUDA is not
  initialised yet, else ``spawn``); the dataset reaches each worker once. Several processes may share one GPU.
- ``ray``: tasks on a Ray cluster (``pip install "csg2a-graph[ray]"``): a local one started for the run, or an
  existing one at ``address`` (``ray start --head`` on one node, ``ray start --address=HEAD:6379`` on the others).
  Each task asks for ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs (1 on a GPU cluster: one GPU per run).
  The dataset is put in the object store once; paths in the options (a pretrained network) must be readable
  on every node (a shared filesystem).

Results stream back as they finish; the caller (the driver) alone writes the results table, so a stopped run
keeps every finished row whatever the executor.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)

EXECUTORS = ("serial", "process", "ray")

#: the worker's dataset (set once per process by ``_init_worker()``, or inherited through ``fork``)
_WORKER: Dict[str, Any] = {}


def _init_worker(threads: int, dataset=None) -> None:
    torch.set_num_threads(threads)
    if dataset is not None:
        _WORKER["dataset"] = dataset


def _call(fn: Callable, args: Tuple) -> Any:
    return fn(_WORKER["dataset"], *args)


def worker_threads(jobs: int) -> int:
    """CPU threads per worker so that ``jobs`` workers share this machine's cores without oversubscribing."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_tasks(
    fn: Callable,
    dataset,
    tasks: Sequence[Tuple],
    jobs: int = 1,
    executor: str = "serial",
    threads: Optional[int] = None,
    address: Optional[str] = None,
    cpus_per_task: float = 1,
    gpus_per_task: float = 0,
) -> Iterator[Tuple[int, Any]]:
    """Yield ``(index, fn(dataset, *tasks[index]))`` as the tasks finish (in order for ``serial``).

    ``fn`` must be a module-level function (it is pickled by name). The first task to raise stops the run:
    pending tasks are cancelled and the error is raised here, after the finished ones were yielded.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if not tasks:
        return
    if executor == "serial" or (executor == "process" and (jobs == 1 or len(tasks) == 1)):
        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            for i, t in enumerate(tasks):
                yield i, fn(dataset, *t)
        finally:
            torch.set_num_threads(before)
        return
    if executor == "process":
        yield from _run_processes(fn, dataset, tasks, jobs, threads or worker_threads(jobs))
    else:
        yield from _run_ray(
            fn, dataset, tasks, jobs, threads or max(1, int(cpus_per_task)), address, cpus_per_task, gpus_per_task
        )


def _run_processes(fn, dataset, tasks, jobs, threads) -> Iterator[Tuple[int, Any]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    use_fork = "fork" in mp.get_all_start_methods() and not torch.cuda.is_initialized()
    ctx = mp.get_context("fork" if use_fork else "spawn")
    if use_fork:  # the children inherit the dataset: nothing is pickled
        _WORKER["dataset"] = dataset
        initargs: Tuple = (threads,)
    else:
        initargs = (threads, dataset)
    logger.info(
        "%d tasks on %d worker processes (%s, %d CPU threads each)", len(tasks), jobs, ctx.get_start_method(), threads
    )
    try:
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=initargs
        ) as pool:
            pending = {pool.submit(_call, fn, t): i for i, t in enumerate(tasks)}
            while pending:
                # FIRST_COMPLETED: each result is yielded (its row written) as soon as it exists; FIRST_EXCEPTION
                # waited for every task unless one failed, so a stopped run lost all its finished rows
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    err = fut.exception()
                    if err is not None:
                        for other in pending:
                            other.cancel()
                        raise err
                    yield i, fut.result()
    finally:
        _WORKER.pop("dataset", None)


def _ray_call(fn, threads, dataset, args):
    torch.set_num_threads(threads)
    return fn(dataset, *args)


def _run_ray(fn, dataset, tasks, jobs, threads, address, cpus, gpus) -> Iterator[Tuple[int, Any]]:
    try:
        import ray
    except ImportError as e:
        raise ImportError('executor="ray" needs Ray: pip install "csg2a-graph[ray]"') from e
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, int(jobs * cpus)), include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_ray_call)
        ref = ray.put(dataset)
        pending: Dict[Any, int] = {remote.remote(fn, threads, ref, t): i for i, t in enumerate(tasks)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for r in ready:
                i = pending.pop(r)
                try:
                    out = ray.get(r)
                except Exception:
                    for other in pending:
                        ray.cancel(other, force=True)
                    raise
                yield i, out
    finally:
        if started:
            ray.shutdown()


def describe(executor: str, jobs: int, address: Optional[str] = None) -> Dict[str, Any]:
    """What ran the tasks, for run.json."""
    d: Dict[str, Any] = {"executor": executor, "jobs": jobs}
    if executor == "ray":
        d["address"] = address or "local"
    return d


__all__ = ["EXECUTORS", "run_tasks", "worker_threads", "describe"]
