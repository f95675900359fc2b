"""Campaigns: launch, fan-out and the scheduler tick, with their Dramatiq actors.

Launch (`campaign_launch`): one conditional update moves the campaign from draft or scheduled
to running, and in the same transaction its recipients are written in bulk (one row per
customer, unique per campaign), each with its variant (random, seeded by the campaign id, so a
relaunch of the same data assigns the same variants), its rendered body, and when it may be
sent (`planned_at`). A campaign with one body, one number and no best hour is written by one
INSERT ... SELECT with the text made in SQL (sqlbody.py: what the Python path would write, row
for row): no customer passes through Python. Otherwise the audience is read as tuples CHUNK
customers at a time and each chunk written in one statement (COPY on PostgreSQL), each body
validated once: no model instance per customer, so a million-customer launch takes the memory
of a thousand. A customer the body
cannot be filled for (MissingValue) is written `skipped` with the reason. Two launch tasks
racing both try the update; the loser sees the state already moved and does nothing.

Fan-out (`campaign_fanout`, a Dramatiq actor re-enqueued by itself): each run takes the next
pending recipients whose planned time has come, and for each, in one transaction, moves it
pending -> queued (a conditional update that also requires the campaign to be running) and
writes its Message as `message_send(author_kind="campaign")` would (`messages_send_bulk`: the
same rows, events and jobs, a few queries per batch). It only fans out what the shared rate
limiter can send in about FANOUT_AHEAD_SECONDS, counting the campaign messages already waiting:
the queued backlog stays small, so a pause (which the send pipeline cannot see) lets at most
that much go out after it. A run's cost does not grow with the campaign: it reads the due
recipients by index, a transaction's worth at a time, and looks for outcomes only among the
SYNC_OLDEST first queued (all of them once nothing is pending). Runs carry a token: resume and
the tick's re-kick bump it, so an old chain stops instead of running twice as fast.

Completion: when no recipient is pending or queued (a queued recipient takes its outcome from
its message: sent, failed, unknown, or opted_out when the customer opted out before it left;
an unconfirmed message keeps it queued until the evidence or the sweeper settles it). Checked
by the fan-out and by the tick.

The tick (`campaigns_tick`, every CAMPAIGN_TICK_SECONDS): enqueues the launch of due scheduled
campaigns (a worker runs it; the launch's conditional update makes one of them win) and
re-kicks running ones whose chain missed its promised time by CAMPAIGN_STALL_SECONDS (a worker
killed mid-run, a lost broker message): a kick is a conditional update of the token, so two
ticks kick once.
"""

import logging
import math
import random
import zlib
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from time import monotonic as time_monotonic

import dramatiq
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from dramatiq_crontab import interval

from customers.models import Customer, Service, Subscription
from inbox import channels
from inbox.models import DEFAULT_CHANNEL, Message
from outbound import ratelimit
from outbound.campaigns.audience import (
    MARKETING_KINDS,
    _local,
    _single_service,
    best_hours,
    campaign_audience,
    planned_at,
    window_open_at,
)
from outbound.campaigns.metalimit import channel_limit, meta_limit_room
from outbound.campaigns.split import channel_assigner
from outbound.campaigns.sqlbody import recipients_insert_select
from outbound.models import Campaign, CampaignRecipient
from outbound.services import TEXT_MAX, SendRejected, messages_send_bulk, text_check
from outbound.templating import (
    CUSTOMER_VARIABLES,
    MissingValue,
    TemplateError,
    template_renderer,
    template_variables,
)

logger = logging.getLogger(__name__)

State = Campaign.State
RState = CampaignRecipient.State
MStatus = Message.Status

