"""Campaigns: one message to an audience, sent once per customer, paced, pausable.

Life: draft -> scheduled -> running -> completed, with paused (and back) and cancelled; a
launch that fails LAUNCH_MAX_ATTEMPTS times (a body that cannot be rendered, a segment that
errors) ends `failed` with the reason, instead of being tried again by every tick.

Launch (`campaign_launch`): one conditional update moves the campaign from draft or scheduled
to running, and in the same transaction its recipients are written in bulk (one row per
customer, unique per campaign: `bulk_create(ignore_conflicts=True)` in chunks), each with its
variant (random, seeded by the campaign id, so a relaunch of the same data assigns the same
variants), its rendered body, and when it may be sent (`planned_at`). A customer the body
cannot be filled for (MissingValue) is written `skipped` with the reason. Two launch tasks
racing both try the update; the loser sees the state already moved and does nothing.

Fan-out (`campaign_fanout`, a Dramatiq actor re-enqueued by itself): each run takes the next
pending recipients whose planned time has come, and for each, in one transaction, moves it
pending -> queued (a conditional update that also requires the campaign to be running) and
writes its Message as `message_send(author_kind="campaign")` would (`messages_send_bulk`: the
same rows, events and jobs, a few queries per batch). It only fans out what the
shared rate limiter can send in about FANOUT_AHEAD_SECONDS, counting the campaign messages
already waiting: the queued backlog stays small, so a pause (which the send pipeline cannot
see) lets at most that much go out after it. Runs carry a token: resume and the tick's re-kick
bump it, so an old chain stops instead of running twice as fast.

Window: sends only between `window_start` and `window_end`, Guayaquil time; outside, the
chain sleeps until the next opening (the tick wakes it).

Best hour: a customer's best hour is the local hour in which they most often wrote to us or
read one of our messages over the last BEST_HOUR_DAYS days (ties: the earliest hour). It is
moved into the window (before it: the window's start; at or after its end: the window's last
hour), and `planned_at` is the next time that hour comes round (now, when we are inside it).
A customer with no history is planned for the earliest moment the window allows.

Completion: when no recipient is pending or queued (a queued recipient takes its outcome from
its message: sent, failed, unknown, or opted_out when the customer opted out before it left;
an unconfirmed message keeps it queued until the evidence or the sweeper settles it). Checked
by the fan-out and by the tick.

Opt-out: a marketing campaign's messages are `marketing`; the send pipeline's claim skips (and
cancels) one whose customer opted out after it was queued, and an opt-out cancels the
customer's waiting ones at once (outbound.services.marketing_messages_cancel).

The tick (`campaigns_tick`, every CAMPAIGN_TICK_SECONDS): enqueues the launch of due scheduled
campaigns (a worker runs it; the launch's conditional update makes one of them win) and
re-kicks running ones whose chain missed its promised time by CAMPAIGN_STALL_SECONDS (a worker
killed mid-run, a lost broker message): a kick is a conditional update of the token, so two
ticks kick once.
"""

import logging
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from time import monotonic as time_monotonic

import dramatiq
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import ExtractHour
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from dramatiq_crontab import interval

from customers.models import Customer, Renewal, Segment, Subscription
from inbox.models import Message
from outbound import ratelimit
from outbound.models import (
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    MessageTemplate,
)
from outbound.pipeline import status_publish
from outbound.segments import (
    SegmentFilterError,
    segment_count,
    segment_filters_clean,
    segment_queryset,
)
from outbound.services import TEXT_MAX, SendRejected, messages_send_bulk, text_check
from outbound.templating import (
    CAMPAIGN_VARIABLES,
    MissingValue,
    TemplateError,
    campaign_values_errors,
    template_render,
    template_validate,
    template_variables,
)

logger = logging.getLogger(__name__)

State = Campaign.State
RState = CampaignRecipient.State
MStatus = Message.Status

MARKETING_KINDS = (Campaign.Kind.MARKETING, Campaign.Kind.EVENT)
LAUNCHABLE = (State.DRAFT, State.SCHEDULED)
FINISHED = (State.COMPLETED, State.CANCELLED, State.FAILED)
LAUNCH_MAX_ATTEMPTS = 3
VARIANT_LABELS = ("A", "B", "C")
CHUNK = 2000
FANOUT_AHEAD_SECONDS = 2.0
FANOUT_MAX_BATCH = 500
# Recipients written per transaction, and how long one run may keep writing before it hands
# over to the next run (the tick's stall check must allow well more than that).
FANOUT_TRANSACTION = 250
FANOUT_RAMP = 10
THROUGHPUT_SECONDS = 5
FANOUT_STEP_SECONDS = 1.5
# A chain waits at most this long in the broker; a longer wait sleeps and the tick wakes it.
CHAIN_MAX_DELAY = 30.0
BEST_HOUR_DAYS = 90
REPLY_DAYS = 3
RENEWAL_DAYS = 7
REACHED = (MStatus.SENT, MStatus.DELIVERED, MStatus.READ, MStatus.PLAYED)
DELIVERED = (MStatus.DELIVERED, MStatus.READ, MStatus.PLAYED)
READ = (MStatus.READ, MStatus.PLAYED)
# Waiting for the send pipeline (what the fan-out's look-ahead counts).
IN_FLIGHT = (MStatus.QUEUED, MStatus.SENDING)
# Not settled yet: the recipient stays queued.
UNSETTLED = (*IN_FLIGHT, MStatus.UNCONFIRMED)
# Farther than this is a typo (and near year 9999, a date the database cannot hold).
SCHEDULE_AHEAD_MAX = timedelta(days=366)
CANCELLED_REASON = gettext_noop("cancelada")
OPTED_OUT_REASON = gettext_noop("El cliente pidió la baja")


