"""The progress poll (campaign_progress_counts) counts what the funnel's single aggregate over
every recipient and its message counts, with recipients in every state and messages in every
status."""

import itertools
from datetime import time

import pytest
from django.utils import timezone

from customers.models import Customer
from inbox.models import Message
from outbound.campaigns import (
    campaign_create,
    campaign_fanout_step,
    campaign_launch,
    campaign_progress_counts,
    results,
)
from outbound.campaigns.launch import recipients_sync
from outbound.models import CampaignRecipient

R = CampaignRecipient.State
S = Message.Status


def _reference(campaign) -> dict:
    """The counts as one aggregate over every recipient, joined with its message."""
    counts = CampaignRecipient.objects.filter(campaign=campaign).aggregate(
        **results._progress_counts()
    )
    return results._done(counts)


@pytest.fixture
def campaign(db):
    Customer.objects.bulk_create(
        Customer(name=f"Cliente {n}", phone=f"+5939801{n:05d}") for n in range(60)
    )
    made = campaign_create(
        title="Progreso",
        body="Hola {nombre}",
        filters={},
        window_start=time(0, 0),
        window_end=time(23, 59, 59),
    )
    assert campaign_launch(campaign_id=made.pk)
    return made


def test_a_campaign_just_launched(campaign):
    counts = campaign_progress_counts(campaign=campaign)
    assert counts == _reference(campaign)
    assert counts["pending"] == counts["total"] == 60
    assert counts["first_pending"] is not None


def test_recipients_in_every_state_and_messages_in_every_status(campaign):
    for _ in range(10):
        campaign.refresh_from_db()
        campaign_fanout_step(campaign_id=campaign.pk, token=campaign.fanout_token, paced=False)
    queued = list(CampaignRecipient.objects.filter(campaign=campaign, state=R.QUEUED))
    assert len(queued) == 60
    statuses = itertools.cycle(list(S))
    for recipient, status in zip(queued[:40], statuses, strict=False):
        Message.objects.filter(pk=recipient.message_id).update(status=status)
    # The fan-out's outcomes, then recipients sent back to pending, skipped and opted out.
    campaign.refresh_from_db()
    recipients_sync(campaign=campaign)
    rest = [r.pk for r in queued[40:]]
    CampaignRecipient.objects.filter(pk__in=rest[:5]).update(state=R.SKIPPED)
    CampaignRecipient.objects.filter(pk__in=rest[5:10]).update(state=R.OPTED_OUT)
    CampaignRecipient.objects.filter(pk__in=rest[10:15]).update(
        state=R.PENDING, message=None, planned_at=timezone.now()
    )
    counts = campaign_progress_counts(campaign=campaign)
    assert counts == _reference(campaign)
    for key in ("pending", "queued", "unconfirmed", "skipped", "opted_out", "sent", "failed"):
        assert counts[key], key
    assert counts["read"] and counts["delivered"] and counts["unknown"]
