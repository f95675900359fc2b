from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def wait(delta):
    """A timedelta as "2 d 3 h", "3 h 05 min" or "12 min"."""
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return _("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s h %(m)02d min") % {"h": hours, "m": minutes}
    return _("%(m)s min") % {"m": minutes}


@register.filter
def usd(value):
    return f"${value:,.2f}" if value is not None else "—"


@register.filter
def pct(value):
    return f"{value}%" if value is not None else "—"


@register.filter
def get(mapping, key):
    return mapping.get(key)
