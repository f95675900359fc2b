"""How fast one Dramatiq worker process (4 threads) applies a stored backlog of raw webhooks.

A burst leaves raw events behind (webhook_event_accept stores them when the web process is
busy); this measures the worker alone on such a backlog: known customers' messages and status
webhooks for our sends (delivered and read, some out of order, some delivered twice), as a
busy day sends them. Each round stores a fresh backlog, starts a worker from a checkout, queues
one webhook_event_process per event and times until none is pending; the rounds alternate
between the checkouts given (this one first), so each meets the same moments of a shared
machine. Then it checks every round stored each message once and moved every send to read.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/webhook_drain.py \\
        [--events 3000] [--rounds 2] [--compare /path/to/other/checkout] [--profile 300]

--profile N: before the rounds, in this process, time webhook_event_handle on N events of each
kind and count its queries (the one-by-one path, whatever the worker does).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import BIN, ROOT, SERVER_ENV, drain, record, require_services

CUSTOMERS = 500
PHONE = "5939989{:05d}"


def message_payload(tag: str, n: int) -> dict:
    phone = PHONE.format(n % CUSTOMERS)
    return {
        "event": "messages.received",
        "timestamp": int(time.time()),
        "data": {
            "messages": {
                "key": {
                    "id": f"DRAIN{tag}M{n:07d}",
                    "fromMe": False,
                    "remoteJid": f"{phone}@s.whatsapp.net",
                    "cleanedSenderPn": phone,
                },
                "pushName": f"Cliente {n % CUSTOMERS}",
                "messageTimestamp": int(time.time()),
                "messageBody": f"Hola {tag} {n}",
            }
        },
    }


def status_payload(wa_id: str, phone: str, status: int, at: int) -> dict:
    return {
        "event": "messages.update",
        "timestamp": at,
        "data": {
            "update": {"status": status},
            "key": {"remoteJid": f"{phone}@s.whatsapp.net", "id": wa_id, "fromMe": True},
        },
    }


def setup(database_url: str) -> None:
    """The customers and their conversations (once; kept between runs)."""
    with psycopg.connect(database_url) as conn:
        have = conn.execute(
            "SELECT count(*) FROM customers_customer WHERE phone LIKE '+5939989%'"
        ).fetchone()[0]
        if have >= CUSTOMERS:
            return
    code = f"""
from customers.services import customer_get_or_create
from inbox.services import conversation_get_or_create
for i in range({CUSTOMERS}):
    customer, _ = customer_get_or_create(phone="{PHONE}".format(i), name=f"Cliente {{i}}")
    conversation_get_or_create(customer=customer)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
    )


def backlog(database_url: str, tag: str, events: int) -> tuple[list[int], list[str], list[str]]:
    """Stores the raw events (pending, as a busy web process leaves them) and our sends they
    speak of; answers (event ids, message wa_ids, send wa_ids)."""
    rng = random.Random(tag)
    messages = events * 6 // 10
    sends = (events - messages) // 2
    now = int(time.time())
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.id, cu.phone FROM inbox_conversation c JOIN customers_customer cu "
            "ON cu.id = c.customer_id WHERE cu.phone LIKE '+5939989%%' "
            "AND c.channel_id = 'default' ORDER BY c.id LIMIT %s",
            (CUSTOMERS,),
        ).fetchall()
        send_ids = [f"DRAIN{tag}S{i:07d}" for i in range(sends)]
        with conn.cursor().copy(
            "COPY inbox_message (conversation_id, direction, author_kind, status, kind, body, "
            "media_url, media_file, media_mime, media_filename, media_error, marketing, "
            "attempts, failure_reason, wa_id, created_at, sent_at) FROM STDIN"
        ) as copy:
            for i, wa_id in enumerate(send_ids):
                conversation = rows[i % len(rows)][0]
                row = [conversation, "out", "agent", "sent", "text", "Gracias", "", "", "", ""]
                copy.write_row([*row, "", False, 0, "", wa_id, "now()", "now()"])
        payloads = [message_payload(tag, n) for n in range(messages)]
        for i, wa_id in enumerate(send_ids):
            phone = rows[i % len(rows)][1].lstrip("+")
            statuses = [status_payload(wa_id, phone, 3, now), status_payload(wa_id, phone, 4, now)]
            if i % 5 == 0:
                statuses.reverse()  # read before delivered: delivered must not move it back
            if i % 7 == 0:
                statuses.append(status_payload(wa_id, phone, 3, now))  # delivered twice
            payloads += statuses
        # Mixed as they arrive, each send's statuses in their (possibly reversed) order.
        rng.shuffle(payloads)
        ids = []
        with conn.cursor() as cursor:
            for payload in payloads:
                cursor.execute(
                    "INSERT INTO inbox_webhookevent (received_at, provider, event, payload, state, "
                    "attempts, error, retry_at) VALUES (now(), 'wasender', %s, %s, 'pending', 0, "
                    "'', now() + interval '10 minutes') RETURNING id",
                    (payload["event"], json.dumps(payload)),
                )
                ids.append(cursor.fetchone()[0])
    return ids, [f"DRAIN{tag}M{n:07d}" for n in range(messages)], send_ids