class CampaignInvalid(ValueError):
    """Bad input for a campaign: `errors` maps a field to a Spanish message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {value}" for key, value in errors.items()))
        self.errors = errors


class CampaignStateError(ValueError):
    """The action does not apply to the campaign's current state."""


# --- create, schedule, duplicate, retarget ----------------------------------------------------
def _body_errors(body: str, extra: dict, *, field: str) -> dict[str, str]:
    if not body.strip():
        return {field: _("Escriba el mensaje o elija una plantilla.")}
    errors = template_validate(body)
    if errors:
        return {field: " ".join(errors)}
    unfilled = sorted(
        name
        for name in template_variables(body)
        if name in CAMPAIGN_VARIABLES and not str(extra.get(name, "")).strip()
    )
    if "precio_descuento" in template_variables(body) and not str(extra.get("descuento", "")):
        unfilled = sorted({*unfilled, "descuento"})
    if unfilled:
        names = ", ".join(f"{{{name}}}" for name in unfilled)
        return {field: _("Falta el valor de la campaña para: %(names)s") % {"names": names}}
    if len(body) > TEXT_MAX:
        return {field: _("El mensaje supera los %(max)s caracteres.") % {"max": TEXT_MAX}}
    return {}


def campaign_validate(
    *,
    title: str,
    kind: str,
    body: str,
    extra: dict,
    variants: list[str],
    filters: dict | None,
    window_start: time,
    window_end: time,
    scheduled_at: datetime | None = None,
) -> tuple[dict, dict[str, str]]:
    """(clean filters, errors). A past `scheduled_at` is fine: it means now."""
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = _("Escriba un título.")
    if kind not in Campaign.Kind.values:
        errors["kind"] = _("Tipo de campaña desconocido.")
    unknown = sorted(set(extra) - set(CAMPAIGN_VARIABLES))
    if unknown:
        errors["extra"] = _("Variables de campaña desconocidas: %(names)s") % {
            "names": ", ".join(unknown)
        }
    errors.update(campaign_values_errors(extra))
    errors.update(_body_errors(body, extra, field="body"))
    if len(variants) > len(VARIANT_LABELS) - 1:
        errors["variants"] = _("Como máximo tres variantes del mensaje.")
    for label, text in zip(VARIANT_LABELS[1:], variants, strict=False):
        errors.update(_body_errors(text, extra, field=f"variant_{label.lower()}"))
    if not window_start < window_end:
        errors["window"] = _("La hora de inicio debe ser anterior a la de fin.")
    if scheduled_at is not None and scheduled_at > timezone.now() + SCHEDULE_AHEAD_MAX:
        errors["send_at"] = _("La fecha de envío no puede estar a más de un año.")
    clean: dict = {}
    if filters is not None:
        try:
            clean = segment_filters_clean(filters)
        except SegmentFilterError as error:
            errors["filters"] = "; ".join(f"{k}: {v}" for k, v in error.errors.items())
    return clean, errors


@transaction.atomic
def campaign_create(
    *,
    title: str,
    body: str = "",
    kind: str = Campaign.Kind.MARKETING,
    template: MessageTemplate | None = None,
    extra: dict | None = None,
    segment: Segment | None = None,
    filters: dict | None = None,
    variants: Iterable[str] = (),
    scheduled_at: datetime | None = None,
    window_start: time | None = None,
    window_end: time | None = None,
    best_hour: bool = False,
    created_by=None,
    retarget_of: Campaign | None = None,
    retarget_audience: str = "",
) -> Campaign:
    """A draft, or a scheduled campaign when `scheduled_at` is given (a time already past
    launches as soon as a worker takes it). Without a body, the template's is copied. Raises
    CampaignInvalid."""
    if extra is not None and not isinstance(extra, dict):
        raise CampaignInvalid({"extra": _("Las variables deben ser un objeto de textos.")})
    extra = {k: str(v).strip() for k, v in (extra or {}).items() if str(v).strip()}
    body = (body or "").strip() or (template.body if template else "")
    variants = [v.strip() for v in variants if v and v.strip()]
    if segment is not None and filters is None:
        filters = segment.filters
    window_start = window_start or time(9, 0)
    window_end = window_end or time(20, 0)
    clean, errors = campaign_validate(
        title=title,
        kind=kind,
        body=body,
        extra=extra,
        variants=variants,
        filters=filters if retarget_of is None else None,
        window_start=window_start,
        window_end=window_end,
        scheduled_at=scheduled_at,
    )
    if errors:
        raise CampaignInvalid(errors)
    campaign = Campaign.objects.create(
        title=title.strip()[:200],
        kind=kind,
        template=template,
        body=body,
        extra=extra,
        segment=segment,
        filters=clean,
        retarget_of=retarget_of,
        retarget_audience=retarget_audience,
        window_start=window_start,
        window_end=window_end,
        best_hour=best_hour,
        created_by=created_by,
    )
    if variants:
        CampaignVariant.objects.bulk_create(
            CampaignVariant(campaign=campaign, label=label, body=text)
            for label, text in zip(VARIANT_LABELS, [body, *variants], strict=False)
        )
    if scheduled_at is not None:
        campaign_schedule(campaign=campaign, at=scheduled_at)
    return campaign


