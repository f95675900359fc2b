"""The panel and the analytics page in a real browser on a real daphne.

The panel refreshes itself by polling (htmx, every 10 s), not through the inbox socket: the
panel is for every role and /ws/inbox/ refuses marketers, and a ten-second-old figure is fine
for a dashboard. So the live test waits up to 15 s for the new figure.

Screenshots: every run writes them to test-results/; to refresh the committed ones,

    CHATDESK_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest \
        tests/browser/test_insights_panel.py -k screenshots
"""

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from chatdesk.roles import ADMIN, AGENT, MARKETER
from devdata.demo import demo_seed
from devdata.largedata import large_data_generate
from tests.browser.conftest import ARTIFACTS
from tests.conftest import make_user
from tests.procs import daphne_args, free_port, process_env, running

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wasender"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def customer_writes(base_url: str, text: str) -> None:
    """WaSender's messages.received (the fixture's shape) through the real webhook."""
    body = json.loads((FIXTURES / "messages_received_text.json").read_text())
    now = int(time.time())
    message = body["data"]["messages"]
    message["key"]["id"] = f"3EB0PANEL{now}"
    message["messageTimestamp"] = body["timestamp"] = now
    message["messageBody"] = text
    message["message"] = {"conversation": text}
    response = httpx.post(
        f"{base_url}/webhooks/wasender/",
        json=body,
        headers={"X-Webhook-Signature": settings.WASENDER_WEBHOOK_SECRET},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_it_updates_the_panel_when_a_message_arrives(page_for, live_server_url):
    make_user("alice", "admin", first_name="Alice")
    page = page_for("alice", "pass-alice")
    replies = page.locator('[data-figure="replies"]')
    expect(replies).to_have_text("0")
    page.evaluate("window.beforeTheMessage = true")

    customer_writes(live_server_url, "Hola, quiero renovar Netflix")

    expect(replies).to_have_text("1", timeout=15_000)
    expect(page.locator('[data-figure="new_conversations"]')).to_have_text("1")
    assert page.evaluate("window.beforeTheMessage === true"), "the page was reloaded"


@pytest.fixture
def fresh_server_url(transactional_db, tmp_path):
    """A daphne whose cache starts empty: local memory (no REDIS_URL), so no month block
    cached by an earlier run over other data is shown."""
    port = free_port()
    env = process_env(DEBUG="1", DRAMATIQ_BROKER="stub", REDIS_URL="")
    with running(
        daphne_args(port),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log=tmp_path / "daphne.log",
    ):
        yield f"http://127.0.0.1:{port}"


def _login(browser, base_url: str, *, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="es-EC")
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "chatdesk-admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    return context, page


def _fits_the_width(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def _parts(page, name: str, width: int) -> None:
    """The long page in screen-high slices (test-results/ only), to read at full size."""
    parts = ARTIFACTS / "screenshots" / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.documentElement.scrollHeight")
    for n, top in enumerate(range(0, height, 1000)):
        clip = {"x": 0, "y": top, "width": width, "height": min(1000, height - top)}
        page.screenshot(path=parts / f"{name}-{n}.png", full_page=True, clip=clip)


def test_it_takes_screenshots_of_the_panel_and_analytics(browser, fresh_server_url):
    for role in (ADMIN, AGENT, MARKETER):  # transactional tests flush the migration's groups
        Group.objects.get_or_create(name=role)
    now = timezone.now().replace(microsecond=0)
    demo_seed(seed=2025, now=now)
    large_data_generate(customers=400, messages=8000, days=120, seed=3, now=now)
    out = Path(os.environ.get("CHATDESK_SCREENSHOTS_DIR") or ARTIFACTS / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        context, page = _login(browser, fresh_server_url, width=width, height=height)
        try:
            expect(page.locator('[data-figure="waiting"]')).not_to_have_text("0")
            _fits_the_width(page)
            page.screenshot(path=out / f"panel-{size}.png", full_page=True)

            page.goto(f"{fresh_server_url}/insights/?range=30")
            expect(page.locator('[data-group="fast"]')).to_be_visible(timeout=15_000)
            expect(page.locator("#agents tbody tr").first).not_to_contain_text("Ningún agente")
            for canvas in page.locator("canvas[data-chart]").all():
                expect(canvas).to_have_attribute("data-ready", "1")
            _fits_the_width(page)
            page.screenshot(path=out / f"analytics-{size}.png", full_page=True)
            _parts(page, f"analytics-{size}", width)
        finally:
            context.close()
