"""Campaigns: a launch's recipients written by one INSERT ... SELECT, their text made in SQL.

The launch's Python path reads every customer, renders the body and COPYs the rows back
(outbound/campaigns/launch.py); for a campaign with one body, one number and no best hour,
PostgreSQL can do all of it in one statement, and going live then costs about what the
database alone costs. The text is the one template_render makes:

- literal text and campaign values (`extra`) are parameters;
- {nombre} is the customer's name up to its first whitespace (Python's `str.split()`: the
  same whitespace characters, listed in a regular expression);
- the subscription variables read "the" subscription (templating.subscription_for: the given
  service's, else the active one expiring soonest, else the one that expired last; ties by
  id, as the Python path reads them), chosen by a LATERAL subquery on its index; what depends
  on the service alone ({servicio}, {precio_normal}, {precio_descuento}) is rendered in Python
  once per service and given as a CASE; {precio} is the column's text (two decimals, as
  `money`), dates are spelt as `date_spanish` spells them;
- a skip reason is the one the Python path writes: the first variable without a value, in the
  body's order, its message made by templating's own value_of on a stand-in customer;
- a text over TEXT_MAX characters is skipped with the same reason.

tests/outbound/test_campaign_sql_body.py compares both paths row by row.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import cast

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from customers.models import Customer, Service, Subscription
from outbound.models import Campaign, CampaignRecipient
from outbound.services import TEXT_MAX
from outbound.templating import (
    CAMPAIGN_VARIABLES,
    MONTHS,
    MissingValue,
    TemplateError,
    _campaign_value,
    _compiled,
    _value_of,
)

# Every character Python's str.split() splits on (str.isspace(); a test checks the list), as a
# regular expression class's contents.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACE = "".join(f"\\u{ord(c):04x}" for c in WHITESPACE)
FIRST_WORD = f"^[{_SPACE}]*([^{_SPACE}]+)"
SUBSCRIPTION_VARIABLES = (
    "servicio",
    "precio",
    "precio_normal",
    "precio_descuento",
    "fecha_vencimiento",
    "dias_restantes",
    "fecha_limite",
)
BY_SERVICE = ("servicio", "precio_normal", "precio_descuento")


class _Unsupported(Exception):
    """A variable this module cannot make in SQL (one templating gained later): the launch
    takes the Python path."""


class _Subscriptions(list):
    def all(self):
        return self


@dataclass
class _StandIn:
    """A customer for templating's value_of: the reasons and per-service values it gives."""

    name: str
    subscriptions: _Subscriptions


def _reason(value) -> str | None:
    """The skip reason the Python path writes when computing `value` raises, else None."""
    try:
        value()
    except MissingValue as missing:
        return f"{{{missing.variable}}}: {missing.reason}"[:300]
    return None


class _BodySql:
    """The text and the skip reason of one body as SQL over `c` (the audience, with its
    `first_word`) and `s` (the customer's subscription, NULL columns when none)."""

    def __init__(self, tokens, *, extra: dict, service_id: int | None, today: date):
        self.extra, self.service_id, self.today = extra, service_id, today
        services = Service.objects.all()
        if service_id is not None:
            services = services.filter(pk=service_id)
        self.services = list(services)
        self.parts: list[str] = []
        self.parts_params: list = []
        self.checks: list[str] = []
        self.checks_params: list = []
        self.subscription = False
        values: dict[str, tuple[str, list]] = {}
        for kind, token in tokens:
            if kind != "var":
                self.parts.append("%s::text")
                self.parts_params.append(token)
                continue
            if token not in values:  # its checks come where it first appears, as in _fill
                values[token] = self._variable(token)
            expression, params = values[token]
            self.parts.append(expression)
            self.parts_params += params

    def _value(self, name: str, *, service=None, expires_on=None):
        """A zero-argument call of templating's value_of for a stand-in customer (no name;
        a subscription when given its service or expiry)."""
        subs = _Subscriptions()
        if service is not None or expires_on is not None:
            service = service or Service(pk=self.service_id or 0, name="", normal_price=0)
            subs.append(
                Subscription(service=service, price=Decimal(0), expires_on=expires_on or date.max)
            )
        # value_of reads `name` and `subscriptions.all()`, as of launch.py's _Customer.
        customer = cast(Customer, _StandIn(name="", subscriptions=subs))
        value_of = _value_of(customer, extra=self.extra, service=self.service_id, today=self.today)
        return lambda: value_of(name)

    def _check(self, condition: str, params: list, reason: str | None) -> None:
        if reason is not None:
            self.checks.append(f"WHEN {condition} THEN %s")
            self.checks_params += [*params, reason]

    def _variable(self, name: str) -> tuple[str, list]:
        given = _campaign_value(name, self.extra)
        if given is not None:
            return "%s::text", [given]
        if name == "nombre":
            self._check("c.first_word IS NULL", [], _reason(self._value(name)))
            return "c.first_word", []
        if name in CAMPAIGN_VARIABLES:  # without a value: every customer is skipped
            self._check("TRUE", [], _reason(self._value(name)))
            return "''", []
        if name not in SUBSCRIPTION_VARIABLES:
            raise _Unsupported(name)
        self.subscription = True
        self._check("s.service_id IS NULL", [], _reason(self._value(name)))
        if name in BY_SERVICE:
            cases: list[str] = []
            params: list = []
            for service in self.services:
                value = self._value(name, service=service)
                reason = _reason(value)
                if reason is not None:  # {precio_descuento} without a valid {descuento}
                    self._check("TRUE", [], reason)
                    return "''", []
                cases.append("WHEN %s THEN %s::text")
                params += [service.pk, value()]
            return f"(CASE s.service_id {' '.join(cases)} END)" if cases else "''", params
        if name == "precio":
            return "s.price::text", []
        if name == "dias_restantes":
            expired = self._value(name, expires_on=self.today - timedelta(days=1))
            self._check("s.expires_on < %s::date", [self.today], _reason(expired))
            return "(s.expires_on - %s::date)::text", [self.today]
        if name not in ("fecha_vencimiento", "fecha_limite"):
            raise _Unsupported(name)
        return (  # date_spanish
            "(extract(day FROM s.expires_on)::int::text || ' de ' || "
            "(%s::text[])[extract(month FROM s.expires_on)::int] || "
            "CASE WHEN extract(year FROM s.expires_on)::int <> %s THEN ' de ' || "
            "extract(year FROM s.expires_on)::int::text ELSE '' END)",
            [list(MONTHS), self.today.year],
        )


