"""The live inbox on a Cloud API number (issue 20), as two agents live it in Chromium, the way
test_inbox_journeys.py proves it for WaSender: in embedded mode (`manage.py runembedded
--cloudapi-number`, what `make demo` runs) and on the production topology with the README's
Cloud API block (its own `manage.py cloudapi_sim` process). Customers write through the Cloud
API simulator's signed webhooks; agents type and press Enter; assertions are on what a person
watches (the row and its number's chip, the open thread's line, its tick, the composer), and
counts are taken where they cannot lie: the database's rows and the simulators' sends.

Each journey starts from an empty database with the desk's two channels as the processes made
them, reset simulators with their default knobs, and the away message off.
"""

import contextlib
import os
import re
import socket
from dataclasses import dataclass

import httpx
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from inbox.models import DEFAULT_CHANNEL, Channel, Conversation, Message
from outbound.models import AutomationSettings
from tests.browser.journeys import (
    PHONE,
    digits,
    from_topology,
    login,
    open_thread,
    socket_open,
    thread_log,
    tick_problems,
)
from tests.conftest import make_user
from tests.procs import PYTHON, free_port, process_env, running, wait_for_http
from tests.waiting import wait_until

META = "meta"  # the channel the environment's Cloud API number is (inbox/channels.py)
# Upper bounds for what must happen (a busy 2-core CI machine), not timings.
LIVE = 15_000
TICKS = 30_000
CLOSED = "Ventana de 24 h cerrada"
NO_TEMPLATES = "Ninguna plantilla vinculada a una plantilla aprobada por Meta"


@dataclass
class CloudDesk:
    """A running chatdesk with a Cloud API number: each agent's web address (one daphne each
    in production), the Cloud API simulator, and WaSender's (which must stay silent)."""

    name: str
    urls: tuple[str, str]
    meta: str
    wasender: str
    channel_rows: list | None = None

    def knobs(self, **values) -> None:
        response = httpx.post(f"{self.meta}/_sim/config", json=values, timeout=10)
        assert response.status_code == 200, f"simulator refused {values}: {response.text}"

    def config(self) -> dict:
        return httpx.get(f"{self.meta}/_sim/config", timeout=10).json()

    def reset(self) -> None:
        for sim in (self.meta, self.wasender):
            httpx.post(f"{sim}/_sim/reset", timeout=10).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(f"{self.meta}/_sim/stats", timeout=10).json()

    def wasender_sends(self) -> int:
        return httpx.get(f"{self.wasender}/_sim/stats", timeout=10).json()["sends_accepted"]

    def customer_writes(
        self,
        text: str,
        *,
        hours_ago: float = 0,
        name: str = "María González",
        phone: str = PHONE,
    ):
        response = httpx.post(
            f"{self.meta}/_sim/inbound",
            json={"phone": phone, "text": text, "name": name, "hours_ago": hours_ago},
            timeout=30,
        )
        assert response.json()["data"]["delivered"] is True, response.text

    def customer_writes_on_wasender(self, text: str, *, phone: str, name: str):
        """A customer writes to the desk's other number, WaSender's."""
        response = httpx.post(
            f"{self.wasender}/_sim/inbound",
            json={"phone": phone, "text": text, "name": name},
            timeout=30,
        )
        assert response.json()["data"]["delivered"] is True, response.text


def _port_triple() -> int:
    """A free port whose next two are free too: embedded mode serves WaSender's simulator on
    port + 1 and the Cloud API's on port + 2."""
    for _ in range(50):
        port = free_port()
        with contextlib.ExitStack() as probes:
            try:
                for offset in (1, 2):
                    probe = probes.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port
    raise RuntimeError("no three consecutive free ports")


