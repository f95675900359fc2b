"""The live inbox as two agents live it (issue 14), in Chromium, on a whole chatdesk: in embedded
mode (`manage.py runembedded`, what `make demo` runs) and on the production topology. Customers
write through the simulator's webhooks; agents type and press Enter; every assertion is about
the element a person watches (the open thread's line, its tick, the list row), and every count
is taken where it cannot lie: the database's rows and the simulator's sends.

One chatdesk per topology serves every journey of this module (starting one costs seconds);
each journey begins from an empty database, a reset simulator with its default knobs, and the
away message off (a bot reply would be one more send to count).
"""

import base64
import re
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox.models import Conversation, Message
from outbound.models import AutomationSettings, MessageTemplate
from tests.browser.journeys import (
    PHONE,
    Link,
    digits,
    embedded_desk,
    from_topology,
    login,
    open_thread,
    production_desk,
    socket_open,
    thread_log,
    tick_problems,
)
from tests.conftest import make_user
from tests.waiting import wait_until

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
    "WjR9awAAAABJRU5ErkJggg=="
)
# Upper bounds for what must happen (a busy 2-core CI machine), not timings.
LIVE = 15_000
TICKS = 30_000
RECONNECT = 40_000
TEMPLATE = "Aviso de vencimiento (prueba)"  # not one of the templates a migration makes


@pytest.fixture(scope="module", params=["embedded", "production"])
def desk(request, django_db_setup, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp(f"desk-{request.param}")
    start = embedded_desk if request.param == "embedded" else production_desk
    with start(log_dir) as running_desk:
        yield running_desk


@pytest.fixture
def agents(desk, transactional_db, browser):
    """Bob (agent 1) and Ana (agent 2), each in a browser of their own on their own web process;
    `agents.open(conversation)` opens the thread in both."""
    defaults = desk.config()
    desk.reset()
    AutomationSettings.objects.update_or_create(pk=1, defaults={"away_enabled": False})
    make_user("bob", "agent", first_name="Bob")
    make_user("ana", "agent", first_name="Ana")
    team = Team(desk, browser)
    yield team
    team.close()
    desk.reset()
    desk.knobs(**defaults)


class Team:
    """Bob on the first web process, Ana on the second, through a network link the test can
    cut (`agents.ana_link`)."""

    def __init__(self, desk, browser):
        self.desk = desk
        self.contexts = []
        self.ana_link = Link(int(desk.urls[1].rsplit(":", 1)[1]))
        self.bob = self._login(browser, desk.urls[0], "bob")
        self.ana = self._login(browser, self.ana_link.url, "ana")

    def _login(self, browser, url: str, username: str):
        context, page = login(browser, url, username)
        self.contexts.append(context)
        page.url_base = url
        return page

    @property
    def pages(self):
        return (self.bob, self.ana)

    def open(self, conversation_id: int) -> None:
        for page in self.pages:
            open_thread(page, page.url_base, conversation_id)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.ana_link.close()


def a_customer_wrote(desk, text: str = "Hola, ¿me ayudan?") -> Conversation:
    desk.customer_writes(text)
    return wait_until(
        lambda: Conversation.objects.filter(customer__phone=PHONE).first(),
        timeout=20,
        what=f"the conversation of {PHONE} stored",
    )


def thread(page):
    return page.locator("#thread-messages")


def line(page, text: str):
    return thread(page).locator(".msg-out", has=page.locator(".msg-body", has_text=text))


def assert_one_line_per_message(page, messages) -> None:
    """Exactly one element per message id anywhere in the page, nothing left optimistic, nothing
    held in the hidden staging element."""
    for message in messages:
        expect(page.locator(f"[id='msg-{message.pk}']")).to_have_count(1)
        expect(page.locator(f"#msg-{message.pk}")).to_be_visible()
    expect(page.locator("#thread-messages .msg-pending")).to_have_count(0)
    expect(page.locator("#live-staging > *")).to_have_count(0)


def replies_of(bob_user_name: str = "bob"):
    return list(
        Message.objects.filter(direction="out", agent__username=bob_user_name).order_by(
            "created_at", "id"
        )
    )


# --- a customer writes ------------------------------------------------------------------------


def test_it_shows_a_customer_message_live_in_both_agents_list_and_thread(desk, agents):
    for page in agents.pages:
        page.goto(f"{page.url_base}/inbox/")
        socket_open(page)
    desk.customer_writes("Hola, quiero renovar Netflix")
    conversation = Conversation.objects.get()
    for page in agents.pages:
        row = page.locator(f"#conv-{conversation.pk}")
        expect(row).to_be_visible(timeout=LIVE)
        expect(row.locator(".conv-preview")).to_have_text("Hola, quiero renovar Netflix")
        expect(row.locator(".unread-count")).to_have_text("1")
    for page in agents.pages:
        page.locator(f"#conv-{conversation.pk}").click()
        expect(thread(page).locator(".msg-in .msg-body")).to_have_text(
            ["Hola, quiero renovar Netflix"]
        )
    desk.customer_writes("¿Aceptan Deuna?")
    for page in agents.pages:
        expect(thread(page).locator(".msg-in .msg-body").last).to_have_text(
            "¿Aceptan Deuna?", timeout=LIVE
        )
        expect(thread(page).locator(".msg-in .msg-body").last).to_be_visible()
        row = page.locator(f"#conv-{conversation.pk}")
        expect(row.locator(".conv-preview")).to_have_text("¿Aceptan Deuna?")
        expect(row).to_have_attribute("aria-current", "true")


# --- ten replies as fast as a person types ------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({}, id="plain"),
        pytest.param({"echo_first": True}, id="echo-first"),
        pytest.param({"out_of_order": 1.0, "duplicates": 0.5}, id="statuses-shuffled"),
    ],
)
def test_ten_replies_typed_with_enter_reach_both_threads_in_order_with_blue_ticks(
    desk, agents, knobs
):
    conversation = a_customer_wrote(desk)
    desk.knobs(**knobs)
    agents.open(conversation.pk)
    bob = agents.bob
    texts = [f"Respuesta {n}: listo, ya lo reviso" for n in range(1, 11)]
    area = bob.locator("#composer textarea")
    for text in texts:
        area.press_sequentially(text)
        area.press("Enter")
        # At once, in the sender's own thread, with the clock.
        expect(line(bob, text)).to_be_visible()
    expect(area).to_have_value("")

    for page in agents.pages:
        bodies = thread(page).locator(".msg-out .msg-body")
        expect(bodies).to_have_text(texts, timeout=LIVE)
        for text in texts:
            expect(line(page, text)).to_be_visible()
            tick = line(page, text).locator(".tick")
            expect(tick).to_have_attribute("data-status", "read", timeout=TICKS)
            expect(tick).to_have_class(re.compile(r"\btick-read\b"))
            expect(tick).to_be_visible()

    replies = replies_of()
    assert [m.body for m in replies] == texts
    assert Message.objects.filter(direction="out").count() == 10
    assert {m.status for m in replies} == {"read"}
    assert desk.stats()["sends_by_recipient"] == {PHONE: 10}
    for page in agents.pages:
        assert_one_line_per_message(page, replies)
        assert tick_problems(thread_log(page)) == []
    # The sender saw each reply with the clock first, on the line that then moved.
    log = thread_log(bob)["lines"]
    assert all(entry["statuses"][0] == "queued" for entry in log.values()), log


