"""The rollups: folded days give the figures the raw rows give, folding twice changes nothing,
a late status lands on its own day (and moves its send day's open rate), and every figure can
be read on one WhatsApp number."""

from datetime import timedelta

import pytest

from inbox.models import Channel, Conversation, Message
from insights import selectors
from insights.models import Rollup
from insights.rollups import rollups_fold
from insights.selectors import Period
from tests.insights.conftest import D1, D, at, inbound, out

D3, D4 = D1 + timedelta(days=2), D1 + timedelta(days=3)


def _figures(period, channel=None):
    return {
        "daily": selectors.daily_metrics(period, channel=channel),
        "hours": selectors.heatmaps(period, channel=channel),
        "services": selectors.popular_services(period, today=D3),
        "funnel": selectors.reminder_funnel(period, channel=channel),
        "campaigns": selectors.campaign_comparison(period, channel=channel),
        "agents": selectors.agent_stats_count(period, channel=channel),
    }


def _rows():
    return sorted(Rollup.objects.values_list("kind", "day", "channel", "data"), key=str)


@pytest.fixture
def soporte(world, bob):
    """A second number: Beto writes to it and Bob answers him there."""
    Channel.objects.create(key="soporte", name="Soporte", provider="cloudapi", account="1")
    conv = Conversation.objects.create(
        customer=world["beto"], channel_id="soporte", created_at=at(D1, 14)
    )
    inbound(conv, at(D1, 14))
    out(conv, at(D1, 14, 5), status="read", agent=bob, sent_at=at(D1, 14, 5), read_at=at(D1, 15))
    return conv


def test_it_gives_the_same_figures_folded_as_counted_from_the_rows(world, soporte):
    period = Period(D, D1)
    counted = _figures(period)
    rollups_fold(now=at(D3, 12))
    assert Rollup.objects.filter(kind="daily", day=D).exists()
    assert _figures(period) == counted


def test_folding_twice_gives_the_same_rollups(world, soporte):
    rollups_fold(now=at(D3, 12))
    first = _rows()
    rollups_fold(now=at(D3, 12, 1))
    assert _rows() == first
    rollups_fold(now=at(D3, 12, 2), kinds=["daily"])
    assert _rows() == first


def test_a_late_read_counts_on_its_day_and_on_its_sends_open_rate(world):
    rollups_fold(now=at(D4, 12))  # D1 is settled: only the last two days are refolded anyway
    period = Period(D, D4)
    before = {r["day"]: r for r in selectors.daily_metrics(period)}
    assert before[D1]["sent_read"] == 0  # m6, sent on D1, not read yet
    # Three days later m6 is read (its status webhook arrives at 12:05 on D4).
    Message.objects.filter(status="delivered").update(status="read", read_at=at(D4, 12, 5))
    rollups_fold(now=at(D4, 12, 10))
    after = {r["day"]: r for r in selectors.daily_metrics(period)}
    assert after[D1]["sent_read"] == 1 and after[D1]["open_rate"] == 100  # D1 folded again
    assert after[D4]["read"] == before[D4]["read"] + 1  # today, counted live
    # The next day D4 is folded, and the read stays on it.
    rollups_fold(now=at(D4 + timedelta(days=1), 0, 5))
    assert Rollup.objects.get(kind="daily", day=D4, channel="default").data["read"] == 1
    assert {r["day"]: r for r in selectors.daily_metrics(period)} == after


def test_a_message_written_days_ago_and_stored_now_is_folded(world):
    rollups_fold(now=at(D4, 12))
    # A phone syncing a backlog: a customer message dated D, stored after D was folded.
    inbound(world["conv_a"], at(D, 20))
    rollups_fold(now=at(D4, 12, 1))
    assert {r["day"]: r for r in selectors.daily_metrics(Period(D, D))}[D]["replies"] == 2


def test_a_running_campaign_moves_with_each_fold(world):
    from outbound.models import Campaign, CampaignRecipient

    Campaign.objects.filter(pk=world["promo"].pk).update(state="running")
    rollups_fold(now=at(D + timedelta(days=30), 12))
    period = Period(D, D1)
    assert selectors.campaign_comparison(period)[0]["read"] == 1
    sent = CampaignRecipient.objects.filter(campaign=world["promo"]).values("message_id")
    Message.objects.filter(pk__in=sent).update(read_at=at(D1, 9))
    rollups_fold(now=at(D + timedelta(days=30), 12, 1))
    assert selectors.campaign_comparison(period)[0]["read"] == 2