def campaign_schedule(*, campaign: Campaign, at: datetime) -> None:
    """draft or scheduled -> scheduled at `at`; a due time launches on the next worker."""
    updated = Campaign.objects.filter(pk=campaign.pk, state__in=LAUNCHABLE).update(
        state=State.SCHEDULED, scheduled_at=at
    )
    if not updated:
        raise CampaignStateError(_("Solo se puede programar un borrador o una campaña programada."))
    campaign.state, campaign.scheduled_at = State.SCHEDULED, at
    if at <= timezone.now():
        launch_enqueue_on_commit(campaign.pk)


def campaign_launch_soon(*, campaign: Campaign) -> None:
    """ "Send now": scheduled for now; a worker launches it (materialising a large audience
    takes longer than a web request should)."""
    campaign_schedule(campaign=campaign, at=timezone.now())


def campaign_duplicate(*, campaign: Campaign, created_by=None) -> Campaign:
    """A draft with the same message, variants, audience and window."""
    variants = [v.body for v in campaign.variants.all() if v.label != "A"]
    title = _("Copia de %(title)s") % {"title": campaign.title}
    copy = campaign_create(
        title=title[:200],
        body=campaign.body,
        kind=campaign.kind,
        template=campaign.template,
        extra=campaign.extra,
        segment=campaign.segment,
        filters=campaign.filters,
        variants=variants,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        best_hour=campaign.best_hour,
        created_by=created_by,
        retarget_of=campaign.retarget_of,
        retarget_audience=campaign.retarget_audience,
    )
    return copy


def campaign_retarget(
    *, campaign: Campaign, audience: str, body: str, title: str = "", created_by=None
) -> Campaign:
    """A draft follow-up to those of `campaign` who did not read (their message reached the
    phone but was not read) or did not reply (reached, and no message from them after it).
    The audience is taken when the follow-up launches, so who reads meanwhile drops out."""
    if audience not in Campaign.Audience.values:
        raise CampaignInvalid({"audience": _("Elija a quién reenviar.")})
    label = Campaign.Audience(audience).label
    default_title = _("%(title)s · seguimiento (%(who)s)") % {"title": campaign.title, "who": label}
    return campaign_create(
        title=(title or default_title)[:200],
        body=body,
        kind=campaign.kind,
        extra=campaign.extra,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        best_hour=campaign.best_hour,
        created_by=created_by,
        retarget_of=campaign,
        retarget_audience=audience,
    )


# --- audience -----------------------------------------------------------------------------
def _reached_message(outer: str = "message") -> QuerySet:
    return Message.objects.filter(pk=OuterRef(outer), status__in=REACHED)


def _reply_after(message_ref: str, *, days: int | None = None) -> QuerySet:
    """Inbound messages in the same conversation after the campaign message (within days)."""
    replies = Message.objects.filter(
        direction=Message.Direction.IN,
        conversation_id=OuterRef(f"{message_ref}__conversation_id"),
        created_at__gt=OuterRef(f"{message_ref}__created_at"),
    )
    if days is not None:
        replies = replies.filter(
            created_at__lte=OuterRef(f"{message_ref}__created_at") + timedelta(days=days)
        )
    return replies


def campaign_audience(campaign: Campaign) -> tuple[QuerySet[Customer], int]:
    """(the customers to write to, opted-out customers left out)."""
    marketing = campaign.kind in MARKETING_KINDS
    if campaign.retarget_of_id is None:
        customers = segment_queryset(campaign.filters, marketing=marketing)
        return customers, segment_count(campaign.filters, marketing=marketing)[1]
    source = CampaignRecipient.objects.filter(
        campaign_id=campaign.retarget_of_id, message__status__in=REACHED
    )
    if campaign.retarget_audience == Campaign.Audience.NOT_READ:
        source = source.exclude(message__status__in=READ)
    else:
        source = source.exclude(Exists(_reply_after("message")))
    customers = Customer.objects.filter(pk__in=source.values("customer_id"))
    if not marketing:
        return customers, 0
    excluded = customers.filter(marketing_opt_out_at__isnull=False).count()
    return customers.filter(marketing_opt_out_at__isnull=True), excluded


def _single_service(filters: dict) -> int | None:
    services = filters.get("services") or []
    return services[0] if len(services) == 1 else None


# --- window and best hour -------------------------------------------------------------------
def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


