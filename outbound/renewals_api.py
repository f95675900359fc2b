"""`POST /api/v1/customers/{phone}/renewals`: record a renewal (a payment system, a
spreadsheet script). Admins and agents, who take payments, may; marketers may not.

Registered on the API in chatdesk/api.py by its import path, so this module imports nothing
from there (no circle)."""

from datetime import date, datetime
from decimal import Decimal

from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from chatdesk.roles import SUPPORT, has_role
from customers.models import Customer
from customers.phones import InvalidPhone, phone_normalize
from outbound.renewals import RenewalRejected, renewal_record

router = Router(tags=["renewals"])


class RenewalIn(Schema):
    service: str
    new_expiry: date | None = None
    months: int | None = None
    amount: Decimal
    send_confirmation: bool = False


class RenewalOut(Schema):
    id: int
    phone: str
    service: str
    previous_expiry: date
    new_expiry: date
    amount: Decimal
    renewed_at: datetime
    confirmation_message_id: int | None
    confirmation_skipped: str


class Error(Schema):
    detail: str


def _unprocessable(field: str, message: str) -> Status:
    return Status(
        422,
        {"detail": [{"type": "value_error", "loc": ["body", "payload", field], "msg": message}]},
    )


@router.post(
    "/{phone}/renewals",
    response={201: RenewalOut, 403: Error, 404: Error, 422: dict},
    summary="Record a renewal",
)
def renewal_create(request, phone: str, payload: RenewalIn):
    """Extend the customer's subscription to `service` to `new_expiry`, or by `months` from
    its expiry (from today when already expired), and record what they paid. With
    `send_confirmation` the customer gets the "Pago recibido" message (support template)."""
    if not has_role(request.auth.user, *SUPPORT):
        raise HttpError(403, _("Tu rol no permite registrar renovaciones."))
    try:
        e164 = phone_normalize(phone)
    except InvalidPhone:
        return _unprocessable(
            "phone", _("El número de teléfono no es válido; usa el formato +593991234567.")
        )
    customer = Customer.objects.filter(phone=e164).first()
    if customer is None:
        raise HttpError(
            404, _("No hay ningún cliente con el teléfono %(phone)s.") % {"phone": e164}
        )
    try:
        result = renewal_record(
            customer=customer,
            service=payload.service,
            new_expiry=payload.new_expiry,
            months=payload.months,
            amount=payload.amount,
            send_confirmation=payload.send_confirmation,
        )
    except RenewalRejected as exc:
        return _unprocessable(exc.field, exc.message)
    renewal = result.renewal
    return Status(
        201,
        {
            "id": renewal.id,
            "phone": customer.phone,
            "service": renewal.subscription.service.name,
            "previous_expiry": renewal.previous_expiry,
            "new_expiry": renewal.new_expiry,
            "amount": renewal.amount,
            "renewed_at": renewal.renewed_at,
            "confirmation_message_id": result.confirmation.id if result.confirmation else None,
            "confirmation_skipped": result.confirmation_skipped,
        },
    )
