from django.db import migrations

# Conversations resolved before Resolution existed kept no resolved-at time, so each gets one
# approximate row: resolved at its last message, started at its first customer message ever
# (not the first one after an earlier resolution, which nothing recorded), credited to its
# assignee now. One INSERT ... SELECT: a large install backfills in seconds.
BACKFILL = """
INSERT INTO inbox_resolution (conversation_id, channel_id, assignee_id, started_at, resolved_at)
SELECT c.id, c.channel_id, c.assignee_id, f.first_in, COALESCE(c.last_message_at, c.created_at)
FROM inbox_conversation c
LEFT JOIN (
    SELECT conversation_id, MIN(created_at) AS first_in
    FROM inbox_message
    WHERE direction = 'in'
    GROUP BY conversation_id
) f ON f.conversation_id = c.id
WHERE c.status = 'resolved'
"""


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0012_resolution"),
    ]

    operations = [
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
