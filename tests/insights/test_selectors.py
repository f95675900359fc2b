"""Every figure against sums done by hand over the fixed data set in conftest.py."""

from datetime import timedelta

from customers.models import Customer
from inbox.models import Conversation
from insights import selectors
from insights.selectors import Period
from outbound.segments import segment_count
from tests.insights.conftest import D1, D, at, days_ago, inbound, out


def _by_day(rows):
    return {row["day"]: row for row in rows}


def test_it_counts_each_day_in_guayaquil_time(world):
    rows = _by_day(selectors.daily_metrics(Period(D, D1)))
    # D: m1 and m2 (23:30 local, D1 in UTC) sent; m1 delivered; m1 read; the 23:45 customer
    # message; m3 failed; conversation A created.
    assert {k: rows[D][k] for k in selectors.FIGURES} == {
        "sent": 2,
        "delivered": 1,
        "read": 1,
        "replies": 1,
        "failed": 1,
        "new_conversations": 1,
    }
    # D1: m6 sent; m2 (read, never delivered: counts at its read time) and m6 delivered.
    assert {k: rows[D1][k] for k in selectors.FIGURES} == {
        "sent": 1,
        "delivered": 2,
        "read": 1,
        "replies": 1,
        "failed": 0,
        "new_conversations": 1,
    }


def test_it_computes_the_open_rate_over_the_days_sends(world):
    rows = _by_day(selectors.daily_metrics(Period(D, D1)))
    assert rows[D]["open_rate"] == 100  # m1 and m2, both read
    assert rows[D1]["open_rate"] == 0  # m6 not read
    assert selectors.totals(list(rows.values()))["open_rate"] == 67  # 2 of 3


def test_it_answers_none_for_an_empty_day(world):
    row = selectors.daily_metrics(Period(D - timedelta(days=1), D - timedelta(days=1)))[0]
    assert row["sent"] == 0 and row["open_rate"] is None


def test_it_compares_today_with_yesterday_at_the_same_time(world):
    figures = selectors.today_figures(now=at(D1, 12))["figures"]
    values = {k: (f["value"], f["yesterday"]) for k, f in figures.items()}
    # Yesterday until 12:00: m1 sent, delivered, read; m3 failed at 12:01 is later.
    assert values == {
        "sent": (1, 1),
        "delivered": (2, 1),
        "read": (1, 1),
        "replies": (1, 0),
        "failed": (0, 0),
        "new_conversations": (1, 1),
        "open_rate": (0, 100),
    }
    assert figures["delivered"]["change"] == {"pct": 100, "direction": "up"}
    assert figures["open_rate"]["change"] == {"pct": 100, "direction": "down"}
    assert figures["sent"]["change"] == {"pct": 0, "direction": "flat"}
    assert figures["replies"]["change"] == {"pct": None, "direction": "up"}


def test_it_places_replies_and_read_rates_on_the_local_weekday_and_hour(world):
    grids = selectors.heatmaps(Period(D, D1))
    assert grids["replies"][0][23] == 1  # Monday 23:45
    assert grids["replies"][1][0] == 1  # Tuesday 00:10
    assert sum(map(sum, grids["replies"])) == 2
    assert grids["rate"][0][9] == 100 and grids["rate"][0][23] == 100
    assert grids["rate"][1][10] == 0
    names = [s["name"] for s in selectors.best_slots(grids["replies"])]
    assert names == ["lunes 23:00-00:00", "martes 00:00-01:00"]


def test_it_names_a_slot_in_words():
    assert selectors.slot_name(1, 19) == "martes 19:00-20:00"


def test_it_counts_active_subscriptions_and_renewal_revenue(world):
    rows = selectors.popular_services(Period(D, D1))
    assert [(r["service"], r["active"], r["renewals"], str(r["revenue"])) for r in rows] == [
        ("Netflix", 1, 1, "12.99")
    ]


def test_it_follows_reminders_to_reads_replies_and_renewals(world):
    funnel = selectors.reminder_funnel(Period(D, D1), within_days=7)
    assert funnel["total"]["reminded"] == 1
    assert (funnel["total"]["read"], funnel["total"]["replied"], funnel["total"]["renewed"]) == (
        1,
        1,
        1,
    )
    assert [r["name"] for r in funnel["rules"]] == ["3 días antes"]
    assert [r["name"] for r in funnel["services"]] == ["Netflix"]


