"""What `manage.py wasender_sim` and `manage.py cloudapi_sim` share: one simulator alone under
daphne, on loopback only, its knobs from the command line over <PREFIX>_SIM_* variables over
the defaults."""

import ipaddress

from django.core.management.base import BaseCommand, CommandError

# option: (SimConfig field, type, help); the knobs both simulators have.
FAULT_KNOBS = {
    "latency_ms": ("latency_ms", float, "mean added latency per API call"),
    "fail_5xx": ("fail_5xx", float, "share of API calls answered 5xx"),
    "timeouts": ("timeouts", float, "share of API calls that hang past the client timeout"),
    "timeout_seconds": ("timeout_seconds", float, "how long a simulated timeout hangs"),
    "lost_answers": ("lost_answers", float, "share of sends accepted but answered too late"),
    "accept_then_5xx": ("accept_then_5xx", float, "share of sends accepted, then answered 5xx"),
    "accept_then_drop": ("accept_then_drop", float, "share of sends accepted, then cut off"),
    "duplicates": ("duplicates", float, "chance a webhook is delivered twice"),
    "out_of_order": ("out_of_order", float, "chance a message's statuses come out of order"),
}
RUN_KNOBS = {
    "status_until": ("status_until", int, "last status pushed: 4 read, 3 delivered, 2 sent"),
    "demo_interval": ("demo_interval", float, "mean seconds between demo customer messages"),
    "demo_phones": ("demo_phones", str, "comma-separated phones for demo messages"),
    "seed": ("seed", int, "random seed (0: unseeded)"),
}


class SimulatorCommand(BaseCommand):
    """A subclass names its simulator and config classes, its default port, its knobs
    (option: (SimConfig field, type, help)), the defaults its config starts from and the line
    it prints once listening."""

    simulator_class: type
    config_class: type
    default_port: int
    knobs: dict[str, tuple[str, type, str]]

    def config_defaults(self) -> dict:
        raise NotImplementedError

    def listening(self, host: str, port: int, config) -> str:
        raise NotImplementedError

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=self.default_port)
        parser.add_argument(
            "--demo", action="store_true", default=None, help="customers write in now and then"
        )
        for option, (_field, kind, help_text) in self.knobs.items():
            parser.add_argument("--" + option.replace("_", "-"), type=kind, help=help_text)

    def handle(self, *args, host, port, demo, **options):
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            # It accepts a well-known key or token and has unauthenticated control endpoints.
            raise CommandError("The simulator only listens on loopback (e.g. 127.0.0.1).")
        config = self.config_class.from_env(**self.config_defaults())
        knobs = self.knobs
        given = {knobs[o][0]: v for o, v in options.items() if o in knobs and v is not None}
        config.update({**given, **({"demo": demo} if demo is not None else {})})
        simulator = self.simulator_class(config)

        from daphne.server import Server
        from twisted.internet import reactor

        self.stdout.write(self.listening(host, port, config))
        Server(
            application=simulator,
            endpoints=[f"tcp:port={port}:interface={host}"],
            verbosity=0,
            ready_callable=lambda: reactor.callWhenRunning(simulator.ensure_started),
        ).run()
