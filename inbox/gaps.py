"""Which live events a socket missed. The channel layer drops events for a socket that falls
behind, telling nobody; so what goes to the inbox group is numbered by its publisher
(inbox/events.py: a `source` per process, a `seq` counting up). A socket records the numbers
it has not seen; when one is still missing GAP_GRACE seconds after a later one arrived
(numbers may arrive a little out of order: a process sends from several threads), the page is
told to re-fetch its list and thread, as after a reconnect (docs/live.md)."""

import time

GAP_GRACE = 2.0
MAX_SOURCES = 64
MAX_MISSING = 1000


class Gaps:
    """The numbers (per source) this socket has not seen yet, each with its deadline."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.top: dict[str, int] = {}
        self.missing: dict[tuple[str, int], float] = {}
        self.overflow = False

    def see(self, source, seq) -> None:
        if not isinstance(source, str) or not isinstance(seq, int):
            return
        top = self.top.get(source)
        if top is None:  # the first from this source: we joined its count here
            if len(self.top) >= MAX_SOURCES:
                self.top.pop(next(iter(self.top)))
            self.top[source] = seq
        elif seq > top:
            if seq - top - 1 > MAX_MISSING:
                self.overflow = True
            else:
                deadline = self.clock() + GAP_GRACE
                self.missing.update(((source, n), deadline) for n in range(top + 1, seq))
            self.top[source] = seq
        else:  # late, not lost
            self.missing.pop((source, seq), None)

    @property
    def open(self) -> bool:
        return self.overflow or bool(self.missing)

    def wait(self) -> float:
        """Seconds until the earliest deadline."""
        if self.overflow or not self.missing:
            return 0.0
        return max(0.0, min(self.missing.values()) - self.clock())

    def lost(self) -> bool:
        """True (once: the record starts afresh) when a number is past its deadline."""
        now = self.clock()
        if self.overflow or any(deadline <= now for deadline in self.missing.values()):
            self.missing.clear()
            self.overflow = False
            return True
        return False
