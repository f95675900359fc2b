"""The inbox pages: who may open them, the list, a thread, the actions, the composer."""

import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from inbox import channels
from inbox.live import STATUS_RANK
from inbox.models import Channel, Conversation, Message, Note
from outbound.models import MessageTemplate
from tests.conftest import make_user
from tests.inbox_live.conftest import HOSTILE, conversation_with, message_in

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def row_ids(response) -> list[str]:
    return re.findall(r'id="conv-(\d+)"', response.content.decode())


# --- access ---------------------------------------------------------------------------------


def test_it_forbids_users_without_a_support_role(client_for, charlie, carla, carlos):
    for user in (charlie, carla):
        client = client_for(user)
        assert client.get("/inbox/").status_code == 403
        assert client.get(f"/inbox/c/{carlos.pk}/").status_code == 403
        assert client.post(f"/inbox/c/{carlos.pk}/resolve/").status_code == 403
    carlos.refresh_from_db()
    assert carlos.status == "new"


def test_it_sends_anonymous_visitors_to_the_login(client, carlos):
    response = client.get("/inbox/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- the list -------------------------------------------------------------------------------


def test_it_lists_conversations_newest_first_with_badge_unread_and_assignee(client_for, bob):
    old = conversation_with(
        "+593968000001",
        "Ana López",
        text="gracias",
        minutes_ago=30,
        status="answered",
        assignee=bob,
    )
    new = conversation_with("+593968000002", "Luis Torres", text="¿precio?", unread_count=2)
    html = client_for(bob).get("/inbox/").content.decode()
    assert html.index(f'id="conv-{new.pk}"') < html.index(f'id="conv-{old.pk}"')
    assert "🔴 Nuevo" in html and "🟡 Respondido" in html
    assert '<span class="unread-count"' in html
    assert "→ Bob" in html
    assert "¿precio?" in html


def test_it_filters_by_state_mine_and_unassigned(client_for, bob, alice):
    new = conversation_with("+593968000001", "A", status="new")
    answered = conversation_with("+593968000002", "B", status="answered", assignee=bob)
    resolved = conversation_with("+593968000003", "C", status="resolved", assignee=alice)
    client = client_for(bob)
    expect = {
        "all": {new, answered, resolved},
        "new": {new},
        "answered": {answered},
        "resolved": {resolved},
        "mine": {answered},
        "unassigned": {new},
    }
    for view, conversations in expect.items():
        response = client.get(f"/inbox/list/?view={view}", **HTMX)
        assert set(row_ids(response)) == {str(c.pk) for c in conversations}, view


def test_it_searches_by_name_phone_in_any_format_and_message_text(client_for, bob):
    carlos = conversation_with("+593968196046", "Carlos Pérez", text="hola")
    ana = conversation_with("+593991234567", "Ana López", text="hola")
    message_in(ana, "mi cuenta de Disney no funciona")
    client = client_for(bob)
    for q, who in [
        ("carlos", carlos),
        ("0968196046", carlos),
        ("+593 96 819 6046", carlos),
        ("593968196046", carlos),
        ("99123", ana),
        ("disney", ana),
    ]:
        assert row_ids(client.get("/inbox/list/", {"q": q}, **HTMX)) == [str(who.pk)], q


def test_it_pages_the_list_with_a_keyset_cursor(client_for, bob):
    same_time = timezone.now()
    conversations = [
        conversation_with(f"+5939680000{i:02d}", f"Cliente {i}", minutes_ago=i) for i in range(35)
    ]
    # Ties on last_message_at are broken by id, so no row is skipped or shown twice.
    Conversation.objects.filter(pk__in=[c.pk for c in conversations[:10]]).update(
        last_message_at=same_time
    )
    client = client_for(bob)
    first = client.get("/inbox/")
    seen = row_ids(first)
    assert len(seen) == 30
    html = first.content.decode()
    after = html.split("after=", 1)[1].split('"', 1)[0]
    second = client.get(f"/inbox/list/?view=all&q=&after={after}", **HTMX)
    seen += row_ids(second)
    assert sorted(seen) == sorted(str(c.pk) for c in conversations)
    assert "Cargar más" not in second.content.decode()


def test_it_escapes_customer_text_in_the_list(client_for, bob):
    conversation_with("+593968196046", HOSTILE, text=HOSTILE)
    html = client_for(bob).get("/inbox/").content.decode()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# --- a thread -------------------------------------------------------------------------------


def test_it_opens_a_thread_by_path_or_query_and_marks_it_read(client_for, bob, carlos):
    Conversation.objects.filter(pk=carlos.pk).update(unread_count=3)
    client = client_for(bob)
    for url in (f"/inbox/c/{carlos.pk}/", f"/inbox/?conversation={carlos.pk}"):
        html = client.get(url).content.decode()
        assert f'data-conversation-id="{carlos.pk}"' in html
        assert "Quiero renovar Netflix" in html
    carlos.refresh_from_db()
    assert carlos.unread_count == 0


def test_it_answers_htmx_with_the_thread_partial_only(client_for, bob, carlos):
    html = client_for(bob).get(f"/inbox/c/{carlos.pk}/", **HTMX).content.decode()
    assert 'id="thread"' in html and 'id="customer-panel"' in html
    assert "<html" not in html and 'id="conv-list"' not in html


def test_it_shows_author_ticks_failure_and_quote_per_line(client_for, bob, carlos):
    agent = make_user("ana", "agent", first_name="Ana", last_name="Ruiz")
    first = carlos.messages.get()
    for status, author in [
        ("queued", "agent"),
        ("sent", "bot"),
        ("delivered", "campaign"),
        ("read", "reminder"),
        ("sent", "phone"),
    ]:
        Message.objects.create(
            conversation=carlos,
            direction="out",
            author_kind=author,
            agent=agent if author == "agent" else None,
            body=f"{status} line",
            status=status,
            reply_to=first,
        )
    Message.objects.create(
        conversation=carlos,
        direction="out",
        author_kind="agent",
        agent=agent,
        body="falló",
        status="failed",
        failure_reason="Número no existe",
    )
    html = client_for(bob).get(f"/inbox/c/{carlos.pk}/").content.decode()
    for text in [
        "Carlos Pérez",
        "Ana Ruiz",
        "Bot",
        "Campaña",
        "Recordatorio",
        "desde el teléfono",
        "🕓",
        "✓✓",
        "tick-read",
        "⚠ Número no existe",
        "Reintentar",
        '<blockquote class="quote">',
    ]:
        assert text in html, text


# Queries for the open conversation's page. Who works on which numbers is read once per
# request (1 query, 3 for an agent limited to some numbers), not once per question asked (the
# thread's check, the list, the unread count: 24 and 30 queries before).
@pytest.mark.parametrize("limited, queries", [(False, 22), (True, 24)], ids=["all", "limited"])
def test_it_shows_a_page_of_quoted_lines_without_a_query_per_line(
    client_for, bob, carlos, django_assert_max_num_queries, limited, queries
):
    channels.labels_forget()  # the chips' labels are read again: the same count in any order
    if limited:
        Channel.objects.create(key="soporte", name="Soporte").agents.add(bob)
        Conversation.objects.filter(pk=carlos.pk).update(channel_id="soporte")
    agent = make_user("ana", "agent", first_name="Ana", last_name="Ruiz")
    first = carlos.messages.get()
    for i in range(20):
        question = message_in(carlos, f"pregunta {i}", minutes_ago=60 - 2 * i)
        Message.objects.create(
            conversation=carlos,
            direction="out",
            author_kind="agent",
            agent=agent,
            body=f"respuesta {i}",
            status="read",
            reply_to=question if i % 2 else first,
            created_at=question.created_at + timedelta(seconds=30),
        )
    client = client_for(bob)
    with django_assert_max_num_queries(queries):
        html = client.get(f"/inbox/c/{carlos.pk}/").content.decode()
    channels.labels_forget()
    quotes = re.findall(r'<blockquote class="quote"><strong>([^<]*)</strong> ([^<]*)<', html)
    assert len(quotes) == 20
    assert ("Carlos Pérez", "Quiero renovar Netflix") in quotes
    assert ("Carlos Pérez", "pregunta 19") in quotes


def test_it_pages_older_messages_with_a_keyset_cursor(client_for, bob, carlos):
    for i in range(60):
        message_in(carlos, f"mensaje {i}", minutes_ago=100 - i)
    client = client_for(bob)
    html = client.get(f"/inbox/c/{carlos.pk}/").content.decode()
    assert "mensaje 59" in html and "mensaje 5<" not in html
    before = html.split("before=", 1)[1].split('"', 1)[0]
    older = client.get(f"/inbox/c/{carlos.pk}/messages/?before={before}", **HTMX)
    text = older.content.decode()
    assert "mensaje 0<" in text and "mensaje 59" not in text
    assert text.count('class="msg ') == 21


def test_it_escapes_customer_text_in_the_thread_and_panel(client_for, bob):
    conversation = conversation_with("+593968196046", HOSTILE, text=HOSTILE)
    Note.objects.create(customer=conversation.customer, author=bob, body=HOSTILE)
    html = client_for(bob).get(f"/inbox/c/{conversation.pk}/").content.decode()
    assert HOSTILE not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 3


def test_it_serves_media_only_to_agents_and_never_inline_for_unsafe_types(
    client_for, bob, carla, carlos, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    image = Message(
        conversation=carlos,
        direction="in",
        author_kind="customer",
        kind="image",
        status="received",
        media_mime="image/png",
        media_filename="foto.png",
    )
    image.media_file.save("foto.png", ContentFile(b"\x89PNG fake"), save=True)
    svg = Message(
        conversation=carlos,
        direction="in",
        author_kind="customer",
        kind="document",
        status="received",
        media_mime="image/svg+xml",
        media_filename="x.svg",
    )
    svg.media_file.save("x.svg", ContentFile(b"<svg onload=alert(1)>"), save=True)
    assert client_for(carla).get(f"/inbox/m/{image.pk}/media/").status_code == 403
    client = client_for(bob)
    shown = client.get(f"/inbox/m/{image.pk}/media/")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    downloaded = client.get(f"/inbox/m/{svg.pk}/media/")
    assert downloaded["Content-Type"] == "application/octet-stream"
    assert downloaded["Content-Disposition"].startswith("attachment")
    html = client.get(f"/inbox/c/{carlos.pk}/").content.decode()
    assert f'<img src="/inbox/m/{image.pk}/media/"' in html


# --- actions ----------------------------------------------------------------------------------


def test_it_assigns_resolves_reopens_and_marks_urgent(client_for, bob, alice, carlos):
    client = client_for(bob)
    base = f"/inbox/c/{carlos.pk}"
    client.post(f"{base}/assign/", {"assignee": "me"}, **HTMX)
    carlos.refresh_from_db()
    assert carlos.assignee == bob
    response = client.post(f"{base}/assign/", {"assignee": str(alice.pk)}, **HTMX)
    assert "Asignada a Alice" in response.content.decode()
    client.post(f"{base}/resolve/", **HTMX)
    carlos.refresh_from_db()
    assert (carlos.status, carlos.assignee) == ("resolved", alice)
    response = client.post(f"{base}/reopen/")
    assert response.status_code == 302
    carlos.refresh_from_db()
    assert carlos.status == "new"
    client.post(f"{base}/urgent/", {"urgent": "1"}, **HTMX)
    carlos.refresh_from_db()
    assert carlos.urgent is True
    client.post(f"{base}/assign/", {"assignee": "none"}, **HTMX)
    carlos.refresh_from_db()
    assert carlos.assignee is None


def test_it_refuses_to_assign_to_someone_without_a_support_role(client_for, bob, carla, carlos):
    response = client_for(bob).post(f"/inbox/c/{carlos.pk}/assign/", {"assignee": carla.pk})
    assert response.status_code == 404
    carlos.refresh_from_db()
    assert carlos.assignee is None


def test_it_adds_a_note_only_agents_see(client_for, bob, carlos):
    response = client_for(bob).post(
        f"/inbox/c/{carlos.pk}/notes/", {"body": "Paga por transferencia"}, **HTMX
    )
    assert "Paga por transferencia" in response.content.decode()
    note = Note.objects.get()
    assert (note.customer, note.author) == (carlos.customer, bob)


# --- the composer -----------------------------------------------------------------------------


def test_it_sends_a_reply_as_the_agent_and_marks_the_conversation_answered(client_for, bob, carlos):
    Conversation.objects.filter(pk=carlos.pk).update(unread_count=2)
    first = carlos.messages.get()
    response = client_for(bob).post(
        f"/inbox/c/{carlos.pk}/reply/", {"text": "Claro, te ayudo", "reply_to": first.pk}, **HTMX
    )
    assert response.status_code == 200
    reply = Message.objects.get(direction="out")
    assert (reply.author_kind, reply.agent, reply.body, reply.status, reply.reply_to) == (
        "agent",
        bob,
        "Claro, te ayudo",
        "queued",
        first,
    )
    carlos.refresh_from_db()
    assert (carlos.status, carlos.unread_count) == ("answered", 0)
    assert f'id="msg-{reply.pk}"' in response.content.decode()


def test_it_answers_a_reply_with_a_placement_op_carrying_the_pages_reference(
    client_for, bob, carlos
):
    """The answer travels like the socket's copies (docs/live.md): a .live-op the page places
    at once, never a bare line in the hidden #live-staging (where it once stayed, hidden)."""
    ref = "3f2b8c1e-5a6d-4e7f-9a0b-1c2d3e4f5a6b"
    response = client_for(bob).post(
        f"/inbox/c/{carlos.pk}/reply/", {"text": "Listo", "client_ref": ref}, **HTMX
    )
    reply = Message.objects.get(direction="out")
    html = response.content.decode()
    assert html.startswith('<div id="live-staging" hx-swap-oob="beforeend">')
    assert re.search(rf'<div class="live-op" data-op="upsert">\s*<div id="msg-{reply.pk}"', html)
    assert f'data-ref="{ref}"' in html and f'data-rank="{STATUS_RANK["queued"]}"' in html
    assert f'data-conversation="{carlos.pk}"' in html
    # The composer is not in the answer: the agent may already be typing the next reply.
    assert 'id="composer"' not in html


def test_a_thread_fetched_while_a_reply_is_recent_gives_its_line_the_reference(
    client_for, bob, carlos
):
    """A resync can fetch the thread before the reply's answer reaches the sender's page: the
    line must say which optimistic line it is, or the page would show the reply twice."""
    ref = "7c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
    client = client_for(bob)
    client.post(f"/inbox/c/{carlos.pk}/reply/", {"text": "Ya va", "client_ref": ref}, **HTMX)
    reply = Message.objects.get(direction="out")
    html = client.get(f"/inbox/c/{carlos.pk}/messages/", **HTMX).content.decode()
    assert re.search(rf'<div id="msg-{reply.pk}"[^>]*data-ref="{ref}"', html)
    first = carlos.messages.get(direction="in")
    assert not re.search(rf'<div id="msg-{first.pk}"[^>]*data-ref=', html)


def test_it_ignores_a_reference_that_is_not_a_plain_token(client_for, bob, carlos):
    response = client_for(bob).post(
        f"/inbox/c/{carlos.pk}/reply/", {"text": "Hola", "client_ref": '"><b>x</b>'}, **HTMX
    )
    assert response.status_code == 200
    assert "data-ref" not in response.content.decode()


def test_it_refuses_an_empty_reply_with_a_reason(client_for, bob, carlos):
    response = client_for(bob).post(f"/inbox/c/{carlos.pk}/reply/", {"text": "  "}, **HTMX)
    assert response.status_code == 422
    assert "Escribe un mensaje" in response.content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_it_schedules_a_reply_and_cancels_it(client_for, bob, carlos):
    client = client_for(bob)
    later = timezone.localtime() + timedelta(days=1)
    client.post(
        f"/inbox/c/{carlos.pk}/reply/",
        {"text": "Te recuerdo mañana", "scheduled_for": later.strftime("%Y-%m-%dT%H:%M")},
        **HTMX,
    )
    scheduled = Message.objects.get(direction="out")
    assert scheduled.status == "scheduled"
    assert abs(scheduled.scheduled_for - later) < timedelta(minutes=1)
    carlos.refresh_from_db()
    assert carlos.status == "new"  # nothing was said to the customer yet
    html = client.get(f"/inbox/c/{carlos.pk}/").content.decode()
    assert "Programado para" in html
    client.post(f"/inbox/m/{scheduled.pk}/cancel/", **HTMX)
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled"


def test_it_refuses_to_schedule_in_the_past(client_for, bob, carlos):
    earlier = timezone.localtime() - timedelta(hours=1)
    response = client_for(bob).post(
        f"/inbox/c/{carlos.pk}/reply/",
        {"text": "x", "scheduled_for": earlier.strftime("%Y-%m-%dT%H:%M")},
        **HTMX,
    )
    assert response.status_code == 422
    assert not Message.objects.filter(direction="out").exists()


def test_it_retries_a_failed_message_as_a_fresh_copy(client_for, bob, carlos):
    failed = Message.objects.create(
        conversation=carlos,
        direction="out",
        author_kind="agent",
        agent=bob,
        body="¿Sigues ahí?",
        status="failed",
        failure_reason="timeout",
    )
    client_for(bob).post(f"/inbox/m/{failed.pk}/retry/", **HTMX)
    copy = Message.objects.exclude(pk=failed.pk).get(direction="out")
    assert (copy.body, copy.status, copy.agent) == ("¿Sigues ahí?", "queued", bob)
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_it_sends_one_copy_when_retry_is_clicked_twice(client_for, bob, carlos):
    failed = Message.objects.create(
        conversation=carlos,
        direction="out",
        author_kind="agent",
        agent=bob,
        body="¿Sigues ahí?",
        status="failed",
    )
    client = client_for(bob)
    first = client.post(f"/inbox/m/{failed.pk}/retry/", **HTMX).content.decode()
    client.post(f"/inbox/m/{failed.pk}/retry/", **HTMX)
    assert Message.objects.exclude(pk=failed.pk).filter(direction="out").count() == 1
    # The failed line comes back without its button: it was sent again.
    assert f'id="msg-{failed.pk}"' in first and "Enviado otra vez" in first
    assert "Reintentar" not in first


def test_it_resends_an_unknown_message_only_when_the_agent_accepts_a_duplicate(
    client_for, bob, carlos
):
    unknown = Message.objects.create(
        conversation=carlos,
        direction="out",
        author_kind="agent",
        agent=bob,
        body="Tu clave es 1234",
        status="unknown",
        failure_reason="Estado desconocido: WhatsApp no confirmó el envío en 10 min.",
    )
    client = client_for(bob)
    line = client.get(f"/inbox/c/{carlos.pk}/").content.decode()
    assert "podría recibirlo dos veces" in line and 'name="confirm_duplicate"' in line
    client.post(f"/inbox/m/{unknown.pk}/retry/", **HTMX)
    assert Message.objects.filter(direction="out").count() == 1
    client.post(f"/inbox/m/{unknown.pk}/retry/", {"confirm_duplicate": "1"}, **HTMX)
    client.post(f"/inbox/m/{unknown.pk}/retry/", {"confirm_duplicate": "1"}, **HTMX)
    copy = Message.objects.exclude(pk=unknown.pk).get(direction="out")
    assert (copy.body, copy.status) == ("Tu clave es 1234", "queued")


def test_it_fills_a_template_from_the_customer(client_for, bob, carlos):
    template = MessageTemplate.objects.create(
        name="Saludo", category="support", body="Hola {nombre}, ¿en qué te ayudo?"
    )
    response = client_for(bob).get(
        f"/inbox/c/{carlos.pk}/template/", {"template": template.pk}, **HTMX
    )
    assert "Hola Carlos, ¿en qué te ayudo?" in response.content.decode()


def test_it_leaves_a_template_editable_when_a_value_is_missing(client_for, bob, carlos):
    template = MessageTemplate.objects.create(
        name="Vence", category="notification", body="Tu {servicio} vence pronto"
    )
    html = (
        client_for(bob)
        .get(f"/inbox/c/{carlos.pk}/template/", {"template": template.pk}, **HTMX)
        .content.decode()
    )
    assert "Tu {servicio} vence pronto" in html
    assert "Completa a mano" in html


@pytest.mark.parametrize(
    "query",
    [
        "?after=1000000000000000000_1",
        "?conversation=99999999999999999999999",
        "?conversation=abc",
    ],
)
def test_it_answers_hand_made_urls_without_a_server_error(client_for, bob, query):
    response = client_for(bob).get("/inbox/" + query)
    assert response.status_code in (200, 404)


def test_it_ignores_a_template_id_that_is_not_a_number(client_for, bob, carlos):
    response = client_for(bob).get(f"/inbox/c/{carlos.pk}/template/", {"template": "abc"}, **HTMX)
    assert response.status_code < 500