LAUNCHABLE = (State.DRAFT, State.SCHEDULED)
LAUNCH_MAX_ATTEMPTS = 3
CHUNK = 2000
# The launch writes a one-body campaign's recipients in SQL (False: always the Python path,
# which the tests compare it with).
SQL_BODY = True
FANOUT_AHEAD_SECONDS = 2.0
FANOUT_MAX_BATCH = 500
# Recipients written per transaction, and how long one run may keep writing before it hands
# over to the next run (the tick's stall check must allow well more than that).
FANOUT_TRANSACTION = 250
FANOUT_RAMP = 10
THROUGHPUT_SECONDS = 5
FANOUT_STEP_SECONDS = 1.5
# Queued recipients a fan-out run looks at for their outcome (recipients_sync's `oldest`).
SYNC_OLDEST = 2000
# pg_advisory_xact_lock's first key for the messaging-limit locks (one per number).
LIMIT_LOCK_SPACE = 200011
# A chain waits at most this long in the broker; a longer wait sleeps and the tick wakes it.
CHAIN_MAX_DELAY = 30.0
CANCELLED_REASON = gettext_noop("cancelada")
OPTED_OUT_REASON = gettext_noop("El cliente pidió la baja")


# --- launch ---------------------------------------------------------------------------------
def campaign_launch(*, campaign_id: int, now: datetime | None = None) -> bool:
    """draft/scheduled -> running with its recipients; False when another launcher won, is
    still materialising, or the campaign is in another state. The fan-out starts after
    commit."""
    now = now or timezone.now()
    with transaction.atomic():
        # PostgreSQL: a launch in progress holds the row; a second launcher (the tick enqueues
        # one every round until the first commits) gives up instead of waiting minutes for it.
        launchable = Campaign.objects.filter(pk=campaign_id, state__in=LAUNCHABLE)
        campaign = launchable.select_for_update(skip_locked=True).first()
        if campaign is None:
            return False
        won = launchable.update(
            state=State.RUNNING,
            launched_at=now,
            fanout_token=F("fanout_token") + 1,
            fanout_next_at=now,
        )
        if not won:
            return False
        campaign.state, campaign.launched_at = State.RUNNING, now
        campaign.fanout_token, campaign.fanout_next_at = campaign.fanout_token + 1, now
        total, excluded = recipients_materialise(campaign=campaign, now=now)
        Campaign.objects.filter(pk=campaign.pk).update(
            recipients_total=total, opted_out_excluded=excluded
        )
        fanout_enqueue_on_commit(campaign.pk, campaign.fanout_token)
    logger.info("campaign %s launched: %s recipients, %s opted out", campaign_id, total, excluded)
    return True


def _renderer(campaign: Campaign, body: str, service, today) -> Callable[..., tuple[str, str]]:
    """customer -> (text, skip reason), the body validated and split once."""
    try:
        render = template_renderer(body, extra=campaign.extra, service=service, today=today)
    except TemplateError as error:
        invalid = str(error)[:300]
        return lambda customer: ("", invalid)
    too_long = _("El mensaje supera los %(max)s caracteres.") % {"max": TEXT_MAX}

    def text_of(customer) -> tuple[str, str]:
        try:
            text = render(customer)
        except MissingValue as missing:
            return "", f"{{{missing.variable}}}: {missing.reason}"[:300]
        except TemplateError as error:
            return "", str(error)[:300]
        return ("", too_long) if len(text) > TEXT_MAX else (text, "")

    return text_of


class _Subscriptions(list):
    """What template_render reads of `customer.subscriptions`: `.all()`."""

    def all(self):
        return self


@dataclass(frozen=True, slots=True)
class _Subscription:
    service_id: int
    service: Service
    price: Decimal
    expires_on: date


@dataclass(frozen=True, slots=True)
class _Customer:
    """The fields template_render reads of a customer, without a model instance: a launch to
    a million customers builds none (building them was most of its time and memory)."""

    name: str
    subscriptions: _Subscriptions


def _needs_subscriptions(bodies: list[str]) -> bool:
    variables = set().union(*(template_variables(body) for body in bodies))
    return bool(variables & (CUSTOMER_VARIABLES.keys() - {"nombre"}))


