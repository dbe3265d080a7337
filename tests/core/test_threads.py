"""The shared helper threads (``lossforge._core.threads``): every block runs exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import torch

from lossforge._core import threads


@pytest.fixture(params=[1, 2, 4])
def num_threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


@pytest.mark.parametrize("runner", [threads.run_blocks, threads.run_runs])
@pytest.mark.parametrize("count", [0, 1, 3, 100])
def test_every_block_runs_once(runner, count, num_threads):
    seen: Counter[int] = Counter()
    names = set()
    lock = threading.Lock()

    def call(b: int) -> None:
        if b % 7 == 0:
            time.sleep(0.001)  # uneven work: the others take over
        with lock:
            seen[b] += 1
            names.add(threading.current_thread().name)

    runner(count, call)
    assert seen == Counter(range(count))
    assert len(names) <= max(1, min(num_threads, count))


def test_run_runs_starts_each_thread_on_its_own_contiguous_run(num_threads):
    order: list[tuple[str, int]] = []
    lock = threading.Lock()

    def call(b: int) -> None:
        with lock:
            order.append((threading.current_thread().name, b))
        time.sleep(0.0005)

    threads.run_runs(40, call)
    first = {}
    for name, b in order:
        first.setdefault(name, b)
    assert 0 in first.values()  # the calling thread starts at block 0
    assert all(b % (40 // min(num_threads, 40)) == 0 for b in first.values())


def test_an_error_in_a_block_is_raised():
    def call(b: int) -> None:
        if b == 5:
            raise ValueError("block 5")

    with pytest.raises(ValueError, match="block 5"):
        threads.run_blocks(10, call)
