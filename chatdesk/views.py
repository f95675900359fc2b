from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from chatdesk.models import ApiToken


@login_not_required
def healthz(request):
    """The process is up; /readyz (later) checks what it depends on."""
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
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
