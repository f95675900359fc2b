"""The agents' resolution time, from the resolutions agents recorded (inbox.Resolution)."""

from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from customers.models import Customer
from inbox import conversations
from inbox.models import Channel, Conversation, Resolution
from insights.selectors import Period
from insights.selectors.agents import agent_stats_count
from tests.insights.conftest import inbound

MILLISECOND = timedelta(milliseconds=1)


def _today() -> Period:
    today = timezone.localdate()
    return Period(today, today)


def _conversation(phone: str, assignee, **fields) -> Conversation:
    customer = Customer.objects.create(name=phone, phone=phone)
    return Conversation.objects.create(customer=customer, assignee=assignee, **fields)


def _by_agent(rows) -> dict[str, tuple]:
    return {row["agent"]: (row["resolved"], row["resolution"]) for row in rows}


def _opened_earlier(resolution: Resolution, minutes: int) -> timedelta:
    """Its customer wrote `minutes` earlier than the test did: resolutions that last minutes,
    each its own length, so a median, a swapped agent or the wrong number is off by minutes,
    not by the millisecond _agree forgives. Answers the shift."""
    shift = timedelta(minutes=minutes)
    Resolution.objects.filter(pk=resolution.pk).update(started_at=F("started_at") - shift)
    return shift


def _agree(found: dict[str, tuple], expected: dict[str, tuple]) -> bool:
    """The same agents and counts, and each median within a millisecond: SQLite's date
    arithmetic (julianday) resolves milliseconds."""
    return found.keys() == expected.keys() and all(
        found[k][0] == expected[k][0] and abs(found[k][1] - expected[k][1]) < MILLISECOND
        for k in expected
    )


def test_it_counts_each_resolution_from_the_customer_message_that_opened_it(db, bob):
    conversation = _conversation("+593990000001", bob)
    first = inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)
    conversations.conversation_reopen(conversation=conversation)
    second = inbound(conversation, timezone.now())
    inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)

    one, two = Resolution.objects.order_by("resolved_at")
    durations = [
        one.resolved_at - first.created_at + _opened_earlier(one, 40),
        two.resolved_at - second.created_at + _opened_earlier(two, 10),
    ]
    expected = {"Bob": (2, (durations[0] + durations[1]) / 2)}
    assert _agree(_by_agent(agent_stats_count(_today())), expected)


def test_it_credits_whoever_was_assigned_when_it_was_resolved(db, alice, bob):
    conversation = _conversation("+593990000001", bob)
    inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)
    conversations.conversation_reopen(conversation=conversation)
    conversations.conversation_assign(conversation=conversation, assignee=alice)
    inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)

    by_bob, by_alice = Resolution.objects.order_by("resolved_at")
    _opened_earlier(by_bob, 30)
    _opened_earlier(by_alice, 10)
    by_bob.refresh_from_db()
    by_alice.refresh_from_db()
    expected = {
        "Bob": (1, by_bob.resolved_at - by_bob.started_at),
        "Alice": (1, by_alice.resolved_at - by_alice.started_at),
    }
    assert _agree(_by_agent(agent_stats_count(_today())), expected)


def test_it_leaves_out_a_resolution_with_no_customer_message(db, bob):
    conversation = _conversation("+593990000001", bob)
    inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)
    conversations.conversation_reopen(conversation=conversation)
    conversations.conversation_resolve(conversation=conversation)  # nobody wrote in between

    assert Resolution.objects.count() == 2
    assert _by_agent(agent_stats_count(_today()))["Bob"][0] == 1


def test_it_filters_resolutions_by_number(db, bob):
    Channel.objects.create(key="soporte", name="Soporte")
    sales = _conversation("+593990000001", bob)
    support = _conversation("+593990000002", bob, channel_id="soporte")
    for conversation in (sales, support):
        inbound(conversation, timezone.now())
        conversations.conversation_resolve(conversation=conversation)

    on_support = Resolution.objects.get(channel_id="soporte")
    assert on_support.conversation_id == support.pk
    _opened_earlier(Resolution.objects.get(conversation=sales), 50)
    _opened_earlier(on_support, 20)
    on_support.refresh_from_db()
    expected = {"Bob": (1, on_support.resolved_at - on_support.started_at)}
    assert _agree(_by_agent(agent_stats_count(_today(), channel="soporte")), expected)
    assert _by_agent(agent_stats_count(_today()))["Bob"][0] == 2


def test_it_leaves_out_resolutions_outside_the_period(db, bob):
    conversation = _conversation("+593990000001", bob)
    inbound(conversation, timezone.now())
    conversations.conversation_resolve(conversation=conversation)
    yesterday = timezone.localdate() - timedelta(days=1)

    assert agent_stats_count(Period(yesterday, yesterday)) == []
