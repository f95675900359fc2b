"""The README's first look at chatdesk (issue 15, requirement 5): the panel and the inbox,
photographed from `make demo` as a person starts it, at a desktop's 1280x800.

Every run writes them to test-results/screenshots/; `make screenshots` writes them to
docs/screenshots/, where the README shows them. Before taking each one the test checks, where
a person looks, that the screen is full: the figure cards, the three campaigns of the panel,
a conversation open in the inbox with its thread and its customer."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from devdata.demo import DEMO_USERS
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.integration
FILES = {"panel": "demo-panel.png", "inbox": "demo-inbox.png"}
WIDTH, HEIGHT = 1280, 800


def folder() -> Path:
    out = Path(os.environ.get("CHATDESK_SCREENSHOTS_DIR") or ARTIFACTS / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def logged_in(browser, demo, username: str):
    user = next(u for u in DEMO_USERS if u.username == username)
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT}, locale="es-EC", device_scale_factor=1
    )
    page = context.new_page()
    page.goto(f"{demo.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo.url}/")
    return context, page


def test_it_photographs_the_panel_full(browser, running_demo):
    context, page = logged_in(browser, running_demo, "admin")
    for figure in ("sent", "read", "replies"):
        expect(page.locator(f'[data-figure="{figure}"]')).to_be_visible()
    expect(page.locator('[data-figure="sent"]')).not_to_have_text("0")
    campaigns = page.locator(".campaigns .campaign-list li")
    for title in ("Notificaciones vencimiento", "Promoción Netflix", "Descuentos Black Friday"):
        expect(campaigns.filter(has_text=title)).to_be_visible()
    page.screenshot(path=folder() / FILES["panel"])
    context.close()


def test_it_photographs_the_inbox_with_a_conversation_open(browser, running_demo):
    context, page = logged_in(browser, running_demo, "agente")
    page.goto(f"{running_demo.url}/inbox/")
    rows = page.locator(".conv-row")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 10
    # Her conversation's own address, as a link or a bookmark opens it. The demo keeps
    # writing (customers, the running campaign, and on its second number customers picked at
    # random): she is found by a search on WaSender's number, not by her place.
    page.goto(f"{running_demo.url}/inbox/?q=María González&channel=default")
    href = rows.filter(has_text="María González").first.get_attribute("href")
    page.goto(running_demo.url + href)
    expect(page.get_by_text("Gracias, quiero renovar").first).to_be_visible()
    expect(page.locator("#thread-head")).to_contain_text("María González")
    expect(page.locator("#customer-panel")).to_contain_text("Netflix")
    page.wait_for_timeout(300)  # the socket's first fetch settles
    page.screenshot(path=folder() / FILES["inbox"])
    context.close()
