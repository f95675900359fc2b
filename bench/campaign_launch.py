"""Launching a campaign to 100,000 customers (or --customers N) on PostgreSQL, against the real
Redis broker. Each run in a fresh process, so that its peak memory is its own; the campaign
tables are emptied between runs:

- floor: the recipients written by one INSERT ... SELECT, their text made in SQL, plus the
  first sends enqueued: what going live costs the database alone.
- live: what a person waits for after "Lanzar" (`campaign_launch_soon`): the launch task a
  worker runs (recipients materialised and rendered, counts stored), then the first run of
  the fan-out chain, paced as in production; the progress counts read after it, and a second
  run that must write nothing (no worker sends, so the look-ahead is full).
- bare: `bulk_create` of as many Message rows in one conversation and as many no-op Dramatiq
  messages sent to the same Redis (skipped with --no-bare).
- drain: the launch, then fan-out runs with pacing lifted (`paced=False`: CHUNK recipients a
  run) until every Message exists and every send is in the Redis queue; each run timed, to
  show the cost per recipient at 1k, 10k, 100k and 1M queued. No worker consumes.

The Redis database in REDIS_URL is flushed: give the benchmark one of its own (not 0).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_cbench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/campaign_launch.py
"""

import argparse
import json
import os
import random
import resource
import statistics
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


