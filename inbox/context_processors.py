"""The inbox's part of every page: the unread badge beside "Conversaciones" in the navigation.

Rendered with the page (no flash), then kept live on the inbox page by the same frames and
list re-fetches that carry the tab title's count (docs/live.md, `#nav-unread`). Other pages
show it as it was when they loaded: no socket there.
"""

from functools import partial

from django.utils.translation import ngettext

from chatdesk.roles import SUPPORT, has_role
from inbox import channels, selectors

BADGE = "inbox/unread_badge.html"


def unread_total(request) -> int:
    """Conversations with something unread on the channels this agent works on; counted once
    per request (the page's nav and its list ask), after the view has done its work (opening
    a conversation reads it)."""
    try:
        return request._unread_total
    except AttributeError:
        keys = channels.channel_keys_for_request(request)
        request._unread_total = selectors.unread_conversations_count(channel_keys=keys)
        return request._unread_total


def unread_badge(request) -> dict:
    """Context processor: `inbox_unread`, counted only if a template shows it (a callable:
    partials and pages without the navigation cost nothing)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not has_role(user, *SUPPORT):
        return {}
    return {"inbox_unread": partial(unread_total, request)}


def unread_badge_context(count: int, *, oob: bool = False) -> dict:
    """What inbox/unread_badge.html shows; the label is text (the template escapes it, a
    translation included)."""
    words = ngettext("%(n)s conversación sin leer", "%(n)s conversaciones sin leer", count)
    label = words % {"n": count}
    return {"count": count, "label": label, "oob": oob}
