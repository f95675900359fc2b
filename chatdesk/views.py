from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from chatdesk.models import ApiToken
from chatdesk.ops import STUCK_MINUTES_DEFAULT, ops_status, readiness_checks
from chatdesk.roles import ADMIN, role_required


@login_not_required
def healthz(request):
    """The process is up; /readyz checks what it depends on."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
def readyz(request):
    """Ready for traffic: the database, Redis (when configured) and the broker answer. 503
    names the one that failed, and nothing more (no hosts, no URLs, no error text)."""
    checks = readiness_checks()
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def login_lockout(request, credentials, *args, **kwargs):
    """django-axes' answer to a locked-out login (the login page and the admin's alike)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/lockout.html",
        {"lockout_minutes": minutes},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


@role_required(ADMIN)
@never_cache
def ops(request):
    """Queues, stuck sends, dead letters, the last webhook, the WhatsApp session: for admins."""
    try:
        minutes = max(1, min(int(request.GET.get("minutes", STUCK_MINUTES_DEFAULT)), 24 * 60))
    except ValueError:
        minutes = STUCK_MINUTES_DEFAULT
    return render(request, "ops/status.html", {"status": ops_status(stuck_minutes=minutes)})


@require_http_methods(["GET", "POST"])
@never_cache
def token_list(request):
    """The user's API tokens; POST creates one and shows its raw value this once only."""
    raw = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:80] or _("Token sin nombre")
        raw = ApiToken.issue(user=request.user, name=name)[1]
    tokens = ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at")
    return render(request, "account/tokens.html", {"tokens": tokens, "raw_token": raw})


@require_POST
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken, id=token_id, user=request.user)
    ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    messages.success(request, _("Token «%(name)s» revocado.") % {"name": token.name})
    return redirect("token_list")