def data_between_runs() -> None:
    """No campaign, message or conversation left from the previous run (the customers stay)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE outbound_campaign, inbox_conversation CASCADE")


def customers_create(n: int) -> None:
    """n customers, one subscription each, written with COPY (seconds, not minutes)."""
    from customers.models import Customer, Service, Subscription

    services = [Service.objects.create(name=name, normal_price=p) for name, p in SERVICES]
    rng = random.Random(7)
    today = date.today()
    copy_rows(
        Customer,
        [
            "name",
            "phone",
            "phone_valid",
            "city",
            "province",
            "marketing_opt_out_reason",
            "notes",
            "created_at",
        ],
        (
            (
                f"{rng.choice(NAMES)} Bench {i}",
                f"+5939{70000000 + i:08d}",
                True,
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


def setup(n: int, *, reuse: bool) -> None:
    import django

    django.setup()
    from django.db import connection

    from customers.models import Customer
    from outbound.models import MessageTemplate

    if reuse and Customer.objects.count() == n:
        return
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


def new_campaign():
    from outbound.campaigns import campaign_create
    from outbound.models import MessageTemplate

    template = MessageTemplate.objects.get(name="Bench")
    return campaign_create(
        title=TITLE, template=template, filters={}, window_start=clock(0), window_end=clock(23, 59)
    )


def run_live(n: int) -> dict:
    """What a person sees after "Lanzar": the launch task a worker runs, then the first run
    of the fan-out chain it enqueues (paced, as in production), timed from the click."""
    from django.conf import settings

    from inbox.models import Message
    from outbound.campaigns import (
        campaign_fanout,
        campaign_launch_soon,
        campaign_launch_task,
        campaign_progress_counts,
    )
    from outbound.models import Campaign

    campaign = new_campaign()
    began = time.perf_counter()
    campaign_launch_soon(campaign=campaign)
    campaign_launch_task(campaign.pk)
    launched = time.perf_counter()
    campaign.refresh_from_db()
    campaign_fanout(campaign.pk, campaign.fanout_token)
    live = time.perf_counter()
    counts = campaign_progress_counts(campaign=campaign)
    polled = time.perf_counter()
    messages = Message.objects.filter(author_kind="campaign").count()
    # Pacing: no worker sends, so a second run finds the look-ahead full and writes nothing.
    campaign_fanout(campaign.pk, campaign.fanout_token)
    campaign.refresh_from_db()
    return {
        "launch_s": launched - began,
        "live_s": live - began,
        "progress_s": polled - live,
        "recipients_total": campaign.recipients_total,
        "counts": {k: counts[k] for k in ("total", "pending", "queued", "skipped")},
        "messages": messages,
        "messages_after_second_run": Message.objects.filter(author_kind="campaign").count(),
        "enqueued": queue_length(SEND_QUEUE),
        "state": campaign.state,
        "send_rate_per_minute": settings.SEND_RATE_PER_MINUTE,
        "ok_state": campaign.state == Campaign.State.RUNNING,
        "rss_mb": peak_rss_mb(),
    }


def run_floor(n: int) -> dict:
    """The database's own floor for going live: the recipients written by one INSERT ...
    SELECT with their text made in SQL, then the first sends enqueued."""
    import dramatiq
    from django.db import connection, transaction

    from outbound.models import Campaign

    @dramatiq.actor(actor_name="bench.noop", queue_name=NOOP_QUEUE)
    def noop(message_id: int) -> None:
        """Never runs: only its enqueueing is measured."""

    campaign = Campaign.objects.create(title="Bench floor", body="x")
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO outbound_campaignrecipient "
            "(campaign_id, customer_id, state, skip_reason, body, planned_at) "
            "SELECT %s, id, 'pending', '', 'Hola ' || split_part(name, ' ', 1) || "
            "' tu servicio tiene una oferta especial', now() FROM customers_customer "
            "WHERE marketing_opt_out_at IS NULL",
            [campaign.pk],
        )
        written = cursor.rowcount
    for i in range(10):
        noop.send(i)
    done = time.perf_counter()
    Campaign.objects.filter(pk=campaign.pk).delete()
    return {"total_s": done - began, "rows": written, "rss_mb": peak_rss_mb()}


def run_drain(n: int) -> dict:
    """Launch, then fan-out runs back to back with pacing lifted (`paced=False`: CHUNK
    recipients a run) until none is pending; each run's time and how many sends it put in
    the Redis queue (no worker consumes)."""
    from inbox.models import Message
    from outbound.campaigns import campaign_fanout_step, campaign_launch
    from outbound.models import Campaign, CampaignRecipient

    campaign = new_campaign()
    began = time.perf_counter()
    assert campaign_launch(campaign_id=campaign.pk)
    launched = time.perf_counter()
    token = Campaign.objects.get(pk=campaign.pk).fanout_token
    pending = CampaignRecipient.objects.filter(campaign_id=campaign.pk, state="pending")
    steps, queued = [], 0
    limit = int(os.environ.get("BENCH_DRAIN_LIMIT") or n)
    while queued < limit and pending.exists():
        started = time.perf_counter()
        campaign_fanout_step(campaign_id=campaign.pk, token=token, paced=False)
        took = time.perf_counter() - started
        now_queued = queue_length(SEND_QUEUE)
        steps.append((now_queued, took, now_queued - queued))
        queued = now_queued
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
    """bulk_create of n Message rows in one conversation and n no-op sends, CHUNK rows at a
    time (a million model objects at once would not fit the memory budget)."""
    import dramatiq

    from customers.models import Customer
    from inbox.models import Conversation, Message

    @dramatiq.actor(actor_name="bench.noop", queue_name=NOOP_QUEUE)
    def noop(message_id: int) -> None:
        """Never runs: only its enqueueing is measured."""

    conversation = Conversation.objects.create(customer=Customer.objects.order_by("pk").first())
    began = time.perf_counter()
    insert_s = 0.0
    for start in range(0, n, 2000):
        chunk_began = time.perf_counter()
        rows = [
            Message(
                conversation=conversation,
                direction="out",
                author_kind="agent",
                kind="text",
                body=f"Hola {i}, tu servicio tiene una oferta especial este mes.",
                status="queued",
            )
            for i in range(start, min(n, start + 2000))
        ]
        Message.objects.bulk_create(rows)
        insert_s += time.perf_counter() - chunk_began
        for message in rows:
            noop.send(message.pk)
    done = time.perf_counter()
    return {
        "insert_s": insert_s,
        "enqueue_s": done - began - insert_s,
        "total_s": done - began,
        "messages": Message.objects.filter(conversation=conversation).count(),
        "enqueued": queue_length(NOOP_QUEUE),
        "rss_mb": peak_rss_mb(),
    }


RUNS = {"live": run_live, "floor": run_floor, "drain": run_drain, "bare": run_bare}


def child(kind: str, n: int) -> None:
    """One measured run; the result is the last line of stdout, as JSON."""
    import django

    django.setup()
    redis_client().flushdb()
    print(json.dumps(RUNS[kind](n)))


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


MARKS = (1_000, 10_000, 100_000, 1_000_000)
MARK_STEPS = 5


def step_costs(steps: list, n: int) -> list[tuple[int, float]]:
    """(mark, ms per recipient) for each mark up to n: the median over MARK_STEPS runs from
    the one that queued the mark-th recipient (the last mark: the last MARK_STEPS runs that
    queued any). A median, because other processes share the machine's two cores."""
    working = [step for step in steps if step[2] > 0]
    costs = []
    reached = working[-1][0]
    for mark in [m for m in MARKS if m < reached] + [reached]:
        first = next(i for i, (queued, _, _) in enumerate(working) if queued >= mark)
        first = min(first, max(0, len(working) - MARK_STEPS))
        window = working[first : first + MARK_STEPS]
        costs.append((mark, statistics.median(1000 * took / count for _, took, count in window)))
    return costs


