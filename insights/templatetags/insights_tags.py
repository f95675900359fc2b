from django import template
from django.conf import settings
from django.utils.dateformat import format as date_format
from django.utils.formats import localize
from django.utils.html import format_html_join
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


# --- the page's big tables, built here -------------------------------------------------------
# A {% for %} over a year of days (365 rows of eight variables) and the two hour tables (336
# cells) cost the analytics page 50-200 ms of template work on every view, most of issue 19's
# 300 ms budget (bench/RESULTS.md); the same HTML built by format_html_join takes a tenth.
# The cells are what the template printed: localized numbers, escaped text.


def _number(value) -> str:
    """What {{ value }} prints: a whole number as it is (Django's localize takes ~0.2 ms to say
    so, through the format lookups), anything else localized (a rate: "45,5" in Spanish)."""
    if type(value) is int and not settings.USE_THOUSAND_SEPARATOR:
        return str(value)
    return localize(value)


@register.simple_tag
def daily_rows(daily):
    """<tr> per day: day, sent, delivered, read, replies, failed, new conversations, open rate."""
    figures = ("sent", "delivered", "read", "replies", "failed", "new_conversations")
    return format_html_join(
        "",
        "<tr><td>{}</td>" + "<td>{}</td>" * len(figures) + "<td>{}</td></tr>",
        (
            (
                date_format(r["day"], "D d/m"),
                *(_number(r[name]) for name in figures),
                pct(r["open_rate"]),
            )
            for r in daily
        ),
    )


@register.simple_tag
def heat_rows(rows):
    """<tr> per weekday: its first three letters, then one shaded cell per hour."""

    def cells(row):
        return format_html_join(
            "",
            '<td class="lv{}">{}</td>',
            ((c["level"], "" if c["value"] is None else _number(c["value"])) for c in row["cells"]),
        )

    return format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        ((row["day"][:3], cells(row)) for row in rows),
    )
