"""Run the WaSender simulator alone under daphne, for tests and for chatdesk running as
separate processes. Knobs left out here come from WASENDER_SIM_* variables, then defaults."""

import ipaddress

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from provider.wasender.simulator import SimConfig, Simulator

KNOBS = {
    # option: (SimConfig field, type, help)
    "webhook_url": ("webhook_url", str, "where to push webhooks (chatdesk's /webhooks/wasender/)"),
    "secret": ("webhook_secret", str, "X-Webhook-Signature value (default: the settings')"),
    "api_key": ("api_key", str, "bearer key to accept (default: WASENDER_SIMULATOR_KEY)"),
    "rate_per_minute": ("rate_per_minute", float, "send limit, messages per minute"),
    "burst": ("burst", int, "token bucket size (default one minute's worth)"),
    "latency_ms": ("latency_ms", float, "mean added latency per API call"),
    "fail_5xx": ("fail_5xx", float, "share of API calls answered 5xx"),
    "timeouts": ("timeouts", float, "share of API calls that hang past the client timeout"),
    "timeout_seconds": ("timeout_seconds", float, "how long a simulated timeout hangs"),
    "lost_answers": ("lost_answers", float, "share of sends accepted but answered too late"),
    "accept_then_5xx": ("accept_then_5xx", float, "share of sends accepted, then answered 5xx"),
    "accept_then_drop": ("accept_then_drop", float, "share of sends accepted, then cut off"),
    "answer_without_id": ("answer_without_id", float, "share of sends answered without msgId"),
    "echo_first": ("echo_first", float, "share of sends echoed by webhook before the answer"),
    "duplicates": ("duplicates", float, "chance a webhook is delivered twice"),
    "out_of_order": ("out_of_order", float, "chance a message's statuses come out of order"),
    "variants": ("variants", float, "chance of list/string/ms payload variants"),
    "not_on_whatsapp": ("not_on_whatsapp", str, "comma-separated numbers without WhatsApp"),
    "status_delays": ("status_delays", str, "seconds before statuses 2,3,4, e.g. 0.3,1,2"),
    "status_until": ("status_until", int, "last status pushed: 4 read, 3 delivered, 2 sent"),
    "demo_interval": ("demo_interval", float, "mean seconds between demo customer messages"),
    "demo_phones": ("demo_phones", str, "comma-separated phones for demo messages"),
    "seed": ("seed", int, "random seed (0: unseeded)"),
}


class Command(BaseCommand):
    help = "Run the WaSender simulator (loopback only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
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
            # It accepts a well-known key and has unauthenticated control endpoints.
            raise CommandError("The simulator only listens on loopback (e.g. 127.0.0.1).")
        config = SimConfig.from_env(
            api_key=settings.WASENDER_SIMULATOR_KEY,
            webhook_secret=settings.WASENDER_WEBHOOK_SECRET,
            webhook_url="http://127.0.0.1:8000/webhooks/wasender/",
        )
        given = {KNOBS[o][0]: v for o, v in options.items() if o in KNOBS and v is not None}
        config.update({**given, **({"demo": demo} if demo is not None else {})})
        simulator = Simulator(config)

        from daphne.server import Server
        from twisted.internet import reactor

        self.stdout.write(
            f"WaSender simulator on http://{host}:{port}/api "
            f"(webhooks to {config.webhook_url or 'nowhere'})"
        )
        Server(
            application=simulator,
            endpoints=[f"tcp:port={port}:interface={host}"],
            verbosity=0,
            ready_callable=lambda: reactor.callWhenRunning(simulator.ensure_started),
        ).run()