def report(n: int, runs: dict, *, save: bool) -> None:
    live, floor, drain, bare = runs["live"], runs["floor"], runs["drain"], runs.get("bare")
    load = os.getloadavg()[0]
    counts = live["counts"]
    progress_ok = (
        live["recipients_total"] == n
        and counts["total"] == n
        and counts["pending"] + counts["queued"] == n
        and counts["queued"] == live["messages"] == live["enqueued"] > 0
        and live["messages_after_second_run"] == live["messages"]
    )
    costs = step_costs(drain["steps"], n)
    full = drain["enqueued"] >= n
    sends = (
        "every send enqueued" if full else f"the first {drain['enqueued']} sends (stopped there)"
    )
    flat = costs[-1][1] / costs[0][1]
    rss = max(r["rss_mb"] for r in (live, drain))
    lines = [
        f"{n} customers with a subscription each, PostgreSQL, Redis broker (no worker "
        f"consuming); each run in a fresh process. Load average at the end: {load:.1f}.",
        "",
        "| run | time s | detail | peak RSS MB |",
        "|---|---|---|---|",
        f"| floor: one INSERT ... SELECT of the recipients (text made in SQL) + 10 no-op sends "
        f"| {floor['total_s']:.1f} | {floor['rows']} rows | {floor['rss_mb']:.0f} |",
        f'| chatdesk live: "Lanzar", the launch task, the fan-out\'s first run (paced) '
        f"| {live['live_s']:.1f} | launch {live['launch_s']:.1f} s; {live['recipients_total']} "
        f"recipients; progress {counts} read in {live['progress_s'] * 1000:.0f} ms; "
        f"{live['messages']} messages, {live['enqueued']} in Redis; a second run wrote "
        f"{live['messages_after_second_run'] - live['messages']} more (nothing sent yet) "
        f"| {live['rss_mb']:.0f} |",
    ]
    if bare:
        lines.append(
            f"| bare: bulk_create + {n} no-op sends | {bare['total_s']:.1f} | insert "
            f"{bare['insert_s']:.1f} s, enqueue {bare['enqueue_s']:.1f} s; {bare['messages']} "
            f"rows, {bare['enqueued']} in Redis | {bare['rss_mb']:.0f} |"
        )
    lines += [
        f"| chatdesk: launch + {sends} (unpaced) | {drain['total_s']:.1f} | launch "
        f"{drain['launch_s']:.1f} s, fan-out {drain['fanout_s']:.1f} s in {len(drain['steps'])} "
        f"runs; {drain['messages']} messages, {drain['enqueued']} in Redis "
        f"| {drain['rss_mb']:.0f} |",
        "",
        "| fan-out at | ms per recipient (median of 5 runs) |",
        "|---|---|",
        *(f"| {mark} queued | {ms:.3f} |" for mark, ms in costs),
        "",
        f"**Live in {live['live_s']:.1f} s** (target under 5 s: {verdict(live['live_s'] < 5)}; "
        f"{live['live_s'] / floor['total_s']:.1f}x the floor), progress right: "
        f"{verdict(progress_ok)}; **fan-out per recipient at {costs[-1][0]} / at {costs[0][0]}: "
        f"{flat:.2f}x** (target within 1.2x: {verdict(flat <= 1.2)}); peak {rss:.0f} MB "
        f"(target under 300 MB: {verdict(rss < 300)}).",
    ]
    if bare and full:
        ratio = drain["total_s"] / bare["total_s"]
        lines[-1] += f" Every send enqueued: {ratio:.2f}x the bare run."
    (record if save else print_section)("Campaign launch (issues 5, 19)", lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep the customers already there")
    parser.add_argument("--child", choices=tuple(RUNS))
    parser.add_argument("--no-bare", action="store_true", help="skip the bare bulk_create run")
    parser.add_argument("--no-record", action="store_true", help="print, leave RESULTS.md alone")
    parser.add_argument(
        "--drain-limit", type=int, help="stop the unpaced fan-out after this many sends"
    )
    parser.add_argument("--steps-json", help="write every fan-out run's (queued, s, count) here")
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
    env["BENCH_DRAIN_LIMIT"] = str(args.drain_limit or "")
    manage("migrate", "--noinput", "-v", "0", env=env)
    setup(args.customers, reuse=args.reuse)
    runs = {}
    for kind in ("floor", "live", "drain") if args.no_bare else ("floor", "live", "bare", "drain"):
        # Each launch starts from the same data: no campaign messages, no conversations.
        data_between_runs()
        runs[kind] = spawn(kind, args.customers, env)
    if args.steps_json:
        Path(args.steps_json).write_text(json.dumps(runs["drain"]["steps"]))
    report(args.customers, runs, save=not args.no_record)


if __name__ == "__main__":
    main()
