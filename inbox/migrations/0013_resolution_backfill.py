from datetime import timedelta

from django.db import migrations
from django.db.models import Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

# Conversations resolved before Resolution existed kept no resolved-at time, so each gets one
# approximate row: resolved at its last message, credited to its assignee now, started at the
# first customer message of its last week (nothing recorded where the resolved episode began:
# the first message ever would give months-long "resolutions" to every old conversation).
EPISODE_AT_MOST = timedelta(days=7)
BATCH = 5000


def backfill(apps, schema_editor):
    Conversation = apps.get_model("inbox", "Conversation")
    Message = apps.get_model("inbox", "Message")
    Resolution = apps.get_model("inbox", "Resolution")
    first_in = (
        Message.objects.filter(
            conversation_id=OuterRef("pk"),
            direction="in",
            created_at__gte=OuterRef("ended") - EPISODE_AT_MOST,
            created_at__lte=OuterRef("ended"),
        )
        .order_by()
        .values("conversation_id")
        .annotate(first=Min("created_at"))
        .values("first")
    )
    rows = (
        Conversation.objects.filter(status="resolved")
        .annotate(ended=Coalesce("last_message_at", "created_at"))
        .annotate(first_in=Subquery(first_in))
        .values_list("pk", "channel_id", "assignee_id", "first_in", "ended")
    )
    batch = []
    for pk, channel, assignee, started, ended in rows.iterator(chunk_size=BATCH):
        batch.append(
            Resolution(
                conversation_id=pk,
                channel_id=channel,
                assignee_id=assignee,
                started_at=started,
                resolved_at=ended,
            )
        )
        if len(batch) >= BATCH:
            Resolution.objects.bulk_create(batch)
            batch = []
    Resolution.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0012_resolution"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