@contextlib.contextmanager
def embedded_cloud_desk(log_dir):
    """`manage.py runembedded --cloudapi-number` on the tests' database, without Redis; the
    simulators' customers who write in now and then are off: the journeys count every
    message."""
    port = _port_triple()
    env = process_env(
        DEBUG="1",
        REDIS_URL="",
        WASENDER_SIM_DEMO="0",
        CLOUDAPI_SIM_DEMO="0",
        LOG_LEVEL="WARNING",
    )
    for name in ("WASENDER_API_KEY", "META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID"):
        env.pop(name, None)
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "manage.py", "runembedded", "--port", str(port), "--cloudapi-number"]
    with running(args, env=env, ready_url=f"{url}/healthz", log=log_dir / "embedded.log") as proc:
        meta, wasender = f"http://127.0.0.1:{port + 2}", f"http://127.0.0.1:{port + 1}"
        wait_for_http(f"{meta}/", proc=proc)
        yield CloudDesk("embedded", (url, url), meta, wasender)


@contextlib.contextmanager
def production_cloud_desk(log_dir):
    """The README's production processes with its Cloud API block (tests/topology.py): agent 1
    on the first daphne, agent 2 on the second; both simulators push to the first, so whatever
    agent 2 sees crossed Redis."""
    from tests.conftest import require
    from tests.procs import redis_url_for_tests

    topology_run = from_topology("topology_run")
    database_url = from_topology("database_url_for_tests")()
    require(database_url.startswith("postgres"), "the production topology needs PostgreSQL")
    require(bool(os.environ.get("REDIS_URL")), "the production topology needs Redis (REDIS_URL)")
    with topology_run(
        logs=log_dir, database_url=database_url, redis_url=redis_url_for_tests(), cloudapi=True
    ) as top:
        try:
            yield CloudDesk("production", (top.web1, top.web2), top.cloudapi, top.simulator)
        finally:
            print(top.logs_tail())  # shown when a test of the module failed