def _audience_chunks(customers: QuerySet[Customer], *, subscriptions: bool):
    """Lists of (customer id, _Customer) in customer id order, CHUNK at a time (keyset on the
    id), each with their subscriptions when the bodies need them."""
    customers = customers.order_by("pk")
    services = {s.pk: s for s in Service.objects.all()} if subscriptions else {}
    last = 0
    while True:
        rows = list(customers.filter(pk__gt=last).values_list("pk", "name")[:CHUNK])
        if not rows:
            return
        last = rows[-1][0]
        found: dict[int, _Subscriptions] = defaultdict(_Subscriptions)
        if subscriptions:
            # By id range, not IN (2,000 ids): the others in the range are simply not looked up.
            # By id: subscription_for keeps this order among equal expiry dates, as the SQL
            # path's tie-break does.
            subs = Subscription.objects.filter(
                customer_id__gte=rows[0][0], customer_id__lte=last
            ).order_by("pk")
            for customer_id, service_id, price, expires_on in subs.values_list(
                "customer_id", "service_id", "price", "expires_on"
            ):
                found[customer_id].append(
                    _Subscription(service_id, services[service_id], price, expires_on)
                )
        yield [(pk, _Customer(name, found[pk])) for pk, name in rows]


def recipients_materialise(*, campaign: Campaign, now: datetime) -> tuple[int, int]:
    """Write every recipient (idempotent: existing rows are kept). (recipients, opted out).
    In one statement where SQL can make the text (_sql_path); else customers are read as
    tuples and the recipients written one statement per CHUNK, so time and memory stay the
    same per customer however large the audience."""
    customers, excluded = campaign_audience(campaign)
    variants = list(campaign.variants.all())
    rng = random.Random(campaign.pk)
    service = _single_service(campaign.filters)
    today = _local(now).date()
    bodies = [v.body for v in variants] or [campaign.body]
    render = {
        variant.pk if variant else None: _renderer(
            campaign, variant.body if variant else campaign.body, service, today
        )
        for variant in variants or [None]  # type: ignore[list-item]  # None: the campaign's body
    }
    plans: dict[int | None, datetime] = {}
    fresh = not CampaignRecipient.objects.filter(campaign=campaign).exists()
    if _sql_path(campaign, variants):
        written = recipients_insert_select(
            campaign=campaign,
            customers=customers,
            service_id=service,
            today=today,
            planned=planned_at(campaign, hour=None, now=now),
            fresh=fresh,
        )
        if written is not None:
            total = (
                written if fresh else CampaignRecipient.objects.filter(campaign=campaign).count()
            )
            return total, excluded
    assign = channel_assigner(campaign, now=now)
    for chunk in _audience_chunks(customers, subscriptions=_needs_subscriptions(bodies)):
        ids = [pk for pk, _ in chunk]
        hours = best_hours(ids, now=now) if campaign.best_hour else {}
        rows = []
        for (pk, customer), channel in zip(chunk, assign(ids), strict=True):
            variant = rng.choice(variants) if variants else None
            text, reason = render[variant.pk if variant else None](customer)
            hour = hours.get(pk)
            if hour not in plans:
                plans[hour] = planned_at(campaign, hour=hour, now=now)
            state = RState.SKIPPED if reason else RState.PENDING
            variant_id = variant.pk if variant else None
            rows.append((pk, variant_id, state, reason, text, plans[hour], channel))
        _recipients_insert(campaign, rows, fresh=fresh)
    total = CampaignRecipient.objects.filter(campaign=campaign).count()
    return total, excluded


def _sql_path(campaign: Campaign, variants: list) -> bool:
    """Whether the recipients can be written by one INSERT ... SELECT with the text made in
    SQL (sqlbody.py): one body, one number, no best hour, PostgreSQL. Variants (a seeded
    random choice per customer), best hours (read from each customer's history) and an
    audience split over numbers (dealt as the chunks go) stay on the Python path."""
    return (
        SQL_BODY
        and connection.vendor == "postgresql"
        and not variants
        and not campaign.best_hour
        and len(campaign.channel_keys) == 1
    )


