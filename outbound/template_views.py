"""Message template pages: admins and marketers write them; agents may open the list
read-only (they will pick templates in the chat). Segments are in segment_views.py, campaigns
in campaign_views.py."""

import re

from django.contrib import messages
from django.db.models import Prefetch, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chatdesk.roles import ADMIN, EVERYONE, MARKETING, has_role, role_required
from customers.models import Customer, Subscription
from outbound import meta_templates
from outbound.forms import PreviewForm, TemplateFilterForm, TemplateForm
from outbound.models import MessageTemplate
from outbound.templating import (
    CAMPAIGN_VARIABLES,
    CUSTOMER_VARIABLES,
    MissingValue,
    campaign_values_errors,
    template_duplicate,
    template_render,
    template_render_sample,
    template_set_archived,
    template_validate,
    whatsapp_html,
)


@role_required(*EVERYONE)
def template_list(request):
    filters = TemplateFilterForm(request.GET).values()
    templates = MessageTemplate.objects.filter(archived=filters["archived"])
    if filters["category"]:
        templates = templates.filter(category=filters["category"])
    if filters["q"]:
        templates = templates.filter(
            Q(name__icontains=filters["q"]) | Q(body__icontains=filters["q"])
        )
    template_name = "outbound/template_list.html"
    if request.htmx:
        template_name += "#results"
    return render(
        request,
        template_name,
        {
            "templates": templates,
            "filters": filters,
            "categories": MessageTemplate.Category.choices,
            "can_edit": has_role(request.user, *MARKETING),
        },
    )


def _customer_lookup(q: str) -> Customer | None:
    """The first customer whose name or phone matches, with what the variables read."""
    q = q.strip()
    if not q:
        return None
    digits = re.sub(r"\D", "", q)
    match = Q(name__icontains=q)
    if len(digits) >= 3:
        match |= Q(phone__contains=digits.removeprefix("0") or digits)
    subscriptions = Subscription.objects.select_related("service")
    return (
        Customer.objects.filter(match)
        .order_by("name", "id")
        .prefetch_related(Prefetch("subscriptions", queryset=subscriptions))
        .first()
    )


def _preview(data) -> dict:
    form = PreviewForm(data)
    form.is_valid()
    body = form.cleaned_data.get("body", "")
    customer_q = form.cleaned_data.get("customer_q", "")
    errors = template_validate(body) + list(campaign_values_errors(form.extra()).values())
    preview = {"errors": errors, "customer_q": customer_q, "empty": False}
    preview["customer"] = customer = _customer_lookup(customer_q)
    preview["not_found"] = bool(customer_q.strip()) and customer is None
    if preview["errors"]:
        return preview
    if not body.strip():
        preview["empty"] = True
        return preview
    try:
        if customer is not None:
            text = template_render(body, customer=customer, extra=form.extra())
        else:
            text = template_render_sample(body, extra=form.extra())
    except MissingValue as missing:
        preview["missing"] = {"variable": f"{{{missing.variable}}}", "reason": missing.reason}
    else:
        preview["html"] = whatsapp_html(text)
    return preview


def _template_form_page(request, form, *, template=None):
    data = request.POST if request.method == "POST" else {"body": form.initial.get("body", "")}
    return render(
        request,
        "outbound/template_form.html",
        {
            "form": form,
            "template": template,
            "meta_links": meta_templates.meta_links(template) if template else [],
            "can_sync": has_role(request.user, ADMIN),
            "preview": _preview(data),
            "customer_variables": [
                (f"{{{name}}}", text) for name, text in CUSTOMER_VARIABLES.items()
            ],
            "campaign_fields": [
                (name, f"{{{name}}}", text, data.get(name, ""))
                for name, text in CAMPAIGN_VARIABLES.items()
            ],
        },
    )


@role_required(*MARKETING)
def template_create(request):
    form = TemplateForm(request.POST or None, initial={"category": "marketing"})
    if request.method == "POST" and form.is_valid():
        template = form.save()
        messages.success(request, _("Plantilla «%(name)s» creada.") % {"name": template.name})
        return redirect("outbound:template_list")
    return _template_form_page(request, form)


@role_required(*MARKETING)
def template_edit(request, template_id: int):
    template = get_object_or_404(MessageTemplate, pk=template_id)
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Plantilla «%(name)s» guardada.") % {"name": template.name})
        return redirect("outbound:template_list")
    return _template_form_page(request, form, template=template)


@role_required(*MARKETING)
@require_POST
def template_preview(request):
    return render(
        request, "outbound/template_form.html#preview", {"preview": _preview(request.POST)}
    )


@role_required(*MARKETING)
@require_POST
def template_duplicate_view(request, template_id: int):
    template = get_object_or_404(MessageTemplate, pk=template_id)
    copy = template_duplicate(template=template)
    messages.success(request, _("Copia creada: «%(name)s».") % {"name": copy.name})
    return redirect("outbound:template_edit", template_id=copy.pk)


@role_required(*MARKETING)
@require_POST
def template_archive(request, template_id: int):
    template = get_object_or_404(MessageTemplate, pk=template_id)
    archived = request.POST.get("archived") != "0"
    template_set_archived(template=template, archived=archived)
    if archived:
        messages.success(request, _("Plantilla «%(name)s» archivada.") % {"name": template.name})
        return redirect("outbound:template_list")
    messages.success(request, _("Plantilla «%(name)s» restaurada.") % {"name": template.name})
    return redirect(reverse("outbound:template_list") + "?archived=on")


@role_required(ADMIN)
@require_POST
def meta_templates_sync_view(request):
    """ "Sincronizar con Meta": every Cloud API number's templates and their approval state."""
    results = meta_templates.meta_templates_sync_all()
    if not results:
        messages.info(
            request, _("No hay números de la API de WhatsApp Cloud con su cuenta (WABA).")
        )
    for key, outcome in results.items():
        if outcome.isdigit():
            messages.success(
                request,
                _("%(channel)s: %(n)s plantillas de Meta sincronizadas.")
                % {"channel": key, "n": outcome},
            )
        else:
            messages.error(
                request,
                _("%(channel)s: no se pudo sincronizar: %(reason)s")
                % {"channel": key, "reason": outcome},
            )
    back = request.POST.get("next", "")
    # A path of ours only: redirect() would read anything else as a view's name.
    if back.startswith("/") and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        return HttpResponseRedirect(back)
    return redirect("outbound:template_list")