def _at(day: date, clock: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, clock))


def window_open_at(campaign: Campaign, *, now: datetime) -> datetime:
    """`now` inside the window, else the window's next opening (Guayaquil time)."""
    local = _local(now)
    if campaign.window_start <= local.time() < campaign.window_end:
        return now
    day = local.date() if local.time() < campaign.window_start else local.date() + timedelta(1)
    return _at(day, campaign.window_start)


def best_hour_slot(campaign: Campaign, hour: int) -> time:
    """The best hour moved inside the window."""
    if hour < campaign.window_start.hour or time(hour) < campaign.window_start:
        return campaign.window_start
    if time(hour) >= campaign.window_end:
        last = _at(date(2000, 1, 3), campaign.window_end) - timedelta(hours=1)
        return max(campaign.window_start, _local(last).time().replace(minute=0))
    return time(hour)


def planned_at(campaign: Campaign, *, hour: int | None, now: datetime) -> datetime:
    """When a recipient may be sent (see the module docstring)."""
    if hour is None or not campaign.best_hour:
        return window_open_at(campaign, now=now)
    slot = best_hour_slot(campaign, hour)
    local = _local(now)
    today = _at(local.date(), slot)
    if now < today:
        return today
    if now < today + timedelta(hours=1) and local.time() < campaign.window_end:
        return now
    return _at(local.date() + timedelta(1), slot)


def best_hours(customer_ids: list[int], *, now: datetime) -> dict[int, int]:
    """customer id -> their best local hour (see the module docstring), for those with any
    history."""
    since = now - timedelta(days=BEST_HOUR_DAYS)
    tz = timezone.get_current_timezone()
    tally: dict[int, Counter] = defaultdict(Counter)
    wrote = (
        Message.objects.filter(
            conversation__customer_id__in=customer_ids,
            direction=Message.Direction.IN,
            created_at__gte=since,
        )
        .annotate(hour=ExtractHour("created_at", tzinfo=tz))
        .values_list("conversation__customer_id", "hour")
        .annotate(n=Count("pk"))
    )
    read = (
        Message.objects.filter(
            conversation__customer_id__in=customer_ids,
            direction=Message.Direction.OUT,
            read_at__gte=since,
        )
        .annotate(hour=ExtractHour("read_at", tzinfo=tz))
        .values_list("conversation__customer_id", "hour")
        .annotate(n=Count("pk"))
    )
    for rows in (wrote, read):
        for customer_id, hour, n in rows.order_by():
            tally[customer_id][hour] += n
    return {
        customer_id: min(hours, key=lambda h: (-hours[h], h))
        for customer_id, hours in tally.items()
    }


# --- why a running campaign sends nothing right now -----------------------------------------
# A provider hold (429 with retry_after) longer than this, or than two ordinary gaps, is told.
HELD_MIN_SECONDS = 5.0


@dataclass(frozen=True)
class Waiting:
    """Why a running campaign is not sending, and when it starts again."""

    code: str  # "window", "best_hour" or "rate_limit"
    until: datetime
    label: str  # "en espera hasta las 09:00"
    reason: str  # "fuera de la ventana de envío (de 09:00 a 20:00)"

    @property
    def text(self) -> str:
        return f"{self.label}: {self.reason}"

    def as_dict(self) -> dict:
        return {"code": self.code, "until": self.until, "text": self.text}


def waiting_label(until: datetime, *, now: datetime) -> str:
    """ "en espera hasta las 09:00", "... hasta mañana a las 09:00", "... hasta el 9 de
    diciembre a las 09:00" (Guayaquil time)."""
    local, today = _local(until), _local(now).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return _("en espera hasta las %(time)s") % {"time": clock}
    if local.date() == today + timedelta(days=1):
        return _("en espera hasta mañana a las %(time)s") % {"time": clock}
    day = formats.date_format(local, "MONTH_DAY_FORMAT")
    return _("en espera hasta el %(day)s a las %(time)s") % {"day": day, "time": clock}


def campaign_waiting(
    *, campaign: Campaign, now: datetime | None = None, open_recipients: dict | None = None
) -> Waiting | None:
    """For a running campaign with nothing going out now: outside its sending window, each
    customer's best hour still to come, or the provider's rate limit holding every send.
    `open_recipients` ({"first_pending": datetime | None, "queued": int}) when the caller
    already counted them (the list and the progress poll, in their one query)."""
    if campaign.state != State.RUNNING:
        return None
    now = now or timezone.now()
    if open_recipients is None:
        open_recipients = CampaignRecipient.objects.filter(campaign=campaign).aggregate(
            **_open_counts()
        )
    first, queued = open_recipients["first_pending"], open_recipients["queued"]
    window = {
        "start": campaign.window_start.strftime("%H:%M"),
        "end": campaign.window_end.strftime("%H:%M"),
    }
    if first is not None:
        opens = window_open_at(campaign, now=now)
        if opens > now:
            until = window_open_at(campaign, now=max(first, opens))
            reason = _("fuera de la ventana de envío (de %(start)s a %(end)s)") % window
            return Waiting("window", until, waiting_label(until, now=now), reason)
        if first > now:
            until = window_open_at(campaign, now=first)
            reason = (
                _("cada cliente lo recibe a su mejor hora")
                if campaign.best_hour
                else _("los siguientes envíos están programados para más tarde")
            )
            return Waiting("best_hour", until, waiting_label(until, now=now), reason)
    elif not queued:
        return None
    held = ratelimit.bucket().held_for("default")
    if held > max(HELD_MIN_SECONDS, 2 * ratelimit.send_interval()):
        until = now + timedelta(seconds=math.ceil(held))
        reason = _("WhatsApp pidió una pausa (límite de envíos del proveedor)")
        return Waiting("rate_limit", until, waiting_label(until, now=now), reason)
    return None


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


