"""Run all of chatdesk in one process: daphne, Dramatiq worker threads on the stub broker,
the periodic scheduler and (without a WaSender key) the WaSender simulator. `make demo` uses it.
"""

import threading

import dramatiq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the web server, worker, scheduler and simulator in one process (embedded mode)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--worker-threads", type=int, default=4)
        parser.add_argument(
            "--cloudapi-number",
            action="store_true",
            help="Also serve a simulated Cloud API number (the channel 'meta', named 'Soporte') "
            "on the port after the WaSender simulator's, unless META_ACCESS_TOKEN is set.",
        )

    def handle(self, *args, host, port, worker_threads, cloudapi_number=False, **options):
        if not settings.EMBEDDED:
            raise CommandError(
                "REDIS_URL is set: run the web, worker and scheduler processes separately "
                "(see README, 'Running with PostgreSQL and Redis')."
            )
        from daphne.server import Server
        from dramatiq_crontab import scheduler

        from chatdesk.asgi import application
        from chatdesk.worker import actor_modules_load

        actor_modules_load()
        worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=worker_threads)
        worker.start()
        threading.Thread(target=scheduler.start, name="scheduler", daemon=True).start()
        endpoints = [f"tcp:port={port}:interface={host}"]
        app = application
        if settings.USE_SIMULATOR:
            from provider.wasender.simulator import embedded_app

            sim_port = port + 1
            # The client talks to the simulator this process serves, whatever port was chosen.
            settings.WASENDER_BASE_URL = f"http://127.0.0.1:{sim_port}/api"
            app = embedded_app(
                chatdesk_app=application,
                chatdesk_port=port,
                simulator_port=sim_port,
                phones_sample=customers_sample,
            )
            # Daphne's body guard asks the served app: chatdesk's caps, not on the simulator's
            # port (its uploads are attachments; it caps them itself).
            app.body_rule = lambda path, port_: (
                None if port_ == sim_port else application.body_rule(path)
            )
            endpoints.append(f"tcp:port={sim_port}:interface=127.0.0.1")
            self.stdout.write(f"WaSender simulator on http://127.0.0.1:{sim_port}/api")
        if cloudapi_number and not settings.META_ACCESS_TOKEN:
            meta_port = port + 2
            app = _cloudapi_simulated(app, port=port, meta_port=meta_port)
            endpoints.append(f"tcp:port={meta_port}:interface=127.0.0.1")
            self.stdout.write(f"Cloud API simulator on http://127.0.0.1:{meta_port}/")
        self.stdout.write(self.style.SUCCESS(f"chatdesk on http://{host}:{port}/ (Ctrl-C to stop)"))
        try:
            Server(application=app, endpoints=endpoints, verbosity=0).run()
        finally:
            worker.stop(timeout=5000)
            if scheduler.running:
                scheduler.shutdown(wait=False)


def _cloudapi_simulated(app, *, port: int, meta_port: int):
    """A second number on Meta's Cloud API, simulated: the env channel "meta" ("Soporte")."""
    from inbox.channels import channels_env_sync, labels_forget
    from inbox.models import DEFAULT_CHANNEL, Channel
    from provider.cloudapi.simulator import embedded_app

    settings.META_GRAPH_URL = f"http://127.0.0.1:{meta_port}"
    settings.META_PHONE_NUMBER_ID = settings.META_PHONE_NUMBER_ID or "100000000000001"
    settings.META_DISPLAY_PHONE = settings.META_DISPLAY_PHONE or "+593 99 000 0001"
    settings.META_APP_SECRET = settings.META_APP_SECRET or settings.META_SIMULATOR_APP_SECRET
    settings.META_VERIFY_TOKEN = settings.META_VERIFY_TOKEN or "simulator-verify-token"
    settings.META_WABA_ID = settings.META_WABA_ID or SIMULATOR_WABA_ID
    if settings.META_CHANNEL_NAME == "WhatsApp Cloud API":
        settings.META_CHANNEL_NAME = "Soporte"
    channels_env_sync()
    # The demo's two numbers: WaSender's sells, the Cloud API one supports.
    Channel.objects.filter(key=DEFAULT_CHANNEL, name="WhatsApp").update(name="Ventas")
    labels_forget()
    _demo_templates_link()
    served = app
    wrapped = embedded_app(
        chatdesk_app=served,
        chatdesk_port=port,
        simulator_port=meta_port,
        phones_sample=customers_sample,
    )
    outer_rule = getattr(served, "body_rule", None)
    wrapped.body_rule = lambda path, port_: (
        None if port_ == meta_port else (outer_rule(path, port_) if outer_rule else None)
    )
    return wrapped


# provider/cloudapi/simulator.py's WABA, and the Meta templates it approves that fit the demo's
# chatdesk templates (name -> Meta name, chatdesk's variables for its {{1}}, {{2}}...).
SIMULATOR_WABA_ID = "200000000000001"
DEMO_TEMPLATE_LINKS = {"Vencimiento": ("recordatorio_pago", ["nombre", "servicio"])}


def _demo_templates_link() -> None:
    """Campaigns and reminders on the simulated number need approved Meta templates: the
    demo's templates are linked (those an admin left unlinked) and Meta's list is synced by
    the worker once the simulator answers (then every 6 h, as in production)."""
    from outbound.meta_templates import meta_templates_sync_tick
    from outbound.models import MessageTemplate

    for name, (meta_name, params) in DEMO_TEMPLATE_LINKS.items():
        MessageTemplate.objects.filter(name=name, meta_name="").update(
            meta_name=meta_name, meta_language="es", meta_params=params
        )
    meta_templates_sync_tick.send_with_options(delay=2000)


async def customers_sample() -> list[tuple[str, str]]:
    """Who the demo's simulated customers are: some of the book's, at random."""
    from asgiref.sync import sync_to_async

    from customers.models import Customer

    def load():
        return list(Customer.objects.order_by("?").values_list("phone", "name")[:20])

    return await sync_to_async(load, thread_sensitive=False)()
