"""Message templates: the {variable} engine, the WhatsApp-formatting preview, template writes.

A body is plain text with `{name}` references to the known variables below; `{{` and `}}` write
a literal brace. Any other `{...}` is an unknown variable and a lone brace is an error: a body
that does not validate is never saved and never rendered, so no customer receives a message
with "{nombre}" left in it. Values are substituted in one pass and never parsed again, so a
customer whose name contains braces gets exactly their name.

Which subscription is "the" service of a customer (for {servicio}, {precio}, dates...):

- with a service given (a campaign filtered by service), that service's subscription, or a
  `MissingValue` when the customer has none;
- otherwise the active subscription expiring soonest; with none active, the one that expired
  most recently (a "come back" campaign to inactive customers still names their service).

Campaign values (`extra`) fill the free variables ({nuevo_servicio}, {caracteristicas}, {tema},
{descuento}) and, when given, override a value derived from the customer: a "new service"
campaign sets {precio} to the new service's price.
"""

import html
import re
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import Customer, Service, Subscription
from outbound.models import MessageTemplate

CUSTOMER_VARIABLES = {
    "nombre": gettext_lazy("nombre del cliente (la primera palabra de su nombre)"),
    "servicio": gettext_lazy("servicio de la suscripción (Netflix, HBO Max...)"),
    "precio": gettext_lazy("precio que paga el cliente por ese servicio"),
    "precio_normal": gettext_lazy("precio normal del servicio"),
    "precio_descuento": gettext_lazy("precio normal menos el {descuento} de la campaña"),
    "fecha_vencimiento": gettext_lazy('fecha de vencimiento ("28 de noviembre")'),
    "dias_restantes": gettext_lazy("días que faltan para el vencimiento"),
    "fecha_limite": gettext_lazy("fecha límite de la oferta; por omisión, el vencimiento"),
}
CAMPAIGN_VARIABLES = {
    "nuevo_servicio": gettext_lazy("nombre del nuevo servicio"),
    "caracteristicas": gettext_lazy("características del nuevo servicio"),
    "tema": gettext_lazy("tema de la consulta de soporte"),
    "descuento": gettext_lazy("porcentaje de descuento, p. ej. 50"),
}
KNOWN_VARIABLES = {**CUSTOMER_VARIABLES, **CAMPAIGN_VARIABLES}

# A whole body splits into escapes, {references} and lone braces; everything else is text.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\n]*)\}|[{}]")

MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


class TemplateError(Exception):
    pass


class InvalidTemplate(TemplateError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class MissingValue(TemplateError):
    """A variable this customer (or this campaign) has no value for; the send is skipped."""

    def __init__(self, variable: str, reason: str):
        super().__init__(f"{{{variable}}}: {reason}")
        self.variable = variable
        self.reason = reason


def _tokens(body: str):
    """(kind, value) pairs: ("text", s), ("var", name), ("brace", "{" or "}")."""
    position = 0
    for match in _TOKEN.finditer(body):
        if match.start() > position:
            yield "text", body[position : match.start()]
        token = match.group(0)
        if token in ("{{", "}}"):
            yield "text", token[0]
        elif match.group(1) is not None:
            yield "var", match.group(1)
        else:
            yield "brace", token
        position = match.end()
    if position < len(body):
        yield "text", body[position:]


def template_variables(body: str) -> set[str]:
    """Every {reference} in the body, known or not."""
    return {value for kind, value in _tokens(body) if kind == "var"}


def template_validate(body: str) -> list[str]:
    """Spanish error messages; an empty list means the body can be saved and rendered."""
    errors = []
    unknown = []
    lone = False
    for kind, value in _tokens(body):
        if kind == "var" and value not in KNOWN_VARIABLES and value not in unknown:
            unknown.append(value)
        elif kind == "brace":
            lone = True
    errors += [_("Variable desconocida: {%(name)s}") % {"name": name} for name in unknown]
    if lone:
        errors.append(
            _("Hay una llave { o } sin cerrar. Para escribir una llave literal use {{ o }}.")
        )
    return errors


def _compiled(body: str) -> list[tuple[str, str]]:
    errors = template_validate(body)
    if errors:
        raise InvalidTemplate(errors)
    return list(_tokens(body))


def _fill(tokens: list[tuple[str, str]], value_of: Callable[[str], str]) -> str:
    values: dict[str, str] = {}
    parts = []
    for kind, value in tokens:
        if kind == "var":
            if value not in values:
                values[value] = value_of(value)
            parts.append(values[value])
        else:
            parts.append(value)
    return "".join(parts)


def _render(body: str, value_of: Callable[[str], str]) -> str:
    return _fill(_compiled(body), value_of)


def date_spanish(day: date, *, today: date) -> str:
    """'28 de noviembre', with the year only when it is not this year's."""
    text = f"{day.day} de {MONTHS[day.month - 1]}"
    return text if day.year == today.year else f"{text} de {day.year}"


def money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}"