# --- the composer's tools ----------------------------------------------------------------------


def test_a_template_an_emoji_an_attachment_and_send_later_each_show_where_and_as_expected(
    desk, agents
):
    MessageTemplate.objects.create(
        name=TEMPLATE, category="support", body="Hola {nombre}, tu Netflix vence pronto"
    )
    conversation = a_customer_wrote(desk)
    agents.open(conversation.pk)
    bob, ana = agents.pages
    area = bob.locator("#composer textarea")

    # A template, filled from the customer, edited, sent.
    bob.locator("#composer select[name=template]").select_option(label=TEMPLATE)
    area = bob.locator("#composer textarea")
    expect(area).to_have_value("Hola María, tu Netflix vence pronto")
    area.press("End")
    area.press_sequentially(" 🎬")
    area.press("Enter")
    template_text = "Hola María, tu Netflix vence pronto 🎬"
    expect(line(bob, template_text)).to_be_visible()

    # An emoji from the picker, at the cursor.
    area.press_sequentially("Gracias ")
    bob.locator("#emoji-toggle").click()
    picker = bob.locator("#emoji-box emoji-picker")
    picker.locator("input.search").fill("corazón")
    first = picker.locator("#search-results [role=option]").first
    expect(first).to_be_visible()
    emoji = first.inner_text().strip()
    first.click()
    expect(area).to_have_value(f"Gracias {emoji}")
    area.press("Enter")
    emoji_text = f"Gracias {emoji}"
    expect(line(bob, emoji_text)).to_be_visible()

    # An attachment: named at once, then the image itself.
    bob.locator("#composer .attachment-input").set_input_files(
        {"name": "comprobante.png", "mimeType": "image/png", "buffer": PNG}
    )
    expect(bob.locator("#composer .attachment-name")).to_have_text("comprobante.png")
    area.press_sequentially("Tu comprobante")
    area.press("Enter")
    expect(bob.locator("#composer .attachment-chosen")).to_be_hidden()
    image_line = line(bob, "Tu comprobante")
    expect(image_line).to_be_visible()

    # Send later: the line says when, with the calendar, and nothing leaves.
    later = timezone.localtime() + timedelta(days=1)
    bob.locator("#composer details.later summary").click()
    bob.locator("#composer input[name=scheduled_for]").fill(later.strftime("%Y-%m-%dT%H:%M"))
    area.press_sequentially("Te recuerdo mañana")
    area.press("Enter")
    scheduled_line = line(bob, "Te recuerdo mañana")
    expect(scheduled_line).to_be_visible()
    expect(scheduled_line.locator(".tick")).to_have_text("🗓")

    for page in agents.pages:
        for text in (template_text, emoji_text, "Tu comprobante"):
            tick = line(page, text).locator(".tick")
            expect(tick).to_have_attribute("data-status", "read", timeout=TICKS)
            expect(tick).to_have_class(re.compile(r"\btick-read\b"))
        expect(line(page, "Tu comprobante").locator(".msg-media img")).to_be_visible()
        scheduled = line(page, "Te recuerdo mañana")
        expect(scheduled.locator(".tick")).to_have_attribute("data-status", "scheduled")
        expect(scheduled.locator(".msg-scheduled")).to_have_text(
            re.compile(r"Programado para " + later.strftime("%d/%m/%Y %H:%M"))
        )
    stats = desk.stats()
    assert stats["sends_by_recipient"] == {PHONE: 3}
    # The file went to the provider's upload, then out as an image with its caption.
    assert stats["uploads"] == 1
    sent = [m for m in httpx.get(f"{desk.sim}/_sim/messages").json() if m["media"]]
    assert [(m["media"], m["text"]) for m in sent] == [("image", "Tu comprobante")]
    assert httpx.get(sent[0]["mediaUrl"]).content == PNG
    image = Message.objects.get(body="Tu comprobante")
    assert (image.kind, image.media_mime) == ("image", "image/png")

    # Ana cancels the scheduled reply; both see it cancelled.
    ana_scheduled = line(ana, "Te recuerdo mañana")
    ana_scheduled.get_by_role("button", name="Cancelar").click()
    for page in agents.pages:
        expect(line(page, "Te recuerdo mañana").locator(".msg-scheduled")).to_have_text(
            "Envío programado cancelado", timeout=LIVE
        )
    replies = replies_of()
    assert [(m.body, m.status) for m in replies] == [
        (template_text, "read"),
        (emoji_text, "read"),
        ("Tu comprobante", "read"),
        ("Te recuerdo mañana", "cancelled"),
    ]
    for page in agents.pages:
        assert_one_line_per_message(page, replies)
        assert tick_problems(thread_log(page)) == []


