"""Launching a campaign to 100,000 customers on PostgreSQL, against the real Redis broker.

Side by side in the same run, each in a fresh process so its peak memory is its own:

- chatdesk: create the campaign, `campaign_launch` (recipients materialised and rendered),
  then the fan-out driven in a loop with pacing lifted (`paced=False`: in production it only
  runs ~2 s ahead of the rate limiter, which is not what is measured here) until every
  Message exists and every send is in the Redis queue (LLEN of the dramatiq queue key). No
  worker consumes.
- bare: `bulk_create` of as many Message rows in one conversation, plus as many no-op
  Dramatiq messages sent to the same Redis.

The Redis database in REDIS_URL is flushed: give the benchmark one of its own (not 0).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_cbench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/campaign_launch.py
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import SERVER_ENV, manage, record, require_services

TEMPLATE = "Hola {nombre} 👋 tu {servicio} tiene una oferta especial este mes. Responde SÍ."
TITLE = "Bench: lanzamiento"
NOOP_QUEUE = "bench_noop"
SEND_QUEUE = "outbound"
NAMES = ("María", "José", "Ana", "Luis", "Carmen", "Jorge", "Rosa", "Pedro")
SERVICES = (("Netflix", "5.00"), ("Disney+", "4.50"), ("HBO Max", "4.00"), ("Spotify", "3.50"))


# --- setup (the parent process) ---------------------------------------------------------------
def copy_rows(model, columns: list[str], rows) -> None:
    from django.db import connection

    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def data_reset() -> None:
    """Start from empty tables: a previous run's campaigns and messages would change what the
    launch reads."""
    from django.db import connection

    tables = ("customers_customer", "customers_service", "outbound_messagetemplate")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def customers_create(n: int) -> None:
    """n customers, one subscription each, written with COPY (seconds, not minutes)."""
    from customers.models import Customer, Service, Subscription

    services = [Service.objects.create(name=name, normal_price=p) for name, p in SERVICES]
    rng = random.Random(7)
    today = date.today()
    copy_rows(
        Customer,
        ["name", "phone", "city", "province", "marketing_opt_out_reason", "notes", "created_at"],
        (
            (
                f"{rng.choice(NAMES)} Bench {i}",
                f"+5939{70000000 + i:08d}",
                "Quito",
                "Pichincha",
                "",
                "",
                "2025-01-01 12:00+00",
            )
            for i in range(n)
        ),
    )
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    copy_rows(
        Subscription,
        ["customer_id", "service_id", "price", "started_on", "expires_on", "created_at"],
        (
            (
                pk,
                services[pk % len(services)].pk,
                SERVICES[pk % len(SERVICES)][1],
                today - timedelta(days=20),
                today + timedelta(days=10),
                "2025-01-01 12:00+00",
            )
            for pk in ids
        ),
    )


def setup(n: int) -> None:
    import django

    django.setup()
    from django.db import connection

    from outbound.models import MessageTemplate

    data_reset()
    customers_create(n)
    MessageTemplate.objects.create(name="Bench", category="marketing", body=TEMPLATE)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- the measured runs (fresh processes) -----------------------------------------------------
def redis_client():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL)


def queue_length(queue: str) -> int:
    return redis_client().llen(f"chatdesk:{queue}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fanout_drain(campaign_id: int, token: int) -> int:
    """Run fan-out steps back to back until no recipient is pending. Returns the steps."""
    from outbound.campaigns import campaign_fanout_step
    from outbound.models import CampaignRecipient

    pending = CampaignRecipient.objects.filter(campaign_id=campaign_id, state="pending")
    steps = 0
    while pending.exists():
        campaign_fanout_step(campaign_id=campaign_id, token=token, paced=False)
        steps += 1
    return steps


def run_chatdesk() -> dict:
    from inbox.models import Message
    from outbound.campaigns import campaign_create, campaign_launch
    from outbound.models import Campaign, MessageTemplate

    template = MessageTemplate.objects.get(name="Bench")
    began = time.perf_counter()
    campaign = campaign_create(
        title=TITLE, template=template, filters={}, window_start=clock(0), window_end=clock(23, 59)
    )
    assert campaign_launch(campaign_id=campaign.pk)
    launched = time.perf_counter()
    token = Campaign.objects.get(pk=campaign.pk).fanout_token
    steps = fanout_drain(campaign.pk, token)
    done = time.perf_counter()
    return {
        "launch_s": launched - began,
        "fanout_s": done - launched,
        "total_s": done - began,
        "steps": steps,
        "messages": Message.objects.filter(author_kind="campaign").count(),
        "enqueued": queue_length(SEND_QUEUE),
        "rss_mb": peak_rss_mb(),
    }


def run_bare(n: int) -> dict:
    import dramatiq

    from customers.models import Customer
    from inbox.models import Conversation, Message

    @dramatiq.actor(actor_name="bench.noop", queue_name=NOOP_QUEUE)
    def noop(message_id: int) -> None:
        """Never runs: only its enqueueing is measured."""

    conversation = Conversation.objects.create(customer=Customer.objects.order_by("pk").first())
    began = time.perf_counter()
    rows = [
        Message(
            conversation=conversation,
            direction="out",
            author_kind="agent",
            kind="text",
            body=f"Hola {i}, tu servicio tiene una oferta especial este mes.",
            status="queued",
        )
        for i in range(n)
    ]
    Message.objects.bulk_create(rows, batch_size=2000)
    written = time.perf_counter()
    for message in rows:
        noop.send(message.pk)
    done = time.perf_counter()
    return {
        "insert_s": written - began,
        "enqueue_s": done - written,
        "total_s": done - began,
        "messages": Message.objects.filter(conversation=conversation).count(),
        "enqueued": queue_length(NOOP_QUEUE),
        "rss_mb": peak_rss_mb(),
    }


def child(kind: str, n: int) -> None:
    """One measured run; the result is the last line of stdout, as JSON."""
    import django

    django.setup()
    redis_client().flushdb()
    result = run_chatdesk() if kind == "chatdesk" else run_bare(n)
    print(json.dumps(result))


def spawn(kind: str, n: int, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--customers", str(n)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- report ------------------------------------------------------------------------------------
def print_section(title: str, lines: list[str]) -> None:
    print(f"\n## {title}\n\n" + "\n".join(lines))


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(n: int, real: dict, bare: dict, *, save: bool) -> None:
    ratio = real["total_s"] / bare["total_s"]
    load = os.getloadavg()[0]
    (record if save else print_section)(
        "Campaign launch (issue 5)",
        [
            f"{n} customers with a subscription each, PostgreSQL, Redis broker (no worker "
            f"consuming); each run in a fresh process. Load average at the end: {load:.1f}.",
            "",
            "| run | time s | detail | rows | in Redis queue | peak RSS MB |",
            "|---|---|---|---|---|---|",
            f"| bare: bulk_create + {n} no-op sends | {bare['total_s']:.1f} | insert "
            f"{bare['insert_s']:.1f} s, enqueue {bare['enqueue_s']:.1f} s | {bare['messages']} "
            f"| {bare['enqueued']} | {bare['rss_mb']:.0f} |",
            f"| chatdesk: launch + fan-out (unpaced) | {real['total_s']:.1f} | launch "
            f"{real['launch_s']:.1f} s, fan-out {real['fanout_s']:.1f} s in {real['steps']} "
            f"steps | {real['messages']} | {real['enqueued']} | {real['rss_mb']:.0f} |",
            "",
            f"**Ratio chatdesk / bare: {ratio:.2f}x** (target within 2x: {verdict(ratio <= 2)}); "
            f"chatdesk {real['total_s']:.1f} s (target under 30 s: "
            f"{verdict(real['total_s'] < 30)}), peak {real['rss_mb']:.0f} MB (target under "
            f"300 MB: {verdict(real['rss_mb'] < 300)}).",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--child", choices=("chatdesk", "bare"))
    parser.add_argument("--no-record", action="store_true", help="print, leave RESULTS.md alone")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    if args.child:
        child(args.child, args.customers)
        return
    _, redis_url = require_services()
    if not redis_url or redis_url.rstrip("/").endswith(("/0", ":6379")):
        sys.exit("Set REDIS_URL to a Redis database of the benchmark's own (it is flushed).")
    # Production settings (DEBUG off): with DEBUG on, Django would also keep the SQL of the
    # last 9,000 queries, bulk inserts included, which is not what a worker does.
    env = {**os.environ, **SERVER_ENV, "DRAMATIQ_BROKER": "redis", "SEND_ACCOUNT_PROTECTION": "0"}
    manage("migrate", "--noinput", "-v", "0", env=env)
    setup(args.customers)
    bare = spawn("bare", args.customers, env)
    real = spawn("chatdesk", args.customers, env)
    report(args.customers, real, bare, save=not args.no_record)


if __name__ == "__main__":
    main()
