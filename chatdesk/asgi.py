import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from chatdesk.checks import production_settings_require  # noqa: E402

production_settings_require()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chatdesk.bodylimit import BodyLimitMiddleware, daphne_guard_install  # noqa: E402
from inbox.events import server_loop_note  # noqa: E402
from inbox.routing import websocket_urlpatterns  # noqa: E402

# Under daphne the body caps must act as the bytes arrive (daphne buffers a whole body before
# the application runs): its request class is swapped for one that asks `body_rule`.
daphne_guard_install()

# Outermost: BodyLimitMiddleware (daphne's guard and runembedded ask it for `body_rule`). Inside
# it, the loop this application is served on is noted: from then on the process's live events
# leave without their request waiting (inbox/events.py).
application = BodyLimitMiddleware(
    server_loop_note(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": AllowedHostsOriginValidator(
                    AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
                ),
            }
        )
    )
)
