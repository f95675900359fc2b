"""Settings → WhatsApp numbers (channels): admins add and edit them."""

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from chatdesk.roles import ADMIN, role_required
from inbox import channels
from inbox.channel_forms import SECRET_LABELS, ChannelForm
from inbox.models import Channel


def _webhook_urls(request) -> dict:
    return {
        Channel.Provider.WASENDER: request.build_absolute_uri(reverse("wasender_webhook")),
        Channel.Provider.CLOUDAPI: request.build_absolute_uri(reverse("meta_webhook")),
    }


@role_required(ADMIN)
def channel_list(request):
    rows = [
        {
            "channel": channel,
            "secrets": [
                (SECRET_LABELS[name], bool(value))
                for name, value in channels.credentials(channel).items()
                if name in SECRET_LABELS
            ],
        }
        for channel in Channel.objects.prefetch_related("agents")
    ]
    context = {"rows": rows, "webhook_urls": _webhook_urls(request)}
    return render(request, "inbox/channels.html", context)


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def channel_edit(request, key: str | None = None):
    channel = get_object_or_404(Channel, key=key) if key else None
    form = ChannelForm(request.POST or None, instance=channel)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("inbox:channels")
    context = {"form": form, "channel": channel, "webhook_urls": _webhook_urls(request)}
    return render(request, "inbox/channel_form.html", context, status=400 if form.errors else 200)
