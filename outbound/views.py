from django.shortcuts import render
from django.utils.translation import gettext as _

from chatdesk.roles import MARKETING, role_required
from outbound.models import MessageTemplate


@role_required(*MARKETING)
def campaign_list(request):
    return render(
        request,
        "placeholder.html",
        {"title": _("Campañas"), "description": _("Campañas programadas, activas y pausadas.")},
    )


@role_required(*MARKETING)
def template_list(request):
    templates = MessageTemplate.objects.filter(archived=False)
    return render(request, "outbound/template_list.html", {"templates": templates})
