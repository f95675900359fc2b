"""The demo is a living business on its first run (issue 15, requirement 3): campaigns in every
state, two completed ones with every step of their funnel, reminders with renewals after them,
a follow-up campaign, two variants with a winner, an imported CSV's report; every figure counted
from rows made through chatdesk's services. Run again another day, it keeps its rows and moves
its story to today.

Seeded at 15:00 today (Ecuador): segments count from the real date, so the demo's date must be
today's; 15:00 is inside every sending window, whatever the hour the suite runs at.
"""

from datetime import datetime, time, timedelta
from io import StringIO

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from customers.models import Customer, CustomerImport
from devdata.demo import GYE, demo_seed
from inbox.models import Message
from insights.selectors import campaigns_overview, period_make, reminder_funnel, today_figures
from outbound.campaigns import (
    campaign_failure_reasons,
    campaign_funnel,
    campaign_variant_funnels,
)
from outbound.models import Campaign, CampaignRecipient, ReminderRule
from outbound.reminders import reminder_stats
from tests.topology import none_exited
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
NOW = datetime.combine(TODAY, time(15, 0), tzinfo=GYE)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo():
    demo_seed(now=NOW)


def completed() -> list[Campaign]:
    return list(Campaign.objects.filter(state="completed", retarget_of=None).order_by("pk"))


def test_it_makes_campaigns_in_every_state(demo):
    states = set(Campaign.objects.values_list("state", flat=True))
    assert states == {"draft", "scheduled", "running", "paused", "completed", "cancelled"}
    panel = {c["title"]: c["state"] for c in campaigns_overview()}
    assert panel == {
        "Notificaciones vencimiento": "running",
        "Promoción Netflix": "scheduled",
        "Descuentos Black Friday": "paused",
    }


def test_it_gives_two_completed_campaigns_every_step_of_the_funnel(demo):
    assert len(completed()) == 2
    for campaign in completed():
        funnel = campaign_funnel(campaign=campaign)
        assert funnel["total"] == campaign.recipients_total > 10
        for step in ("sent", "delivered", "read", "replied", "renewed", "failed"):
            assert funnel[step] > 0, (campaign.title, step)
        reasons = campaign_failure_reasons(campaign=campaign)
        assert reasons and all(reason for _outcome, reason, _n in reasons)


def test_it_sends_the_running_campaign_at_each_customers_best_hour(demo):
    running = Campaign.objects.get(state="running")
    assert running.best_hour and running.kind == "notification"
    recipients = CampaignRecipient.objects.filter(campaign=running)
    sent = recipients.filter(state__in=("sent", "failed"))
    pending = recipients.filter(state="pending")
    assert sent.exists() and pending.exists()
    assert not sent.filter(message__created_at__gt=NOW).exists()
    # Planned before this hour: sent. This hour's and later ones wait for chatdesk's worker.
    assert not pending.filter(planned_at__lt=NOW).exists()
    assert pending.filter(planned_at__gt=NOW).exists()
    paused = Campaign.objects.get(state="paused")
    assert paused.paused_at < NOW
    done = CampaignRecipient.objects.filter(campaign=paused).exclude(state="pending").count()
    assert 0 < done < paused.recipients_total


def test_it_records_reminders_with_renewals_after_them(demo):
    period = period_make(TODAY - timedelta(days=29), TODAY)
    funnel = reminder_funnel(period)
    total = funnel["total"]
    assert total["reminded"] > 20
    assert 0 < total["renewed"] < total["reminded"] and total["read"] > 0
    before = ReminderRule.objects.get(name="3 días antes del vencimiento")
    stats = reminder_stats(since=NOW - timedelta(days=30))
    assert stats[before.pk]["sent"] > 0 and stats[before.pk]["renewed"] > 0


def test_it_follows_up_on_who_did_not_reply(demo):
    follow = Campaign.objects.get(retarget_of__isnull=False)
    assert follow.state == "completed" and follow.retarget_audience == "not_replied"
    source = CampaignRecipient.objects.filter(campaign=follow.retarget_of)
    reached = source.filter(message__status__in=Message.REACHED_STATUSES)
    reached = set(reached.values_list("customer_id", flat=True))
    customers = set(
        CampaignRecipient.objects.filter(campaign=follow).values_list("customer_id", flat=True)
    )
    assert customers and customers <= reached
    assert campaign_funnel(campaign=follow)["read"] > 0