@pytest.fixture(scope="module", params=["embedded", "production"])
def desk(request, django_db_setup, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp(f"cloud-desk-{request.param}")
    start = embedded_cloud_desk if request.param == "embedded" else production_cloud_desk
    with start(log_dir) as running_desk:
        yield running_desk


def channels_as_the_processes_made_them(desk) -> None:
    """The two numbers as the desk's processes made them at start-up (the environment's Cloud
    API number, the default WaSender one), put back after each test's flush: the processes
    cache the channels' names for a few seconds, and the chip must show what they hold."""
    if desk.channel_rows is None:
        Channel.objects.get_or_create(
            key=DEFAULT_CHANNEL, defaults={"name": "WhatsApp", "from_env": True}
        )
        desk.channel_rows = list(Channel.objects.values())
        assert {row["key"] for row in desk.channel_rows} == {DEFAULT_CHANNEL, META}
        return
    for row in desk.channel_rows:
        fields = {k: v for k, v in row.items() if k not in ("id", "key")}
        Channel.objects.update_or_create(key=row["key"], defaults=fields)


@pytest.fixture
def agents(desk, transactional_db, browser):
    """Bob (agent 1) and Ana (agent 2), each in a browser of their own on their own web
    process."""
    defaults = desk.config()
    desk.reset()
    channels_as_the_processes_made_them(desk)
    AutomationSettings.objects.update_or_create(pk=1, defaults={"away_enabled": False})
    make_user("bob", "agent", first_name="Bob")
    make_user("ana", "agent", first_name="Ana")
    team = Team(desk, browser)
    yield team
    team.close()
    desk.reset()
    desk.knobs(**defaults)


class Team:
    def __init__(self, desk, browser):
        self.contexts = []
        self.bob = self._login(browser, desk.urls[0], "bob")
        self.ana = self._login(browser, desk.urls[1], "ana")

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


def a_customer_wrote(desk, text: str = "Hola, ¿me ayudan?", *, hours_ago: float = 0):
    desk.customer_writes(text, hours_ago=hours_ago)
    return wait_until(
        lambda: Conversation.objects.filter(customer__phone=PHONE, channel_id=META).first(),
        timeout=20,
        what=f"the conversation of {PHONE} on the Cloud API number stored",
    )


def thread(page):
    return page.locator("#thread-messages")


def line(page, text: str):
    return thread(page).locator(".msg-out", has=page.locator(".msg-body", has_text=text))


def replies() -> list[Message]:
    return list(
        Message.objects.filter(direction="out", agent__username="bob").order_by("created_at", "id")
    )


def assert_one_line_per_message(page, messages) -> None:
    for message in messages:
        expect(page.locator(f"[id='msg-{message.pk}']")).to_have_count(1)
        expect(page.locator(f"#msg-{message.pk}")).to_be_visible()
    expect(page.locator("#thread-messages .msg-pending")).to_have_count(0)
    expect(page.locator("#live-staging > *")).to_have_count(0)


def meta_name() -> str:
    return Channel.objects.get(key=META).name


# --- a customer writes to the Cloud API number --------------------------------------------------


def test_a_customer_writing_to_the_cloud_api_number_shows_with_its_chip_for_both_agents(
    desk, agents
):
    for page in agents.pages:
        page.goto(f"{page.url_base}/inbox/")
        socket_open(page)
    conversation = a_customer_wrote(desk, "Hola, quiero renovar Netflix")
    for page in agents.pages:
        row = page.locator(f"#conv-{conversation.pk}")
        expect(row).to_be_visible(timeout=LIVE)
        expect(row.locator(".conv-preview")).to_have_text("Hola, quiero renovar Netflix")
        expect(row.locator(".unread-count")).to_have_text("1")
        chip = row.locator(".channel-chip")
        expect(chip).to_be_visible()
        expect(chip).to_have_text(meta_name())
    for page in agents.pages:
        page.locator(f"#conv-{conversation.pk}").click()
        expect(thread(page).locator(".msg-in .msg-body")).to_have_text(
            ["Hola, quiero renovar Netflix"]
        )
        expect(page.locator("#thread-head .channel-chip")).to_have_text(meta_name())
        window = page.locator("#composer .window-state")
        expect(window).to_be_visible()
        expect(window).to_have_class(re.compile(r"\bopen\b"))
        expect(window).to_contain_text("Ventana de 24 h abierta hasta")


# --- replies with Enter ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({}, id="plain"),
        pytest.param({"out_of_order": 1.0, "duplicates": 0.5}, id="statuses-shuffled"),
    ],
)
def test_replies_typed_with_enter_show_at_once_and_reach_read_for_both_agents(desk, agents, knobs):
    conversation = a_customer_wrote(desk)
    desk.knobs(**knobs)
    agents.open(conversation.pk)
    bob = agents.bob
    texts = [f"Respuesta {n}: ya lo reviso" for n in range(1, 6)]
    area = bob.locator("#composer textarea")
    for text in texts:
        area.press_sequentially(text)
        area.press("Enter")
        expect(line(bob, text)).to_be_visible()  # at once, in the sender's own thread
    expect(area).to_have_value("")

    for page in agents.pages:
        expect(thread(page).locator(".msg-out .msg-body")).to_have_text(texts, timeout=LIVE)
        for text in texts:
            tick = line(page, text).locator(".tick")
            expect(tick).to_have_attribute("data-status", "read", timeout=TICKS)
            expect(tick).to_have_class(re.compile(r"\btick-read\b"))
            expect(tick).to_be_visible()

    sent = replies()
    assert [m.body for m in sent] == texts
    assert {m.status for m in sent} == {"read"}
    assert all(m.wa_id and m.wa_id.startswith("wamid.") for m in sent)
    assert {m.conversation_id for m in sent} == {conversation.pk}
    assert desk.stats()["sends_by_recipient"] == {digits(PHONE): 5}
    assert desk.wasender_sends() == 0  # the reply left on the conversation's number
    for page in agents.pages:
        assert_one_line_per_message(page, sent)
        assert tick_problems(thread_log(page)) == []
    log = thread_log(bob)["lines"]
    assert all(entry["statuses"][0] == "queued" for entry in log.values()), log