RECIPIENT_COLUMNS = (
    "customer_id",
    "variant_id",
    "state",
    "skip_reason",
    "body",
    "planned_at",
    "channel",
)


def _recipients_insert(campaign: Campaign, rows: list[tuple], *, fresh: bool) -> None:
    """rows of RECIPIENT_COLUMNS. PostgreSQL: COPY when the campaign had no recipient (a
    launch: its transaction holds the campaign, nobody else writes them), else one INSERT ...
    SELECT FROM unnest(...) where a customer already a recipient keeps their row."""
    if connection.vendor != "postgresql":
        CampaignRecipient.objects.bulk_create(
            [
                CampaignRecipient(
                    campaign=campaign, **dict(zip(RECIPIENT_COLUMNS, row, strict=True))
                )
                for row in rows
            ],
            ignore_conflicts=True,
        )
        return
    table = CampaignRecipient._meta.db_table
    columns = f"campaign_id, {', '.join(RECIPIENT_COLUMNS)}"
    with connection.cursor() as cursor:
        if fresh:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((campaign.pk, *row))
            return
        cursor.execute(
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], "
            "%s::text[], %s::timestamptz[], %s::text[]) "
            "ON CONFLICT (campaign_id, customer_id) DO NOTHING",
            [campaign.pk, *(list(column) for column in zip(*rows, strict=True))],
        )


# --- fan-out --------------------------------------------------------------------------------
def recipients_sync(*, campaign: Campaign, oldest: int | None = None) -> None:
    """Queued recipients take the outcome of their message once it has one; an unknown one
    whose message the echo settled after all (it came later than the wait) becomes sent.
    `oldest`: look only at that many queued recipients, the first queued (their messages
    leave first), so that a run costs the same with 1,000 or 1,000,000 queued; the fan-out
    passes it while recipients are still pending and syncs them all at the end."""
    CampaignRecipient.objects.filter(
        campaign=campaign, state=RState.UNKNOWN, message__status__in=Message.REACHED_STATUSES
    ).update(state=RState.SENT)
    queued = CampaignRecipient.objects.filter(campaign=campaign, state=RState.QUEUED)
    if oldest is not None:
        # recipient_due_idx (campaign, state, channel, planned_at) gives each number's in
        # order, LIMIT stops it.
        settled = []
        for key in campaign.channel_keys:
            head = (
                queued.filter(channel=campaign.recipient_channel(key))
                .order_by("planned_at")
                .values_list("pk", "message__status")[:oldest]
            )
            settled += [pk for pk, status in head if status not in Message.OPEN_STATUSES]
        if not settled:
            return
        queued = CampaignRecipient.objects.filter(pk__in=settled, state=RState.QUEUED)
    # One read first: while every queued message is still in flight (most runs of a large
    # campaign), the updates below would each scan the whole queue for nothing.
    elif not queued.exclude(message__status__in=Message.OPEN_STATUSES).exists():
        return
    queued.filter(message__status__in=Message.REACHED_STATUSES).update(state=RState.SENT)
    queued.filter(message__status=MStatus.FAILED).update(state=RState.FAILED)
    queued.filter(message__status=MStatus.UNKNOWN).update(state=RState.UNKNOWN)
    cancelled = queued.filter(message__status=MStatus.CANCELLED)
    cancelled.filter(customer__marketing_opt_out_at__isnull=False).update(
        state=RState.OPTED_OUT, skip_reason=_(OPTED_OUT_REASON)
    )
    cancelled.update(state=RState.SKIPPED, skip_reason=_(CANCELLED_REASON))
    queued.filter(message__isnull=True).update(
        state=RState.SKIPPED, skip_reason=_("el mensaje fue eliminado")
    )


