"""Where a server's event loop spends its time, by timestamps (bench only).

py-spy perturbed daphne heavily (bench/RESULTS.md); this times every callback the asyncio loop
runs (two perf_counter calls each) and adds it to its owner: the task's coroutine (a socket's
hub member, an HTTP request, the hub's receive...) or the plain callback (Twisted's reads and
writes under daphne's asyncio reactor). Every second it writes the totals so far to
BENCH_PROBE as one JSON line: {"wall": s, "busy": s, "owners": {name: [calls, s]}}.

Installed by bench/settings.py when BENCH_PROBE names a file; read with
`python bench/probe.py FILE [FILE...]` (the last line of each: the run's totals).
"""

import asyncio
import functools
import json
import sys
import threading
import time
import weakref

_totals: dict[str, list] = {}
_names: "weakref.WeakKeyDictionary[asyncio.Task, str]" = weakref.WeakKeyDictionary()
_started = time.perf_counter()


def _task_name(task: asyncio.Task) -> str:
    name = _names.get(task)
    if name is None:
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        frame = getattr(coro, "cr_frame", None)
        scope = frame.f_locals.get("scope") if frame is not None else None
        if isinstance(scope, dict):  # an ASGI application instance: which kind, which path
            path = scope.get("path", "")
            name = f"asgi {scope.get('type')} {path.split('/')[1] if '/' in path else path}"
        _names[task] = name
    return name


def _owner(callback) -> str:
    if isinstance(callback, functools.partial):
        callback = callback.func
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return _task_name(owner)
    if owner is not None:
        return f"{type(owner).__qualname__}.{getattr(callback, '__name__', '?')}"
    return getattr(callback, "__qualname__", type(callback).__name__)


def install(path: str) -> None:
    run = asyncio.events.Handle._run

    def timed(self):
        callback = self._callback  # a callback that cancels its own handle clears it
        began = time.perf_counter()
        try:
            run(self)
        finally:
            spent = time.perf_counter() - began
            entry = _totals.setdefault(_owner(callback), [0, 0.0])
            entry[0] += 1
            entry[1] += spent

    asyncio.events.Handle._run = timed

    def write() -> None:
        while True:
            time.sleep(1)
            owners = {name: [n, round(s, 4)] for name, (n, s) in list(_totals.items())}
            line = {
                "wall": round(time.perf_counter() - _started, 3),
                "busy": round(sum(s for _, s in owners.values()), 3),
                "cpu": round(time.process_time(), 3),
                "owners": owners,
            }
            with open(path, "a") as f:
                f.write(json.dumps(line) + "\n")

    threading.Thread(target=write, daemon=True, name="bench-probe").start()


def report(path: str) -> None:
    with open(path) as f:
        last = json.loads(f.readlines()[-1])
    busy = last["busy"]
    print(f"{path}: wall {last['wall']:.1f} s, loop busy {busy:.1f} s, CPU {last['cpu']:.1f} s")
    rows = sorted(((s, n, name) for name, (n, s) in last["owners"].items()), reverse=True)
    for s, n, name in rows[:15]:
        print(f"  {s:7.2f} s  {s / max(busy, 1e-9):5.1%}  {n:8d} calls  {name}")


if __name__ == "__main__":
    for one in sys.argv[1:]:
        report(one)
