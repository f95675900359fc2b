from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.phones import phone_display

register = template.Library()


@register.filter
def phone(e164: str) -> str:
    return phone_display(e164)


@register.filter
def expiry_text(subscription) -> str:
    """'vence en 3 días', 'vence hoy', 'vencida hace 5 días'."""
    days = subscription.days_left
    if days == 0:
        return _("vence hoy")
    if days == 1:
        return _("vence mañana")
    if days > 1:
        return ngettext("vence en %(n)s día", "vence en %(n)s días", days) % {"n": days}
    if days == -1:
        return _("venció ayer")
    return ngettext("vencida hace %(n)s día", "vencida hace %(n)s días", -days) % {"n": -days}


@register.filter
def expiry_class(subscription) -> str:
    days = subscription.days_left
    if days < 0:
        return "bad"
    return "warn" if days <= 3 else "ok"