def campaign_complete_if_done(*, campaign: Campaign, now: datetime | None = None) -> bool:
    open_states = (RState.PENDING, RState.QUEUED)
    if CampaignRecipient.objects.filter(campaign=campaign, state__in=open_states).exists():
        return False
    done = Campaign.objects.filter(pk=campaign.pk, state=State.RUNNING).update(
        state=State.COMPLETED, completed_at=now or timezone.now(), fanout_next_at=None
    )
    if done:
        logger.info("campaign %s completed", campaign.pk)
    return bool(done)


def channel_pace(channel_key: str) -> float:
    """Sends a second the number's limiter allows (the pipeline's: a Cloud API number its own,
    every WaSender session WaSender's)."""
    channel = channels.channel_cached(channel_key)
    return float(channel.pace) if channel.pace else 1.0 / ratelimit.send_interval()


def _campaign_outbound(channel_key: str):
    return Message.objects.filter(
        direction=Message.Direction.OUT,
        author_kind=Message.Author.CAMPAIGN,
        conversation__channel_id=channel_key,
    )


def fanout_lookahead(*, now: datetime, channel_key: str = DEFAULT_CHANNEL) -> int:
    """How many campaign sends may wait for the number's pipeline: what it sent over the last
    THROUGHPUT_SECONDS, scaled to FANOUT_AHEAD_SECONDS, plus FANOUT_RAMP to grow from; never
    more than its limiter allows in that time. Sized by what really goes out (a slow
    provider or a busy worker sends less than the limit), so a pause drains within seconds."""
    limit = math.ceil(channel_pace(channel_key) * FANOUT_AHEAD_SECONDS)
    recent = (
        _campaign_outbound(channel_key)
        .filter(sent_at__gte=now - timedelta(seconds=THROUGHPUT_SECONDS))
        .count()
    )
    observed = math.ceil(recent * FANOUT_AHEAD_SECONDS / THROUGHPUT_SECONDS)
    return max(1, min(limit, FANOUT_MAX_BATCH, observed + FANOUT_RAMP))


def campaign_backlog(channel_key: str = DEFAULT_CHANNEL) -> int:
    """Campaign messages waiting for the number's send pipeline, every campaign together
    (they share its limiter, so they are all ahead of the next one)."""
    return _campaign_outbound(channel_key).filter(status__in=Message.IN_FLIGHT_STATUSES).count()


def recipients_queue(
    *, recipients: list[CampaignRecipient], now: datetime, channel: str = DEFAULT_CHANNEL
) -> int:
    """pending -> queued, each with its message, in one transaction (a crash writes none of
    them). Recipients another chain holds or took, or of a campaign no longer running, are
    left alone. A marketing campaign runs for days: who opted out since the launch is
    skipped here, not sent to. Returns how many were queued."""
    with transaction.atomic():
        # PostgreSQL: rows locked by a concurrent chain are skipped, not waited for. SQLite
        # ignores this and serialises the writers instead. By primary key alone, the campaign
        # and the opt-outs read after: joined to the campaign, this read let the planner walk
        # the campaign's whole pending index when the statistics predate the launch (right
        # after it, until autovacuum analyses): 290 ms a batch at 1,000,000 recipients.
        rows = list(
            CampaignRecipient.objects.filter(
                pk__in=[r.pk for r in recipients], state=RState.PENDING
            )
            .select_for_update(skip_locked=True)
            .values_list("pk", "campaign_id", "customer_id")
        )
        kinds = dict(
            Campaign.objects.filter(
                pk__in={campaign for _, campaign, _ in rows}, state=State.RUNNING
            ).values_list("pk", "kind")
        )
        marketing_customers = {
            c for _, campaign, c in rows if kinds.get(campaign) in MARKETING_KINDS
        }
        opted: set[int] = set(
            Customer.objects.filter(
                pk__in=marketing_customers, marketing_opt_out_at__isnull=False
            ).values_list("pk", flat=True)
        )
        claimed: set[int]
        opted_out: set[int]
        claimed, opted_out, marketing = set(), set(), False
        for pk, campaign, customer in rows:
            if campaign not in kinds:
                continue  # no longer running
            marketing = kinds[campaign] in MARKETING_KINDS
            (opted_out if marketing and customer in opted else claimed).add(pk)
        CampaignRecipient.objects.filter(pk__in=opted_out, state=RState.PENDING).update(
            state=RState.OPTED_OUT, skip_reason=_(OPTED_OUT_REASON)
        )
        CampaignRecipient.objects.filter(pk__in=claimed).update(state=RState.QUEUED, queued_at=now)
        ready = _sendable([r for r in recipients if r.pk in claimed])
        sends = [(r.customer_id, r.body) for r in ready]
        messages = messages_send_bulk(
            sends=sends, author_kind=Message.Author.CAMPAIGN, marketing=marketing, channel=channel
        )
        for recipient, message in zip(ready, messages, strict=True):
            recipient.message = message
        _messages_link(ready)
    return len(ready)


