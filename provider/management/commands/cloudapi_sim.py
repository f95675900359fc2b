"""Run the Meta Cloud API simulator alone under daphne, for tests and for chatdesk running as
separate processes. Knobs left out here come from CLOUDAPI_SIM_* variables, then defaults."""

import ipaddress

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from provider.cloudapi.simulator import SimConfig, Simulator

KNOBS = {
    # option: (SimConfig field, type, help)
    "webhook_url": ("webhook_url", str, "where to push webhooks (chatdesk's /webhooks/meta/)"),
    "app_secret": ("app_secret", str, "app secret signing X-Hub-Signature-256"),
    "access_token": ("access_token", str, "bearer token to accept"),
    "phone_number_id": ("phone_number_id", str, "the simulated number's phone_number_id"),
    "display_phone_number": ("display_phone_number", str, "its digits as customers see them"),
    "waba_id": ("waba_id", str, "the WhatsApp Business Account id"),
    "throughput": ("throughput_per_second", float, "messages per second (130429 over it)"),
    "burst": ("burst", int, "token bucket size (default one second's worth)"),
    "pair_rate_seconds": ("pair_rate_seconds", float, "gap per customer (131056); 0 off"),
    "window_hours": ("window_hours", float, "customer-service window (131047 outside it)"),
    "window_check": ("window_check", str, "enforce the window: 1 or 0"),
    "async_errors": ("async_errors", str, "131047/131049/131026 as failed statuses: 1 or 0"),
    "marketing_cap": ("marketing_cap", float, "share of marketing templates held (131049)"),
    "undeliverable": ("undeliverable", str, "comma-separated numbers failing with 131026"),
    "latency_ms": ("latency_ms", float, "mean added latency per API call"),
    "fail_5xx": ("fail_5xx", float, "share of API calls answered 5xx"),
    "timeouts": ("timeouts", float, "share of API calls that hang past the client timeout"),
    "timeout_seconds": ("timeout_seconds", float, "how long a simulated timeout hangs"),
    "lost_answers": ("lost_answers", float, "share of sends accepted but answered too late"),
    "accept_then_5xx": ("accept_then_5xx", float, "share of sends accepted, then answered 5xx"),
    "accept_then_drop": ("accept_then_drop", float, "share of sends accepted, then cut off"),
    "answer_without_id": ("answer_without_id", float, "share of sends answered without wamid"),
    "echo_first": ("echo_first", float, "share of sends whose sent status comes first"),
    "duplicates": ("duplicates", float, "chance a webhook is delivered twice"),
    "out_of_order": ("out_of_order", float, "chance a message's statuses come out of order"),
    "batch": ("batch", float, "chance a status webhook carries two statuses"),
    "status_delays": ("status_delays", str, "seconds before sent, delivered, read: 0.3,1,2"),
    "status_until": ("status_until", int, "last status pushed: 4 read, 3 delivered, 2 sent"),
    "demo_interval": ("demo_interval", float, "mean seconds between demo customer messages"),
    "demo_phones": ("demo_phones", str, "comma-separated phones for demo messages"),
    "seed": ("seed", int, "random seed (0: unseeded)"),
}


class Command(BaseCommand):
    help = "Run the Meta WhatsApp Cloud API simulator (loopback only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8002)
        parser.add_argument(
            "--demo", action="store_true", default=None, help="customers write in now and then"
        )
        for option, (_field, kind, help_text) in KNOBS.items():
            parser.add_argument("--" + option.replace("_", "-"), type=kind, help=help_text)

    def handle(self, *args, host, port, demo, **options):
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            # It accepts a well-known token and has unauthenticated control endpoints.
            raise CommandError("The simulator only listens on loopback (e.g. 127.0.0.1).")
        defaults = {"webhook_url": "http://127.0.0.1:8000/webhooks/meta/"}
        if getattr(settings, "META_APP_SECRET", ""):
            defaults["app_secret"] = settings.META_APP_SECRET
        config = SimConfig.from_env(**defaults)
        given = {KNOBS[o][0]: v for o, v in options.items() if o in KNOBS and v is not None}
        config.update({**given, **({"demo": demo} if demo is not None else {})})
        simulator = Simulator(config)

        from daphne.server import Server
        from twisted.internet import reactor

        self.stdout.write(
            f"Cloud API simulator on http://{host}:{port}/v21.0/{config.phone_number_id} "
            f"(webhooks to {config.webhook_url or 'nowhere'})"
        )
        Server(
            application=simulator,
            endpoints=[f"tcp:port={port}:interface={host}"],
            verbosity=0,
            ready_callable=lambda: reactor.callWhenRunning(simulator.ensure_started),
        ).run()
