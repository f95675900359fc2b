"""The agents' rollups hold packed arrays (insights.selectors.packed) instead of JSON lists,
and resolutions get a rollup of their own. The old rows of "turns" and "handled" are
dropped with their marks: the next fold writes them again from the raw rows, as it does for a
kind it has never folded (rollups are rebuilt from PostgreSQL's rows at any time). The marks
keep the ids of a kind's source rows, messages or resolutions: seen_id, not message_id."""

from django.db import migrations

REFOLDED = ("turns", "handled")


def drop_old_rows(apps, schema_editor):
    apps.get_model("insights", "Rollup").objects.filter(kind__in=REFOLDED).delete()
    apps.get_model("insights", "RollupMark").objects.filter(kind__in=REFOLDED).delete()


class Migration(migrations.Migration):
    dependencies = [("insights", "0001_rollups")]

    operations = [
        migrations.RenameField("rollupmark", "message_id", "seen_id"),
        migrations.RenameField("rollupmark", "message_id_before", "seen_id_before"),
        migrations.RunPython(drop_old_rows, migrations.RunPython.noop),
    ]