# --- agent 2 drops offline ----------------------------------------------------------------------


def test_an_agent_who_drops_offline_sees_everything_when_back_without_a_reload(desk, agents):
    conversation = a_customer_wrote(desk, "Primer mensaje")
    agents.open(conversation.pk)
    bob, ana = agents.pages
    ana.evaluate("window.__sameDocument = true")
    agents.ana_link.cut()
    expect(ana.locator("#offline-banner")).to_be_visible(timeout=RECONNECT)

    desk.customer_writes("¿Siguen ahí?")
    expect(thread(bob).locator(".msg-in .msg-body").last).to_have_text("¿Siguen ahí?")
    area = bob.locator("#composer textarea")
    for text in ("Sí, aquí estamos", "Te envío los datos ahora"):
        area.press_sequentially(text)
        area.press("Enter")
    for text in ("Sí, aquí estamos", "Te envío los datos ahora"):
        expect(line(bob, text).locator(".tick")).to_have_attribute(
            "data-status", "read", timeout=TICKS
        )
    desk.customer_writes("Perfecto, gracias")
    expect(thread(bob).locator(".msg-in .msg-body").last).to_have_text("Perfecto, gracias")

    agents.ana_link.restore()
    expect(ana.locator("#offline-banner")).to_be_hidden(timeout=RECONNECT)
    expect(thread(ana).locator(".msg-in .msg-body")).to_have_text(
        ["Primer mensaje", "¿Siguen ahí?", "Perfecto, gracias"], timeout=LIVE
    )
    for text in ("Sí, aquí estamos", "Te envío los datos ahora"):
        expect(line(ana, text)).to_be_visible()
        expect(line(ana, text).locator(".tick")).to_have_attribute("data-status", "read")
    row = ana.locator(f"#conv-{conversation.pk}")
    expect(row.locator(".conv-preview")).to_have_text("Perfecto, gracias")
    assert ana.evaluate("window.__sameDocument") is True  # no reload
    # And live again on the new socket.
    desk.customer_writes("Una cosa más")
    expect(thread(ana).locator(".msg-in .msg-body").last).to_have_text("Una cosa más", timeout=LIVE)
    assert_one_line_per_message(ana, replies_of())


