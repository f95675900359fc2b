from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from chatdesk.urls import urlpatterns as chatdesk_urlpatterns
from inbox.models import WebhookEvent


@csrf_exempt
@login_not_required
def bare_insert(request):
    """The baseline: a Django view on the same settings that only inserts one row."""
    WebhookEvent.objects.create(event="bare", payload={"n": len(request.body)}, state="ignored")
    return JsonResponse({"ok": True})


@csrf_exempt
@login_not_required
def bare_insert_publish(request):
    """The floor of any push that persists first: a Django view that inserts one row, then
    group_sends the body to bench/bare_channels.py's sockets (webhook_to_browser.py)."""
    WebhookEvent.objects.create(event="bare", payload={"n": len(request.body)}, state="ignored")
    async_to_sync(get_channel_layer().group_send)(
        "bench-bare", {"type": "bench.message", "text": request.body.decode()}
    )
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/bare-insert/", bare_insert),
    path("bench/insert-publish/", bare_insert_publish),
    *chatdesk_urlpatterns,
]
