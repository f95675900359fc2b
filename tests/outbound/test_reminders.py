"""Expiry reminders and anniversaries with a frozen clock (the `now` the tick is given)."""

import threading
from collections import Counter
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Message
from outbound.models import ReminderRule, ReminderSent
from outbound.reminders import reminder_stats, reminders_run, reminders_tick, rule_due
from outbound.renewals import renewal_record
from tests.outbound.automations import GYE, at, customer_with, in_memory_layer  # noqa: F401

MONDAY = date(2026, 3, 2)
RULES = {
    "3 días antes del vencimiento": -3,
    "El día del vencimiento": 0,
    "Recordatorio de pago (1 día después)": 1,
}
ANNIVERSARY = "Aniversario de la suscripción"


def week_ticks(start: date, days: int = 7, every_minutes: int = 30):
    moment = at(start, 0)
    while moment < at(start + timedelta(days=days), 0):
        yield moment
        moment += timedelta(minutes=every_minutes)


def sent_rows():
    return ReminderSent.objects.select_related("rule", "subscription__customer")


def test_it_sends_each_reminder_once_across_a_week_inside_the_window(db):
    soon = customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    tomorrow = customer_with("+593990000002", expires_on=MONDAY + timedelta(days=1))
    birthday = customer_with(
        "+593990000003", expires_on=MONDAY + timedelta(days=40), started_on=date(2025, 3, 5)
    )
    opted_out = customer_with(
        "+593990000004",
        expires_on=MONDAY + timedelta(days=3),
        started_on=date(2024, 3, 5),
        marketing_opt_out_at=timezone.now(),
    )
    for moment in week_ticks(MONDAY):
        reminders_run(now=moment)
        reminders_run(now=moment)  # a repeated tick

    got = Counter((r.subscription_id, r.rule.name, r.expiry_date) for r in sent_rows())
    expected = Counter(
        [
            (soon.pk, "3 días antes del vencimiento", soon.expires_on),
            (soon.pk, "El día del vencimiento", soon.expires_on),
            (soon.pk, "Recordatorio de pago (1 día después)", soon.expires_on),
            # Its "3 days before" fell last week: not back-filled.
            (tomorrow.pk, "El día del vencimiento", tomorrow.expires_on),
            (tomorrow.pk, "Recordatorio de pago (1 día después)", tomorrow.expires_on),
            (birthday.pk, ANNIVERSARY, date(2026, 3, 5)),
            # Opted out of marketing: still the service reminders, not the anniversary.
            (opted_out.pk, "3 días antes del vencimiento", opted_out.expires_on),
            (opted_out.pk, "El día del vencimiento", opted_out.expires_on),
            (opted_out.pk, "Recordatorio de pago (1 día después)", opted_out.expires_on),
        ]
    )
    assert got == expected
    for row in sent_rows():
        local = timezone.localtime(row.created_at, GYE)
        assert row.rule.window_start <= local.time() < row.rule.window_end
        assert row.outcome == "sent"
        due = row.expiry_date + timedelta(days=row.rule.days_from_expiry)
        assert local.date() == (row.expiry_date if row.rule.kind == "anniversary" else due)
        assert row.message.author_kind == "reminder"
        assert row.message.conversation.customer == row.subscription.customer
    assert Message.objects.filter(author_kind="reminder").count() == len(expected)


def test_it_writes_the_template_for_the_customer_and_service(db):
    sub = customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    customer_with(
        "+593990000001",
        expires_on=MONDAY + timedelta(days=20),
        service_name="Spotify",
        price="4.99",
    )
    reminders_run(now=at(MONDAY, 10))
    message = Message.objects.get(author_kind="reminder")
    assert message.body.startswith(
        "⏰ Hola María, tu *Netflix* vence el 5 de marzo (faltan 3 días)."
    )
    assert "Renueva por $7.99" in message.body
    assert ReminderSent.objects.get().subscription == sub


def test_it_waits_for_the_window(db):
    customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    assert sum(r.sent for r in reminders_run(now=at(MONDAY, 8, 59)).values()) == 0
    assert not ReminderSent.objects.exists()
    assert sum(r.sent for r in reminders_run(now=at(MONDAY, 9, 0)).values()) == 1
    assert sum(r.sent for r in reminders_run(now=at(MONDAY, 19, 59)).values()) == 0


def test_it_does_not_send_after_the_window_closes(db):
    customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    reminders_run(now=at(MONDAY, 20, 0))
    reminders_run(now=at(MONDAY, 23, 59))
    assert not ReminderSent.objects.exists()
    # The next day is the next day's business: "in 3 days" is no longer true.
    reminders_run(now=at(MONDAY + timedelta(days=1), 10))
    assert not ReminderSent.objects.exists()