def test_each_figure_can_be_read_on_one_number(world, soporte):
    period = Period(D, D1)
    for folded in (False, True):
        if folded:
            rollups_fold(now=at(D3, 12))
        days = {r["day"]: r for r in selectors.daily_metrics(period, channel="soporte")}
        assert days[D1]["sent"] == 1 and days[D1]["replies"] == 1
        assert days[D1]["new_conversations"] == 1 and days[D]["sent"] == 0
        every = {r["day"]: r for r in selectors.daily_metrics(period)}
        default = {r["day"]: r for r in selectors.daily_metrics(period, channel="default")}
        assert every[D1]["sent"] == default[D1]["sent"] + 1
        assert selectors.heatmaps(period, channel="soporte")["replies"][1][14] == 1
        assert selectors.campaign_comparison(period, channel="soporte") == []
        assert selectors.reminder_funnel(period, channel="soporte")["total"]["reminded"] == 0
        agents = selectors.agent_stats_count(period, channel="soporte")
        assert [(a["handled"], a["turns"]) for a in agents] == [(1, 1)]
    today = selectors.today_figures(now=at(D1, 16), channel="soporte")["figures"]
    assert today["sent"]["value"] == 1 and today["replies"]["value"] == 1
    assert selectors.waiting_conversations(channel="soporte")["count"] == 1


def test_the_behaviour_groups_come_from_the_latest_fold(world):
    from django.utils import timezone

    from insights.rollups import behaviour_fold

    behaviour_fold(now=timezone.now())
    assert selectors.behaviour_groups() == selectors.behaviour_groups_count()
    Rollup.objects.filter(kind="behaviour").update(data={"fast": 7, "slow": 0, "never": 0})
    assert selectors.behaviour_groups()[0]["customers"] == 7  # the fold's row, not a count


def test_a_resolution_recorded_for_a_folded_day_is_folded(world, bob):
    from inbox.models import Resolution

    rollups_fold(now=at(D4 + timedelta(days=5), 12))  # D is long settled
    period = Period(D, D)
    assert [a["resolved"] for a in selectors.agent_stats_count(period)] == [0]
    # Recorded now for D (an import, or a backfill): the next fold finds it by its id.
    Resolution.objects.create(
        conversation=world["conv_a"], assignee=bob, started_at=at(D, 9), resolved_at=at(D, 9, 42)
    )
    rollups_fold(now=at(D4 + timedelta(days=5), 12, 1))
    [bob_row] = selectors.agent_stats_count(period)
    assert (bob_row["resolved"], bob_row["resolution"]) == (1, timedelta(minutes=42))
    assert Rollup.objects.filter(kind="resolutions", day=D).exists()


def test_the_agents_rollups_keep_every_number_packed(world, soporte, bob):
    from insights.selectors.packed import SECONDS, unpacked

    rollups_fold(now=at(D3, 12))
    turns = Rollup.objects.filter(kind="turns").values_list("data", flat=True)
    # Bob answered Ana after 35 minutes (on the default number) and Beto after 5 (soporte).
    assert sorted(unpacked(turns, SECONDS)[bob.pk].tolist()) == [300, 2100]
    assert all(isinstance(p, str) for data in turns for ps in data.values() for p in ps)


def test_a_conversation_answered_on_several_days_is_handled_once(world, soporte, bob):
    # Bob answers Ana (conv_a) on D1 (the world's answer), D3 and D4, and Beto on D1.
    for day in (D3, D4):
        inbound(world["conv_a"], at(day, 9))
        out(world["conv_a"], at(day, 9, 10), status="read", agent=bob, sent_at=at(day, 9, 10))
    period = Period(D, D4)
    for folded in (False, True):
        if folded:
            rollups_fold(now=at(D4 + timedelta(days=1), 12))
        [row] = selectors.agent_stats_count(period)
        assert (row["handled"], row["turns"]) == (2, 4)
        # The median of 35 (Ana on D), 5 (Beto), 10 and 10 minutes; their mean would be 15.
        assert row["first_response"] == timedelta(minutes=10)
