"""`POST /api/v1/messages` and `GET /api/v1/messages/{id}`: queue a WhatsApp message and follow
its status (an order system, a script). Admins and agents; marketers may not.

Registered on the API in chatdesk/api.py by its import path, so this module imports nothing
from there (no circle). A SendRejected becomes a 422 there, in ninja's own shape."""

from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from chatdesk.roles import SUPPORT, has_role
from inbox.models import Message
from outbound.services import message_send

router = Router(tags=["messages"])


class MessageIn(Schema):
    phone: str
    text: str = ""
    media_url: str | None = None


class MessageCreated(Schema):
    id: int
    status: str
    conversation_id: int
    phone: str


class MessageOut(Schema):
    id: int
    status: str
    conversation_id: int
    phone: str
    text: str
    media_url: str
    attempts: int
    failure_reason: str
    created_at: datetime
    scheduled_for: datetime | None
    sending_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None


class Error(Schema):
    detail: str


def role_check(request) -> None:
    if not has_role(request.auth.user, *SUPPORT):
        raise HttpError(403, _("Tu rol no permite enviar mensajes."))


# operation_id: the name the schema has always given them (clients generated from it use it).
@router.post(
    "/messages",
    response={201: MessageCreated, 403: Error},
    operation_id="chatdesk_api_message_create",
)
def message_create(request, payload: MessageIn):
    """Queue a WhatsApp message to a phone number (E.164, or local with the default region)."""
    role_check(request)
    message = message_send(
        phone=payload.phone,
        text=payload.text,
        media_url=payload.media_url,
        author_kind=Message.Author.API,
        agent=request.auth.user,
    )
    return Status(201, message_created(message))


@router.get(
    "/messages/{message_id}",
    response={200: MessageOut, 403: Error, 404: Error},
    operation_id="chatdesk_api_message_detail",
)
def message_detail(request, message_id: int):
    role_check(request)
    message = get_object_or_404(
        Message.objects.select_related("conversation__customer"),
        id=message_id,
        direction=Message.Direction.OUT,
    )
    return message_out(message)


def message_created(message: Message) -> dict:
    return {
        "id": message.id,
        "status": message.status,
        "conversation_id": message.conversation_id,
        "phone": message.conversation.customer.phone,
    }


def message_out(message: Message) -> dict:
    fields = (
        "attempts",
        "failure_reason",
        "created_at",
        "scheduled_for",
        "sending_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "media_url",
    )
    return {
        **message_created(message),
        "text": message.body,
        **{name: getattr(message, name) for name in fields},
    }
