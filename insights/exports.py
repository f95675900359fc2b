"""CSV downloads, streamed: a generator over `.iterator(chunk_size=...)` feeds csv.writer one row
at a time, so a million messages use constant memory and the first bytes leave at once.

UTF-8 with a BOM (Excel opens it as UTF-8). Text cells that start with = + - @ or a control
character are prefixed with ' so a spreadsheet never runs them as formulas (CSV injection).
"""

from collections.abc import Callable
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from chatdesk.csvexport import csv_response
from customers.models import Customer
from inbox.models import Message
from insights import selectors

CHUNK = 2000


def period_query(period: selectors.Period, channel: str | None = None) -> str:
    params = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if channel:
        params["channel"] = channel
    return urlencode(params)


def _local(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _stem(kind: str, period) -> str:
    return f"{kind}_{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"


# --- the exports ------------------------------------------------------------------------------

MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "direction",
    "author_kind",
    "agent__username",
    "conversation__customer__name",
    "conversation__customer__phone",
    "status",
    "body",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "failure_reason",
)
# What a marketer gets: how messages fared, never what a conversation said or with whom (the
# inbox and the customer history are not theirs either). Campaign-level detail is in each
# campaign's own export.
MARKETING_MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "direction",
    "author_kind",
    "status",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "failure_reason",
)
LOCAL_TIMES = {"created_at", "sent_at", "delivered_at", "read_at", "failed_at"}


def messages_rows(period, *, columns=MESSAGE_COLUMNS, direction="", author_kind="", status=""):
    rows = Message.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
    if direction:
        rows = rows.filter(direction=direction)
    if author_kind:
        rows = rows.filter(author_kind=author_kind)
    if status:
        rows = rows.filter(status=status)
    rows = rows.order_by("created_at", "id").values_list(*columns)
    times = [i for i, name in enumerate(columns) if name in LOCAL_TIMES]
    for row in rows.iterator(chunk_size=CHUNK):
        row = list(row)
        for i in times:
            row[i] = _local(row[i])
        yield row


def messages_csv(period, *, conversations: bool = True, **filters):
    """Every message of the period; `conversations=False` (a marketer) leaves out the text,
    the customer's name and phone and the agent."""
    labels = {
        "id": _("id"),
        "created_at": _("fecha"),
        "direction": _("dirección"),
        "author_kind": _("autor"),
        "agent__username": _("agente"),
        "conversation__customer__name": _("cliente"),
        "conversation__customer__phone": _("teléfono"),
        "status": _("estado"),
        "body": _("texto"),
        "sent_at": _("enviado"),
        "delivered_at": _("entregado"),
        "read_at": _("leído"),
        "failed_at": _("fallido"),
        "failure_reason": _("motivo del fallo"),
    }
    columns = MESSAGE_COLUMNS if conversations else MARKETING_MESSAGE_COLUMNS
    rows = messages_rows(period, columns=columns, **filters)
    return csv_response(_stem("mensajes", period), [labels[c] for c in columns], rows)


def daily_csv(period, *, channel=None):
    header = [
        _("día"),
        _("enviados"),
        _("entregados"),
        _("leídos"),
        _("respuestas"),
        _("fallidos"),
        _("nuevas conversaciones"),
        _("tasa de apertura %"),
    ]
    rows = (
        [
            r["day"].isoformat(),
            r["sent"],
            r["delivered"],
            r["read"],
            r["replies"],
            r["failed"],
            r["new_conversations"],
            r["open_rate"] if r["open_rate"] is not None else "",
        ]
        for r in selectors.daily_metrics(period, channel=channel)
    )
    return csv_response(_stem("metricas_diarias", period), header, rows)


def hours_csv(period, *, channel=None):
    grids = selectors.heatmaps(period, channel=channel)
    names = selectors.weekday_names()
    header = [
        _("día"),
        _("hora"),
        _("mensajes de clientes"),
        _("enviados"),
        _("leídos"),
        _("tasa de lectura %"),
    ]
    rows = (
        [
            names[d],
            f"{h:02d}:00",
            grids["replies"][d][h],
            grids["sent"][d][h],
            grids["sent_read"][d][h],
            grids["rate"][d][h] if grids["rate"][d][h] is not None else "",
        ]
        for d in range(7)
        for h in range(24)
    )
    return csv_response(_stem("mejores_horarios", period), header, rows)


