"""Campaign services: create, launch (bulk, unique, race), fan-out with pacing and pause,
window and best hour with a fixed clock, cancel, retarget, duplicate, funnel."""

import threading
from datetime import datetime, time, timedelta
from decimal import Decimal

import dramatiq
import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer, Renewal, Service, Subscription
from customers.services import customer_marketing_opt_out
from inbox.models import Conversation, Message
from outbound import campaigns
from outbound.campaigns import (
    CampaignInvalid,
    CampaignStateError,
    campaign_cancel,
    campaign_create,
    campaign_duplicate,
    campaign_fanout_step,
    campaign_funnel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_retarget,
    campaign_tick,
    campaign_variant_funnels,
    planned_at,
    window_open_at,
)
from outbound.models import Campaign, CampaignRecipient
from tests.outbound.helpers import enqueued

R = CampaignRecipient.State


def local(*args) -> datetime:
    return timezone.make_aware(datetime(*args))


@pytest.fixture
def netflix(db):
    return Service.objects.create(name="Netflix", normal_price=Decimal("7.99"))


def customers(count: int, *, service=None, opted_out: int = 0, start: int = 0, name="Cliente"):
    today = timezone.localdate()
    made = Customer.objects.bulk_create(
        Customer(
            name=f"{name} {start + i}",
            phone=f"+5939800{start + i:05d}",
            marketing_opt_out_at=timezone.now() if i < opted_out else None,
        )
        for i in range(count)
    )
    if service is not None:
        Subscription.objects.bulk_create(
            Subscription(
                customer=c,
                service=service,
                price=service.normal_price,
                started_on=today - timedelta(days=30),
                expires_on=today + timedelta(days=5),
            )
            for c in made
        )
    return made


def new(**kwargs) -> Campaign:
    kwargs.setdefault("title", "Promo")
    kwargs.setdefault("body", "Hola {nombre}")
    kwargs.setdefault("filters", {})
    # A window that is always open, unless a test is about the window.
    kwargs.setdefault("window_start", time(0, 0))
    kwargs.setdefault("window_end", time(23, 59, 59))
    return campaign_create(**kwargs)


def run_fanout(campaign: Campaign, *, now=None, rounds: int = 50) -> None:
    """Drive the chain in-process, marking each new message sent as the pipeline would."""
    for _ in range(rounds):
        campaign.refresh_from_db()
        delay = campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token, now=now)
        Message.objects.filter(author_kind="campaign", status="queued").update(
            status="sent", sent_at=timezone.now()
        )
        if delay is None:
            return


# --- create ---------------------------------------------------------------------------------
def test_it_refuses_unknown_and_unfilled_variables(db):
    with pytest.raises(CampaignInvalid) as error:
        new(body="Hola {nombrecito}")
    assert "nombrecito" in error.value.errors["body"]
    with pytest.raises(CampaignInvalid) as error:
        new(body="Llegó {nuevo_servicio}")
    assert "{nuevo_servicio}" in error.value.errors["body"]
    assert new(body="Llegó {nuevo_servicio}", extra={"nuevo_servicio": "Max"}).pk


def test_it_refuses_bad_filters_window_and_too_many_variants(db):
    with pytest.raises(CampaignInvalid) as error:
        new(filters={"state": "zombie"}, window_start=time(20), window_end=time(9))
    assert set(error.value.errors) == {"filters", "window"}
    with pytest.raises(CampaignInvalid) as error:
        new(variants=["b", "c", "d"])
    assert "variants" in error.value.errors


def test_it_copies_the_template_and_makes_variants(db):
    from outbound.models import MessageTemplate

    template = MessageTemplate.objects.create(name="T", category="marketing", body="Hola {nombre}")
    campaign = new(body="", template=template, variants=["Qué tal {nombre}"])
    assert campaign.body == "Hola {nombre}"
    assert [(v.label, v.body) for v in campaign.variants.all()] == [
        ("A", "Hola {nombre}"),
        ("B", "Qué tal {nombre}"),
    ]