def recipients_insert_select(
    *,
    campaign: Campaign,
    customers: QuerySet[Customer],
    service_id: int | None,
    today: date,
    planned: datetime,
    fresh: bool,
) -> int | None:
    """Write the recipients of a one-body campaign in one statement (existing rows kept when
    not `fresh`). The rows written; None when this body needs the Python path: it does not
    compile (the Python path writes every customer skipped with the reason), or it uses a
    variable this module does not make."""
    try:
        tokens = _compiled(campaign.body)
    except TemplateError:
        return None
    try:
        body = _BodySql(tokens, extra=campaign.extra or {}, service_id=service_id, today=today)
    except _Unsupported:
        return None
    audience, audience_params = customers.order_by().values("pk", "name").query.sql_with_params()
    subscription, subscription_params = "", []
    if body.subscription:
        if service_id is not None:
            which, which_params = "s.service_id = %s", [service_id]
            order = "s.id"
        else:
            which, which_params = "TRUE", []
            # Active first, the soonest to expire; else the latest expired; ties by id.
            order = (
                "s.expires_on < %(today)s, CASE WHEN s.expires_on >= %(today)s "
                "THEN s.expires_on END, s.expires_on DESC, s.id"
            )
        order = order.replace("%(today)s", "%s::date")
        order_params = [today] * order.count("%s")
        subscription = (
            "LEFT JOIN LATERAL (SELECT s.service_id, s.price, s.expires_on "  # noqa: S608
            f"FROM {Subscription._meta.db_table} s WHERE s.customer_id = c.id AND {which} "
            f"ORDER BY {order} LIMIT 1) s ON TRUE"
        )
        subscription_params = which_params + order_params
    else:
        subscription = (
            "CROSS JOIN (SELECT NULL::bigint AS service_id, NULL::numeric AS price, "
            "NULL::date AS expires_on) s"
        )
    reason = f"CASE {' '.join(body.checks)} ELSE '' END" if body.checks else "''"
    text = " || ".join(body.parts) if body.parts else "''"
    too_long = _("El mensaje supera los %(max)s caracteres.") % {"max": TEXT_MAX}
    table = CampaignRecipient._meta.db_table
    conflict = "" if fresh else " ON CONFLICT (campaign_id, customer_id) DO NOTHING"
    sql = (
        f"INSERT INTO {table} (campaign_id, customer_id, variant_id, state, skip_reason, body, "  # noqa: S608
        "planned_at, channel) "
        "SELECT %s, r.id, NULL, "
        "CASE WHEN r.reason <> '' OR char_length(r.text) > %s THEN %s ELSE %s END, "
        "CASE WHEN r.reason <> '' THEN r.reason WHEN char_length(r.text) > %s THEN %s "
        "ELSE '' END, "
        "CASE WHEN r.reason <> '' OR char_length(r.text) > %s THEN '' ELSE r.text END, "
        "%s, '' FROM ("
        f"SELECT c.id, {reason} AS reason, {text} AS text FROM ("
        f"SELECT a.id, substring(a.name FROM %s) AS first_word FROM ({audience}) a (id, name)"
        f") c {subscription}"
        f") r ORDER BY r.id{conflict}"
    )
    params = [
        campaign.pk,
        TEXT_MAX,
        CampaignRecipient.State.SKIPPED,
        CampaignRecipient.State.PENDING,
        TEXT_MAX,
        too_long,
        TEXT_MAX,
        planned,
        *body.checks_params,
        *body.parts_params,
        FIRST_WORD,
        *audience_params,
        *subscription_params,
    ]
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # The planner's cost for 100,000 rows turns JIT on, whose compiling takes longer
        # (0.1-0.4 s) than the expressions it would speed up.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return cursor.rowcount
