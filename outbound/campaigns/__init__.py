"""Campaigns: one message to an audience, sent once per customer, paced, pausable.

Life: draft -> scheduled -> running -> completed, with paused (and back) and cancelled; a
launch that fails LAUNCH_MAX_ATTEMPTS times (a body that cannot be rendered, a segment that
errors) ends `failed` with the reason, instead of being tried again by every tick.

Opt-out: a marketing campaign's messages are `marketing`; the send pipeline's claim skips (and
cancels) one whose customer opted out after it was queued, and an opt-out cancels the
customer's waiting ones at once (outbound.services.marketing_messages_cancel).

One module per concern:
- `create`: validate, create, schedule, duplicate, retarget (drafts).
- `audience`: who it writes to, the sending window and each customer's best hour.
- `launch`: launch (recipients written in bulk), the fan-out chain, the scheduler tick, and
  their Dramatiq actors.
- `control`: pause, resume, cancel.
- `results`: progress, funnel, variants, failure reasons, recipients, and why a running
  campaign is waiting. Reads only.

The names below are the package's public face (views, the API, the demo data and tests import
them from here).
"""

from outbound.campaigns.audience import (
    MARKETING_KINDS,
    best_hour_slot,
    best_hours,
    campaign_audience,
    planned_at,
    window_open_at,
)
from outbound.campaigns.control import campaign_cancel, campaign_pause, campaign_resume
from outbound.campaigns.create import (
    CampaignInvalid,
    CampaignStateError,
    campaign_create,
    campaign_duplicate,
    campaign_launch_soon,
    campaign_retarget,
    campaign_schedule,
    campaign_validate,
)
from outbound.campaigns.launch import (
    LAUNCH_MAX_ATTEMPTS,
    campaign_complete_if_done,
    campaign_fanout,
    campaign_fanout_step,
    campaign_launch,
    campaign_launch_failed,
    campaign_launch_task,
    campaign_tick,
    campaigns_tick,
    recipients_materialise,
    recipients_queue,
    recipients_sync,
)
from outbound.campaigns.results import (
    Waiting,
    campaign_failure_reasons,
    campaign_funnel,
    campaign_open_counts,
    campaign_progress_counts,
    campaign_recipients,
    campaign_results,
    campaign_variant_funnels,
    campaign_waiting,
    variant_winner_mark,
    waiting_label,
)

__all__ = [
    "LAUNCH_MAX_ATTEMPTS",
    "MARKETING_KINDS",
    "CampaignInvalid",
    "CampaignStateError",
    "Waiting",
    "best_hour_slot",
    "best_hours",
    "campaign_audience",
    "campaign_cancel",
    "campaign_complete_if_done",
    "campaign_create",
    "campaign_duplicate",
    "campaign_failure_reasons",
    "campaign_fanout",
    "campaign_fanout_step",
    "campaign_funnel",
    "campaign_launch",
    "campaign_launch_failed",
    "campaign_launch_soon",
    "campaign_launch_task",
    "campaign_open_counts",
    "campaign_pause",
    "campaign_progress_counts",
    "campaign_recipients",
    "campaign_results",
    "campaign_resume",
    "campaign_retarget",
    "campaign_schedule",
    "campaign_tick",
    "campaign_validate",
    "campaign_variant_funnels",
    "campaign_waiting",
    "campaigns_tick",
    "planned_at",
    "recipients_materialise",
    "recipients_queue",
    "recipients_sync",
    "variant_winner_mark",
    "waiting_label",
    "window_open_at",
]
