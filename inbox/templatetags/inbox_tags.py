from django import template
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.phones import phone_display
from inbox import selectors
from inbox.models import Message

register = template.Library()

# (symbol, css class, Spanish label) per outbound status
TICKS = {
    "scheduled": ("🗓", "tick-scheduled"),
    "queued": ("🕓", "tick-queued"),
    "sending": ("🕓", "tick-queued"),
    "sent": ("✓", "tick-sent"),
    "delivered": ("✓✓", "tick-delivered"),
    "read": ("✓✓", "tick-read"),
    "played": ("✓✓", "tick-read"),
    "failed": ("⚠", "tick-failed"),
    "unknown": ("?", "tick-unknown"),
    "cancelled": ("✕", "tick-cancelled"),
}
STATUS_BADGES = {"new": "🔴", "answered": "🟡", "resolved": "🟢"}


@register.filter
def phone(e164: str) -> str:
    return phone_display(e164)


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
def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, "")


@register.filter
def author_label(message: Message) -> str:
    """Who wrote the line, as the thread shows it."""
    kind = message.author_kind
    if kind == Message.Author.CUSTOMER:
        customer = message.conversation.customer
        return customer.name or phone_display(customer.phone)
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


@register.filter
def expiry_text(subscription) -> str:
    """'Netflix vence en 3 días' without the service name: 'vence en 3 días', 'vence hoy'..."""
    days = subscription.days_left
    if days == 0:
        return _("vence hoy")
    if days == 1:
        return _("vence mañana")
    if days > 1:
        return ngettext("vence en %(n)s día", "vence en %(n)s días", days) % {"n": days}
    if days == -1:
        return _("venció ayer")
    return ngettext("venció hace %(n)s día", "venció hace %(n)s días", -days) % {"n": -days}


@register.filter
def expiry_class(subscription) -> str:
    days = subscription.days_left
    if days < 0:
        return "bad"
    return "warn" if days <= 3 else "ok"
