"""Enter to visible (issue 14's Measure): agent 1 types replies in headless Chromium on the
production topology (tests/topology.py starts the README's own lines: migrate, two daphnes,
the dramatiq worker, the scheduler, the WaSender simulator), agent 2 watches the same thread
from the other daphne. Timed in the pages, on one clock (the browser's, performance.timeOrigin
+ performance.now()), from agent 1's Enter keydown to:

- sender: the reply's line visible in agent 1's thread (the optimistic line, 🕓);
- sender, server's line: agent 1's thread holds the server's line for it (its id);
- other agent: the line visible in agent 2's thread (across Redis, from the other daphne).

"Visible" is in the DOM and checkVisibility() true, noted by a MutationObserver (before the
next paint). Counted: duplicates (a reply shown twice at once in either page; more than one
row for a text in the database; more than one send at the simulator) and replies not visible
within 5 s in either page. Must be 0 and 0.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatdesk_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/reply_to_visible.py [--replies 100]

The Redis database in REDIS_URL is flushed (the topology starts from an empty broker); the
benchmark's conversation in the database is replaced on each run. Needs /usr/bin/chromium.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile, record, require_services

CHROMIUM = "/usr/bin/chromium"
PHONE = "+593968190000"
MARK = "Bench"
LATE = 5.0  # seconds: a reply not visible by then counts as not visible

PAGE_PROBE = """
(() => {
  const B = { enter: {}, shown: {}, confirmed: {}, read: {}, copies: {} };
  window.__bench = B;
  const now = () => performance.timeOrigin + performance.now();
  document.addEventListener("keydown", (evt) => {
    const area = evt.target;
    if (evt.key !== "Enter" || evt.shiftKey) return;
    if (!area.matches || !area.matches("#composer textarea")) return;
    const text = area.value.trim();
    if (text) B.enter[text] = now();
  }, true);
  new MutationObserver(() => {
    const box = document.getElementById("thread-messages");
    if (!box) return;
    const at = now();
    const counts = {};
    box.querySelectorAll(":scope > .msg-out").forEach((line) => {
      const body = line.querySelector(".msg-body");
      const text = body ? body.textContent.trim() : "";
      if (!text.startsWith("__MARK__ ")) return;
      counts[text] = (counts[text] || 0) + 1;
      if (!(text in B.shown) && line.checkVisibility()) B.shown[text] = at;
      if (line.id && !(text in B.confirmed)) B.confirmed[text] = at;
      const tick = line.querySelector(".tick");
      if (tick && tick.dataset.status === "read" && !(text in B.read)) B.read[text] = at;
    });
    for (const [text, n] of Object.entries(counts)) {
      B.copies[text] = Math.max(B.copies[text] || 0, n);
    }
  }).observe(document, { childList: true, subtree: true, attributes: true });
})();
""".replace("__MARK__", MARK)


def django_setup(database_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "chatdesk.settings",
            "DEBUG": "1",
            "REDIS_URL": "",
        }
    )
    import django

    django.setup()


def data_prepare() -> None:
    """Two agents (bob, ana), no away message, and no conversation with the bench customer."""
    from django.contrib.auth.models import Group, User

    from customers.models import Customer
    from outbound.models import AutomationSettings

    agents = Group.objects.get_or_create(name="agent")[0]
    for name in ("bob", "ana"):
        user = User.objects.filter(username=name).first() or User.objects.create_user(
            name, password="pass-" + name, first_name=name.title()
        )
        user.set_password("pass-" + name)
        user.save()
        user.groups.add(agents)
    AutomationSettings.objects.update_or_create(pk=1, defaults={"away_enabled": False})
    Customer.objects.filter(phone=PHONE).delete()


def counts_in_database(texts: list[str]) -> tuple[int, int]:
    """(rows for the bench's texts, texts with more than one row)."""
    from django.db.models import Count

    from inbox.models import Message

    rows = Message.objects.filter(direction="out", body__in=texts)
    twice = rows.values("body").annotate(n=Count("id")).filter(n__gt=1).count()
    return rows.count(), twice


def conversation_wait(simulator: str) -> int:
    from inbox.models import Conversation

    answer = httpx.post(
        f"{simulator}/_sim/inbound",
        json={"phone": PHONE, "text": "Hola", "name": "Bench"},
        timeout=30,
    )
    assert answer.json()["data"]["delivered"] is True, answer.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = Conversation.objects.filter(customer__phone=PHONE).first()
        if found:
            return found.pk
        time.sleep(0.1)
    raise TimeoutError("the customer's message did not reach the database")


def login(browser, url: str, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="es-EC")
    context.add_init_script(PAGE_PROBE)
    page = context.new_page()
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pass-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return context, page


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p):.0f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between replies")
    args = parser.parse_args()
    database_url, redis_url = require_services()
    if not redis_url:
        sys.exit("Set REDIS_URL: the production topology needs Redis.")
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    from tests.topology import topology_run

    logs = Path(tempfile.mkdtemp(prefix="reply-bench-"))
    with topology_run(logs=logs, database_url=database_url, redis_url=redis_url) as topology:
        django_setup(database_url)
        data_prepare()
        conversation = conversation_wait(topology.simulator)
        httpx.post(f"{topology.simulator}/_sim/reset", timeout=10).raise_for_status()
        texts = [f"{MARK} {n:03d}: claro, ya te ayudo con eso" for n in range(1, args.replies + 1)]
        # Playwright's sync API keeps an event loop in this thread; the ORM calls beside it
        # are plain synchronous calls.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            (_, bob), (_, ana) = (
                login(browser, topology.web1, "bob"),
                login(browser, topology.web2, "ana"),
            )
            for page, url in ((bob, topology.web1), (ana, topology.web2)):
                page.goto(f"{url}/inbox/c/{conversation}/")
                page.wait_for_function("window.chatdeskInbox && window.chatdeskInbox.socket")
            area = bob.locator("#composer textarea")
            began = time.monotonic()
            for text in texts:
                area.press_sequentially(text)
                area.press("Enter")
                time.sleep(args.pause)
            typing = time.monotonic() - began
            # Everything has had its 5 s (and the ticks some more) before the pages are read.
            time.sleep(LATE + 1)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                read = ana.evaluate("Object.keys(window.__bench.read).length")
                if read >= len(texts):
                    break
                time.sleep(0.5)
            sender, other = bob.evaluate("window.__bench"), ana.evaluate("window.__bench")
            browser.close()
        stats = httpx.get(f"{topology.simulator}/_sim/stats", timeout=10).json()
        rows, rows_twice = counts_in_database(texts)
        topology.check_alive()
        load = os.getloadavg()[0]

    def delays(page: dict, key: str) -> tuple[list[float], int]:
        values, late = [], 0
        for text in texts:
            start, end = sender["enter"].get(text), page[key].get(text)
            if start is None or end is None or end - start > LATE * 1000:
                late += 1
            if start is not None and end is not None:
                values.append(end - start)
        return values, late

    shown, shown_late = delays(sender, "shown")
    confirmed, confirmed_late = delays(sender, "confirmed")
    across, across_late = delays(other, "shown")
    read_other, _ = delays(other, "read")
    twice = sum(n > 1 for page in (sender, other) for n in page["copies"].values())
    sends = sum(stats["sends_by_recipient"].values())
    lines = [
        f"{len(texts)} replies typed by agent 1 (Playwright key presses, then Enter, "
        f"{args.pause:g} s between replies; {typing:.0f} s in all) into one open thread on the "
        "README's production processes (two daphnes, a dramatiq worker with 2 processes and 8 "
        "threads, the scheduler, the simulator, PostgreSQL, Redis), agent 1 on one daphne, "
        "agent 2 on the other; the browser on the same machine. "
        f"Load average at the end: {load:.1f}.",
        "",
        "| Enter to | p50 ms | p99 ms | max ms | not visible after 5 s |",
        "|---|---|---|---|---|",
        f"| visible in the sender's thread (optimistic line) | {ms(shown, 50)} | "
        f"{ms(shown, 99)} | {ms(shown, 100)} | {shown_late} |",
        f"| the server's line in the sender's thread | {ms(confirmed, 50)} | "
        f"{ms(confirmed, 99)} | {ms(confirmed, 100)} | {confirmed_late} |",
        f"| visible in the other agent's thread | {ms(across, 50)} | {ms(across, 99)} | "
        f"{ms(across, 100)} | {across_late} |",
        f"| blue ticks in the other agent's thread | {ms(read_other, 50)} | "
        f"{ms(read_other, 99)} | {ms(read_other, 100)} | |",
        "",
        f"**Duplicates: {twice + rows_twice + max(sends - len(texts), 0)}** (lines shown twice "
        f"at once in either page: {twice}; texts with more than one row: {rows_twice}; sends "
        f"beyond one per reply: {max(sends - len(texts), 0)}; rows {rows}, simulator sends "
        f"{sends}). **Not visible after 5 s: {shown_late + across_late}** (sender "
        f"{shown_late}, other agent {across_late}).",
    ]
    record("Reply: Enter to visible, two agents (issue 14)", lines)


if __name__ == "__main__":
    main()
