"""The rollups: each settled day's figures folded from the raw rows by insights.rollups.

Insights still writes nothing of the other apps'; these tables are its own, rebuilt from
PostgreSQL's rows at any time (drop them and the next fold writes them again)."""

from django.db import models


class Rollup(models.Model):
    """One day's figures of one kind (daily, hours, funnel7, ...) on one WhatsApp number
    (`channel` is the channel's key; "" for a kind that belongs to no number: renewals)."""

    kind = models.CharField(max_length=32)
    day = models.DateField()
    channel = models.CharField(max_length=64, blank=True)
    data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "day", "channel"], name="one_rollup_per_day"),
        ]

    def __str__(self):
        return f"{self.kind} {self.day} {self.channel}"


class RollupMark(models.Model):
    """How far one kind is folded: every day up to `through` is in Rollup, and the rows the
    last folds saw (the ids of the kind's source rows, messages or resolutions, and the time
    it started) tell the next fold what changed."""

    kind = models.CharField(max_length=32, unique=True)
    through = models.DateField(null=True)
    # The highest source id the last fold saw, and the one before it: a fold rescans from
    # the older one, so a row whose id was drawn before a commit that landed later is seen.
    seen_id = models.BigIntegerField(default=0)
    seen_id_before = models.BigIntegerField(default=0)
    folded_at = models.DateTimeField(null=True)

    def __str__(self):
        return f"{self.kind} through {self.through}"
