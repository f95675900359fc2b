"""Waiting for something that must happen: the suite's one polling loop.

The timeout is an upper bound on a hang, never a timing under test (no timed assertions): a
test that needs "within N seconds" says so itself.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    every: float = 0.2,
    tick: Callable[[], object] | None = None,
    check: Callable[[], object] | None = None,
    detail: Callable[[], object] | None = None,
) -> T:
    """Poll `predicate()` until it returns something truthy, and return that.

    `tick()` runs between polls to nudge what should make it happen (a scheduler's tick, a
    sweep); `check()` runs before each poll and raises to stop early (a process that died);
    after `timeout` seconds the test fails naming `what`, with `detail()` when given (what is
    still missing)."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            more = f": {detail()}" if detail is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{more}", pytrace=False)
        if tick is not None:
            tick()
        time.sleep(every)
