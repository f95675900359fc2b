"""The list's row and notification of a message, as the live socket sends them (docs/live.md).

Rendered by inbox/consumers.py for each event and audience, and once by the process that
stores a customer's message (`list_fragments`): that process has the conversation as its
statement left it, so the sockets of every process can send the row at once, without reading
it again (issue 19: the read and its thread hop were most of what a webhook's push waited for
after the commit). Only the audience most agents are (the site's language, the whole list, no
search) uses them; every other audience renders its own, as before.
"""

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import format_html

from inbox import live
from inbox.models import Conversation, Message

INDEX = "inbox/index.html"


def render(language: str, name: str, context: dict) -> str:
    """A partial of the inbox page, in `language`."""
    with translation.override(language):
        return render_to_string(f"{INDEX}#{name}", {"csrf_token": "NOTPROVIDED", **context})


def row_op(language: str, conversation: Conversation) -> str:
    """The row, as the op that puts it in its place in the list (#live-staging)."""
    return live.op("upsert", render(language, "conv_row", {"c": conversation}))


def notify_html(language: str, message: Message, conversation: Conversation) -> str:
    """The browser notification of a customer's message (static/js/inbox.js)."""
    customer = conversation.customer
    with translation.override(language):
        return format_html(
            '<div id="notify" hidden data-id="{}" data-conversation="{}" '
            'data-channel="{}" data-title="{}" data-body="{}"></div>',
            message.pk,
            conversation.pk,
            conversation.channel_id,
            customer.name or customer.phone,
            (message.body or message.get_kind_display())[:140],
        )


def list_fragments(message: Message) -> dict:
    """A customer's new message (its conversation, customer and assignee loaded): the row's op
    in #live-staging, as a socket sends it, and the notification in the site's language, for
    an event (inbox/events.py). Staged here once, not by each socket."""
    language = settings.LANGUAGE_CODE
    conversation = message.conversation
    return {
        "language": language,
        "channel": conversation.channel_id,
        "placed": live.staging([row_op(language, conversation)]),
        "notify": notify_html(language, message, conversation),
    }