def test_it_records_a_customer_it_cannot_write_to_as_skipped_with_the_reason(db):
    sub = customer_with("+593990000001", name="", expires_on=MONDAY + timedelta(days=3))
    results = reminders_run(now=at(MONDAY, 10))
    assert results["3 días antes del vencimiento"].skipped == 1
    row = ReminderSent.objects.get(subscription=sub)
    assert row.outcome == "skipped"
    assert "{nombre}" in row.skip_reason
    assert row.message is None
    assert not Message.objects.exists()
    reminders_run(now=at(MONDAY, 11))
    assert ReminderSent.objects.count() == 1


def test_it_leaves_opted_out_customers_out_when_the_rule_says_so(db):
    ReminderRule.objects.update(include_opted_out=False)
    customer_with(
        "+593990000001", expires_on=MONDAY + timedelta(days=3), marketing_opt_out_at=timezone.now()
    )
    reminders_run(now=at(MONDAY, 10))
    assert not ReminderSent.objects.exists()


def test_it_skips_inactive_rules(db):
    ReminderRule.objects.update(active=False)
    customer_with("+593990000001", expires_on=MONDAY)
    reminders_run(now=at(MONDAY, 10))
    assert not ReminderSent.objects.exists()


def test_it_celebrates_a_29_february_start_on_the_28th(db):
    sub = customer_with("+593990000001", expires_on=date(2027, 6, 1), started_on=date(2024, 2, 29))
    reminders_run(now=at(date(2027, 2, 28), 12))
    assert ReminderSent.objects.get().subscription == sub
    assert ReminderSent.objects.get().expiry_date == date(2027, 2, 28)


def test_it_stops_the_expiry_reminders_of_a_renewed_subscription(db):
    sub = customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    reminders_run(now=at(MONDAY, 10))
    renewal_record(subscription=sub, months=1, amount=Decimal("7.99"), renewed_at=at(MONDAY, 12))
    for moment in week_ticks(MONDAY + timedelta(days=1), days=6, every_minutes=60):
        reminders_run(now=moment)
    assert [r.rule.name for r in sent_rows()] == ["3 días antes del vencimiento"]


def test_it_asks_the_database_once_per_rule_whatever_the_number_due(db):
    rule = ReminderRule.objects.get(name="El día del vencimiento")

    def count_queries(how_many: int) -> int:
        for index in range(how_many):
            customer_with(f"+5939910{how_many:02d}{index:03d}", expires_on=MONDAY)
        with CaptureQueriesContext(connection) as queries:
            assert len(list(rule_due(rule, today=MONDAY))) >= how_many
        return len(queries)

    assert count_queries(2) == count_queries(30) <= 3


def test_the_scheduled_actor_runs_the_rules(db):
    customer_with("+593990000001", expires_on=timezone.localdate())
    ReminderRule.objects.update(window_start=time(0, 0), window_end=time(23, 59, 59))
    reminders_tick()
    assert ReminderSent.objects.filter(rule__name="El día del vencimiento").count() == 1


def test_it_counts_a_renewal_after_a_reminder_as_its_conversion(db):
    renewed = customer_with("+593990000001", expires_on=MONDAY + timedelta(days=3))
    customer_with("+593990000002", expires_on=MONDAY + timedelta(days=3))
    reminders_run(now=at(MONDAY, 10))
    renewal_record(
        subscription=renewed, months=1, amount=Decimal("7.99"), renewed_at=at(MONDAY, 15)
    )
    rule = ReminderRule.objects.get(name="3 días antes del vencimiento")
    stats = reminder_stats(since=at(MONDAY, 0))
    assert stats[rule.pk] == {"sent": 2, "skipped": 0, "renewed": 1}


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_racing_send_each_reminder_once(django_db_setup):
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL (SQLite serialises every writer)")
    # Transactional tests flush the tables: the default rules come back for this one.
    _default_rules()
    subs = [
        customer_with(f"+5939920000{i:02d}", expires_on=MONDAY + timedelta(days=3))
        for i in range(40)
    ]
    moment = at(MONDAY, 10)
    start = threading.Barrier(4)
    results, errors = [], []

    def scheduler():
        try:
            start.wait()
            results.append(reminders_run(now=moment))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rule = "3 días antes del vencimiento"
    assert sum(r[rule].sent for r in results) == len(subs)
    assert ReminderSent.objects.count() == len(subs)
    assert Message.objects.filter(author_kind="reminder").count() == len(subs)
    per_customer = Counter(
        Message.objects.filter(author_kind="reminder").values_list(
            "conversation__customer_id", flat=True
        )
    )
    assert set(per_customer.values()) == {1}


def _default_rules():
    from importlib import import_module

    from django.apps import apps

    # The expiry rules use the example templates of 0002, which a flush removed too.
    import_module("outbound.migrations.0002_example_templates").add_examples(apps, None)
    import_module("outbound.migrations.0004_default_automations").add_defaults(apps, None)