# --- launch ---------------------------------------------------------------------------------
def test_it_materialises_one_recipient_per_customer_in_bulk(db, django_assert_max_num_queries):
    customers(50, opted_out=5)
    campaign = new()
    # A handful of queries whatever the audience size (two chunks of 2,000 would be two more).
    with django_assert_max_num_queries(12):
        assert campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == "running"
    assert campaign.recipients_total == 45
    assert campaign.opted_out_excluded == 5
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    assert recipients.count() == 45
    assert not recipients.filter(customer__marketing_opt_out_at__isnull=False).exists()
    assert recipients.get(customer__name="Cliente 7").body == "Hola Cliente"


def test_it_materialises_again_without_duplicates(db):
    customers(10)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    total, _ = campaigns.recipients_materialise(campaign=campaign, now=timezone.now())
    assert total == 10
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 10


def test_it_keeps_opted_out_customers_in_a_notification(db):
    customers(10, opted_out=4)
    campaign = new(kind="notification")
    campaign_launch(campaign_id=campaign.pk)
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 10


def test_it_skips_a_customer_who_opts_out_after_the_launch(db):
    stays, leaves = customers(2)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    customer_marketing_opt_out(customer=leaves, reason="BAJA")
    run_fanout(campaign)
    assert list(Message.objects.values_list("conversation__customer", flat=True)) == [stays.pk]
    recipient = CampaignRecipient.objects.get(campaign=campaign, customer=leaves)
    assert recipient.state == R.OPTED_OUT and recipient.message is None
    assert recipient.skip_reason == "El cliente pidió la baja"
    campaign.refresh_from_db()
    assert campaign.state == "completed"


def test_it_claims_recipients_by_key_alone_with_no_join(db, postgres):
    """The claim of each batch (SELECT ... FOR UPDATE SKIP LOCKED) reads the recipients by
    primary key and nothing else: joined to the campaign or the customer, PostgreSQL's planner
    walked the campaign's whole pending index on statistics older than a launch, 290 ms a batch
    at 1,000,000 recipients (bench/campaign_launch.py). The campaign and the opt-outs are read
    after, by their own keys."""
    customers(3, opted_out=1)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    with CaptureQueriesContext(connection) as queries:
        run_fanout(campaign)
    claims = [q["sql"] for q in queries if "SKIP LOCKED" in q["sql"]]
    assert claims, "no batch was claimed"
    recipients = CampaignRecipient._meta.db_table
    for sql in claims:
        assert " JOIN " not in sql.upper(), sql
        assert f'FROM "{recipients}"' in sql, sql
    assert Message.objects.count() == 2


def test_it_still_sends_a_notification_to_a_customer_who_opts_out_after_the_launch(db):
    (customer,) = customers(1)
    campaign = new(kind="notification")
    campaign_launch(campaign_id=campaign.pk)
    customer_marketing_opt_out(customer=customer, reason="BAJA")
    run_fanout(campaign)
    assert CampaignRecipient.objects.get(campaign=campaign).state == R.SENT


def test_it_skips_a_customer_missing_a_value_with_the_reason(db, netflix):
    with_service = customers(3, service=netflix)
    customers(2, start=100)
    campaign = new(body="Hola {nombre}, tu {servicio} vence pronto")
    campaign_launch(campaign_id=campaign.pk)
    skipped = CampaignRecipient.objects.filter(campaign=campaign, state=R.SKIPPED)
    assert skipped.count() == 2
    assert all(r.skip_reason.startswith("{servicio}: ") and r.body == "" for r in skipped)
    ok = CampaignRecipient.objects.get(campaign=campaign, customer=with_service[0])
    assert ok.state == R.PENDING and ok.body == "Hola Cliente, tu Netflix vence pronto"
    run_fanout(campaign)
    assert Message.objects.count() == 3
    assert not Message.objects.filter(body__contains="{").exists()


