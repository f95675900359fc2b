"""Sending from the inbox for real: daphne, a dramatiq worker on Redis and the WaSender
simulator over HTTP. Agent A replies; agent B sees the ticks move as the simulator reports them.
Also the composer's attachment and its emoji picker (our own data, nothing from a CDN)."""

import base64
import os
import re

import httpx
import pytest
import redis
from playwright.sync_api import expect

from customers.models import Customer
from inbox.models import Conversation, Message
from tests.conftest import make_user, require
from tests.procs import PYTHON, daphne_args, dramatiq_args, free_port, process_env, running
from tests.procs import test_redis_url as redis_test_url

pytestmark = pytest.mark.browser
PHONE = "593968196046"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
    "WjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def live_stack(transactional_db, tmp_path, settings):
    """(chatdesk URL, simulator URL): daphne and a worker sending to the simulator, which
    pushes its webhooks (message.sent, the echo, statuses 2 -> 3 -> 4) back to this daphne."""
    require("REDIS_URL" in os.environ, "needs Redis (REDIS_URL) for the real worker")
    redis_url = redis_test_url()
    redis.Redis.from_url(redis_url).flushdb()
    web, sim = free_port(), free_port()
    web_url, sim_url = f"http://127.0.0.1:{web}", f"http://127.0.0.1:{sim}"
    sim_args = [
        PYTHON, "manage.py", "wasender_sim", "--skip-checks", "--port", str(sim),
        "--webhook-url", f"{web_url}/webhooks/wasender/", "--secret", "dev-webhook-secret",
        "--api-key", "simulator-key", "--seed", "7", "--status-delays", "0.3,1.5,3",
    ]  # fmt: skip
    env = process_env(
        DEBUG="1", REDIS_URL=redis_url, DRAMATIQ_BROKER="redis", MEDIA_ROOT=tmp_path / "media",
        WASENDER_BASE_URL=f"{sim_url}/api", WASENDER_API_KEY="simulator-key",
        WASENDER_WEBHOOK_SECRET="dev-webhook-secret", LOG_LEVEL="WARNING",
    )  # fmt: skip
    with (
        running(sim_args, env=process_env(), ready_url=f"{sim_url}/", log=tmp_path / "sim.log"),
        running(daphne_args(web), env=env, ready_url=f"{web_url}/healthz",
                log=tmp_path / "daphne.log"),
        running(dramatiq_args(processes=1, threads=2), env=env, log=tmp_path / "worker.log"),
    ):  # fmt: skip
        yield web_url, sim_url


