from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from customers.templatetags import customer_tags
from inbox import channels, live, selectors
from inbox.context_processors import BADGE, unread_badge_context
from inbox.models import Message

register = template.Library()

# (symbol, css class, Spanish label) per outbound status
TICKS = {
    "scheduled": ("🗓", "tick-scheduled"),
    "queued": ("🕓", "tick-queued"),
    "sending": ("🕓", "tick-queued"),
    "unconfirmed": ("🕓", "tick-unconfirmed"),
    "sent": ("✓", "tick-sent"),
    "delivered": ("✓✓", "tick-delivered"),
    "read": ("✓✓", "tick-read"),
    "played": ("✓✓", "tick-read"),
    "failed": ("⚠", "tick-failed"),
    "unknown": ("?", "tick-unknown"),
    "cancelled": ("✕", "tick-cancelled"),
}
STATUS_BADGES = {"new": "🔴", "answered": "🟡", "resolved": "🟢"}


register.filter("phone", customer_tags.phone)


@register.filter
def short_time(moment) -> str:
    """Today: '14:05'; this year: '24/11'; before: '24/11/2024' (Guayaquil time)."""
    if not moment:
        return ""
    local = timezone.localtime(moment)
    today = timezone.localdate()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%d/%m")
    return local.strftime("%d/%m/%Y")


@register.filter
def tick(message: Message) -> str:
    return TICKS.get(message.status, ("", ""))[0]


@register.filter
def tick_class(message: Message) -> str:
    return TICKS.get(message.status, ("", ""))[1]


@register.filter
def status_rank(message: Message) -> int:
    return live.status_rank(message.status)


@register.filter
def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, "")


@register.filter
def author_label(message: Message) -> str:
    """Who wrote the line, as the thread shows it."""
    kind = message.author_kind
    if kind == Message.Author.CUSTOMER:
        customer = message.conversation.customer
        return customer.name or customer_tags.phone(customer.phone)
    if kind == Message.Author.AGENT and message.agent:
        return message.agent.get_full_name() or message.agent.get_username()
    if kind == Message.Author.PHONE:
        return _("desde el teléfono")
    return message.get_author_kind_display()


@register.filter
def msg_key(message: Message) -> str:
    return selectors.message_key(message)


@register.filter
def conv_key(conversation) -> str:
    return selectors.conversation_key(conversation)


@register.filter
def user_label(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


# One wording of expiries and phones everywhere: the customer book's.
register.filter("expiry_text", customer_tags.expiry_text)
register.filter("expiry_class", customer_tags.expiry_class)


def channel_chip_html(channel_key: str) -> str:
    """The channel's name in its colour, on installs with more than one number."""
    label = channels.labels().get(channel_key)
    if not label:
        return ""
    return format_html(
        '<span class="channel-chip colour-{}" title="{}">{}</span>', label[1], _("Canal"), label[0]
    )


@register.simple_tag
def channel_chip(channel_key: str) -> str:
    # The newlines around the chip are the ones its template file printed: pages read as before.
    return format_html("\n{}\n", channel_chip_html(channel_key))


@register.inclusion_tag(BADGE)
def unread_badge(count, oob=False):
    """The navigation's unread badge (every page; the inbox's list re-fetches, out of band)."""
    return unread_badge_context(int(count or 0), oob=oob)
