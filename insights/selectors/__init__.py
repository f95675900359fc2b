"""Read-only figures over the other apps' data. Nothing here writes.

Every figure is counted in the database (GROUP BY on dates and hours converted to Guayaquil
time with Trunc/Extract and tzinfo, the same SQL shape on SQLite and PostgreSQL). A day is a
Guayaquil calendar day, [00:00, 24:00) local.

Definitions (also shown as help on the pages):

- enviados: outbound messages whose `sent_at` (the provider accepted them) falls on the day.
- entregados: outbound messages that reached the phone on the day: `delivered_at` on the day,
  or, when WhatsApp reported "read" without a "delivered" first, `read_at` on the day.
- leídos: outbound messages whose `read_at` falls on the day.
- respuestas recibidas: inbound messages (written by customers) on the day (`created_at`, the
  WhatsApp timestamp).
- fallidos: outbound messages that ended `failed` with `failed_at` on the day.
- tasa de apertura: of the messages sent on the day, the share already read (read / sent of the
  same messages, so it never exceeds 100 %).
- nuevas conversaciones: conversations created on the day (a customer's first contact on a
  WhatsApp number).
- change against yesterday: today so far against yesterday up to the same time of day, in %
  (none when yesterday had zero).

One module per concern: `period` (days, ranges, reading the rollups that insights.rollups
folds, the cache for what is not folded), `panel` (today, live),
`daily` (trend, best hours, services), `funnels` (reminders, campaigns compared), `agents`,
`behaviour`; `common` holds the query pieces they share. The names below are the package's
public face (the views, the API and the exports read `selectors.<name>`).
"""

from insights.selectors.agents import agent_stats, agent_stats_count
from insights.selectors.behaviour import behaviour_groups, behaviour_groups_count
from insights.selectors.common import FIGURES
from insights.selectors.daily import (
    best_slots,
    daily_metrics,
    heatmaps,
    min_sample,
    popular_services,
    slot_name,
    summary,
    totals,
    weekday_names,
)
from insights.selectors.funnels import campaign_comparison, reminder_funnel
from insights.selectors.panel import (
    campaigns_overview,
    session_states,
    today_figures,
    waiting_conversations,
)
from insights.selectors.period import (
    GYE,
    Period,
    PeriodError,
    days_cached,
    days_folded,
    parse_day,
    period_from_params,
    period_make,
    period_preset,
)

__all__ = [
    "FIGURES",
    "GYE",
    "Period",
    "PeriodError",
    "agent_stats",
    "agent_stats_count",
    "behaviour_groups",
    "behaviour_groups_count",
    "best_slots",
    "campaign_comparison",
    "campaigns_overview",
    "daily_metrics",
    "days_cached",
    "days_folded",
    "heatmaps",
    "min_sample",
    "parse_day",
    "period_from_params",
    "period_make",
    "period_preset",
    "popular_services",
    "reminder_funnel",
    "session_states",
    "slot_name",
    "summary",
    "today_figures",
    "totals",
    "waiting_conversations",
    "weekday_names",
]
