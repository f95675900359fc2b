"""The navigation's unread badge, as the server renders it: on the inbox and on every other
page an agent opens, counting the conversations waiting on the numbers the agent works on,
hidden at 0, labelled in words (its live updates: test_channel_events.py)."""

import re

import pytest
from django.urls import reverse

from inbox import channels, context_processors
from inbox.models import DEFAULT_CHANNEL, Channel, Conversation
from tests.inbox_live.conftest import conversation_with

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
BADGE = re.compile(r'<span id="nav-unread"[^>]*>.*?</span></span>', re.S)


def badge(html: str) -> str:
    found = BADGE.findall(html)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def soporte(db):
    channels.labels_forget()
    Channel.objects.get_or_create(key=DEFAULT_CHANNEL, defaults={"name": "WhatsApp"})
    yield Channel.objects.create(key="soporte", name="Soporte")
    channels.labels_forget()


def unread_on(channel: str, phone: str, count: int = 2) -> Conversation:
    conversation = conversation_with(phone, unread_count=count)
    Conversation.objects.filter(pk=conversation.pk).update(channel_id=channel)
    return conversation


def test_it_counts_only_the_numbers_a_limited_agent_works_on_on_every_page(
    client_for, alice, bob, soporte
):
    unread_on(DEFAULT_CHANNEL, "+593968196001")
    unread_on("soporte", "+593968196002")
    unread_on("soporte", "+593968196003", count=1)
    conversation_with("+593968196004")  # read: not counted
    soporte.agents.add(bob)
    for user, count in [(bob, 2), (alice, 3)]:
        client = client_for(user)
        for url in (reverse("inbox:index"), reverse("customers:list"), reverse("home")):
            shown = badge(client.get(url).content.decode())
            assert f'data-count="{count}"' in shown and " hidden" not in shown, (user, url)
            assert f'<span class="nav-badge-count" aria-hidden="true">{count}</span>' in shown
            assert f'<span class="visually-hidden">{count} conversaciones sin leer</span>' in shown


def test_it_says_one_conversation_in_the_singular(client_for, bob):
    conversation_with("+593968196001", unread_count=5)
    shown = badge(client_for(bob).get(reverse("customers:list")).content.decode())
    assert ">1 conversación sin leer<" in shown


def test_it_is_hidden_at_zero_and_stays_as_the_target_of_live_updates(client_for, bob):
    conversation_with("+593968196001")
    shown = badge(client_for(bob).get(reverse("inbox:index")).content.decode())
    assert 'data-count="0" hidden>' in shown
    assert "sin leer" in shown  # its words are still there for when it shows


def test_opening_the_last_unread_conversation_hides_it_on_that_very_page(client_for, bob):
    """The count is taken after the view read the conversation, not before."""
    waiting = conversation_with("+593968196001", unread_count=1)
    html = client_for(bob).get(reverse("inbox:conversation", args=[waiting.pk])).content.decode()
    assert 'data-count="0" hidden>' in badge(html)


def test_a_list_refetch_brings_it_out_of_band(client_for, bob, soporte):
    unread_on("soporte", "+593968196002")
    unread_on(DEFAULT_CHANNEL, "+593968196001")
    soporte.agents.add(bob)
    listing = client_for(bob).get(reverse("inbox:list"), **HTMX).content.decode()
    assert 'data-count="1" hx-swap-oob="true">' in badge(listing)


def test_people_without_the_inbox_get_no_badge(client_for, carla):
    conversation_with("+593968196001", unread_count=1)
    html = client_for(carla).get(reverse("customers:list")).content.decode()
    assert 'id="nav-unread"' not in html


def test_its_label_is_escaped_whatever_the_translation_says(client_for, bob, monkeypatch):
    conversation_with("+593968196001", unread_count=1)
    monkeypatch.setattr(
        context_processors, "ngettext", lambda one, other, n: "<b>%(n)s</b> sin leer"
    )
    shown = badge(client_for(bob).get(reverse("customers:list")).content.decode())
    assert "&lt;b&gt;1&lt;/b&gt; sin leer" in shown and "<b>" not in shown
