"""bulk_insert (COPY on PostgreSQL, bulk_create elsewhere) writes the rows bulk_create would:
every column, defaults filled in, ids set on the objects in order, values shared by all rows
and values that differ alike."""

from datetime import timedelta

from django.utils import timezone

from chatdesk.bulk import bulk_insert
from customers.models import Customer
from inbox.models import Conversation, Message


def _conversation(phone: str) -> Conversation:
    return Conversation.objects.create(customer=Customer.objects.create(name="Ana", phone=phone))


def test_it_writes_every_row_with_its_own_and_its_shared_values_and_sets_the_ids(db):
    first, second = _conversation("+593968196046"), _conversation("+593968196047")
    at = timezone.now() - timedelta(minutes=5)
    objs = [
        Message(
            conversation=first if n % 2 else second,
            direction="out",
            author_kind="campaign",
            body=f"Hola <b>{n}</b> 'ñ' \\ \t tab",
            status="queued",
            created_at=at,
            media_source={"n": n} if n == 2 else None,
        )
        for n in range(5)
    ]
    returned = bulk_insert(Message, objs)
    assert returned == objs
    assert all(m.pk and not m._state.adding for m in objs)
    assert len({m.pk for m in objs}) == 5
    rows = {m.pk: m for m in Message.objects.filter(pk__in=[m.pk for m in objs])}
    for n, obj in enumerate(objs):
        row = rows[obj.pk]
        assert row.body == f"Hola <b>{n}</b> 'ñ' \\ \t tab"
        assert row.conversation_id == (first if n % 2 else second).pk
        assert (row.direction, row.author_kind, row.status) == ("out", "campaign", "queued")
        assert row.created_at == at
        assert row.media_source == ({"n": 2} if n == 2 else None)
        assert (row.kind, row.attempts, row.wa_id, row.media_file.name) == ("text", 0, None, "")


def test_the_next_row_saved_the_usual_way_gets_a_fresh_id(db):
    conversation = _conversation("+593968196046")
    fields = {"conversation": conversation, "direction": "out", "author_kind": "agent"}
    objs = bulk_insert(Message, [Message(**fields, status="queued")])
    later = Message.objects.create(**fields, status="queued")
    assert later.pk > objs[0].pk
    assert Message.objects.count() == 2


def test_an_empty_list_writes_nothing(db):
    assert bulk_insert(Message, []) == []
    assert Message.objects.count() == 0
