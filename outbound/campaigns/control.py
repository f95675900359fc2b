"""Campaigns: a person's hand on a launched campaign: pause, resume, cancel."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox.models import Message
from outbound.campaigns.create import CampaignStateError
from outbound.campaigns.launch import CANCELLED_REASON, fanout_enqueue_on_commit, recipients_sync
from outbound.models import Campaign, CampaignRecipient
from outbound.pipeline import status_publish

State = Campaign.State
RState = CampaignRecipient.State
MStatus = Message.Status

FINISHED = (State.COMPLETED, State.CANCELLED, State.FAILED)


def campaign_pause(*, campaign: Campaign) -> None:
    """running -> paused. The fan-out stops at its next recipient; what was already handed to
    the send pipeline (at most FANOUT_AHEAD_SECONDS of sends) still goes out."""
    if not Campaign.objects.filter(pk=campaign.pk, state=State.RUNNING).update(
        state=State.PAUSED, paused_at=timezone.now()
    ):
        raise CampaignStateError(_("Solo se puede pausar una campaña activa."))
    campaign.state = State.PAUSED


def campaign_resume(*, campaign: Campaign) -> None:
    """paused -> running: a new fan-out chain continues with those not yet sent."""
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, state=State.PAUSED).update(
            state=State.RUNNING,
            paused_at=None,
            fanout_token=F("fanout_token") + 1,
            fanout_next_at=timezone.now(),
        ):
            raise CampaignStateError(_("Solo se puede reanudar una campaña pausada."))
        campaign.refresh_from_db()
        fanout_enqueue_on_commit(campaign.pk, campaign.fanout_token)


def campaign_cancel(*, campaign: Campaign) -> None:
    """Ends it: pending recipients and messages not yet taken by a worker are skipped
    ("cancelada"); what is being sent right now finishes."""
    now = timezone.now()
    reason = _(CANCELLED_REASON)
    with transaction.atomic():
        if (
            not Campaign.objects.filter(pk=campaign.pk)
            .exclude(state__in=FINISHED)
            .update(state=State.CANCELLED, cancelled_at=now, fanout_token=F("fanout_token") + 1)
        ):
            raise CampaignStateError(_("La campaña ya terminó."))
        campaign.refresh_from_db()
        recipients = CampaignRecipient.objects.filter(campaign=campaign)
        recipients.filter(state=RState.PENDING).update(state=RState.SKIPPED, skip_reason=reason)
        waiting = Message.objects.filter(
            pk__in=recipients.filter(state=RState.QUEUED).values("message_id"),
            status=MStatus.QUEUED,
        )
        for message in list(waiting):
            if Message.objects.filter(pk=message.pk, status=MStatus.QUEUED).update(
                status=MStatus.CANCELLED, failure_reason=reason
            ):
                status_publish(message, MStatus.CANCELLED)
        recipients_sync(campaign=campaign)