def _messages_link(recipients: list[CampaignRecipient]) -> None:
    """One UPDATE for the batch (bulk_update's CASE costs about a millisecond a row)."""
    if not recipients:
        return
    table = CampaignRecipient._meta.db_table
    values = ", ".join(["(%s, %s)"] * len(recipients))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET message_id = v.column2 FROM (VALUES {values}) AS v "  # noqa: S608
            f"WHERE {table}.id = v.column1",
            [x for r in recipients for x in (r.pk, r.message_id)],
        )


def _sendable(recipients: list[CampaignRecipient]) -> list[CampaignRecipient]:
    """Those whose body message_send would take; the others are skipped with its reason."""
    ready = []
    for recipient in recipients:
        try:
            recipient.body = text_check(recipient.body)
        except SendRejected as rejected:
            CampaignRecipient.objects.filter(pk=recipient.pk).update(
                state=RState.SKIPPED, skip_reason=rejected.message[:300]
            )
            continue
        ready.append(recipient)
    return ready


def campaign_fanout_step(
    *, campaign_id: int, token: int, now: datetime | None = None, paced: bool = True
):
    """One batch. Returns the seconds until the next run, or None when the chain ends.
    `paced=False` lifts the look-ahead (CHUNK recipients every run, whatever the backlog):
    only for the benchmark, which measures how fast sends can be enqueued."""
    now = now or timezone.now()
    campaign = Campaign.objects.filter(pk=campaign_id, fanout_token=token).first()
    if campaign is None or campaign.state != State.RUNNING:
        return None
    # A heartbeat: the tick leaves a chain alone while it is working.
    Campaign.objects.filter(pk=campaign.pk, fanout_token=token).update(
        fanout_next_at=timezone.now() + timedelta(seconds=FANOUT_STEP_SECONDS)
    )
    pending = CampaignRecipient.objects.filter(campaign=campaign, state=RState.PENDING)
    recipients_sync(campaign=campaign, oldest=SYNC_OLDEST if pending.exists() else None)
    if campaign_complete_if_done(campaign=campaign, now=now):
        return None
    opens = window_open_at(campaign, now=now)
    if opens > now:
        return (opens - now).total_seconds()
    started = time_monotonic()
    delays = []
    for key in campaign.channel_keys:
        with _limit_serialised(key):
            delay = _fanout_channel(campaign, key, now=now, paced=paced, started=started)
        if delay == 0.0:
            return 0.0  # the run's time is up: the next run goes on at once
        if delay is not None:
            delays.append(delay)
    # None: no number has a pending recipient (only queued ones left: wait for their outcome).
    return min(delays) if delays else 1.0


