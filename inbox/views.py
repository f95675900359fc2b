from django.shortcuts import render
from django.utils.translation import gettext as _

from chatdesk.roles import SUPPORT, role_required


@role_required(*SUPPORT)
def inbox_index(request):
    return render(
        request,
        "placeholder.html",
        {"title": _("Conversaciones"), "description": _("La bandeja compartida en tiempo real.")},
    )
