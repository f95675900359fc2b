"""Fill an empty database with a month of demo data (`make demo` runs it with --if-empty).

Run again on a demo database (`--if-empty` with customers there), it keeps every row and moves
the story's dates forward to today (devdata.demo.demo_refresh), so the panel shows today."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from customers.models import Customer
from devdata.demo import (
    DEFAULT_SEED,
    GYE,
    demo_credentials_box,
    demo_refresh,
    demo_seed,
    demo_wipe,
)


def anchor(value: str) -> datetime:
    """ISO 8601; without an offset it is Ecuador time."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=GYE)


class Command(BaseCommand):
    help = "Seed demo customers, subscriptions, conversations, templates and users."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Seed only when there are no customers."
        )
        parser.add_argument(
            "--force", action="store_true", help="Delete customers, conversations and tags first."
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed.")
        parser.add_argument(
            "--now",
            type=anchor,
            default=None,
            help="The moment the data is dated from (ISO 8601, Ecuador time); default: this hour.",
        )

    def handle(self, *args, if_empty, force, seed, now, **options):
        existing = Customer.objects.count()
        if existing and if_empty:
            self.stdout.write(f"There are already {existing} customers: nothing seeded.")
            days = demo_refresh(now=now)
            if days:
                self.stdout.write(f"Demo data moved {days} days forward, to today.")
        elif existing and not force:
            self.stdout.write(demo_credentials_box())
            raise CommandError(
                f"There are already {existing} customers. Use --force to delete them and seed "
                "again, or --if-empty to keep them."
            )
        else:
            with transaction.atomic():
                if existing:
                    demo_wipe()
                counts = demo_seed(seed=seed, now=now)
            summary = ", ".join(f"{n} {what}" for what, n in counts.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data seeded (seed {seed}): {summary}."))
        self.stdout.write(demo_credentials_box())