def services_csv(period):
    header = [_("servicio"), _("suscripciones activas"), _("renovaciones"), _("ingresos USD")]
    rows = (
        [r["service"], r["active"], r["renewals"], r["revenue"]]
        for r in selectors.popular_services(period)
    )
    return csv_response(_stem("servicios", period), header, rows)


def reminders_csv(period, *, within_days=7, channel=None):
    funnel = selectors.reminder_funnel(period, within_days=within_days, channel=channel)
    header = [
        _("agrupado por"),
        _("nombre"),
        _("recordados"),
        _("leídos"),
        _("respondieron"),
        _("renovaron"),
        _("días de ventana"),
    ]

    def rows():
        for group, items in ((_("regla"), funnel["rules"]), (_("servicio"), funnel["services"])):
            for r in items:
                yield [
                    group,
                    r["name"],
                    r["reminded"],
                    r["read"],
                    r["replied"],
                    r["renewed"],
                    within_days,
                ]
        t = funnel["total"]
        yield [_("total"), "", t["reminded"], t["read"], t["replied"], t["renewed"], within_days]

    return csv_response(_stem("recordatorios", period), header, rows())


def campaigns_csv(period, *, within_days=7, channel=None):
    header = [
        _("campaña"),
        _("lanzada"),
        _("estado"),
        _("destinatarios"),
        _("enviados"),
        _("leídos"),
        _("respondieron"),
        _("renovaron"),
        _("bajas"),
        _("fallidos"),
        _("apertura %"),
        _("respuesta %"),
        _("conversión %"),
    ]
    rows = (
        [
            r["title"],
            _local(r["launched_at"]),
            r["state"],
            r["recipients"],
            r["sent"],
            r["read"],
            r["replied"],
            r["renewed"],
            r["opt_outs"],
            r["failed"],
            r["open_rate"],
            r["reply_rate"],
            r["conversion_rate"],
        ]
        for r in selectors.campaign_comparison(period, within_days=within_days, channel=channel)
    )
    return csv_response(_stem("campanas", period), header, rows)


def _minutes(delta):
    return round(delta.total_seconds() / 60, 1) if delta is not None else ""


def agents_csv(period, *, channel=None):
    header = [
        _("agente"),
        _("conversaciones atendidas"),
        _("turnos respondidos"),
        _("primera respuesta, mediana (min)"),
        _("resueltas"),
        _("resolución, mediana (min)"),
    ]
    rows = (
        [
            r["agent"],
            r["handled"],
            r["turns"],
            _minutes(r["first_response"]),
            r["resolved"],
            _minutes(r["resolution"]),
        ]
        for r in selectors.agent_stats(period, channel=channel)
    )
    return csv_response(_stem("agentes", period), header, rows)


def behaviour_csv(period):
    header = [_("grupo"), _("clientes")]
    rows = ([g["label"], g["customers"]] for g in selectors.behaviour_groups())
    return csv_response("grupos_de_comportamiento.csv", header, rows)


def customers_csv(period):
    today = timezone.localdate()
    header = [
        _("id"),
        _("nombre"),
        _("teléfono"),
        _("ciudad"),
        _("provincia"),
        _("baja de publicidad"),
        _("creado"),
        _("suscripciones activas"),
    ]
    rows = (
        Customer.objects.order_by("id")
        .annotate(active=Count("subscriptions", filter=Q(subscriptions__expires_on__gte=today)))
        .values_list(
            "id",
            "name",
            "phone",
            "city",
            "province",
            "marketing_opt_out_at",
            "created_at",
            "active",
        )
    )

    def gen():
        for row in rows.iterator(chunk_size=CHUNK):
            row = list(row)
            row[5], row[6] = _local(row[5]), _local(row[6])
            yield row

    return csv_response("clientes.csv", header, gen())


# kind -> its CSV for a period (and the keyword arguments each takes).
EXPORTS: dict[str, Callable[..., HttpResponse]] = {
    "messages": messages_csv,
    "daily": daily_csv,
    "hours": hours_csv,
    "services": services_csv,
    "reminders": reminders_csv,
    "campaigns": campaigns_csv,
    "agents": agents_csv,
    "behaviour": behaviour_csv,
    "customers": customers_csv,
}
