"""Time-based automations: expiry reminders ("3 days before", "on the day", "the day after":
the payment reminder) and subscription anniversaries, evaluated by the scheduler.

Each tick, for each active rule whose send window (Guayaquil time) contains now, one query
finds the subscriptions due *today* (Guayaquil date) that have no ReminderSent row for that
rule and date. For each, one transaction inserts the ReminderSent row and writes the message
(`author_kind="reminder"`); the row's unique (rule, subscription, expiry_date) makes a repeated
tick or a second scheduler insert nothing and send nothing.

Choices:
- Outside its window a rule waits; a day missed entirely (scheduler down all day) is not
  back-filled: the next day evaluates the next day's reminders only. A reminder that says
  "vence en 3 días" two days late would be wrong.
- Reminders are service messages, not marketing: customers who opted out of promotions still
  get them, unless the rule says otherwise (`include_opted_out`).
- A template that cannot be filled for a customer (MissingValue: no name for {nombre}...) is
  recorded as skipped with the reason, and is not retried for that date.
- A rule goes out from its channel (the WhatsApp number it names; the default one unless
  chosen), into the customer's conversation there.
- A renewal moves the expiry, so "before expiry" rules for the old date stop matching.
- Anniversaries: active subscriptions whose start date has the same month and day, one year or
  more ago; a start on 29 February is celebrated on 28 February in other years.
"""

import calendar
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import dramatiq
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from dramatiq_crontab import interval

from customers.models import Renewal, Subscription
from inbox.models import Message
from outbound.models import ReminderRule, ReminderSent
from outbound.services import SendRejected, message_send
from outbound.templating import TemplateError, template_render

log = logging.getLogger(__name__)

TICK_SECONDS = 60
CONVERSION_DAYS = 7


@dataclass
class RuleResult:
    sent: int = 0
    skipped: int = 0
    already: int = 0
    reasons: list[str] = field(default_factory=list)


def _local_now(now: datetime | None) -> datetime:
    return timezone.localtime(now or timezone.now())


def rule_in_window(rule: ReminderRule, *, now: datetime) -> bool:
    local = _local_now(now).time()
    return rule.window_start <= local < rule.window_end


def _occasion(rule: ReminderRule, today: date) -> tuple[Q, date | None]:
    """Which subscriptions the rule speaks of today, and the date recorded for them (None:
    each subscription's own expiry)."""
    if rule.kind == ReminderRule.Kind.EXPIRY:
        return Q(expires_on=today - timedelta(days=rule.days_from_expiry)), None
    same_day = Q(started_on__month=today.month, started_on__day=today.day)
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        same_day |= Q(started_on__month=2, started_on__day=29)
    return same_day & Q(started_on__year__lt=today.year, expires_on__gte=today), today


def rule_due(rule: ReminderRule, *, today: date) -> QuerySet[Subscription]:
    """The subscriptions this rule still owes a message today: one query, with what the
    template needs loaded alongside."""
    condition, occasion = _occasion(rule, today)
    already = ReminderSent.objects.filter(
        rule=rule,
        subscription=OuterRef("pk"),
        expiry_date=occasion if occasion else OuterRef("expires_on"),
    )
    due = Subscription.objects.filter(condition).exclude(Exists(already))
    if not rule.include_opted_out:
        due = due.filter(customer__marketing_opt_out_at__isnull=True)
    siblings = Subscription.objects.select_related("service")
    return (
        due.select_related("customer", "service")
        .prefetch_related(Prefetch("customer__subscriptions", queryset=siblings))
        .order_by("pk")
    )


def reminder_send(
    *, rule: ReminderRule, subscription: Subscription, today: date, now: datetime
) -> str:
    """Record and send one reminder: "sent", "skipped" or "already" (another tick or
    scheduler got there first: nothing written, nothing sent)."""
    occasion = today if rule.kind == ReminderRule.Kind.ANNIVERSARY else subscription.expires_on
    try:
        text = template_render(
            rule.template.body,
            customer=subscription.customer,
            service=subscription.service_id,
            today=today,
        )
        reason = ""
    except TemplateError as exc:
        text, reason = "", str(exc)
    try:
        with transaction.atomic():
            sent = ReminderSent.objects.create(
                rule=rule,
                subscription=subscription,
                expiry_date=occasion,
                outcome=ReminderSent.Outcome.SKIPPED if reason else ReminderSent.Outcome.SENT,
                skip_reason=reason[:300],
                created_at=now,
            )
            if reason:
                return "skipped"
            try:
                sent.message = message_send(
                    customer=subscription.customer,
                    text=text,
                    author_kind=Message.Author.REMINDER,
                    channel=rule.channel_id,  # type: ignore[arg-type]  # FK default: never None
                )
            except SendRejected as exc:
                sent.outcome, sent.skip_reason = ReminderSent.Outcome.SKIPPED, exc.message[:300]
            sent.save(update_fields=["message", "outcome", "skip_reason"])
            return sent.outcome
    except IntegrityError:
        return "already"


def rule_run(rule: ReminderRule, *, now: datetime) -> RuleResult:
    result = RuleResult()
    if not rule.active or not rule_in_window(rule, now=now):
        return result
    today = _local_now(now).date()
    for subscription in rule_due(rule, today=today):
        outcome = reminder_send(rule=rule, subscription=subscription, today=today, now=now)
        if outcome == "sent":
            result.sent += 1
        elif outcome == "skipped":
            result.skipped += 1
        else:
            result.already += 1
    return result


def reminders_run(*, now: datetime | None = None) -> dict[str, RuleResult]:
    """One tick: every active rule, in its window, for today (Guayaquil)."""
    now = now or timezone.now()
    rules = ReminderRule.objects.filter(active=True).select_related("template")
    return {rule.name: rule_run(rule, now=now) for rule in rules}


@interval(seconds=TICK_SECONDS)
@dramatiq.actor(
    actor_name="outbound.reminders_tick",
    queue_name="automations",
    max_retries=0,
    time_limit=10 * 60_000,
)
def reminders_tick() -> None:
    results = reminders_run()
    done = {name: r for name, r in results.items() if r.sent or r.skipped}
    if done:
        log.info("reminders: %s", done)


# --- reads: what the automations page shows -----------------------------------------------
def reminder_stats(*, since: datetime, days: int = CONVERSION_DAYS) -> dict[int, dict]:
    """Per rule since a date: sent, skipped, and renewed within `days` of the reminder (a
    renewal recorded after a reminder is its conversion)."""
    renewed = Renewal.objects.filter(
        subscription=OuterRef("subscription"),
        renewed_at__gte=OuterRef("created_at"),
        renewed_at__lt=OuterRef("created_at") + timedelta(days=days),
    )
    rows = (
        ReminderSent.objects.filter(created_at__gte=since)
        .annotate(converted=Exists(renewed))
        .values("rule_id")
        .annotate(
            sent=Count("pk", filter=Q(outcome=ReminderSent.Outcome.SENT)),
            skipped=Count("pk", filter=Q(outcome=ReminderSent.Outcome.SKIPPED)),
            renewed=Count("pk", filter=Q(outcome=ReminderSent.Outcome.SENT, converted=True)),
        )
    )
    return {
        row["rule_id"]: {"sent": row["sent"], "skipped": row["skipped"], "renewed": row["renewed"]}
        for row in rows
    }