def login(browser, url: str, username: str):
    context = browser.new_context(locale="es-EC", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pass-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return context, page


def open_thread(page, url: str, conversation_id: int) -> None:
    page.goto(f"{url}/inbox/c/{conversation_id}/")
    page.wait_for_function("window.chatdeskInbox && window.chatdeskInbox.socket !== null")


def customer_writes(sim_url: str, text: str) -> None:
    response = httpx.post(
        f"{sim_url}/_sim/inbound", json={"phone": PHONE, "text": text, "name": "María"}, timeout=10
    )
    assert response.json()["data"]["delivered"] is True, response.text


def test_it_moves_the_ticks_in_another_agents_browser(browser, live_stack):
    url, sim_url = live_stack
    make_user("bob", "agent", first_name="Bob")
    make_user("ana", "agent", first_name="Ana")
    customer_writes(sim_url, "Hola, ¿me ayudan con Netflix?")
    conversation = Conversation.objects.get()
    contexts = []
    try:
        for name in ("bob", "ana"):
            contexts.append(login(browser, url, name))
        (_, bob), (_, ana) = contexts
        for page in (bob, ana):
            open_thread(page, url, conversation.pk)

        bob.locator("#composer textarea").fill("Claro, te ayudo ahora")
        bob.locator("#composer textarea").press("Enter")
        line = ana.locator("#thread-messages .msg-out", has_text="Claro, te ayudo ahora")
        expect(line).to_be_visible()
        tick = line.locator(".tick")
        # The simulator reports sent, then delivered, then read: Ana's line follows each.
        expect(tick).to_have_attribute("data-status", "delivered", timeout=20_000)
        expect(tick).to_have_text("✓✓")
        expect(tick).to_have_attribute("data-status", "read", timeout=20_000)
        expect(tick).to_have_class(re.compile(r"\btick-read\b"))

        # An attachment: checked by the web process, uploaded by the worker, sent as an image.
        bob.locator("#composer .attachment-input").set_input_files(
            {"name": "comprobante.png", "mimeType": "image/png", "buffer": PNG}
        )
        expect(bob.locator("#composer .attachment-name")).to_have_text("comprobante.png")
        bob.locator("#composer textarea").fill("Tu comprobante")
        bob.locator("#composer textarea").press("Enter")
        image_line = ana.locator("#thread-messages .msg-out", has_text="Tu comprobante")
        expect(image_line.locator(".msg-media img")).to_be_visible()
        expect(image_line.locator(".tick")).to_have_attribute("data-status", "read", timeout=20_000)
        stats = httpx.get(f"{sim_url}/_sim/stats").json()
        assert stats["uploads"] == 1
        sent = [m for m in httpx.get(f"{sim_url}/_sim/messages").json() if m["media"]]
        assert [(m["media"], m["text"]) for m in sent] == [("image", "Tu comprobante")]
        assert sent[0]["mediaUrl"].startswith(f"{sim_url}/media/")
        assert httpx.get(sent[0]["mediaUrl"]).content == PNG
        message = Message.objects.get(body="Tu comprobante")
        assert (message.kind, message.media_mime) == ("image", "image/png")
    finally:
        for context, _ in contexts:
            context.close()


def _agent_in_a_conversation(page_for, live_server_url):
    """Bob's page on a conversation with Carlos, and the list of every URL it requests."""
    make_user("bob", "agent", first_name="Bob")
    conversation = Conversation.objects.create(
        customer=Customer.objects.create(phone="+593968196046", name="Carlos")
    )
    bob = page_for("bob", "pass-bob")
    requests = []
    bob.on("request", lambda request: requests.append(request.url))
    bob.goto(f"{live_server_url}/inbox/c/{conversation.pk}/")
    return bob, requests


def _assert_emoji_data_came_from_us(requests: list[str], live_server_url: str) -> None:
    assert any(u.endswith("/static/vendor/emoji-picker/es/data.json") for u in requests)
    foreign = [u for u in requests if not u.startswith(live_server_url) and u.startswith("http")]
    assert foreign == []


def test_it_inserts_an_emoji_at_the_cursor_from_our_own_data(page_for, live_server_url):
    bob, requests = _agent_in_a_conversation(page_for, live_server_url)
    area = bob.locator("#composer textarea")
    area.fill("Hola  gracias")
    area.evaluate("el => el.setSelectionRange(5, 5)")
    bob.locator("#emoji-toggle").click()
    picker = bob.locator("#emoji-box emoji-picker")
    expect(picker).to_be_visible()
    # Playwright's CSS reaches into the picker's open shadow root.
    picker.locator("input.search").fill("corazón")
    first = picker.locator("#search-results [role=option]").first
    expect(first).to_be_visible()
    emoji = first.inner_text().strip()
    first.click()
    expect(area).to_have_value(f"Hola {emoji} gracias")
    _assert_emoji_data_came_from_us(requests, live_server_url)


def test_the_vendored_picker_database_defaults_to_our_own_spanish_data(page_for, live_server_url):
    bob, requests = _agent_in_a_conversation(page_for, live_server_url)
    source = bob.locator("#emoji-toggle").get_attribute("data-picker")
    database = source.replace("picker.js", "database.js")
    # No dataSource given: the library's default decides where the data comes from.
    names = bob.evaluate(
        """async (url) => {
            const { default: Database } = await import(url);
            const db = new Database({ locale: "es-default-test" });
            await db.ready();
            const found = await db.getEmojiBySearchQuery("corazón");
            await db.delete();
            return found.map((emoji) => emoji.annotation);
        }""",
        database,
    )
    assert any("corazón" in name.lower() for name in names)
    _assert_emoji_data_came_from_us(requests, live_server_url)
