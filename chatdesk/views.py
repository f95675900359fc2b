from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse


@login_not_required
def healthz(request):
    """The process is up; /readyz (later) checks what it depends on."""
    return JsonResponse({"status": "ok"})
