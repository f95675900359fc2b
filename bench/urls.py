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
    WebhookEvent.objects.create(event="bare", payload={"n": len(request.body)})
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare-insert/", bare_insert), *chatdesk_urlpatterns]