def enqueue(ids: list[int]) -> None:
    code = "import sys; from inbox.intake import webhook_event_process\n"
    code += "for line in sys.stdin: webhook_event_process.send(int(line))\n"
    env = {**os.environ, **SERVER_ENV, "DRAMATIQ_BROKER": "redis"}
    subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        input="\n".join(map(str, ids)),
        text=True,
    )


@contextmanager
def worker(root: Path):
    env = {**os.environ, **SERVER_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    args = [str(BIN / "dramatiq"), "chatdesk.worker", "--processes", "1", "--threads", "4"]
    proc = subprocess.Popen(
        args, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(6)  # Django set up, actors loaded
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def check(database_url: str, messages: list[str], sends: list[str]) -> tuple[int, int]:
    """(messages not stored once, sends not at read)."""
    with psycopg.connect(database_url) as conn:
        counts = dict(
            conn.execute(
                "SELECT wa_id, count(*) FROM inbox_message WHERE wa_id = ANY(%s) GROUP BY wa_id",
                (messages,),
            ).fetchall()
        )
        wrong = sum(1 for wa_id in messages if counts.get(wa_id) != 1)
        not_read = conn.execute(
            "SELECT count(*) FROM inbox_message WHERE wa_id = ANY(%s) AND (status <> 'read' "
            "OR delivered_at IS NULL OR read_at IS NULL)",
            (sends,),
        ).fetchone()[0]
    return wrong, not_read


def profile(database_url: str, count: int) -> list[str]:
    code = """
import time
from django.db import connection
from django.test.utils import CaptureQueriesContext
from inbox.intake import webhook_event_handle
from inbox.models import WebhookEvent
ids = [int(x) for x in {ids!r}.split()]
kinds = {}
for pk in ids:
    kind = WebhookEvent.objects.get(pk=pk).event
    with CaptureQueriesContext(connection) as queries:
        began = time.perf_counter()
        webhook_event_handle(pk)
        took = time.perf_counter() - began
    kinds.setdefault(kind, []).append((took, len(queries)))
for kind, runs in sorted(kinds.items()):
    times = sorted(t for t, _ in runs)
    print("PROFILE", kind, len(runs), round(sum(times) / len(runs) * 1000, 2),
          round(times[len(times) // 2] * 1000, 2), round(sum(q for _, q in runs) / len(runs), 1))
"""
    ids, _, _ = backlog(database_url, f"P{int(time.time())}", count)
    env = {**os.environ, **SERVER_ENV, "DJANGO_SETTINGS_MODULE": "bench.settings", "DEBUG": "1"}
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c",
         code.replace("{ids!r}", repr(" ".join(map(str, ids))))],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    lines = ["| event | n | mean ms | p50 ms | queries per event |", "|---|---|---|---|---|"]
    for line in out.splitlines():
        if line.startswith("PROFILE"):
            _, kind, n, mean, p50, queries = line.split()
            lines.append(f"| {kind} | {n} | {mean} | {p50} | {queries} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare", type=Path, help="another checkout whose worker to time too")
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    database_url, _redis = require_services()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    setup(database_url)
    lines = []
    if args.profile:
        lines += [
            f"Profile: webhook_event_handle in one process, one event at a time, on a fresh "
            f"backlog of {args.profile} events.",
            "",
            *profile(database_url, args.profile),
            "",
        ]
    roots = [("this checkout", ROOT)] + ([("compared", args.compare)] if args.compare else [])
    results: dict[str, list[float]] = {name: [] for name, _ in roots}
    faults = []
    for r in range(args.rounds):
        for name, root in roots:
            tag = f"{int(time.time())}{r}"
            ids, messages, sends = backlog(database_url, tag, args.events)
            first = min(ids) - 1
            with worker(root):
                enqueue(ids)
                took, states = drain(database_url, after_id=first)
            wrong, not_read = check(database_url, messages, sends)
            rate = len(ids) / took
            results[name].append(rate)
            print(f"  {name} round {r}: {len(ids)} events in {took:.1f} s: {rate:.0f}/s {states}")
            if wrong or not_read:
                faults.append(f"{name} round {r}: {wrong} messages wrong, {not_read} sends")
    lines += [
        f"Backlog drain: {args.events} raw events per round (60% known customers' messages, "
        f"40% delivered/read statuses of our sends, some reversed or repeated), one Dramatiq "
        f"worker process with 4 threads, timed from queueing the events until none is pending "
        f"(queueing included); rounds alternate between checkouts.",
        "",
        "| checkout | applied events/s per round |",
        "|---|---|",
        *(
            f"| {name} ({root}) | {' / '.join(f'{x:.0f}' for x in results[name])} |"
            for name, root in roots
        ),
    ]
    if faults:
        lines += ["", "FAULTS: " + "; ".join(faults)]
    record("Webhook backlog drain by one worker (issue 19)", lines)
    if faults:
        sys.exit("; ".join(faults))


if __name__ == "__main__":
    main()