@contextmanager
def _limit_serialised(channel_key: str):
    """On a number with Meta's messaging limit, one fan-out at a time counts what the number
    reached and queues within it (a transaction holding a lock on the number), so that several
    campaigns on it never pass the limit together. Elsewhere, nothing."""
    if channel_limit(channel_key) is None or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        number = zlib.crc32(channel_key.encode()) - 2**31  # an int4, as the lock takes
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LIMIT_LOCK_SPACE, number])
        yield


def _fanout_channel(
    campaign: Campaign, key: str, *, now: datetime, paced: bool, started: float
) -> float | None:
    """The step's work for the recipients going out from one number. The seconds until this
    number wants the next run (0.0: the run's time is up), or None when none of them is
    pending."""
    pending = CampaignRecipient.objects.filter(
        campaign=campaign, state=RState.PENDING, channel=campaign.recipient_channel(key)
    )
    room = fanout_lookahead(now=now, channel_key=key) - campaign_backlog(key) if paced else CHUNK
    room, held = meta_limit_room(channel_key=key, room=room, now=now)
    if held is not None:
        return held if pending.exists() else None
    interval_s = 1.0 / channel_pace(key)
    if room <= 0:
        if not pending.exists():
            return None
        return min(max(interval_s * (1 - room), 0.2), 2.0)
    # Read a transaction's worth at a time, not the whole room: a run that hands over after
    # FANOUT_STEP_SECONDS has built no recipient it did not queue. By planned_at alone:
    # recipient_due_idx gives them in that order and LIMIT stops the scan, where a tie-break
    # on pk would sort every due recipient (all of them, at launch) on every run; ties come
    # in index order (the order they were written: customer id).
    due = pending.filter(planned_at__lte=now).order_by("planned_at")
    seen: set[int]
    taken, seen = 0, set()
    while taken < room:
        batch = list(due[: min(FANOUT_TRANSACTION, room - taken)])
        if not batch or batch[0].pk in seen:  # none left, or only rows another chain holds
            break
        batch.sort(key=lambda recipient: (recipient.planned_at, recipient.pk))
        seen.update(recipient.pk for recipient in batch)
        recipients_queue(recipients=batch, now=now, channel=key)
        taken += len(batch)
        if time_monotonic() - started > FANOUT_STEP_SECONDS:
            return 0.0
    if not taken:
        next_planned = pending.order_by("planned_at").values_list("planned_at", flat=True).first()
        if next_planned is None:
            return None
        return max((window_open_at(campaign, now=next_planned) - now).total_seconds(), 0.5)
    return min(max(interval_s * taken / 2, 0.2), 2.0)


def fanout_enqueue_on_commit(campaign_id: int, token: int) -> None:
    transaction.on_commit(lambda: campaign_fanout.send(campaign_id, token))


def fanout_continue(*, campaign_id: int, token: int, delay: float | None) -> None:
    """Promise the next run (for the tick's stall check) and enqueue it, or let a long wait
    sleep: the promise is then set so that the tick wakes the chain when the wait is over."""
    if delay is None:
        return
    delay = max(delay, 0.0)
    now = timezone.now()
    stall = timedelta(seconds=settings.CAMPAIGN_STALL_SECONDS)
    if delay > CHAIN_MAX_DELAY:
        Campaign.objects.filter(pk=campaign_id, fanout_token=token).update(
            fanout_next_at=now + timedelta(seconds=delay) - stall
        )
        return
    Campaign.objects.filter(pk=campaign_id, fanout_token=token).update(
        fanout_next_at=now + timedelta(seconds=delay)
    )
    campaign_fanout.send_with_options(args=(campaign_id, token), delay=int(delay * 1000))


@dramatiq.actor(
    actor_name="outbound.campaign_fanout", queue_name="campaigns", max_retries=0, time_limit=120_000
)
def campaign_fanout(campaign_id: int, token: int) -> None:
    delay = campaign_fanout_step(campaign_id=campaign_id, token=token)
    fanout_continue(campaign_id=campaign_id, token=token, delay=delay)