def test_it_launches_once_when_two_launchers_race(transactional_db):
    customers(30)
    campaign = new(scheduled_at=timezone.now() - timedelta(seconds=1))
    barrier = threading.Barrier(2)
    results = []

    def launch():
        try:
            barrier.wait()
            results.append(campaign_launch(campaign_id=campaign.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    campaign.refresh_from_db()
    assert campaign.state == "running" and campaign.fanout_token == 1
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 30
    assert not campaign_launch(campaign_id=campaign.pk)


def test_it_enqueues_due_launches_from_the_tick_instead_of_launching_inline(
    db, django_capture_on_commit_callbacks
):
    dramatiq.get_broker().flush_all()
    customers(3)
    due = new()
    Campaign.objects.filter(pk=due.pk).update(state="scheduled", scheduled_at=timezone.now())
    later = new(scheduled_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_tick()["enqueued"] == 1
    due.refresh_from_db()
    assert due.state == "scheduled" and not CampaignRecipient.objects.exists()
    (job,) = enqueued("campaigns")
    assert job.actor_name == "outbound.campaign_launch" and job.args == (due.pk,)
    campaigns.campaign_launch_task(*job.args)
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.state == "running" and due.recipients_total == 3
    assert later.state == "scheduled"
    dramatiq.get_broker().flush_all()


def test_it_assigns_variants_at_random_reproducibly(db):
    customers(300)
    campaign = new(variants=["B {nombre}", "C {nombre}"])
    campaign_launch(campaign_id=campaign.pk)
    labels = dict(
        CampaignRecipient.objects.filter(campaign=campaign).values_list(
            "customer_id", "variant__label"
        )
    )
    counts = {label: list(labels.values()).count(label) for label in "ABC"}
    assert all(60 < n < 140 for n in counts.values()), counts
    assert CampaignRecipient.objects.get(
        campaign=campaign, customer_id=next(k for k, v in labels.items() if v == "B")
    ).body.startswith("B Cliente")
    CampaignRecipient.objects.filter(campaign=campaign).delete()
    campaigns.recipients_materialise(campaign=campaign, now=timezone.now())
    again = dict(
        CampaignRecipient.objects.filter(campaign=campaign).values_list(
            "customer_id", "variant__label"
        )
    )
    assert again == labels


# --- fan-out --------------------------------------------------------------------------------
def test_it_fans_out_no_more_than_the_limiter_sends_in_two_seconds(db, settings):
    settings.SEND_RATE_PER_MINUTE = 60  # one a second: two ahead
    customers(10)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    delay = campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    assert Message.objects.filter(status="queued").count() == 2
    assert 0 < delay <= 2
    # Nothing sent yet: the backlog is full, the next run only waits.
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    assert Message.objects.count() == 2
    Message.objects.update(status="sent")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    assert Message.objects.count() == 4
    recipient = CampaignRecipient.objects.filter(campaign=campaign, state=R.QUEUED).first()
    assert recipient.message.author_kind == "campaign"
    assert recipient.message.body == recipient.body


def test_it_completes_when_nothing_is_left(db):
    customers(12)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    run_fanout(campaign)
    campaign.refresh_from_db()
    assert campaign.state == "completed" and campaign.completed_at
    assert CampaignRecipient.objects.filter(campaign=campaign, state=R.SENT).count() == 12
    assert Message.objects.count() == 12


def test_it_ignores_a_run_with_an_old_token(db):
    customers(3)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    assert campaign_fanout_step(campaign_id=campaign.pk, token=0) is None
    assert Message.objects.count() == 0


def test_it_pauses_resumes_and_cancels(db, settings):
    settings.SEND_RATE_PER_MINUTE = 60
    customers(6)
    campaign = new()
    with pytest.raises(CampaignStateError):
        campaign_pause(campaign=campaign)
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    token = campaign.fanout_token
    campaign_fanout_step(campaign_id=campaign.pk, token=token)
    campaign_pause(campaign=campaign)
    Message.objects.update(status="sent")
    assert campaign_fanout_step(campaign_id=campaign.pk, token=token) is None
    assert Message.objects.count() == 2
    with pytest.raises(CampaignStateError):
        campaign_pause(campaign=campaign)
    campaign_resume(campaign=campaign)
    assert campaign.state == "running" and campaign.fanout_token == token + 1
    # The old chain stops; the new one goes on.
    assert campaign_fanout_step(campaign_id=campaign.pk, token=token) is None
    campaign_fanout_step(campaign_id=campaign.pk, token=token + 1)
    assert Message.objects.count() == 4
    campaign_cancel(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.state == "cancelled"
    states = dict(
        CampaignRecipient.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    # Two sent; two queued whose messages no worker took yet are cancelled; two never written.
    assert states == {"sent": 2, "skipped": 4}
    assert Message.objects.filter(status="cancelled").count() == 2
    assert set(
        CampaignRecipient.objects.filter(state=R.SKIPPED).values_list("skip_reason", flat=True)
    ) == {"cancelada"}
    with pytest.raises(CampaignStateError):
        campaign_cancel(campaign=campaign)
    with pytest.raises(CampaignStateError):
        campaign_resume(campaign=campaign)


def test_it_records_failed_and_unknown_outcomes(db):
    customers(3)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    first, second, third = Message.objects.order_by("pk")
    Message.objects.filter(pk=first.pk).update(status="failed", failure_reason="No está en WA")
    Message.objects.filter(pk=second.pk).update(status="unknown")
    Message.objects.filter(pk=third.pk).update(status="read")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    campaign.refresh_from_db()
    assert campaign.state == "completed"
    assert sorted(
        CampaignRecipient.objects.filter(campaign=campaign).values_list("state", flat=True)
    ) == ["failed", "sent", "unknown"]
    reasons = campaigns.campaign_failure_reasons(campaign=campaign)
    assert ("Fallido", "No está en WA", 1) in reasons


def test_an_unconfirmed_message_keeps_its_recipient_open_until_settled(db):
    customers(1)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    Message.objects.update(status="unconfirmed")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    campaign.refresh_from_db()
    assert campaign.state == "running"
    funnel = campaign_funnel(campaign=campaign)
    assert (funnel["unconfirmed"], funnel["queued"], funnel["done"]) == (1, 0, 0)
    Message.objects.update(status="delivered")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    campaign.refresh_from_db()
    assert campaign.state == "completed"


def test_an_unknown_recipient_follows_its_message_when_the_echo_comes_late(db):
    customers(1)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    Message.objects.update(status="unknown")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    campaign.refresh_from_db()
    assert campaign.state == "completed"
    assert CampaignRecipient.objects.get().state == R.UNKNOWN
    Message.objects.update(status="delivered")
    assert campaign_tick()["revived"] == 1
    assert CampaignRecipient.objects.get().state == R.SENT


def test_a_message_cancelled_by_an_opt_out_is_counted_as_such(db):
    from outbound.services import marketing_messages_cancel

    _stays, leaves = customers(2)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    assert Message.objects.filter(marketing=True).count() == 2
    customer_marketing_opt_out(customer=leaves, reason="BAJA")
    assert marketing_messages_cancel(customer=leaves) == 1
    Message.objects.filter(status="queued").update(status="sent")
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token)
    recipient = CampaignRecipient.objects.get(campaign=campaign, customer=leaves)
    assert recipient.state == R.OPTED_OUT
    funnel = campaign_funnel(campaign=campaign)
    assert (funnel["sent"], funnel["opted_out"]) == (1, 1)


def test_a_launch_that_keeps_failing_ends_failed_with_the_reason(db, monkeypatch):
    customers(1)
    campaign = new()
    campaigns.campaign_schedule(campaign=campaign, at=timezone.now())

    def broken(**kwargs):
        raise ValueError("el segmento no se pudo leer")

    monkeypatch.setattr(campaigns.launch, "recipients_materialise", broken)
    for _ in range(campaigns.LAUNCH_MAX_ATTEMPTS):
        campaign.refresh_from_db()
        assert campaign.state == "scheduled"
        campaigns.campaign_launch_task.fn(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == "failed" and campaign.failed_at is not None
    assert campaign.failure_reason == ("No se pudo lanzar la campaña: el segmento no se pudo leer")
    assert campaign_tick()["enqueued"] == 0


def test_a_discount_that_is_not_a_number_is_refused_at_creation(db):
    for bad in ("NaN", "inf", "-5", "100", "mucho"):
        with pytest.raises(CampaignInvalid) as error:
            new(body="Ahora a ${precio_descuento}", extra={"descuento": bad})
        assert error.value.errors["descuento"] == "El descuento debe ser un número entre 1 y 99."


def test_it_rekicks_a_stalled_campaign_once(db, settings):
    settings.CAMPAIGN_STALL_SECONDS = 30
    customers(3)
    campaign = new()
    now = timezone.now()
    campaign_launch(campaign_id=campaign.pk, now=now)
    assert campaign_tick(now=now + timedelta(seconds=10))["kicked"] == 0
    assert campaign_tick(now=now + timedelta(seconds=31))["kicked"] == 1
    campaign.refresh_from_db()
    assert campaign.fanout_token == 2
    assert campaign_tick(now=now + timedelta(seconds=32))["kicked"] == 0


# --- window and best hour ----------------------------------------------------------------------
def test_it_waits_for_the_window_to_open(db):
    customers(2)
    campaign = new(window_start=time(9), window_end=time(20))
    night = local(2026, 3, 10, 22, 30)
    assert window_open_at(campaign, now=night) == local(2026, 3, 11, 9, 0)
    assert window_open_at(campaign, now=local(2026, 3, 10, 6, 0)) == local(2026, 3, 10, 9, 0)
    assert window_open_at(campaign, now=local(2026, 3, 10, 12, 0)) == local(2026, 3, 10, 12, 0)
    campaign_launch(campaign_id=campaign.pk, now=night)
    campaign.refresh_from_db()
    delay = campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token, now=night)
    assert delay == 10.5 * 3600
    assert Message.objects.count() == 0
    morning = local(2026, 3, 11, 9, 0, 1)
    campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token, now=morning)
    assert Message.objects.count() == 2


def test_it_plans_each_customer_at_their_best_hour(db):
    campaign = new(window_start=time(9), window_end=time(20), best_hour=True)
    now = local(2026, 3, 10, 10, 15)
    assert planned_at(campaign, hour=None, now=now) == now
    assert planned_at(campaign, hour=15, now=now) == local(2026, 3, 10, 15, 0)
    assert planned_at(campaign, hour=10, now=now) == now  # inside that hour: now
    assert planned_at(campaign, hour=8, now=now) == local(2026, 3, 11, 9, 0)  # window start
    assert planned_at(campaign, hour=23, now=now) == local(2026, 3, 10, 19, 0)  # last hour
    assert planned_at(campaign, hour=3, now=local(2026, 3, 10, 7, 0)) == local(2026, 3, 10, 9)


def test_it_learns_the_best_hour_from_replies_and_reads(db):
    night_owl, early, unknown = customers(3)
    for customer, hours in ((night_owl, [21, 21, 14]), (early, [7])):
        conversation = Conversation.objects.create(customer=customer)
        for hour in hours:
            Message.objects.create(
                conversation=conversation,
                direction="in",
                author_kind="customer",
                status="received",
                created_at=local(2026, 3, 1, hour, 5),
            )
    conversation = Conversation.objects.get(customer=early)
    for day in (2, 3):
        Message.objects.create(
            conversation=conversation,
            direction="out",
            author_kind="agent",
            status="read",
            created_at=local(2026, 3, day, 11, 0),
            read_at=local(2026, 3, day, 11, 30),
        )
    now = local(2026, 3, 10, 8, 0)
    hours = campaigns.best_hours([night_owl.pk, early.pk, unknown.pk], now=now)
    assert hours == {night_owl.pk: 21, early.pk: 11}
    campaign = new(window_start=time(9), window_end=time(20), best_hour=True)
    campaign_launch(campaign_id=campaign.pk, now=now)
    planned = dict(
        CampaignRecipient.objects.filter(campaign=campaign).values_list("customer_id", "planned_at")
    )
    assert planned == {
        night_owl.pk: local(2026, 3, 10, 19, 0),
        early.pk: local(2026, 3, 10, 11, 0),
        unknown.pk: local(2026, 3, 10, 9, 0),
    }
    campaign.refresh_from_db()
    campaign_fanout_step(
        campaign_id=campaign.pk, token=campaign.fanout_token, now=local(2026, 3, 10, 9, 30)
    )
    assert list(
        Message.objects.filter(author_kind="campaign").values_list(
            "conversation__customer", flat=True
        )
    ) == [unknown.pk]


# --- retarget, duplicate, funnel ---------------------------------------------------------------
def _sent_campaign(count: int) -> tuple[Campaign, list[Message]]:
    customers(count)
    campaign = new()
    campaign_launch(campaign_id=campaign.pk)
    run_fanout(campaign)
    return campaign, list(Message.objects.filter(author_kind="campaign").order_by("pk"))


def _reply(message: Message, *, after: timedelta = timedelta(hours=1)) -> None:
    Message.objects.create(
        conversation=message.conversation,
        direction="in",
        author_kind="customer",
        status="received",
        created_at=message.created_at + after,
    )


def test_it_retargets_those_who_did_not_read_or_reply(db):
    campaign, messages = _sent_campaign(5)
    Message.objects.filter(pk__in=[messages[0].pk, messages[1].pk]).update(status="read")
    Message.objects.filter(pk=messages[2].pk).update(status="failed")
    _reply(messages[0])
    not_read = campaign_retarget(campaign=campaign, audience="not_read", body="¿Lo viste?")
    assert not_read.state == "draft" and "seguimiento" in not_read.title
    campaign_launch(campaign_id=not_read.pk)
    who = set(
        CampaignRecipient.objects.filter(campaign=not_read).values_list("customer", flat=True)
    )
    assert who == {messages[3].conversation.customer_id, messages[4].conversation.customer_id}
    not_replied = campaign_retarget(campaign=campaign, audience="not_replied", body="¿Y?")
    Customer.objects.filter(pk=messages[4].conversation.customer_id).update(
        marketing_opt_out_at=timezone.now()
    )
    campaign_launch(campaign_id=not_replied.pk)
    who = set(
        CampaignRecipient.objects.filter(campaign=not_replied).values_list("customer", flat=True)
    )
    assert who == {messages[1].conversation.customer_id, messages[3].conversation.customer_id}
    not_replied.refresh_from_db()
    assert not_replied.opted_out_excluded == 1


def test_it_duplicates_a_campaign_as_a_draft(db):
    campaign = new(variants=["B"], filters={"state": "active"}, best_hour=True)
    copy = campaign_duplicate(campaign=campaign)
    assert copy.state == "draft" and copy.title == "Copia de Promo"
    assert copy.filters == {"state": "active"} and copy.best_hour
    assert list(copy.variants.values_list("label", "body")) == [("A", "Hola {nombre}"), ("B", "B")]


def test_it_counts_the_funnel(db, netflix):
    campaign, messages = _sent_campaign(10)
    CampaignRecipient.objects.filter(campaign=campaign).update(variant=None)
    Message.objects.filter(pk__in=[m.pk for m in messages[:6]]).update(status="delivered")
    Message.objects.filter(pk__in=[m.pk for m in messages[:3]]).update(status="read")
    Message.objects.filter(pk=messages[9].pk).update(status="failed")
    _reply(messages[0])
    _reply(messages[1], after=timedelta(days=5))  # too late to count
    customer = messages[2].conversation.customer
    subscription = Subscription.objects.create(
        customer=customer,
        service=netflix,
        price=Decimal("7.99"),
        started_on=timezone.localdate(),
        expires_on=timezone.localdate(),
    )
    Renewal.objects.create(
        subscription=subscription,
        renewed_at=messages[2].created_at + timedelta(days=1),
        previous_expiry=timezone.localdate(),
        new_expiry=timezone.localdate() + timedelta(days=30),
        amount=Decimal("7.99"),
    )
    funnel = campaign_funnel(campaign=campaign)
    assert {k: funnel[k] for k in ("total", "sent", "delivered", "read", "replied", "renewed")} == {
        "total": 10,
        "sent": 9,
        "delivered": 6,
        "read": 3,
        "replied": 1,
        "renewed": 1,
    }
    assert funnel["failed"] == 1 and funnel["pending"] == 0
    assert funnel["read_rate"] == round(100 * 3 / 9, 1)
    assert campaign_funnel(campaign=campaign, reply_days=7)["replied"] == 2


def test_it_compares_variants(db):
    customers(40)
    campaign = new(variants=["B {nombre}"])
    campaign_launch(campaign_id=campaign.pk)
    run_fanout(campaign)
    b_messages = Message.objects.filter(body__startswith="B ")
    Message.objects.filter(pk__in=b_messages.values("pk")).update(status="read")
    rows = {row["label"]: row for row in campaign_variant_funnels(campaign=campaign)}
    assert rows["A"]["read_rate"] == 0.0 and rows["B"]["read_rate"] == 100.0
    assert rows["A"]["total"] + rows["B"]["total"] == 40
