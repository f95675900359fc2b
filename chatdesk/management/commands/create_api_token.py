"""`manage.py create_api_token USERNAME NAME`: print a new API token, the only time it is shown."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chatdesk.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("name", help="What the token is for, e.g. 'web shop'.")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        raw = ApiToken.issue(user=user, name=name[:80])[1]
        self.stdout.write(raw)
