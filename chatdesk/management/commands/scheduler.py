"""The periodic ticker (production): imports every actor module so their dramatiq-crontab
schedules register, then runs dramatiq-crontab's scheduler under its Redis lock, so a second
scheduler only waits."""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the periodic scheduler (due campaigns, reminders, sweepers)."

    def handle(self, *args, **options):
        from chatdesk.worker import actor_modules_load

        actor_modules_load()
        call_command("crontab", "--no-task-loading", "--no-heartbeat")
