"""Two indexes the figures need on other apps' tables, which without them are read whole:
new conversations are counted by the day they were created (the panel every 10 s, the fold,
today's analytics: 50 ms at 250,000 conversations), and reminders by the day they were sent
(today's funnel: 100 ms at 800,000 reminders). They belong with those apps' model indexes;
kept here while insights is their only reader."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_rollups"),
        ("inbox", "0008_webhookevent_provider"),
        ("outbound", "0007_campaign_failed_recipient_opted_out"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS insights_conv_created_idx "
            "ON inbox_conversation (created_at)",
            "DROP INDEX IF EXISTS insights_conv_created_idx",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS insights_remindersent_created_idx "
            "ON outbound_remindersent (created_at)",
            "DROP INDEX IF EXISTS insights_remindersent_created_idx",
        ),
    ]