def subscription_for(
    customer: Customer, *, service: Service | int | None = None, today: date
) -> Subscription | None:
    """ "The" subscription the variables speak of (see the module docstring). Reads
    customer.subscriptions.all(), so a campaign prefetches them once for every recipient."""
    subscriptions = list(customer.subscriptions.all())
    if service is not None:
        service_id = service.pk if isinstance(service, Service) else service
        return next((s for s in subscriptions if s.service_id == service_id), None)
    active = sorted((s for s in subscriptions if s.expires_on >= today), key=lambda s: s.expires_on)
    if active:
        return active[0]
    expired = sorted(subscriptions, key=lambda s: s.expires_on, reverse=True)
    return expired[0] if expired else None


def _campaign_value(name: str, extra: dict) -> str | None:
    value = extra.get(name)
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()


def _discount_parse(raw: str) -> Decimal | None:
    """A percentage strictly between 0 and 100 ("50", "12.5 %"); None for anything else,
    NaN and infinities included."""
    try:
        percent = Decimal(raw.rstrip("% "))
    except InvalidOperation:
        return None
    return percent if percent.is_finite() and 0 < percent < 100 else None


def _discount_percent(extra: dict) -> Decimal:
    raw = _campaign_value("descuento", extra)
    if raw is None:
        raise MissingValue("precio_descuento", _("la campaña no indica el {descuento}"))
    percent = _discount_parse(raw)
    if percent is None:
        raise MissingValue("precio_descuento", _("el descuento debe ser un número entre 1 y 99"))
    return percent


def campaign_values_errors(extra: dict) -> dict[str, str]:
    """Campaign values used as numbers must be numbers: {field: Spanish message}."""
    raw = _campaign_value("descuento", extra)
    if raw is not None and _discount_parse(raw) is None:
        return {"descuento": _("El descuento debe ser un número entre 1 y 99.")}
    return {}


def template_render(
    body: str,
    *,
    customer: Customer,
    extra: dict | None = None,
    service: Service | int | None = None,
    today: date | None = None,
) -> str:
    """The message for one customer. Raises InvalidTemplate, or MissingValue naming the first
    variable without a value (the recipient is then skipped with that reason)."""
    return template_renderer(body, extra=extra, service=service, today=today)(customer)


def template_renderer(
    body: str,
    *,
    extra: dict | None = None,
    service: Service | int | None = None,
    today: date | None = None,
) -> Callable[[Customer], str]:
    """template_render for many customers (a campaign's launch): the body is validated and
    split once (InvalidTemplate here), then each call renders one customer (MissingValue).
    A customer is anything with `name` and `subscriptions.all()`."""
    tokens = _compiled(body)
    extra = extra or {}
    today = today or timezone.localdate()
    return lambda customer: _fill(
        tokens, _value_of(customer, extra=extra, service=service, today=today)
    )


