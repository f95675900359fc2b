"""The sending pace shared by every worker: a token bucket per WaSender session.

It is a GCRA ("theoretical arrival time"): one timestamp per key says when the next send may
go. With burst 1 the provider sees evenly spaced sends, never a burst, so it has no reason to
answer 429 at steady state. Jitter only ever lengthens the gap, so the rate is a ceiling.

With REDIS_URL the bucket lives in Redis (one atomic Lua script, Redis's own clock, so workers
on several machines agree); embedded, it is a dict behind a lock inside the one process.
"""

import random
import threading
import time
from collections.abc import Callable

from django.conf import settings

KEY_PREFIX = "chatdesk:sendrate:"

# KEYS[1] the bucket; ARGV: interval ms, burst, extra ms (jitter), hold ms, now ms (tests) or "".
# Returns 0 when a token was taken, else the milliseconds to wait.
ACQUIRE_LUA = """
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local hold = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if hold > 0 then
  tat = math.max(tat, now + hold)
  redis.call('SET', KEYS[1], tat, 'PX', tat - now + interval)
  return tat - now
end
local allowed_at = tat - (burst - 1) * interval
if allowed_at > now then
  return allowed_at - now
end
local new_tat = math.max(tat, now) + interval + tonumber(ARGV[3])
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + interval)
return 0
"""


def send_interval() -> float:
    """Seconds between two sends: WaSender's Account Protection allows one every 5 s."""
    if settings.SEND_ACCOUNT_PROTECTION:
        return 5.0
    return 60.0 / max(settings.SEND_RATE_PER_MINUTE, 1)


class MemoryBucket:
    """Embedded mode: every worker thread lives in this one process."""

    def __init__(
        self,
        *,
        interval: float,
        burst: int = 1,
        jitter: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        rand=random.random,
    ):
        self.interval, self.burst, self.jitter = interval, burst, jitter
        self.clock, self.rand = clock, rand
        self.tat: dict[str, float] = {}
        self.lock = threading.Lock()

    def try_acquire(self, key: str) -> float:
        """0 when a token was taken, else the seconds to wait before asking again."""
        with self.lock:
            now = self.clock()
            tat = self.tat.get(key, now)
            allowed_at = tat - (self.burst - 1) * self.interval
            if allowed_at > now:
                return allowed_at - now
            self.tat[key] = max(tat, now) + self.interval + self.jitter * self.rand()
            return 0.0

    def hold(self, key: str, seconds: float) -> None:
        """The provider said "wait": nobody sends on this key for that long."""
        with self.lock:
            now = self.clock()
            self.tat[key] = max(self.tat.get(key, now), now + seconds)

    def held_for(self, key: str) -> float:
        """Seconds until the next token, without taking one (0: one is there)."""
        with self.lock:
            tat = self.tat.get(key, self.clock())
            return max(tat - (self.burst - 1) * self.interval - self.clock(), 0.0)


class RedisBucket:
    def __init__(
        self,
        *,
        redis,
        interval: float,
        burst: int = 1,
        jitter: float = 0.0,
        clock: Callable[[], float] | None = None,
        rand=random.random,
    ):
        self.redis = redis
        self.script = redis.register_script(ACQUIRE_LUA)
        self.interval, self.burst, self.jitter = interval, burst, jitter
        self.clock, self.rand = clock, rand

    def _call(self, key: str, *, extra: float = 0.0, hold: float = 0.0) -> float:
        now = "" if self.clock is None else str(int(self.clock() * 1000))
        args = [
            round(self.interval * 1000),
            self.burst,
            round(extra * 1000),
            round(hold * 1000),
            now,
        ]
        return int(self.script(keys=[KEY_PREFIX + key], args=args)) / 1000

    def try_acquire(self, key: str) -> float:
        return self._call(key, extra=self.jitter * self.rand())

    def hold(self, key: str, seconds: float) -> None:
        self._call(key, hold=seconds)

    def held_for(self, key: str) -> float:
        """Seconds until the next token, without taking one (0: one is there)."""
        tat, (seconds, micros) = self.redis.get(KEY_PREFIX + key), self.redis.time()
        if tat is None:
            return 0.0
        now = self.clock() * 1000 if self.clock is not None else seconds * 1000 + micros / 1000
        allowed_at = int(tat) - (self.burst - 1) * self.interval * 1000
        return max(allowed_at - now, 0.0) / 1000


def token_wait(
    bucket,
    key: str,
    *,
    max_wait: float,
    sleep=time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Block until a token is taken (True) or max_wait has passed (False). Sleeps are short,
    so a hold() placed by another worker is noticed."""
    deadline = clock() + max_wait
    while True:
        wait = bucket.try_acquire(key)
        if wait <= 0:
            return True
        left = deadline - clock()
        if left <= 0:
            return False
        sleep(min(wait, 1.0, left))


_buckets: dict = {}
_bucket_lock = threading.Lock()


def bucket(per_second: float | None = None):
    """The process-wide bucket for the current settings (WaSender's pace), or for a number
    with a pace of its own (a Cloud API number: 80 a second by default). Keys are channels."""
    interval = send_interval() if not per_second else 1.0 / per_second
    with _bucket_lock:
        found = _buckets.get(interval)
        if found is None:
            jitter = settings.SEND_JITTER_SECONDS if not per_second else 0.0
            if settings.REDIS_URL:
                import redis

                client = redis.Redis.from_url(settings.REDIS_URL)
                found = RedisBucket(redis=client, interval=interval, jitter=jitter)
            else:
                found = MemoryBucket(interval=interval, jitter=jitter)
            _buckets[interval] = found
        return found


def bucket_reset() -> None:
    with _bucket_lock:
        _buckets.clear()
