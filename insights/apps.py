import statistics

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class _SQLiteMedian:
    """MEDIAN(x) for SQLite, which has none; PostgreSQL uses percentile_cont instead."""

    def __init__(self):
        self.values = []

    def step(self, value):
        if value is not None:
            self.values.append(value)

    def finalize(self):
        return statistics.median(self.values) if self.values else None


def _sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("MEDIAN", 1, _SQLiteMedian)


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = _("Analítica")

    def ready(self):
        connection_created.connect(_sqlite_functions, dispatch_uid="insights_sqlite_median")
