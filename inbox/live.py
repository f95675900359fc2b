"""The server half of the live page protocol (docs/live.md): the one wrapper every placed
fragment travels in, the status rank a page compares before it replaces a line, and the
composer's reference that ties an agent's optimistic line to the message it became.

Fragments reach a page by two roads that race: the answer to the agent's own request and the
socket. Either may come first, and the socket's copies may come in any order (they are
rendered in several processes). So a fragment never says "replace": it says "this is message N
as of rank R", and the page keeps the furthest one (static/js/inbox.js, `place`).
"""

import logging
import re

from django.core.cache import cache
from django.utils.html import format_html, format_html_join

from inbox.models import Message

logger = logging.getLogger(__name__)

Status = Message.Status
# How far along an outbound line is, as a page may show it. Only what the server can do moves
# up: queued and sending take turns while a send is retried (they look the same: 🕓); a send
# whose answer was lost (unconfirmed) may become unknown, and either may still turn out sent;
# sent may still fail (WhatsApp's error); a delivered line never fails. Inbound lines keep
# "received" and replace each other freely.
STATUS_RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 1,
    Status.SENDING: 1,
    Status.UNCONFIRMED: 2,
    Status.UNKNOWN: 3,
    Status.SENT: 4,
    Status.FAILED: 5,
    Status.DELIVERED: 5,
    Status.READ: 6,
    Status.PLAYED: 7,
    Status.CANCELLED: 8,
    Status.RECEIVED: 0,
}

# The composer's reference for one submission (made by the page): short, plain characters.
REF_RE = re.compile(r"^[A-Za-z0-9-]{8,40}$")
REF_SECONDS = 120


def op(kind: str, html: str) -> str:
    """One placement: kind "upsert" (place, or keep the furthest of two copies) or "remove"."""
    return format_html('<div class="live-op" data-op="{}">{}</div>', kind, html)


def staging(ops: list[str]) -> str:
    """Ops for #live-staging, the hidden inbox the page empties as soon as something lands."""
    return format_html(
        '<div id="live-staging" hx-swap-oob="beforeend">{}</div>',
        format_html_join("", "{}", ((one,) for one in ops)),
    )


def status_rank(status: str) -> int:
    return STATUS_RANK.get(status, 0)


def reply_ref_clean(raw: str | None) -> str:
    raw = (raw or "").strip()
    return raw if REF_RE.match(raw) else ""


def reply_ref_note(*, message_id: int, ref: str) -> None:
    """Remember which composer submission made this message, for the socket's copies of its
    line. Call it inside the transaction that creates the message: the events leave after
    commit, so every copy rendered finds it. A cache miss only costs the sender a moment of
    two lines (the answer to the request carries the reference too)."""
    if not ref:
        return
    try:
        cache.set(f"live:ref:{message_id}", ref, REF_SECONDS)
    except Exception:  # the cache is Redis: a hiccup must not fail the reply
        logger.warning("reply reference not stored for message %s", message_id, exc_info=True)


def reply_refs_attach(messages) -> None:
    """Set `live_ref` (the message line's data-ref) on agents' recent replies among
    `messages`, in one cache call: the socket's copies of a line, and a thread re-fetched while
    the sender's reply is on its way, then carry the reference the sender's page waits for."""
    mine = [
        m
        for m in messages
        if m.direction == Message.Direction.OUT and m.author_kind == Message.Author.AGENT
    ]
    if not mine:
        return
    try:
        found = cache.get_many([f"live:ref:{m.pk}" for m in mine])
    except Exception:
        logger.warning("reply references not read", exc_info=True)
        return
    for m in mine:
        m.live_ref = found.get(f"live:ref:{m.pk}", "")
