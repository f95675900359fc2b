"""Fill a benchmark database with a year of realistic data (see devdata.largedata).

This command writes test data into the other apps' tables, meant for an empty, throwaway
database (e.g. DATABASE_URL=.../chatdesk_large), never production.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer
from devdata.largedata import large_data_generate
from devdata.management.commands.seed_demo import anchor


class Command(BaseCommand):
    help = (
        "Generate a large, deterministic data set (customers, subscriptions, renewals, messages)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=50_000)
        parser.add_argument("--messages", type=int, default=1_000_000)
        parser.add_argument(
            "--scale",
            type=int,
            default=1,
            help="Multiply --customers and --messages (5: issue 19's 250,000 and 5,000,000).",
        )
        parser.add_argument(
            "--channels",
            type=int,
            default=1,
            help="WhatsApp numbers the conversations are spread over (the first is the default).",
        )
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--now",
            type=anchor,
            default=None,
            help="The moment the data ends (ISO 8601, Ecuador time).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Generate even when there are customers already."
        )

    def handle(self, *args, customers, messages, scale, channels, days, seed, now, force, **_):
        if min(customers, messages, days, scale, channels) < 1:
            raise CommandError(
                "--customers, --messages, --scale, --channels and --days must be positive."
            )
        customers, messages = customers * scale, messages * scale
        existing = Customer.objects.count()
        if existing and not force:
            raise CommandError(
                f"There are already {existing} customers; use an empty database or --force."
            )
        started = time.monotonic()
        counts = large_data_generate(
            customers=customers,
            messages=messages,
            days=days,
            seed=seed,
            now=now,
            channels=channels,
            out=lambda line: self.stdout.write(line),
        )
        summary = ", ".join(f"{n} {what}" for what, n in counts.items())
        took = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Generated {summary} in {took:.0f} s."))