def _render(campaign: Campaign, body: str, customer: Customer, service, today) -> tuple[str, str]:
    """(text, skip reason)."""
    try:
        text = template_render(
            body, customer=customer, extra=campaign.extra, service=service, today=today
        )
    except MissingValue as missing:
        return "", f"{{{missing.variable}}}: {missing.reason}"[:300]
    except TemplateError as error:
        return "", str(error)[:300]
    if len(text) > TEXT_MAX:
        return "", _("El mensaje supera los %(max)s caracteres.") % {"max": TEXT_MAX}
    return text, ""


def recipients_materialise(*, campaign: Campaign, now: datetime) -> tuple[int, int]:
    """Write every recipient (idempotent: existing rows are kept). (recipients, opted out)."""
    customers, excluded = campaign_audience(campaign)
    variants = list(campaign.variants.all())
    rng = random.Random(campaign.pk)
    service = _single_service(campaign.filters)
    today = _local(now).date()
    subscriptions = Subscription.objects.select_related("service")
    customers = customers.order_by("pk").prefetch_related(
        Prefetch("subscriptions", queryset=subscriptions)
    )
    last = 0
    while True:
        chunk = list(customers.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            break
        last = chunk[-1].pk
        hours = best_hours([c.pk for c in chunk], now=now) if campaign.best_hour else {}
        rows = []
        for customer in chunk:
            variant = rng.choice(variants) if variants else None
            text, reason = _render(
                campaign, variant.body if variant else campaign.body, customer, service, today
            )
            rows.append(
                CampaignRecipient(
                    campaign=campaign,
                    customer=customer,
                    variant=variant,
                    state=RState.SKIPPED if reason else RState.PENDING,
                    skip_reason=reason,
                    body=text,
                    planned_at=planned_at(campaign, hour=hours.get(customer.pk), now=now),
                )
            )
        CampaignRecipient.objects.bulk_create(rows, ignore_conflicts=True, batch_size=CHUNK)
    total = CampaignRecipient.objects.filter(campaign=campaign).count()
    return total, excluded


# --- pause, resume, cancel --------------------------------------------------------------------
def campaign_pause(*, campaign: Campaign) -> None:
    """running -> paused. The fan-out stops at its next recipient; what was already handed to
    the send pipeline (at most FANOUT_AHEAD_SECONDS of sends) still goes out."""
    if not Campaign.objects.filter(pk=campaign.pk, state=State.RUNNING).update(
        state=State.PAUSED, paused_at=timezone.now()
    ):
        raise CampaignStateError(_("Solo se puede pausar una campaña activa."))
    campaign.state = State.PAUSED


def campaign_resume(*, campaign: Campaign) -> None:
    """paused -> running: a new fan-out chain continues with those not yet sent."""
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, state=State.PAUSED).update(
            state=State.RUNNING,
            paused_at=None,
            fanout_token=F("fanout_token") + 1,
            fanout_next_at=timezone.now(),
        ):
            raise CampaignStateError(_("Solo se puede reanudar una campaña pausada."))
        campaign.refresh_from_db()
        fanout_enqueue_on_commit(campaign.pk, campaign.fanout_token)


def campaign_cancel(*, campaign: Campaign) -> None:
    """Ends it: pending recipients and messages not yet taken by a worker are skipped
    ("cancelada"); what is being sent right now finishes."""
    now = timezone.now()
    reason = _(CANCELLED_REASON)
    with transaction.atomic():
        if (
            not Campaign.objects.filter(pk=campaign.pk)
            .exclude(state__in=FINISHED)
            .update(state=State.CANCELLED, cancelled_at=now, fanout_token=F("fanout_token") + 1)
        ):
            raise CampaignStateError(_("La campaña ya terminó."))
        campaign.refresh_from_db()
        recipients = CampaignRecipient.objects.filter(campaign=campaign)
        recipients.filter(state=RState.PENDING).update(state=RState.SKIPPED, skip_reason=reason)
        waiting = Message.objects.filter(
            pk__in=recipients.filter(state=RState.QUEUED).values("message_id"),
            status=MStatus.QUEUED,
        )
        for message in list(waiting):
            if Message.objects.filter(pk=message.pk, status=MStatus.QUEUED).update(
                status=MStatus.CANCELLED, failure_reason=reason
            ):
                status_publish(message, MStatus.CANCELLED)
        recipients_sync(campaign=campaign)


