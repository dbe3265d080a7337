"""Work shared among threads: blocks of a kernel run on the calling thread and a small pool.

The fused kernels cut their work into blocks that each run inline (a block of ATen operations below
the parallel grain, or one native C call, during which ``ctypes`` releases the GIL), and share the
blocks out dynamically among ``torch.get_num_threads()`` threads: there is then no OpenMP fork and
join per operation, which on a busy machine would wait for a descheduled worker. Which thread runs a
block never changes what it computes, so results do not depend on the thread count.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

__all__: list[str] = []

_POOL: dict[str, Any] = {"pid": None, "size": 0, "executor": None}


def _executor(workers: int) -> ThreadPoolExecutor:
    """The pool of helper threads (made again after a fork, or when more threads are wanted)."""
    executor = _POOL["executor"]
    if executor is None or _POOL["pid"] != os.getpid() or _POOL["size"] < workers:
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lossforge")
        _POOL.update(pid=os.getpid(), size=workers, executor=executor)
    return executor


def run_shared(work: Callable[[], None], threads: int) -> None:
    """Run ``work()`` on the calling thread and on ``threads - 1`` pool threads at once, and return
    when every one has finished (re-raising the first error). ``work`` takes its items from a queue
    it shares with the other copies, e.g. ``next()`` of an ``itertools.count`` (atomic under the GIL)."""
    helpers: list[Future[None]] = []
    if threads > 1:
        executor = _executor(threads - 1)
        helpers = [executor.submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        for f in helpers:
            f.result()


def run_blocks(count: int, call: Callable[[int], None]) -> None:
    """``call(b)`` for every ``b`` in ``range(count)``, on up to ``torch.get_num_threads()`` threads,
    each taking the next block until none is left."""
    counter = itertools.count()

    def work() -> None:
        while (b := next(counter)) < count:
            call(b)

    run_shared(work, min(torch.get_num_threads(), count))


def run_runs(count: int, call: Callable[[int], None]) -> None:
    """Like :func:`run_blocks`, but each thread first works through its own contiguous run of blocks
    in order (thread ``k`` of ``T`` starts at block ``k * count // T``), then takes the blocks left at
    the far end of the other runs. For a pass that writes a fresh buffer: each thread first-touches
    long runs of pages of its own (the kernel's page-table locks are per 2 MiB region), while a
    descheduled thread's blocks are still taken over by the others."""
    if count <= 0:
        return
    threads = min(torch.get_num_threads(), count)
    runs = [deque(range(k * count // threads, (k + 1) * count // threads)) for k in range(threads)]
    ids = itertools.count()  # which run a thread starts with

    def work() -> None:
        own = next(ids)
        for k in [own, *(j for j in range(threads) if j != own)]:
            run = runs[k]
            while True:
                try:  # deque.popleft and pop are atomic: a block is taken once
                    b = run.popleft() if k == own else run.pop()
                except IndexError:
                    break
                call(b)

    run_shared(work, threads)
