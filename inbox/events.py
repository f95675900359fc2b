"""The one place that publishes live events to agent browsers, and only after commit.

Every event goes to the "inbox" group (all agents: the conversation list) and, when it concerns
a conversation, to that conversation's group (the agents who have its thread open). A consumer
in both groups receives both copies; `group` says which one it is holding, so the list copy
updates the list and the thread copy updates the thread.

Event types: message.created, message.status (both with message_id), conversation.updated.
Each carries a unique `event_id`, so the sockets of one process render its fragment once.
"""

import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

INBOX_GROUP = "inbox"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def event_publish(event_type: str, *, conversation_id: int | None = None, **data) -> None:
    """Send `{"type": event_type, ...data}` to the inbox group (and the conversation's group)
    once the surrounding transaction commits; never for a change that rolls back."""

    def send():
        layer = get_channel_layer()
        if layer is None:
            return
        message = {
            "type": event_type, "conversation_id": conversation_id,
            "event_id": uuid.uuid4().hex, **data,
        }  # fmt: skip
        async_to_sync(layer.group_send)(INBOX_GROUP, {**message, "group": "inbox"})
        if conversation_id is not None:
            async_to_sync(layer.group_send)(
                conversation_group(conversation_id), {**message, "group": "conversation"}
            )

    transaction.on_commit(send)
