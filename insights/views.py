from django.shortcuts import render
from django.utils.translation import gettext as _

from chatdesk.roles import EVERYONE, MARKETING, role_required
from insights import selectors


@role_required(*EVERYONE)
def home(request):
    return render(request, "insights/home.html", {"today": selectors.today_figures()})


@role_required(*MARKETING)
def insights_index(request):
    return render(
        request,
        "placeholder.html",
        {
            "title": _("Analítica"),
            "description": _("Tendencias, mejores horarios, conversión y comparación de campañas."),
        },
    )
