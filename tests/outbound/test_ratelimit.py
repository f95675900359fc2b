"""The shared send pace: burst 1, evenly spaced, jitter only ever slows it. No test sleeps."""

import os

import pytest
from django.test import override_settings

from outbound import ratelimit
from outbound.ratelimit import MemoryBucket, RedisBucket, send_interval, token_wait
from tests.conftest import require


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now
        self.sleep_calls: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleep_calls.append(seconds)
        self.now += seconds


def clock_new() -> Clock:
    return Clock()


def redis_client():
    require("REDIS_URL" in os.environ, "needs Redis (REDIS_URL)")
    import redis

    from tests.procs import redis_url_for_tests

    client = redis.Redis.from_url(redis_url_for_tests())
    client.delete(ratelimit.KEY_PREFIX + "s1", ratelimit.KEY_PREFIX + "s2")
    return client


@pytest.fixture(params=["memory", "redis"])
def make_bucket(request):
    def make(*, interval, clock, jitter=0.0, rand=lambda: 1.0, burst=1):
        if request.param == "memory":
            return MemoryBucket(
                interval=interval, burst=burst, jitter=jitter, clock=clock, rand=rand
            )
        return RedisBucket(
            redis=redis_client(),
            interval=interval,
            burst=burst,
            jitter=jitter,
            clock=clock,
            rand=rand,
        )

    return make


def test_it_lets_the_first_send_go(make_bucket):
    bucket = make_bucket(interval=0.5, clock=clock_new())
    assert bucket.try_acquire("s1") == 0


def test_it_spaces_sends_by_the_interval(make_bucket):
    clock = clock_new()
    bucket = make_bucket(interval=0.5, clock=clock)
    assert bucket.try_acquire("s1") == 0
    assert bucket.try_acquire("s1") == pytest.approx(0.5)
    clock.now += 0.2
    assert bucket.try_acquire("s1") == pytest.approx(0.3)
    clock.now += 0.3
    assert bucket.try_acquire("s1") == 0


def test_it_allows_no_burst_after_a_quiet_spell(make_bucket):
    clock = clock_new()
    bucket = make_bucket(interval=0.5, clock=clock)
    bucket.try_acquire("s1")
    clock.now += 60
    assert bucket.try_acquire("s1") == 0
    assert bucket.try_acquire("s1") == pytest.approx(0.5)


def test_it_keeps_one_bucket_per_session(make_bucket):
    bucket = make_bucket(interval=0.5, clock=clock_new())
    assert bucket.try_acquire("s1") == 0
    assert bucket.try_acquire("s2") == 0


def test_jitter_only_lengthens_the_gap(make_bucket):
    clock = clock_new()
    bucket = make_bucket(interval=0.5, clock=clock, jitter=2.0, rand=lambda: 0.25)
    bucket.try_acquire("s1")
    assert bucket.try_acquire("s1") == pytest.approx(1.0)


def test_hold_pauses_every_sender_on_the_session(make_bucket):
    clock = clock_new()
    bucket = make_bucket(interval=0.5, clock=clock)
    bucket.hold("s1", 30)
    assert bucket.try_acquire("s1") == pytest.approx(30)
    clock.now += 30
    assert bucket.try_acquire("s1") == 0


def test_token_wait_sleeps_in_short_steps_until_its_turn():
    clock = clock_new()
    bucket = MemoryBucket(interval=2.5, clock=clock)
    bucket.try_acquire("s1")
    assert token_wait(bucket, "s1", max_wait=60, sleep=clock.sleep, clock=clock)
    assert clock.sleep_calls == [1.0, 1.0, pytest.approx(0.5)]
    assert clock.now == pytest.approx(1002.5)


def test_token_wait_gives_up_after_max_wait():
    clock = clock_new()
    bucket = MemoryBucket(interval=5, clock=clock)
    bucket.hold("s1", 120)
    assert not token_wait(bucket, "s1", max_wait=3, sleep=clock.sleep, clock=clock)
    assert clock.now == pytest.approx(1003)


def test_steady_pace_is_the_configured_rate():
    clock = clock_new()
    bucket = MemoryBucket(interval=0.5, clock=clock)
    times = []
    for _ in range(121):
        assert token_wait(bucket, "s1", max_wait=60, sleep=clock.sleep, clock=clock)
        times.append(clock.now)
    assert times[-1] - times[0] == pytest.approx(60.0)


@override_settings(SEND_RATE_PER_MINUTE=120, SEND_ACCOUNT_PROTECTION=False)
def test_interval_follows_the_rate_setting():
    assert send_interval() == 0.5


@override_settings(SEND_RATE_PER_MINUTE=256, SEND_ACCOUNT_PROTECTION=True)
def test_account_protection_means_one_every_five_seconds():
    assert send_interval() == 5.0


@override_settings(REDIS_URL="")
def test_embedded_mode_uses_the_in_process_bucket():
    ratelimit.bucket_reset()
    try:
        assert isinstance(ratelimit.bucket(), MemoryBucket)
    finally:
        ratelimit.bucket_reset()
