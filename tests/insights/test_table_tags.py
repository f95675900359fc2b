"""The analytics page's big tables are built by template tags (insights_tags.daily_rows and
heat_rows), not by {% for %} loops: the same HTML as the loops they replaced, cell for cell,
in both languages, with customer-free but escaped text."""

from datetime import date, timedelta

import pytest
from django.template import engines
from django.utils import translation

from insights.charts import heat_tables

OLD_DAILY = (
    '{% load insights_tags %}{% for r in daily %}<tr><td>{{ r.day|date:"D d/m" }}</td>'
    "<td>{{ r.sent }}</td><td>{{ r.delivered }}</td><td>{{ r.read }}</td>"
    "<td>{{ r.replies }}</td><td>{{ r.failed }}</td><td>{{ r.new_conversations }}</td>"
    "<td>{{ r.open_rate|pct }}</td></tr>{% endfor %}"
)
OLD_HEAT = (
    '{% for row in rows %}<tr><th scope="row">{{ row.day|slice:":3" }}</th>'
    '{% for c in row.cells %}<td class="lv{{ c.level }}">{% if c.value is not None %}'
    "{{ c.value }}{% endif %}</td>{% endfor %}</tr>{% endfor %}"
)


def _render(source: str, context: dict) -> str:
    return engines["django"].from_string(source).render(context)


def _daily() -> list[dict]:
    start = date(2026, 1, 1)
    return [
        {
            "day": start + timedelta(days=i),
            "sent": 1000 + i * 37,
            "delivered": 900,
            "read": i,
            "replies": 0,
            "failed": 3,
            "new_conversations": 12,
            "open_rate": None if i % 5 == 0 else round(i / 3.7, 1),
        }
        for i in range(40)
    ]


@pytest.mark.parametrize("language", ["es", "en"])
def test_daily_rows_are_the_loops_html(language):
    context = {"daily": _daily()}
    with translation.override(language):
        old = _render(OLD_DAILY, context)
        new = _render("{% load insights_tags %}{% daily_rows daily %}", context)
    assert new == old
    assert new.count("<tr>") == 40


@pytest.mark.parametrize("language", ["es", "en"])
def test_heat_rows_are_the_loops_html(language):
    grid = [[None if (d + h) % 7 == 0 else (d * 24 + h) * 1.5 for h in range(24)] for d in range(7)]
    with translation.override(language):
        tables = heat_tables({"replies": grid, "rate": grid})
        old = _render(OLD_HEAT, {"rows": tables["rate"]})
        new = _render("{% load insights_tags %}{% heat_rows rows %}", {"rows": tables["rate"]})
    assert new == old
    assert new.count('<th scope="row">') == 7
    # The read-rate table's shades are whole levels in every language (the rates are floats:
    # the Spanish page once printed class="lv1,0", which no rule of the stylesheet matches).
    assert 'class="lv4"' in new
    assert ',0"' not in new


def test_daily_rows_escape_what_they_print():
    row = dict(_daily()[0], sent="<b>x</b>")
    html = _render("{% load insights_tags %}{% daily_rows daily %}", {"daily": [row]})
    assert "<b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
