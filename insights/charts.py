"""Chart.js data for the analytics page, passed to the browser with json_script (never built
into JavaScript as strings). Series differ by dash style and point shape as well as colour."""

from django.utils import formats
from django.utils.translation import gettext as _

# (figure, label, colour, dash pattern, point style)
TREND: tuple[tuple[str, str, str, list[int], str], ...] = (
    ("sent", "Enviados", "#075e54", [], "circle"),
    ("delivered", "Entregados", "#1a73e8", [6, 4], "rect"),
    ("read", "Leídos", "#1e8e3e", [2, 3], "triangle"),
    ("replies", "Respuestas", "#e8a600", [10, 4, 2, 4], "rectRot"),
    ("failed", "Fallidos", "#d93025", [1, 6], "crossRot"),
)


def trend_chart(daily: list[dict]) -> dict:
    return {
        "type": "line",
        "labels": [formats.date_format(row["day"], "SHORT_DATE_FORMAT") for row in daily],
        "datasets": [
            {
                "label": _(label),
                "data": [row[key] for row in daily],
                "borderColor": color,
                "backgroundColor": color,
                "borderDash": dash,
                "pointStyle": point,
            }
            for key, label, color, dash, point in TREND
        ],
    }


def services_chart(rows: list[dict]) -> dict:
    return {
        "type": "bar",
        "labels": [row["service"] for row in rows],
        "datasets": [
            {
                "label": _("Suscripciones activas"),
                "data": [row["active"] for row in rows],
                "backgroundColor": "#128c7e",
            },
            {
                "label": _("Renovaciones"),
                "data": [row["renewals"] for row in rows],
                "backgroundColor": "#f0b400",
                "pattern": "stripes",
            },
        ],
    }


def funnel_chart(funnel: dict) -> dict:
    total = funnel["total"]
    steps = (
        ("reminded", _("Recordados")),
        ("read", _("Leídos")),
        ("replied", _("Respondieron")),
        ("renewed", _("Renovaron")),
    )
    return {
        "type": "bar",
        "labels": [label for _key, label in steps],
        "datasets": [
            {
                "label": _("Recordatorios"),
                "data": [total[key] for key, _label in steps],
                "backgroundColor": "#128c7e",
            },
        ],
    }


def _level(value, top: int, shade_of) -> int:
    """0 for an empty cell, else 1-4 by the value's share of the busiest cell."""
    if not value or not top:
        return 0
    # An int even for a rate (a float): the level names a CSS class, "lv2", never "lv2,0".
    return 1 + min(3, int(4 * shade_of(value) // (top + 1)))


def heat_tables(grids: dict) -> dict:
    """Rows of cells for the two heatmap tables, with a 0-4 shade level (the number is always
    printed in the cell; the shade only helps)."""
    from insights.selectors.daily import weekday_names

    def table(grid, shade_of):
        top = max((v or 0 for row in grid for v in row), default=0)
        return [
            {
                "day": name,
                "cells": [{"value": v, "level": _level(v, top, shade_of)} for v in grid[i]],
            }
            for i, name in enumerate(weekday_names())
        ]

    return {
        "replies": table(grids["replies"], lambda v: v),
        "rate": table(grids["rate"], lambda v: v),
        "hours": list(range(24)),
    }