def test_a_reply_whose_answer_is_lost_after_meta_accepted_it_still_reaches_read_once(desk, agents):
    """Meta took the message and answered 500: the reply is never sent again; its status
    webhooks (the only evidence: Meta echoes none of our sends) settle it on the same line."""
    conversation = a_customer_wrote(desk)
    desk.knobs(accept_then_5xx=1.0)
    agents.open(conversation.pk)
    bob = agents.bob
    area = bob.locator("#composer textarea")
    area.press_sequentially("Listo, ya quedó activado")
    area.press("Enter")
    expect(line(bob, "Listo, ya quedó activado")).to_be_visible()
    for page in agents.pages:
        tick = line(page, "Listo, ya quedó activado").locator(".tick")
        expect(tick).to_have_attribute("data-status", "read", timeout=TICKS)
        expect(tick).to_have_class(re.compile(r"\btick-read\b"))
    stats = desk.stats()
    assert (stats["accepted_then_5xx"], stats["sends_by_recipient"]) == (1, {digits(PHONE): 1})
    [reply] = replies()
    assert reply.status == "read" and reply.wa_id.startswith("wamid.")
    for page in agents.pages:
        assert_one_line_per_message(page, [reply])
        assert tick_problems(thread_log(page)) == []


# --- the 24-hour window -----------------------------------------------------------------------


def test_with_the_window_closed_the_composer_offers_only_meta_templates(desk, agents):
    conversation = a_customer_wrote(desk, "¿Siguen atendiendo?", hours_ago=30)
    agents.open(conversation.pk)
    bob, ana = agents.pages
    for page in agents.pages:
        window = page.locator("#composer-template .window-state")
        expect(window).to_be_visible()
        expect(window).to_have_class(re.compile(r"\bclosed\b"))
        expect(window).to_contain_text(CLOSED)
        # No free text to type: only a template approved by Meta may go out, and this desk
        # has none linked, which the composer says in Spanish (the server refuses free text
        # too: tests/inbox/test_channels.py).
        expect(page.locator("#composer textarea")).to_have_count(0)
        expect(page.locator("#composer-template")).to_contain_text(NO_TEMPLATES)
    for page in agents.pages:
        expect(thread(page).locator(".msg-out")).to_have_count(0)
    assert not Message.objects.filter(direction="out").exists()

    # The customer writes again: the window opens, and a reply goes out.
    desk.customer_writes("Sí, aquí estoy")
    expect(thread(ana).locator(".msg-in .msg-body").last).to_have_text(
        "Sí, aquí estoy", timeout=LIVE
    )
    open_thread(bob, bob.url_base, conversation.pk)
    expect(bob.locator("#composer .window-state")).to_contain_text("Ventana de 24 h abierta")
    area = bob.locator("#composer textarea")
    area.press_sequentially("Perfecto, te ayudo")
    area.press("Enter")
    for page in agents.pages:
        tick = line(page, "Perfecto, te ayudo").locator(".tick")
        expect(tick).to_have_attribute("data-status", "read", timeout=TICKS)
    stats = desk.stats()
    assert stats["sends_by_recipient"] == {digits(PHONE): 1}
    assert stats["errors_by_code"] == {}
    assert [m.body for m in replies()] == ["Perfecto, te ayudo"]


# --- two numbers: a list filtered to one, an agent limited to one ------------------------------

TITLE = "Conversaciones · chatdesk"


def stored_on(channel: str, phone: str) -> Conversation:
    return wait_until(
        lambda: Conversation.objects.filter(customer__phone=phone, channel_id=channel).first(),
        timeout=20,
        what=f"the conversation of {phone} on {channel} stored",
    )


def badge(page):
    """The navigation's unread badge: the tab title's count, on every page."""
    return page.locator("#nav-unread .nav-badge-count")