def test_it_compares_campaigns(world):
    (row,) = selectors.campaign_comparison(Period(D, D1))
    # Ana: m2 sent, read, answered at 23:45, renewal was before the send. Beto: m6 sent, not
    # read, opted out an hour later.
    assert {
        k: row[k]
        for k in (
            "recipients",
            "sent",
            "read",
            "replied",
            "renewed",
            "failed",
            "opt_outs",
            "open_rate",
            "reply_rate",
            "conversion_rate",
        )
    } == {
        "recipients": 2,
        "sent": 2,
        "read": 1,
        "replied": 1,
        "renewed": 0,
        "failed": 0,
        "opt_outs": 1,
        "open_rate": 50,
        "reply_rate": 50,
        "conversion_rate": 0,
    }


def test_it_measures_agents(world, bob):
    (row,) = selectors.agent_stats(Period(D, D1))
    assert row["agent"] == "Bob" and row["handled"] == 1
    # The turn that starts at 23:45 (the previous message was ours) is answered at 00:20.
    assert row["turns"] == 1 and row["first_response"] == timedelta(minutes=35)
    assert row["resolved"] == 1 and row["resolution"] == timedelta(minutes=35)


def test_it_counts_waiting_conversations_and_the_oldest_wait(world):
    world["conv_b"].last_message_at = at(D1, 10)
    world["conv_b"].save()
    waiting = selectors.waiting_conversations(now=at(D1, 12))
    assert waiting["count"] == 1 and waiting["oldest_wait"] == timedelta(hours=2)


def test_it_leaves_old_data_out_of_the_reply_habits(world):
    # outbound.segments decides; the data set is older than its 90 days: nobody is counted.
    assert [g["customers"] for g in selectors.behaviour_groups()] == [0, 0, 0]


def _chat(name: str, phone: str) -> Conversation:
    customer = Customer.objects.create(name=name, phone=phone)
    return Conversation.objects.create(customer=customer, created_at=days_ago(200))


def test_it_groups_customers_by_reply_habit_as_the_segments_do(db):
    fast = _chat("Fer", "+593990000011")
    out(fast, days_ago(10), status="delivered")
    inbound(fast, days_ago(10) + timedelta(minutes=10))
    slow = _chat("Sol", "+593990000012")
    out(slow, days_ago(5), status="read")
    inbound(slow, days_ago(5) + timedelta(hours=3))
    # The message answered is older than the 90-day window: the reply still counts (6 days).
    late = _chat("Leo", "+593990000013")
    out(late, days_ago(95), status="read")
    inbound(late, days_ago(89))
    # One fast and one slow reply: not more than half under the hour, so slow.
    mixed = _chat("Mia", "+593990000014")
    out(mixed, days_ago(20), status="read")
    inbound(mixed, days_ago(20) + timedelta(minutes=5))
    out(mixed, days_ago(8), status="sent")
    inbound(mixed, days_ago(8) + timedelta(hours=2))
    never = _chat("Noe", "+593990000015")
    out(never, days_ago(3), status="delivered")
    # A failed send asks nothing: the message after it is no reply, and Xavi is in no group.
    failed = _chat("Xavi", "+593990000016")
    out(failed, days_ago(3), status="failed")
    inbound(failed, days_ago(3) + timedelta(minutes=5))

    groups = {g["key"]: g["customers"] for g in selectors.behaviour_groups()}

    assert groups == {"fast": 1, "slow": 3, "never": 1}
    for key, count in groups.items():
        assert segment_count({"behaviour": key}, marketing=False) == (count, 0)


def test_it_pairs_turns_and_answers_across_the_periods_edges(db, alice, bob):
    chat = _chat("Ana", "+593990000021")
    # A turn that started the day before the period: its continuation is no new turn.
    inbound(chat, at(D - timedelta(days=1), 23))
    inbound(chat, at(D, 8))
    out(chat, at(D, 8, 30), status="read", agent=bob)
    # A turn in the period answered after it: credited to whoever answered.
    inbound(chat, at(D, 20))
    out(chat, at(D1, 9), status="read", agent=alice)

    rows = {row["agent"]: row for row in selectors.agent_stats(Period(D, D))}

    assert rows["Bob"]["handled"] == 1 and rows["Bob"]["turns"] == 0
    assert rows["Alice"]["handled"] == 0 and rows["Alice"]["turns"] == 1
    assert rows["Alice"]["first_response"] == timedelta(hours=13)


def test_it_rejects_reversed_and_too_long_ranges():
    import pytest

    with pytest.raises(selectors.PeriodError):
        selectors.period_make(D1, D)
    with pytest.raises(selectors.PeriodError):
        selectors.period_make(D - timedelta(days=400), D)