# --- a send that fails ----------------------------------------------------------------------


def test_a_failed_send_shows_the_reason_on_its_line_and_reintentar_sends_it_once(desk, agents):
    conversation = a_customer_wrote(desk)
    desk.knobs(not_on_whatsapp=[digits(PHONE)])
    agents.open(conversation.pk)
    bob = agents.bob
    area = bob.locator("#composer textarea")
    area.press_sequentially("¿Sigues ahí?")
    area.press("Enter")
    for page in agents.pages:
        failed = line(page, "¿Sigues ahí?")
        expect(failed.locator(".tick")).to_have_text("⚠", timeout=TICKS)
        expect(failed.locator(".msg-failed")).to_be_visible()
        expect(failed.locator(".msg-failed")).to_contain_text("⚠ El número no tiene WhatsApp")
        expect(failed.get_by_role("button", name="Reintentar")).to_be_visible()

    desk.knobs(not_on_whatsapp=[])
    first = Message.objects.get(direction="out")
    bob.locator(f"#msg-{first.pk}").get_by_role("button", name="Reintentar").dblclick()
    for page in agents.pages:
        old = page.locator(f"#msg-{first.pk}")
        expect(old.get_by_role("button", name="Reintentar")).to_have_count(0, timeout=LIVE)
        expect(old.locator(".msg-failed")).to_contain_text("Enviado otra vez")
        lines = thread(page).locator(".msg-out")
        expect(lines).to_have_count(2)
        expect(lines.last.locator(".msg-body")).to_have_text("¿Sigues ahí?")
        expect(lines.last.locator(".tick")).to_have_attribute("data-status", "read", timeout=TICKS)
    assert desk.stats()["sends_by_recipient"] == {PHONE: 1}
    replies = replies_of()
    assert [m.status for m in replies] == ["failed", "read"]
    for page in agents.pages:
        assert_one_line_per_message(page, replies)
        assert tick_problems(thread_log(page)) == []


# --- the demo ------------------------------------------------------------------------------------


def test_in_the_demo_a_typed_reply_shows_its_ticks_moving(browser, tmp_path):
    """`make demo` as the README says (tests/topology.py's demo_run: its own port and SQLite
    file), the demo agent's login, a seeded conversation: the reply shows at once with the
    clock and its tick moves on that line to blue, with the simulator's demo pace."""
    demo_run = from_topology("demo_run")
    with demo_run(logs=tmp_path / "logs", sqlite_path=tmp_path / "demo.sqlite3") as demo:
        context, page = login(browser, demo.url, "agente", password="chatdesk-agente")
        try:
            page.goto(f"{demo.url}/inbox/")
            socket_open(page)
            page.locator(".conv-row").first.click()
            expect(page.locator("#composer textarea")).to_be_visible()
            socket_open(page)
            text = "Hola, ya reviso tu cuenta"
            area = page.locator("#composer textarea")
            area.press_sequentially(text)
            area.press("Enter")
            reply = line(page, text)
            expect(reply).to_be_visible()
            tick = reply.locator(".tick")
            expect(tick).to_have_attribute("data-status", "read", timeout=TICKS)
            expect(tick).to_have_class(re.compile(r"\btick-read\b"))
            expect(tick).to_be_visible()
            log = thread_log(page)
            assert tick_problems(log) == []
            (entry,) = [e for e in log["lines"].values() if e["text"] == text]
            # It moved: the clock first, then at least one step before blue.
            assert entry["statuses"][0] == "queued" and entry["statuses"][-1] == "read"
            assert {"sent", "delivered"} & set(entry["statuses"]), entry["statuses"]
        finally:
            context.close()
