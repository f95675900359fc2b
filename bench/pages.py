"""Server time of the main pages on a large data set (see `manage.py generate_large_data`).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_large python bench/pages.py

Issue 19's scale is `generate_large_data --scale 5 --channels 2` (250,000 customers, 5,000,000
messages on two numbers). First the rollups are brought up to date (insights.rollups, as the
worker's periodic fold keeps them): the first fold of the data set and a fold with nothing new
are timed. In-process Django test Client with a logged-in admin: the time is the server's (URL
routing, views, queries, templates), not the network's. Each page is requested N times warm
(after one warm-up) and N times cold (Django's cache emptied before every request: a fresh
local-memory cache, so a shared Redis is never flushed); p50/p95 and the query count of the
last request are recorded. The analytics page loads its agents and behaviour sections with
htmx after the page: they are measured as their own rows. Then each analytics section alone,
with an empty cache.

BENCH_PAGES="panel;inbox list;thread" measures only the pages named (no fold, no sections): a
quick before/after of one fix.
"""

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.common import percentile, record, require_services  # noqa: E402
from customers.models import Customer  # noqa: E402
from inbox.models import Conversation, Message  # noqa: E402
from insights import selectors  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
ONLY = [name.strip() for name in os.environ.get("BENCH_PAGES", "").split(";") if name.strip()]
# Issue 19's goal 4 (at 5x scale), warm and cold alike.
TARGETS = {
    "panel": 50,
    "panel partial (polled)": 50,
    "inbox list": 50,
    "thread": 75,
    "analytics 365 days": 300,
    "analytics 365 days: agents": 300,
    "analytics 365 days, one number": 300,
}


def measure(client, url, *, cold=False, **headers):
    client.get(url, **headers)
    times = []
    for _ in range(RUNS):
        if cold:
            cache.clear()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url, **headers)
            if response.streaming:
                b"".join(response.streaming_content)
            times.append(time.perf_counter() - started)
    assert response.status_code == 200, (url, response.status_code)
    return times, len(queries)


COLD = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "bench-cold",
    }
}


def sections(days: int) -> list[tuple[str, object]]:
    today = timezone.localdate()
    period = selectors.Period(today - timedelta(days=days - 1), today)
    return [
        ("daily trend", lambda: selectors.daily_metrics(period)),
        ("best hours", lambda: selectors.heatmaps(period)),
        ("services", lambda: selectors.popular_services(period)),
        ("reminder funnel", lambda: selectors.reminder_funnel(period)),
        ("campaign comparison", lambda: selectors.campaign_comparison(period)),
        ("agents", lambda: selectors.agent_stats(period)),
    ]


def cold_rows() -> list[str]:
    """Each section alone with an empty cache, then again (what the cache still adds)."""
    lines = [
        "",
        "| section, first load (empty cache) | 30 days ms | 365 days ms | second load "
        "365 days ms |",
        "|---|---|---|---|",
    ]
    with override_settings(CACHES=COLD):
        for (name, thirty), (_name, year) in zip(sections(30), sections(365), strict=True):
            timings = []
            for compute in (thirty, year, year):
                if len(timings) < 2:
                    cache.clear()
                started = time.perf_counter()
                compute()
                timings.append((time.perf_counter() - started) * 1000)
            lines.append(f"| {name} | {timings[0]:.0f} | {timings[1]:.0f} | {timings[2]:.0f} |")
        cache.clear()
        started = time.perf_counter()
        selectors.behaviour_groups()
        took = (time.perf_counter() - started) * 1000
        lines.append(f"| behaviour groups (last 90 days, empty cache) | {took:.0f} | | |")
    return lines


def fold_rows() -> list[str]:
    from insights.models import RollupMark
    from insights.rollups import rollups_fold

    lines = []
    if not RollupMark.objects.exists():
        started = time.perf_counter()
        folded = rollups_fold()
        took = time.perf_counter() - started
        lines.append(
            f"First fold of the data set (every day of every kind): {took:.1f} s, {folded}."
        )
    started = time.perf_counter()
    rollups_fold()
    took = (time.perf_counter() - started) * 1000
    lines.append(
        f"A fold with nothing new (the worker's every minute: the trailing days of each kind "
        f"refolded): {took:.0f} ms."
    )
    return lines


def main():
    require_services()
    admin = User.objects.filter(is_superuser=True).first()
    client = Client()
    client.force_login(admin)
    busiest = (
        Message.objects.values("conversation_id").order_by("-conversation_id").first() or {}
    ).get("conversation_id") or Conversation.objects.order_by("-last_message_at").first().pk
    htmx = {"HTTP_HX_REQUEST": "true"}
    pages = [
        ("panel", "/", {}),
        ("panel partial (polled)", "/", htmx),
        ("panel, one number", "/?channel=soporte", {}),
        ("analytics 30 days", "/insights/?range=30", {}),
        ("analytics 30 days: agents", "/insights/?range=30&section=agents", htmx),
        ("analytics 365 days", "/insights/?from={}", {}),
        ("analytics 365 days: agents", "/insights/?section=agents&from={}", htmx),
        ("analytics 365 days, one number", "/insights/?from={}&channel=soporte", {}),
        ("analytics: behaviour groups", "/insights/?section=behaviour", htmx),
        ("inbox list", "/inbox/", {}),
        ("thread", f"/inbox/c/{busiest}/", {}),
    ]
    if ONLY:
        pages = [page for page in pages if page[0] in ONLY]
    year_ago = (timezone.localdate() - timedelta(days=364)).isoformat()
    lines = [
        f"{Message.objects.count()} messages, {Conversation.objects.count()} conversations, "
        f"{Customer.objects.count()} customers. {RUNS} requests per page and state, after one "
        "warm-up; cold: Django's cache emptied before every request (the rollups current, as "
        "the worker keeps them).",
        "",
        *([] if ONLY else fold_rows()),
        "",
        "| page | warm p50 ms | warm p95 ms | cold p50 ms | cold p95 ms | queries | target p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, url, headers in pages:
        url = url.format(year_ago)
        warm, queries = measure(client, url, **headers)
        with override_settings(CACHES=COLD):
            cold, _queries = measure(client, url, cold=True, **headers)
        target = TARGETS.get(name)
        worst = max(percentile(warm, 95), percentile(cold, 95)) * 1000
        verdict = f"{target} ms {'ok' if worst < target else 'MISSED'}" if target else ""
        cells = [f"{percentile(t, q) * 1000:.1f}" for t in (warm, cold) for q in (50, 95)]
        lines.append(f"| {name} | {' | '.join(cells)} | {queries} | {verdict} |")
    if not ONLY:
        lines.extend(cold_rows())
    record("Pages at issue 19's scale (in-process, server time, warm and cold)", lines)


if __name__ == "__main__":
    main()