@dramatiq.actor(
    actor_name="outbound.campaign_launch", queue_name="campaigns", max_retries=0, time_limit=600_000
)
def campaign_launch_task(campaign_id: int) -> None:
    try:
        campaign_launch(campaign_id=campaign_id)
    except Exception as error:
        logger.exception("campaign %s did not launch", campaign_id)
        campaign_launch_failed(campaign_id=campaign_id, error=error)


def campaign_launch_failed(*, campaign_id: int, error: Exception) -> bool:
    """Count a failed launch (its transaction rolled back: the campaign is still scheduled);
    at LAUNCH_MAX_ATTEMPTS it ends `failed` with a reason a person can read. True then."""
    detail = str(error)[:200] or type(error).__name__
    reason = _("No se pudo lanzar la campaña: %(detail)s") % {"detail": detail}
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign_id, state__in=LAUNCHABLE).update(
            launch_attempts=F("launch_attempts") + 1, failure_reason=reason[:300]
        )
        failed = Campaign.objects.filter(
            pk=campaign_id, state__in=LAUNCHABLE, launch_attempts__gte=LAUNCH_MAX_ATTEMPTS
        ).update(state=State.FAILED, failed_at=timezone.now(), fanout_next_at=None)
    if failed:
        logger.warning("campaign %s failed: %s", campaign_id, reason)
    return bool(failed)


def launch_enqueue_on_commit(campaign_id: int) -> None:
    transaction.on_commit(lambda: campaign_launch_task.send(campaign_id))


# --- the scheduler tick -------------------------------------------------------------------------
def fanout_kick(*, campaign: Campaign, now: datetime) -> bool:
    """Start a new chain for a running campaign whose chain broke its promise; one kicker
    wins (the token moves only from the value this kicker read)."""
    kicked = Campaign.objects.filter(
        pk=campaign.pk, state=State.RUNNING, fanout_token=campaign.fanout_token
    ).update(fanout_token=F("fanout_token") + 1, fanout_next_at=now)
    if kicked:
        token = campaign.fanout_token + 1
        transaction.on_commit(lambda: campaign_fanout.send(campaign.pk, token))
    return bool(kicked)


def campaign_tick(*, now: datetime | None = None) -> dict:
    """Enqueues the launch of due campaigns rather than launching them here: materialising a
    large audience takes minutes, and the other campaigns' stall checks must not wait for it.
    A launch still in progress is enqueued again on every tick; those extra tasks return at
    once (see campaign_launch)."""
    now = now or timezone.now()
    due = list(
        Campaign.objects.filter(state=State.SCHEDULED, scheduled_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    for campaign_id in due:
        launch_enqueue_on_commit(campaign_id)
    stalled = Campaign.objects.filter(state=State.RUNNING).filter(
        Q(fanout_next_at__isnull=True)
        | Q(fanout_next_at__lt=now - timedelta(seconds=settings.CAMPAIGN_STALL_SECONDS))
    )
    kicked = sum(fanout_kick(campaign=campaign, now=now) for campaign in stalled)
    # The evidence for an unknown send may come after its campaign completed (its echo later
    # than the wait): the recipient follows its message for a day.
    revived = CampaignRecipient.objects.filter(
        campaign__completed_at__gte=now - timedelta(days=1),
        state=RState.UNKNOWN,
        message__status__in=Message.REACHED_STATUSES,
    ).update(state=RState.SENT)
    return {"enqueued": len(due), "kicked": kicked, "revived": revived}


@interval(seconds=settings.CAMPAIGN_TICK_SECONDS)
@dramatiq.actor(
    actor_name="outbound.campaigns_tick", queue_name="campaigns", max_retries=0, time_limit=600_000
)
def campaigns_tick() -> None:
    counts = campaign_tick()
    if any(counts.values()):
        logger.info("campaigns tick: %s", counts)
