"""Renewals: a subscription extended and paid for, the "conversion" that reminders and
campaigns are measured by (insights reads Renewal.renewed_at). Recorded from the customer page
and the API; optionally confirmed to the customer from the "Pago recibido" template.

It lives in outbound, not customers, because it may send a message (customers sends nothing).

`months` extends from the current expiry, or from today when the subscription already expired
(the customer pays for months they will use). `new_expiry` must be later than both the current
expiry and yesterday, so a retried call with the same `new_expiry` is refused instead of
recorded twice.
"""

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer, Renewal, Service, Subscription
from inbox.models import Message
from outbound.models import MessageTemplate
from outbound.services import SendRejected, message_send
from outbound.templating import TemplateError, template_render

CONFIRMATION_TEMPLATE = "Pago recibido"
MONTHS_MAX = 36
AMOUNT_MAX = Decimal("100000")


class RenewalRejected(ValueError):
    """Bad input; `field` names it (for forms and the API's 422)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class RenewalResult:
    renewal: Renewal
    confirmation: Message | None = None
    confirmation_skipped: str = ""


def months_add(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it has fewer days."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _subscription(
    subscription: Subscription | None, customer: Customer | None, service: Service | str | None
) -> Subscription:
    if subscription is not None:
        return subscription
    if customer is None or service is None:
        raise RenewalRejected("service", _("Indica la suscripción o el cliente y el servicio."))
    if isinstance(service, str):
        named = Service.objects.filter(name__iexact=service.strip()).first()
        if named is None:
            raise RenewalRejected(
                "service", _("Servicio desconocido: %(name)s") % {"name": service.strip()[:80]}
            )
        service = named
    found = Subscription.objects.filter(customer=customer, service=service).first()
    if found is None:
        raise RenewalRejected(
            "service",
            _("El cliente no tiene una suscripción a %(service)s.") % {"service": service.name},
        )
    return found


def _new_expiry(current: date, *, new_expiry: date | None, months: int | None, today: date) -> date:
    if (new_expiry is None) == (months is None):
        raise RenewalRejected("new_expiry", _("Indica la nueva fecha de vencimiento o los meses."))
    if months is not None:
        if not 1 <= months <= MONTHS_MAX:
            raise RenewalRejected(
                "months", _("Los meses deben estar entre 1 y %(max)s.") % {"max": MONTHS_MAX}
            )
        try:
            return months_add(max(current, today), months)
        except ValueError:  # past year 9999
            raise RenewalRejected(
                "months", _("La nueva fecha de vencimiento queda fuera del calendario.")
            ) from None
    assert new_expiry is not None  # exactly one of the two is given (checked above)
    if new_expiry <= current or new_expiry < today:
        raise RenewalRejected(
            "new_expiry",
            _("La nueva fecha debe ser posterior al vencimiento actual (%(current)s) y a hoy.")
            % {"current": current.isoformat()},
        )
    return new_expiry


def renewal_record(
    *,
    subscription: Subscription | None = None,
    customer: Customer | None = None,
    service: Service | str | None = None,
    new_expiry: date | None = None,
    months: int | None = None,
    amount: Decimal,
    renewed_at: datetime | None = None,
    send_confirmation: bool = False,
) -> RenewalResult:
    """Extend the subscription and record the Renewal in one transaction (the subscription row
    is locked, so two renewals at once extend it one after the other). Raises
    RenewalRejected. A confirmation that cannot be filled is skipped with the reason; the
    renewal stands."""
    renewed_at = renewed_at or timezone.now()
    if amount is None or amount < 0 or amount >= AMOUNT_MAX:
        raise RenewalRejected("amount", _("El monto no es válido."))
    today = timezone.localdate(renewed_at)
    with transaction.atomic():
        target = _subscription(subscription, customer, service)
        target = (
            Subscription.objects.select_for_update().select_related("service").get(pk=target.pk)
        )
        previous = target.expires_on
        expiry = _new_expiry(previous, new_expiry=new_expiry, months=months, today=today)
        Subscription.objects.filter(pk=target.pk).update(expires_on=expiry)
        target.expires_on = expiry
        renewal = Renewal.objects.create(
            subscription=target,
            renewed_at=renewed_at,
            previous_expiry=previous,
            new_expiry=expiry,
            amount=amount,
        )
        result = RenewalResult(renewal=renewal)
        if send_confirmation:
            _confirm(result, target, today)
    if subscription is not None:
        subscription.expires_on = expiry
    return result


def _confirm(result: RenewalResult, subscription: Subscription, today: date) -> None:
    template = MessageTemplate.objects.filter(name=CONFIRMATION_TEMPLATE, archived=False).first()
    if template is None:
        result.confirmation_skipped = _("No existe la plantilla «%(name)s».") % {
            "name": CONFIRMATION_TEMPLATE
        }
        return
    customer = Customer.objects.prefetch_related("subscriptions__service").get(
        pk=subscription.customer_id
    )
    try:
        text = template_render(
            template.body, customer=customer, service=subscription.service_id, today=today
        )
        result.confirmation = message_send(
            customer=customer, text=text, author_kind=Message.Author.BOT
        )
    except TemplateError as exc:
        result.confirmation_skipped = str(exc)
    except SendRejected as exc:
        result.confirmation_skipped = exc.message
