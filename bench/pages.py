"""Server time of the main pages on a large data set (see `manage.py generate_large_data`).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_large python bench/pages.py

In-process Django test Client with a logged-in admin: the time is the server's (URL routing,
views, queries, templates), not the network's. Each page is requested once to warm up, then
N times; p50/p95 and the query count of the last request are recorded. The analytics page
loads its agents and behaviour sections with htmx after the page: they are measured as their
own rows. Then each analytics section's first load with an empty cache (a fresh local-memory
cache, so a shared Redis is never flushed): what the first visitor after a deploy waits.
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
from inbox.models import Conversation, Message  # noqa: E402
from insights import selectors  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
TARGETS = {"panel": 100, "inbox list": 100, "analytics 30 days": 300, "analytics 365 days": 1000}


def measure(client, url, **headers):
    client.get(url, **headers)
    times = []
    for _ in range(RUNS):
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
    """Each section's first load with an empty cache, then its second (settled days cached)."""
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
        ("analytics 30 days", "/insights/?range=30", {}),
        ("analytics 30 days: agents", "/insights/?range=30&section=agents", htmx),
        ("analytics 365 days", "/insights/?from={}", {}),
        ("analytics 365 days: agents", "/insights/?section=agents&from={}", htmx),
        ("analytics: behaviour groups", "/insights/?section=behaviour", htmx),
        ("inbox list", "/inbox/", {}),
        ("thread", f"/inbox/c/{busiest}/", {}),
        ("stats API summary", "/api/v1/stats/summary", None),
    ]
    year_ago = (timezone.localdate() - timedelta(days=364)).isoformat()
    lines = [
        f"{Message.objects.count()} messages, {Conversation.objects.count()} conversations; "
        f"{RUNS} requests per page after one warm-up (settled days cached, as in production; "
        "the agents' first responses are cached per settled day too; running campaigns and the "
        "agents section are recomputed at most every minute, behaviour groups every five). "
        "Indexes on inbox_message delivered_at, read_at, failed_at (inbox migration 0004) must "
        "exist.",
        "",
        "| page | p50 ms | p95 ms | queries | target p95 |",
        "|---|---|---|---|---|",
    ]
    for name, url, headers in pages:
        if headers is None:
            continue
        url = url.format(year_ago)
        times, queries = measure(client, url, **headers)
        target = TARGETS.get(name)
        p95 = percentile(times, 95) * 1000
        verdict = f"{target} ms {'ok' if p95 < target else 'MISSED'}" if target else ""
        lines.append(
            f"| {name} | {percentile(times, 50) * 1000:.1f} | {p95:.1f} | {queries} | {verdict} |"
        )
    lines.extend(cold_rows())
    record("Pages on the large data set (in-process, server time)", lines)


if __name__ == "__main__":
    main()
