"""The baseline for bench/webhook_to_browser.py: a bare Channels app on the same settings
(the same channel layer), served by daphne. POST /publish group_sends its body to every
socket on /ws/; the consumer sends it on as it is. Nothing else: no database, no template.
Beside it, the floor: POST /bench/insert-publish/ goes through Django (every middleware of
chatdesk's settings) to a view that inserts one row and then group_sends the same way."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "bench-bare"


class BareConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def bench_message(self, event):
        await self.send(event["text"])


django_app = get_asgi_application()


async def publish(scope, receive, send):
    if scope["path"].startswith("/bench/"):
        return await django_app(scope, receive, send)
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    if scope["method"] == "POST" and scope["path"] == "/publish":
        await get_channel_layer().group_send(
            GROUP, {"type": "bench.message", "text": body.decode()}
        )
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter(
    {"http": publish, "websocket": URLRouter([path("ws/", BareConsumer.as_asgi())])}
)