def _value_of(
    customer: Customer, *, extra: dict, service: Service | int | None, today: date
) -> Callable[[str], str]:
    found: list[Subscription | None] = []

    def subscription() -> Subscription | None:
        if not found:
            found.append(subscription_for(customer, service=service, today=today))
        return found[0]

    def need_subscription(name: str) -> Subscription:
        sub = subscription()
        if sub is None:
            if service is not None:
                reason = _("el cliente no tiene suscripción a ese servicio")
            else:
                reason = _("el cliente no tiene suscripciones")
            raise MissingValue(name, reason)
        return sub

    def value_of(name: str) -> str:
        given = _campaign_value(name, extra)
        if given is not None:
            return given
        if name in CAMPAIGN_VARIABLES:
            raise MissingValue(name, _("la campaña no le da un valor"))
        if name == "nombre":
            first = customer.name.split()
            if not first:
                raise MissingValue(name, _("el cliente no tiene nombre"))
            return first[0]
        sub = need_subscription(name)
        if name == "servicio":
            return sub.service.name
        if name == "precio":
            return money(sub.price)
        if name == "precio_normal":
            return money(sub.service.normal_price)
        if name == "precio_descuento":
            percent = _discount_percent(extra)
            return money(sub.service.normal_price * (100 - percent) / 100)
        if name in ("fecha_vencimiento", "fecha_limite"):
            return date_spanish(sub.expires_on, today=today)
        if name == "dias_restantes":
            days = (sub.expires_on - today).days
            if days < 0:
                raise MissingValue(name, _("la suscripción ya venció"))
            return str(days)
        raise MissingValue(name, _("variable desconocida"))  # unreachable after validation

    return value_of


SAMPLE_VALUES = {
    "nombre": "María",
    "servicio": "Netflix",
    "precio": "7.99",
    "precio_normal": "7.99",
    "precio_descuento": "4.00",
    "fecha_vencimiento": "28 de noviembre",
    "dias_restantes": "3",
    "fecha_limite": "28 de noviembre",
}


def template_render_sample(body: str, *, extra: dict | None = None) -> str:
    """The body with example values, for a preview before any customer is chosen."""
    extra = extra or {}

    def value_of(name: str) -> str:
        given = _campaign_value(name, extra)
        if given is not None:
            return given
        if name in SAMPLE_VALUES:
            return SAMPLE_VALUES[name]
        raise MissingValue(name, _("la campaña no le da un valor"))

    return _render(body, value_of)


# --- WhatsApp formatting, for previews ------------------------------------------------------
# WhatsApp only formats when the markers hug non-space text and stand outside words.
_MONO = re.compile(r"```(.+?)```", re.DOTALL)
_INLINE = [
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s"),
]


def _format_inline(escaped: str) -> str:
    for pattern, tag in _INLINE:
        escaped = pattern.sub(rf"<{tag}>\1</{tag}>", escaped)
    return escaped


def whatsapp_html(text: str) -> SafeString:
    """Message text as the WhatsApp app shows it. Everything is escaped before any markup is
    added, and the markup added is only <strong>, <em>, <s>, <code> and <br>."""
    parts = []
    position = 0
    for match in _MONO.finditer(text):
        parts.append(_format_inline(html.escape(text[position : match.start()])))
        parts.append(f"<code>{html.escape(match.group(1))}</code>")
        position = match.end()
    parts.append(_format_inline(html.escape(text[position:])))
    return mark_safe("".join(parts).replace("\r\n", "\n").replace("\n", "<br>\n"))  # noqa: S308


# --- writes --------------------------------------------------------------------------------
def template_duplicate(*, template: MessageTemplate) -> MessageTemplate:
    """A copy named "Copia de X" (numbered when that name is taken), not archived."""
    base = _("Copia de %(name)s") % {"name": template.name}
    base = base[:110]
    with transaction.atomic():
        taken = set(
            MessageTemplate.objects.filter(name__startswith=base).values_list("name", flat=True)
        )
        name, number = base, 2
        while name in taken:
            name, number = f"{base} ({number})", number + 1
        return MessageTemplate.objects.create(
            name=name, category=template.category, body=template.body
        )


def template_set_archived(*, template: MessageTemplate, archived: bool) -> None:
    MessageTemplate.objects.filter(pk=template.pk).update(
        archived=archived, updated_at=timezone.now()
    )
    template.archived = archived