# --- fan-out --------------------------------------------------------------------------------
def recipients_sync(*, campaign: Campaign) -> None:
    """Queued recipients take the outcome of their message once it has one; an unknown one
    whose message the echo settled after all (it came later than the wait) becomes sent."""
    CampaignRecipient.objects.filter(
        campaign=campaign, state=RState.UNKNOWN, message__status__in=REACHED
    ).update(state=RState.SENT)
    queued = CampaignRecipient.objects.filter(campaign=campaign, state=RState.QUEUED)
    # One read first: while every queued message is still in flight (most runs of a large
    # campaign), the updates below would each scan the whole queue for nothing.
    if not queued.exclude(message__status__in=UNSETTLED).exists():
        return
    queued.filter(message__status__in=REACHED).update(state=RState.SENT)
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


def fanout_lookahead(*, now: datetime) -> int:
    """How many campaign sends may wait for the pipeline: what it sent over the last
    THROUGHPUT_SECONDS, scaled to FANOUT_AHEAD_SECONDS, plus FANOUT_RAMP to grow from; never
    more than the limiter allows in that time. Sized by what really goes out (a slow
    provider or a busy worker sends less than the limit), so a pause drains within seconds."""
    per_second = 1.0 / ratelimit.send_interval()
    limit = math.ceil(per_second * FANOUT_AHEAD_SECONDS)
    recent = Message.objects.filter(
        direction=Message.Direction.OUT,
        author_kind=Message.Author.CAMPAIGN,
        sent_at__gte=now - timedelta(seconds=THROUGHPUT_SECONDS),
    ).count()
    observed = math.ceil(recent * FANOUT_AHEAD_SECONDS / THROUGHPUT_SECONDS)
    return max(1, min(limit, FANOUT_MAX_BATCH, observed + FANOUT_RAMP))


def campaign_backlog() -> int:
    """Campaign messages waiting for the send pipeline, every campaign together (they share
    the limiter, so they are all ahead of the next one)."""
    return Message.objects.filter(
        direction=Message.Direction.OUT, author_kind=Message.Author.CAMPAIGN, status__in=IN_FLIGHT
    ).count()