def test_a_list_filtered_to_one_number_and_a_limited_agent_s_unread_count_follow_the_numbers(
    desk, agents
):
    """Bob works on both numbers and filters his list to WaSender's: a customer writing to the
    Cloud API number never shows in it, yet counts in his tab's unread total (what waits for
    him, not what the list shows). Ana works on the Cloud API number only: her tab counts the
    conversations waiting there, on the first render and on every live update."""
    users = get_user_model().objects
    bob_user, ana_user = users.get(username="bob"), users.get(username="ana")
    Channel.objects.get(key=DEFAULT_CHANNEL).agents.add(bob_user)
    Channel.objects.get(key=META).agents.add(bob_user, ana_user)
    wasender_name = Channel.objects.get(key=DEFAULT_CHANNEL).name
    desk.customer_writes_on_wasender("Hola por WhatsApp", phone="+593968196100", name="Pedro Ruiz")
    pedro = stored_on(DEFAULT_CHANNEL, "+593968196100")
    maria = a_customer_wrote(desk, "Hola, quiero renovar Netflix")
    bob, ana = agents.pages

    # Ana's first render: the one unread conversation on her number, Pedro's is not hers.
    ana.goto(f"{ana.url_base}/inbox/")
    socket_open(ana)
    expect(ana.locator(f"#conv-{maria.pk}")).to_be_visible()
    expect(ana.locator(f"#conv-{pedro.pk}")).to_have_count(0)
    expect(ana).to_have_title(f"(1) {TITLE}")
    expect(badge(ana)).to_have_text("1")

    # Bob sees both, and picks WaSender's number in the list's filter.
    bob.goto(f"{bob.url_base}/inbox/")
    socket_open(bob)
    expect(bob.locator(f"#conv-{maria.pk}")).to_be_visible()
    expect(bob).to_have_title(f"(2) {TITLE}")
    bob.get_by_role("combobox", name="Canal").select_option(label=wasender_name)
    expect(bob.locator(f"#conv-{maria.pk}")).to_have_count(0)
    expect(bob.locator(f"#conv-{pedro.pk}")).to_be_visible()

    # Lucía writes to the Cloud API number: in Ana's list and count; counted in Bob's tab, and
    # once his tab says so (the same frame carries the row's fate), not in his list.
    desk.customer_writes("¿Tienen Disney+?", name="Lucía Mera", phone="+593968196101")
    lucia = stored_on(META, "+593968196101")
    row = ana.locator(f"#conv-{lucia.pk}")
    expect(row).to_be_visible(timeout=LIVE)
    expect(row.locator(".unread-count")).to_have_text("1")
    expect(ana).to_have_title(f"(2) {TITLE}")
    expect(badge(ana)).to_have_text("2")
    expect(bob).to_have_title(f"(3) {TITLE}", timeout=LIVE)
    expect(badge(bob)).to_have_text("3")
    expect(bob.locator(f"#conv-{lucia.pk}")).to_have_count(0)
    expect(bob.locator("#conv-list .conv-row")).to_have_count(1)

    # Pedro writes again on WaSender's number: Bob's list and tab move; then María writes on
    # the Cloud API number, and Ana's tab, updated in the same frame as María's row, still
    # counts her number's two conversations only.
    desk.customer_writes_on_wasender("¿Me responden?", phone="+593968196100", name="Pedro Ruiz")
    expect(bob.locator(f"#conv-{pedro.pk} .conv-preview")).to_have_text(
        "¿Me responden?", timeout=LIVE
    )
    expect(bob).to_have_title(f"(3) {TITLE}")
    desk.customer_writes("¿Siguen ahí?")
    expect(ana.locator(f"#conv-{maria.pk} .conv-preview")).to_have_text(
        "¿Siguen ahí?", timeout=LIVE
    )
    expect(ana).to_have_title(f"(2) {TITLE}")
    expect(badge(ana)).to_have_text("2")
    expect(ana.locator(f"#conv-{pedro.pk}")).to_have_count(0)