def test_it_names_a_winner_between_two_variants(demo):
    promo = Campaign.objects.get(title="Promoción Disney+ 50% OFF")
    rows = campaign_variant_funnels(campaign=promo)
    assert [r["label"] for r in rows] == ["A", "B"]
    assert all(r["sent"] > 0 for r in rows)
    assert sum(r["winner"] for r in rows) == 1


def test_it_keeps_the_report_of_an_imported_csv(demo, client_for, carla):
    report = CustomerImport.objects.get()
    assert (report.created, report.updated, report.rejected) == (6, 2, 2)
    assert {row["line"] for row in report.rejected_rows} == {10, 11}
    assert all(row["reason"] for row in report.rejected_rows)
    page = client_for(carla).get("/customers/import/")
    assert "feria-quito.csv" in page.content.decode()
    assert Customer.objects.filter(tags__name="Feria Quito").count() == 8


def test_it_fills_the_first_screens(demo, client_for, alice, carla):
    panel = client_for(alice).get("/").content.decode()
    for title in ("Notificaciones vencimiento", "Promoción Netflix", "Descuentos Black Friday"):
        assert title in panel
    assert "No hay campañas activas" not in panel
    campaigns = client_for(carla).get("/campaigns/").content.decode()
    assert "Aún no hay campañas" not in campaigns
    assert campaigns.count('data-campaign="') == Campaign.objects.count()


def test_it_moves_the_story_to_today_when_run_again(client_for, alice):
    earlier = NOW - timedelta(days=3)
    demo_seed(now=earlier)
    customers = Customer.objects.count()
    scheduled = Campaign.objects.get(state="scheduled").scheduled_at
    mine = Message.objects.filter(author_kind="agent").latest("created_at")
    out = StringIO()
    call_command("seed_demo", "--if-empty", "--now", NOW.isoformat(), stdout=out)
    assert "moved 3 days forward" in out.getvalue()
    assert Customer.objects.count() == customers
    moved = Message.objects.get(pk=mine.pk)
    assert moved.created_at == mine.created_at + timedelta(days=3)
    assert Campaign.objects.get(state="scheduled").scheduled_at == scheduled + timedelta(days=3)
    figures = today_figures(now=NOW)
    assert figures["figures"]["sent"]["value"] > 0, figures
    call_command("seed_demo", "--if-empty", "--now", NOW.isoformat(), stdout=StringIO())
    assert Message.objects.get(pk=mine.pk).created_at == moved.created_at


def sim_sends(simulator: str) -> dict[str, int]:
    return httpx.get(f"{simulator}/_sim/stats", timeout=5).json()["sends_by_recipient"]


@pytest.mark.integration
def test_it_moves_the_running_campaign_through_the_simulator_or_says_why_it_waits(
    running_demo,
):
    """`make demo` as run by a person: the running campaign's recipients whose hour has come
    reach the simulator and its progress moves; outside the sending window (or between best
    hours) the API says until when it waits, in Spanish."""
    demo = running_demo
    found = demo.manage(
        "shell",
        "-c",
        (
            "from outbound.models import Campaign; c = Campaign.objects.get(state='running'); "
            "print(c.pk, *c.recipients.filter(state='pending').values_list('customer__phone', "
            "flat=True))"
        ),
    )
    assert found.returncode == 0, found.stderr
    pk, *phones = found.stdout.strip().splitlines()[-1].split()
    token = demo.manage("create_api_token", "marketing", "prueba").stdout.strip()
    client = httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {token}"})
    first = client.get(f"/api/v1/campaigns/{pk}").json()
    assert first["state"] == "running" and phones
    if first["waiting_reason"] is None:
        wait_until(
            lambda: any(sim_sends(demo.simulator).get(p) for p in phones),
            timeout=60,
            what="the campaign's sends at the simulator",
            check=none_exited([demo.started]),
        )
        wait_until(
            lambda: (
                client.get(f"/api/v1/campaigns/{pk}").json()["funnel"]["sent"]
                > first["funnel"]["sent"]
            ),
            timeout=60,
            what="the campaign's progress",
            check=none_exited([demo.started]),
        )
    else:
        assert first["waiting_reason"]["code"] in ("window", "best_hour")
        assert first["waiting_reason"]["text"].startswith("en espera hasta")