def recipients_queue(*, recipients: list[CampaignRecipient], now: datetime) -> int:
    """pending -> queued, each with its message, in one transaction (a crash writes none of
    them). Recipients another chain holds or took, or of a campaign no longer running, are
    left alone. A marketing campaign runs for days: who opted out since the launch is
    skipped here, not sent to. Returns how many were queued."""
    with transaction.atomic():
        claimable = CampaignRecipient.objects.filter(
            pk__in=[r.pk for r in recipients], state=RState.PENDING, campaign__state=State.RUNNING
        )
        # PostgreSQL: rows locked by a concurrent chain are skipped, not waited for. SQLite
        # ignores this and serialises the writers instead.
        rows = claimable.select_for_update(skip_locked=True, of=("self",)).values_list(
            "pk", "campaign__kind", "customer__marketing_opt_out_at"
        )
        claimed, opted_out, marketing = set(), set(), False
        for pk, kind, opted_out_at in rows:
            marketing = kind in MARKETING_KINDS
            (opted_out if marketing and opted_out_at else claimed).add(pk)
        CampaignRecipient.objects.filter(pk__in=opted_out, state=RState.PENDING).update(
            state=RState.OPTED_OUT, skip_reason=_(OPTED_OUT_REASON)
        )
        CampaignRecipient.objects.filter(pk__in=claimed).update(state=RState.QUEUED, queued_at=now)
        ready = _sendable([r for r in recipients if r.pk in claimed])
        sends = [(r.customer_id, r.body) for r in ready]
        messages = messages_send_bulk(
            sends=sends, author_kind=Message.Author.CAMPAIGN, marketing=marketing
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
    recipients_sync(campaign=campaign)
    if campaign_complete_if_done(campaign=campaign, now=now):
        return None
    opens = window_open_at(campaign, now=now)
    if opens > now:
        return (opens - now).total_seconds()
    room = fanout_lookahead(now=now) - campaign_backlog() if paced else CHUNK
    interval_s = ratelimit.send_interval()
    if room <= 0:
        return min(max(interval_s * (1 - room), 0.2), 2.0)
    pending = CampaignRecipient.objects.filter(campaign=campaign, state=RState.PENDING)
    due = list(pending.filter(planned_at__lte=now).order_by("planned_at", "pk")[:room])
    if not due:
        next_planned = pending.order_by("planned_at").values_list("planned_at", flat=True).first()
        if next_planned is None:  # only queued ones left: wait for their outcome
            return 1.0
        return max((window_open_at(campaign, now=next_planned) - now).total_seconds(), 0.5)
    started = time_monotonic()
    for start in range(0, len(due), FANOUT_TRANSACTION):
        recipients_queue(recipients=due[start : start + FANOUT_TRANSACTION], now=now)
        if time_monotonic() - started > FANOUT_STEP_SECONDS:
            return 0.0
    return min(max(interval_s * len(due) / 2, 0.2), 2.0)


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
        message__status__in=REACHED,
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


# --- results --------------------------------------------------------------------------------
def _annotated(recipients: QuerySet, *, reply_days: int, renewal_days: int) -> QuerySet:
    renewals = Renewal.objects.filter(
        subscription__customer_id=OuterRef("customer_id"),
        renewed_at__gte=OuterRef("message__created_at"),
        renewed_at__lte=OuterRef("message__created_at") + timedelta(days=renewal_days),
    )
    return recipients.annotate(
        has_reply=Exists(_reply_after("message", days=reply_days)),
        has_renewal=Exists(renewals),
    )


def _open_counts() -> dict:
    """What campaign_waiting needs: the first pending recipient's time, the queued ones."""
    return {
        "first_pending": Min("planned_at", filter=Q(state=RState.PENDING)),
        "queued": Count("pk", filter=Q(state=RState.QUEUED)),
    }


def _progress_counts() -> dict:
    return {
        "first_pending": _open_counts()["first_pending"],
        "total": Count("pk"),
        "pending": Count("pk", filter=Q(state=RState.PENDING)),
        "queued": Count("pk", filter=Q(state=RState.QUEUED, message__status__in=IN_FLIGHT)),
        "unconfirmed": Count("pk", filter=Q(message__status=MStatus.UNCONFIRMED)),
        "skipped": Count("pk", filter=Q(state=RState.SKIPPED)),
        "opted_out": Count("pk", filter=Q(state=RState.OPTED_OUT)),
        "sent": Count("pk", filter=Q(message__status__in=REACHED)),
        "delivered": Count("pk", filter=Q(message__status__in=DELIVERED)),
        "read": Count("pk", filter=Q(message__status__in=READ)),
        "failed": Count("pk", filter=Q(message__status=MStatus.FAILED)),
        "unknown": Count("pk", filter=Q(message__status=MStatus.UNKNOWN)),
    }


def _funnel_counts(*, reply_days: int, renewal_days: int) -> dict:
    reached = Q(message__status__in=REACHED)
    return {
        **_progress_counts(),
        "replied": Count("pk", filter=reached & Q(has_reply=True)),
        "renewed": Count("pk", filter=reached & Q(has_renewal=True)),
    }


def _done(counts: dict) -> dict:
    done = counts["total"] - counts["pending"] - counts["queued"] - counts["unconfirmed"]
    counts["done"] = done
    counts["percent_done"] = round(100 * done / counts["total"], 1) if counts["total"] else 0.0
    return counts


def _rates(counts: dict) -> dict:
    sent = counts["sent"]

    def rate(n):
        return round(100 * n / sent, 1) if sent else 0.0

    _done(counts)
    counts["read_rate"] = rate(counts["read"])
    counts["reply_rate"] = rate(counts["replied"])
    counts["conversion_rate"] = rate(counts["renewed"])
    return counts


def campaign_funnel(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> dict:
    """Counts of the campaign's recipients: total, pending, queued, skipped, sent (reached the
    phone), delivered, read, replied (a message from them within reply_days), renewed (a
    renewal within renewal_days: the conversion), failed, unknown; and rates over sent."""
    recipients = _annotated(
        CampaignRecipient.objects.filter(campaign=campaign),
        reply_days=reply_days,
        renewal_days=renewal_days,
    )
    counts = recipients.aggregate(
        **_funnel_counts(reply_days=reply_days, renewal_days=renewal_days)
    )
    counts["opted_out_excluded"] = campaign.opted_out_excluded
    return _rates(counts)


def campaign_progress_counts(*, campaign: Campaign) -> dict:
    """The live part of the funnel (polled every 2 s): recipient states and their messages'
    statuses in one aggregate, without campaign_funnel's reply and renewal subqueries."""
    counts = CampaignRecipient.objects.filter(campaign=campaign).aggregate(**_progress_counts())
    return _done(counts)


def campaign_open_counts(*, campaign_ids: list[int]) -> dict[int, dict]:
    """campaign id -> its recipients still pending or queued (`open`), and what
    campaign_waiting needs, in one query (the rest of a campaign's progress is its stored
    recipients_total)."""
    rows = (
        CampaignRecipient.objects.filter(
            campaign_id__in=campaign_ids, state__in=(RState.PENDING, RState.QUEUED)
        )
        .order_by()
        .values("campaign_id")
        .annotate(open=Count("pk"), **_open_counts())
    )
    return {row.pop("campaign_id"): row for row in rows}


def campaign_variant_funnels(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> list[dict]:
    recipients = _annotated(
        CampaignRecipient.objects.filter(campaign=campaign, variant__isnull=False),
        reply_days=reply_days,
        renewal_days=renewal_days,
    )
    rows = (
        recipients.order_by()
        .values("variant__label", "variant__body")
        .annotate(**_funnel_counts(reply_days=reply_days, renewal_days=renewal_days))
        .order_by("variant__label")
    )
    out = [
        _rates({**row, "label": row["variant__label"], "body": row["variant__body"]})
        for row in rows
    ]
    variant_winner_mark(out)
    return out


def variant_winner_mark(rows: list[dict]) -> None:
    """The variant that did best, in the order that matters to the business: renewals, then
    replies, then reads (rates over what was sent). None on a tie or before anything was sent."""
    for row in rows:
        row["winner"] = False
    ranked = sorted(
        (r for r in rows if r["sent"]),
        key=lambda r: (r["conversion_rate"], r["reply_rate"], r["read_rate"]),
        reverse=True,
    )
    if len(ranked) >= 2:
        best, second = ranked[0], ranked[1]
        key = ("conversion_rate", "reply_rate", "read_rate")
        if [best[k] for k in key] != [second[k] for k in key]:
            best["winner"] = True


# While a campaign runs its page refreshes every 2 s; replies and renewals look into every
# recipient's conversation, so they are recounted at most this often.
LIVE_RESULTS_SECONDS = 10
PROGRESS_KEYS = (
    "total", "pending", "queued", "unconfirmed", "skipped", "opted_out", "sent", "delivered",
    "read", "failed", "unknown",
)  # fmt: skip


def _reply_counts(campaign: Campaign, *, reply_days: int, renewal_days: int, live: bool) -> dict:
    """variant id (None without variants) -> (replied, renewed); cached briefly while live."""
    launched = campaign.launched_at.timestamp() if campaign.launched_at else 0
    key = f"outbound:campaign-replies:{campaign.pk}:{launched}:{reply_days}:{renewal_days}"
    cached = cache.get(key) if live else None
    if cached is not None:
        return cached
    reached = Q(message__status__in=REACHED)
    rows = (
        _annotated(
            CampaignRecipient.objects.filter(campaign=campaign),
            reply_days=reply_days, renewal_days=renewal_days,
        )
        .order_by()
        .values("variant_id")
        .annotate(
            replied=Count("pk", filter=reached & Q(has_reply=True)),
            renewed=Count("pk", filter=reached & Q(has_renewal=True)),
        )
    )  # fmt: skip
    counts = {row["variant_id"]: (row["replied"], row["renewed"]) for row in rows}
    if live:
        cache.set(key, counts, LIVE_RESULTS_SECONDS)
    return counts


def campaign_results(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> dict:
    """Every figure of a campaign's page from one look at its recipients, so that the progress
    bar, the results table and the variants always tell the same story: recipient states and
    message statuses counted now, per variant, in one query (the totals are their sums);
    replies and renewals with them (recounted at most every LIVE_RESULTS_SECONDS while the
    campaign is live). {"funnel": as campaign_funnel, "variants": as campaign_variant_funnels}."""
    live = campaign.state in (State.SCHEDULED, State.RUNNING, State.PAUSED)
    rows = list(
        CampaignRecipient.objects.filter(campaign=campaign)
        .order_by()
        .values("variant_id")
        .annotate(**_progress_counts())
    )
    replies = _reply_counts(campaign, reply_days=reply_days, renewal_days=renewal_days, live=live)
    funnel = dict.fromkeys((*PROGRESS_KEYS, "replied", "renewed"), 0)
    funnel["first_pending"] = min((r["first_pending"] for r in rows if r["first_pending"]),
                                  default=None)  # fmt: skip
    by_variant = {}
    for row in rows:
        row["replied"], row["renewed"] = replies.get(row["variant_id"], (0, 0))
        for name in (*PROGRESS_KEYS, "replied", "renewed"):
            funnel[name] += row[name]
        by_variant[row["variant_id"]] = row
    funnel["opted_out_excluded"] = campaign.opted_out_excluded
    variants = []
    for variant in campaign.variants.all():
        row = by_variant.get(variant.pk) or dict.fromkeys((*PROGRESS_KEYS, "replied", "renewed"), 0)
        variants.append(_rates({**row, "label": variant.label, "body": variant.body}))
    variant_winner_mark(variants)
    return {"funnel": _rates(funnel), "variants": variants}


def campaign_failure_reasons(*, campaign: Campaign) -> list[tuple[str, str, int]]:
    """(outcome, reason, count), most frequent first: skipped reasons and send failures."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign).order_by()
    skipped = (
        recipients.filter(state__in=(RState.SKIPPED, RState.OPTED_OUT))
        .values_list("state", "skip_reason")
        .annotate(n=Count("pk"))
    )
    failed = (
        recipients.filter(
            message__status__in=(MStatus.FAILED, MStatus.UNKNOWN, MStatus.UNCONFIRMED)
        )
        .values_list("message__status", "message__failure_reason")
        .annotate(n=Count("pk"))
    )
    labels = dict(MStatus.choices)
    states = dict(RState.choices)
    rows = [(str(states[state]), reason, n) for state, reason, n in skipped]
    rows += [(str(labels[status]), reason, n) for status, reason, n in failed]
    return sorted(rows, key=lambda row: -row[2])


def campaign_recipients(
    *, campaign: Campaign, reply_days: int = REPLY_DAYS, renewal_days: int = RENEWAL_DAYS
) -> QuerySet[CampaignRecipient]:
    """Per-recipient rows for the results page and the CSV export."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign).select_related(
        "customer", "variant", "message"
    )
    return _annotated(recipients, reply_days=reply_days, renewal_days=renewal_days).order_by("pk")
