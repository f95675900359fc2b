"""Two agents in two browsers on a real daphne: what one customer or agent does, the other sees
without reloading. Inbound messages arrive through the real webhook."""

import itertools
import os
import re
import time

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import expect

from inbox.models import Conversation
from tests.conftest import make_user, require
from tests.inbox_live.conftest import HOSTILE, message_in
from tests.procs import daphne_args, free_port, process_env, redis_url_for_tests, running, stop

PHONE = "593968196046"
_ids = itertools.count(1)
_last_second = [0]


def _now_second() -> int:
    """WhatsApp timestamps are whole seconds; each message here gets a later one, as two real
    messages a few seconds apart would (the list preview only moves forward in time)."""
    _last_second[0] = max(int(time.time()), _last_second[0] + 1)
    return _last_second[0]


def inbound(base_url: str, text: str, *, name: str = "María González", phone: str = PHONE):
    """A customer writes: WaSender's messages.received through the real webhook."""
    wa_id = f"3EB0TEST{next(_ids):08d}"
    body = {
        "event": "messages.received",
        "timestamp": int(time.time()),
        "data": {
            "messages": {
                "key": {
                    "id": wa_id,
                    "fromMe": False,
                    "remoteJid": f"{phone}@s.whatsapp.net",
                    "addressingMode": "pn",
                    "cleanedSenderPn": phone,
                },
                "pushName": name,
                "messageTimestamp": _now_second(),
                "messageBody": text,
                "message": {"conversation": text},
            }
        },
    }
    response = httpx.post(
        f"{base_url}/webhooks/wasender/",
        json=body,
        headers={"X-Webhook-Signature": settings.WASENDER_WEBHOOK_SECRET},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def socket_open(page) -> None:
    page.wait_for_function("window.chatdeskInbox && window.chatdeskInbox.socket !== null")


def open_conversation(page, base_url: str, conversation_id: int) -> None:
    page.goto(f"{base_url}/inbox/c/{conversation_id}/")
    socket_open(page)


def test_it_keeps_two_agents_in_step(page_for, live_server_url):
    make_user("bob", "agent", first_name="Bob")
    make_user("ana", "agent", first_name="Ana")
    inbound(live_server_url, "Hola, buenas")
    conversation = Conversation.objects.get()
    row = f"#conv-{conversation.pk}"

    bob = page_for("bob", "pass-bob")
    ana = page_for("ana", "pass-ana")
    dialogs = []
    for page in (bob, ana):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        open_conversation(page, live_server_url, conversation.pk)
    # Each sees the other: both sockets are in the conversation's group.
    expect(bob.locator("#presence")).to_contain_text("Ana está viendo esta conversación")
    expect(ana.locator("#presence")).to_contain_text("Bob está viendo esta conversación")

    # A customer message appears in both lists and both open threads.
    inbound(live_server_url, "¿Tienen promo de Netflix?")
    for page in (bob, ana):
        expect(page.locator("#thread-messages")).to_contain_text("¿Tienen promo de Netflix?")
        expect(page.locator(row)).to_contain_text("¿Tienen promo de Netflix?")

    # Ana sees Bob typing, then his reply (Enter sends).
    bob.locator("#composer textarea").press_sequentially("Sí, 50% este mes")
    expect(ana.locator("#typing")).to_contain_text("Bob está escribiendo…")
    bob.locator("#composer textarea").press("Enter")
    reply = ana.locator("#thread-messages .msg-out", has_text="Sí, 50% este mes")
    expect(reply).to_be_visible()
    expect(reply.locator(".msg-author")).to_have_text("Bob")
    expect(bob.locator("#composer textarea")).to_have_value("")
    expect(ana.locator(f"{row} .badge")).to_contain_text("Respondido")

    # Bob resolves; Ana's thread header and list row follow.
    bob.get_by_role("button", name="Resolver").click()
    expect(ana.locator("#thread-head")).to_contain_text("Resuelto")
    expect(ana.locator(f"{row} .badge")).to_contain_text("Resuelto")

    # The customer writes again: the conversation is new again, for both.
    inbound(live_server_url, "Otra pregunta")
    for page in (bob, ana):
        expect(page.locator(f"{row} .badge")).to_contain_text("Nuevo")
        expect(page.locator("#thread-head")).to_contain_text("Nuevo")
        expect(page.locator("#thread-messages")).to_contain_text("Otra pregunta")

    # Hostile text is text: shown literally, no element made of it, no script run.
    inbound(live_server_url, HOSTILE)
    inbound(live_server_url, "hola", name=HOSTILE, phone="593991234567")
    for page in (bob, ana):
        expect(page.locator("#thread-messages .msg-body").last).to_have_text(HOSTILE)
        expect(page.locator(".conv-row .conv-name", has_text="onerror")).to_have_text(HOSTILE)
        assert page.locator("img[src='x']").count() == 0
    assert dialogs == []


def test_it_shows_a_new_conversation_in_the_list_and_counts_unread_in_the_title(
    page_for, live_server_url
):
    make_user("bob", "agent", first_name="Bob")
    bob = page_for("bob", "pass-bob")
    bob.goto(f"{live_server_url}/inbox/")
    socket_open(bob)
    expect(bob.locator("#nav-unread")).to_be_hidden()
    inbound(live_server_url, "Primera vez que escribo", name="Luis Torres", phone="593991234567")
    row = bob.locator(".conv-row", has_text="Luis Torres")
    # (An out-of-hours auto-reply may follow, so the preview is not asserted here.)
    expect(row.locator(".unread-count")).to_have_text("1")
    expect(bob).to_have_title(re.compile(r"^\(1\) "))
    # The navigation's badge follows, and says it in words to a screen reader.
    expect(bob.locator("#nav-unread")).to_be_visible()
    expect(bob.locator("#nav-unread .nav-badge-count")).to_have_text("1")
    inbox_link = bob.get_by_role("link", name="Conversaciones 1 conversación sin leer")
    expect(inbox_link).to_be_visible()
    row.click()
    expect(bob.locator("#thread-messages")).to_contain_text("Primera vez que escribo")
    expect(bob).to_have_url(re.compile(r"/inbox/c/\d+/$"))


def test_the_navigation_badge_counts_unread_conversations_live_on_a_phone(
    page_for, live_server_url
):
    """At a phone's width: hidden while nothing waits, live on the inbox as customers write,
    rendered with the page elsewhere (no socket there), and one less once a conversation is
    opened."""
    make_user("ana", "agent", first_name="Ana")
    ana = page_for("ana", "pass-ana", width=390, height=844)
    ana.goto(f"{live_server_url}/inbox/")
    socket_open(ana)
    badge, count = ana.locator("#nav-unread"), ana.locator("#nav-unread .nav-badge-count")
    expect(badge).to_be_hidden()
    inbound(live_server_url, "Hola, ¿tienen Netflix?", name="Luis Torres", phone="593991234567")
    expect(badge).to_be_visible()
    expect(count).to_have_text("1")
    inbound(live_server_url, "¿Y Disney+?")
    expect(count).to_have_text("2")
    expect(ana.get_by_role("link", name="Conversaciones 2 conversaciones sin leer")).to_be_visible()
    # Another page: the count comes with it.
    ana.goto(f"{live_server_url}/customers/")
    expect(badge).to_be_visible()
    expect(count).to_have_text("2")
    # Opening one reads it: that page's badge already counts one.
    luis = Conversation.objects.get(customer__name="Luis Torres")
    open_conversation(ana, live_server_url, luis.pk)
    expect(count).to_have_text("1")
    # María writes again: her row counts two messages, the badge still one conversation.
    inbound(live_server_url, "Sigo esperando")
    maria = Conversation.objects.get(customer__name="María González")
    expect(ana.locator(f"#conv-{maria.pk} .unread-count")).to_have_text("2")
    expect(count).to_have_text("1")


NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({ title, body: (options || {}).body }); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
// The page notifies only while it is out of sight.
Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
"""


def test_no_notification_for_a_number_the_list_is_filtered_away_from(page_for, live_server_url):
    """Bob filters his list to the "Ventas" number: a customer writing to the other number
    moves his tab's count (what waits for him) but raises no browser notification; back on
    every number, the next message does."""
    from inbox.models import DEFAULT_CHANNEL, Channel

    Channel.objects.get_or_create(
        key=DEFAULT_CHANNEL, defaults={"name": "WhatsApp", "from_env": True}
    )
    Channel.objects.create(key="ventas", name="Ventas")
    make_user("bob", "agent", first_name="Bob")
    inbound(live_server_url, "Buenas tardes")
    maria = Conversation.objects.get()
    bob = page_for("bob", "pass-bob")
    bob.context.add_init_script(NOTIFICATIONS)
    bob.goto(f"{live_server_url}/inbox/")
    socket_open(bob)
    expect(bob.locator(f"#conv-{maria.pk}")).to_be_visible()
    bob.get_by_role("combobox", name="Canal").select_option(label="Ventas")
    expect(bob.locator(f"#conv-{maria.pk}")).to_have_count(0)

    inbound(live_server_url, "Hola, ¿tienen Netflix?", name="Luis Torres", phone="593991234567")
    # The frame that moves the count is the one that would have carried the notification.
    expect(bob).to_have_title(re.compile(r"^\(2\) "))
    expect(bob.locator("#nav-unread .nav-badge-count")).to_have_text("2")
    assert bob.evaluate("window.__notes") == []

    bob.get_by_role("combobox", name="Canal").select_option(label="Todos los números")
    expect(bob.locator(".conv-row", has_text="Luis Torres")).to_be_visible()
    inbound(live_server_url, "¿Me ayudan?", name="Luis Torres", phone="593991234567")
    bob.wait_for_function("window.__notes.length > 0")
    assert bob.evaluate("window.__notes") == [{"title": "Luis Torres", "body": "¿Me ayudan?"}]


def _waiting_in_server_layer() -> int:
    """Messages the server's Redis layer still holds for its process (channels-redis keeps a
    process's channel as a sorted set named after it): none once its hub has taken them."""
    import redis

    client = redis.Redis.from_url(redis_url_for_tests())
    return sum(client.zcard(key) for key in client.scan_iter(match="*specific.*!"))


def _lock_waiters(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
            [table],
        )
        return cursor.fetchone()[0]


def test_a_socket_behind_in_a_burst_catches_up_in_one_frame(postgres, page_for, live_server_url):
    """Six customers write while Bob's socket is busy with his page's `watch` (it re-reads
    which numbers he works on, from a table this test holds locked; the webhooks never read
    it): the events wait for the socket on the server, and reach the page in fewer frames
    than events, with the effect of one frame each: every row in order, the tab's and the
    badge's total, and a notification for each message."""
    require(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set (the server's layer)")
    from django.db import connection, transaction

    from inbox.models import Channel

    make_user("bob", "agent", first_name="Bob")
    bob = page_for("bob", "pass-bob")
    bob.context.add_init_script(NOTIFICATIONS)
    frames: list[str] = []
    bob.on("websocket", lambda ws: ws.on("framereceived", lambda text: frames.append(text)))
    bob.goto(f"{live_server_url}/inbox/")
    socket_open(bob)
    expect(bob.locator("#conv-list")).to_be_visible()
    table = Channel.agents.through._meta.db_table
    names = [f"Cliente {n}" for n in range(6)]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"LOCK TABLE {connection.ops.quote_name(table)} IN ACCESS EXCLUSIVE MODE"
            )
        # The search box's input event has the page send `watch` (no list request: the text
        # did not change); the socket waits on the lock, holding its events back.
        bob.dispatch_event("#list-filters input[name=q]", "input")
        deadline = time.monotonic() + 30
        while not _lock_waiters(table) and time.monotonic() < deadline:
            time.sleep(0.05)
        for n, name in enumerate(names):
            inbound(live_server_url, f"Mensaje {n}", name=name, phone=f"59399123450{n}")
        # Every event in the server's hands (and all but the first queued for the socket).
        while _waiting_in_server_layer() and time.monotonic() < deadline:
            time.sleep(0.05)
    expect(bob.locator(".conv-row .conv-name")).to_have_text(list(reversed(names)))
    for name in names:
        expect(bob.locator(".conv-row", has_text=name).locator(".unread-count")).to_have_text("1")
    expect(bob).to_have_title(re.compile(r"^\(6\) "))
    expect(bob.locator("#nav-unread .nav-badge-count")).to_have_text("6")
    bob.wait_for_function("window.__notes.length >= 6")
    notes = bob.evaluate("window.__notes")
    assert sorted(note["body"] for note in notes) == [f"Mensaje {n}" for n in range(6)]
    assert len(notes) == 6
    assert bob.locator("#live-staging > *").count() == 0
    # Fewer frames than events (the first alone, then those that waited behind it), each
    # with the list's totals once.
    carrying = [frame for frame in frames if 'id="notify"' in frame]
    assert len(carrying) < len(names)
    assert all(frame.count('id="unread-total"') == 1 for frame in carrying)


def test_a_list_fetched_before_a_filter_never_lands_over_it(page_for, live_server_url):
    """The page re-fetches its list as its socket opens; an agent who picks a filter while that
    answer is on its way gets the filtered list, whatever order the two answers come in (the
    re-fetch is held here until the filter is picked, then let through first)."""
    make_user("bob", "agent", first_name="Bob")
    inbound(live_server_url, "Ya quedó, gracias", name="Luis Torres", phone="593991234567")
    inbound(live_server_url, "¿Me ayudan?")
    Conversation.objects.filter(customer__name="Luis Torres").update(status="resolved")
    luis, maria = (
        Conversation.objects.get(customer__name=n) for n in ("Luis Torres", "María González")
    )
    bob = page_for("bob", "pass-bob")
    held, holding = [], [True]

    def hold(route):
        if holding[0]:
            held.append(route)
        else:
            route.continue_()

    bob.route("**/inbox/list/**", hold)
    with bob.expect_request("**/inbox/list/**"):
        bob.goto(f"{live_server_url}/inbox/")
    bob.get_by_role("radio", name="Resueltas").check()
    holding[0] = False
    # Held: the re-fetch, and the filter's own fetch if the page sent it before the first came.
    first, later = held[0], held[1:]
    with bob.expect_response("**/inbox/list/**"):
        first.continue_()
    for route in later:
        route.continue_()
    expect(bob.locator(f"#conv-{luis.pk}")).to_be_visible()
    expect(bob.locator(f"#conv-{maria.pk}")).to_have_count(0)


def test_it_shows_one_pane_at_a_time_on_a_phone(page_for, live_server_url):
    make_user("bob", "agent", first_name="Bob")
    inbound(live_server_url, "Hola desde el celular")
    bob = page_for("bob", "pass-bob", width=390, height=844)
    bob.goto(f"{live_server_url}/inbox/")
    expect(bob.locator("#list-pane")).to_be_visible()
    bob.locator(".conv-row").first.click()
    expect(bob.locator("#thread-messages")).to_contain_text("Hola desde el celular")
    expect(bob.locator("#list-pane")).to_be_hidden()
    expect(bob.locator("#customer-panel")).to_be_hidden()
    bob.locator("#thread-head .panel-link").click()
    expect(bob.locator("#customer-panel")).to_be_visible()
    assert bob.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    bob.locator("#customer-panel a.back").click()
    expect(bob.locator("#customer-panel")).to_be_hidden()
    bob.locator("#thread-head a.back").click()
    expect(bob.locator("#list-pane")).to_be_visible()


# --- a dropped connection ---------------------------------------------------------------------


@pytest.fixture
def restartable_server(transactional_db, tmp_path):
    """A daphne that the test can stop and start again on the same port."""
    port = free_port()
    extra = {"REDIS_URL": redis_url_for_tests()} if os.environ.get("REDIS_URL") else {}
    env = process_env(DEBUG="1", DRAMATIQ_BROKER="stub", **extra)
    url = f"http://127.0.0.1:{port}"
    state = {"ctx": None, "n": 0}

    def start():
        state["n"] += 1
        state["ctx"] = running(
            daphne_args(port),
            env=env,
            ready_url=f"{url}/healthz",
            log=tmp_path / f"daphne-{state['n']}.log",
        )
        state["proc"] = state["ctx"].__enter__()

    def halt():
        stop(state["proc"])
        state["ctx"].__exit__(None, None, None)
        state["ctx"] = None

    start()
    yield url, start, halt
    if state["ctx"] is not None:
        halt()


def test_it_fills_the_gap_after_the_server_comes_back(browser, restartable_server):
    url, start, halt = restartable_server
    make_user("bob", "agent", first_name="Bob")
    inbound(url, "Antes del corte")
    conversation = Conversation.objects.get()
    context = browser.new_context(locale="es-EC")
    try:
        page = context.new_page()
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", "bob")
        page.fill("input[name=password]", "pass-bob")
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        open_conversation(page, url, conversation.pk)
        expect(page.locator("#offline-banner")).to_be_hidden()

        halt()
        expect(page.locator("#offline-banner")).to_be_visible()
        expect(page.locator("#offline-banner")).to_have_text("Sin conexión — reintentando…")
        # Meanwhile another web process stored a message this page never heard about.
        message = message_in(conversation, "Llegó durante el corte")
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=message.created_at, last_message_preview=message.body
        )
        start()

        # The page retries with a backoff capped at 10 s.
        expect(page.locator("#offline-banner")).to_be_hidden(timeout=30_000)
        expect(page.locator("#thread-messages")).to_contain_text("Llegó durante el corte")
        expect(page.locator(f"#conv-{conversation.pk}")).to_contain_text("Llegó durante el corte")
        # And the live push works again on the new socket.
        inbound(url, "Después del corte")
        expect(page.locator("#thread-messages")).to_contain_text("Después del corte")
    finally:
        context.close()


def _group_send_to_server(messages: list[dict]) -> None:
    """Into the live server's Redis layer, from a thread of its own (Playwright's sync API
    keeps an event loop in this one)."""
    import asyncio
    import threading

    from channels_redis.core import RedisChannelLayer

    async def send():
        layer = RedisChannelLayer(hosts=[redis_url_for_tests()])
        for message in messages:
            await layer.group_send("inbox", message)

    thread = threading.Thread(target=asyncio.run, args=(send(),))
    thread.start()
    thread.join(timeout=30)


def test_a_page_whose_socket_missed_events_refetches_its_list_and_thread(page_for, live_server_url):
    require(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set (the server's layer)")
    make_user("bob", "agent", first_name="Bob")
    inbound(live_server_url, "Hola")
    conversation = Conversation.objects.get()
    page = page_for("bob", "pass-bob")
    open_conversation(page, live_server_url, conversation.pk)
    # A message whose events this socket lost (its channel was full, say)...
    message = message_in(conversation, "Se perdió su evento")
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=message.created_at, last_message_preview=message.body
    )
    # ...and the numbers around the lost one, 2 never comes (events that by themselves change
    # nothing on this page: a conversation that does not exist).
    source = f"browser-test-{time.time()}"
    _group_send_to_server(
        [
            {
                "type": "conversation.updated",
                "group": "inbox",
                "conversation_id": 0,
                "event_id": f"{source}-{n}",
                "source": source,
                "seq": n,
            }
            for n in (1, 3)
        ]
    )
    expect(page.locator("#thread-messages")).to_contain_text("Se perdió su evento")
    expect(page.locator(f"#conv-{conversation.pk}")).to_contain_text("Se perdió su evento")
