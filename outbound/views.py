"""Marketing pages: message templates and segments (campaigns are in campaign_views.py).

Templates: admins and marketers write them; agents may open the list read-only (they will pick
templates in the chat). Segments: admins and marketers only.
"""

import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chatdesk.roles import EVERYONE, MARKETING, has_role, role_required
from customers.models import Customer, Segment, Subscription
from outbound.forms import PreviewForm, SegmentForm, TemplateFilterForm, TemplateForm
from outbound.models import MessageTemplate
from outbound.segments import (
    SegmentFilterError,
    segment_count,
    segment_create,
    segment_delete,
    segment_presets,
    segment_queryset,
    segment_update,
)
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

PREVIEW_RECIPIENTS = 20
SEGMENTS_PAGE = 20


# --- templates -------------------------------------------------------------------------------
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


# --- segments --------------------------------------------------------------------------------
def _audience(filters: dict, *, recipients: bool) -> dict:
    """Count, opted-out left out and (optionally) the first recipients of some filters."""
    try:
        count, excluded = segment_count(filters)
    except SegmentFilterError as error:
        return {"invalid": error.errors}
    audience = {"count": count, "excluded": excluded}
    if recipients:
        audience["recipients"] = list(
            segment_queryset(filters)
            .order_by("name", "id")
            .prefetch_related(
                Prefetch("subscriptions", queryset=Subscription.objects.select_related("service"))
            )[:PREVIEW_RECIPIENTS]
        )
    return audience


@role_required(*MARKETING)
def segment_list(request):
    presets = [
        {"key": key, "name": name, **_audience(filters, recipients=False)}
        for key, (name, filters) in segment_presets().items()
    ]
    # One count per saved segment: a page at a time.
    page = Paginator(Segment.objects.select_related("created_by"), SEGMENTS_PAGE).get_page(
        request.GET.get("page")
    )
    segments = [
        {"segment": segment, **_audience(segment.filters, recipients=False)} for segment in page
    ]
    return render(
        request,
        "outbound/segment_list.html",
        {"presets": presets, "segments": segments, "page": page},
    )


def _segment_form_page(request, form, *, segment=None, filters=None, status=200):
    if filters is None:
        filters = getattr(form, "filters", None)
    name = form["name"].value() or (segment.name if segment else "")
    live = {"name": name, **(_audience(filters, recipients=True) if filters is not None else {})}
    return render(
        request,
        "outbound/segment_form.html",
        {"form": form, "segment": segment, "live": live},
        status=status,
    )


@role_required(*MARKETING)
def segment_create_view(request):
    if request.method == "POST":
        form = SegmentForm(request.POST, require_name=True)
        if form.is_valid():
            segment = segment_create(
                name=form.cleaned_data["name"], filters=form.filters, created_by=request.user
            )
            messages.success(request, _("Segmento «%(name)s» guardado.") % {"name": segment.name})
            return redirect("outbound:segment_list")
        return _segment_form_page(request, form)
    name, filters = segment_presets().get(request.GET.get("preset", ""), ("", {}))
    form = SegmentForm(initial=SegmentForm.initial_from(filters, name=str(name)))
    return _segment_form_page(request, form, filters=filters)


@role_required(*MARKETING)
def segment_edit(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    if request.method == "POST":
        form = SegmentForm(request.POST, require_name=True, segment=segment)
        if form.is_valid():
            segment_update(segment=segment, name=form.cleaned_data["name"], filters=form.filters)
            messages.success(request, _("Segmento «%(name)s» guardado.") % {"name": segment.name})
            return redirect("outbound:segment_list")
        return _segment_form_page(request, form, segment=segment)
    form = SegmentForm(
        initial=SegmentForm.initial_from(segment.filters, name=segment.name), segment=segment
    )
    return _segment_form_page(request, form, segment=segment, filters=segment.filters)


@role_required(*MARKETING)
@require_POST
def segment_preview(request):
    form = SegmentForm(request.POST)
    live = {"name": request.POST.get("name", "")}
    if form.is_valid():
        live.update(_audience(form.filters, recipients=True))
    else:
        live["form_errors"] = [
            f"{form.fields[field].label}: {' '.join(errors)}"
            if field in form.fields
            else " ".join(errors)
            for field, errors in form.errors.items()
        ]
    return render(request, "outbound/segment_form.html#live", {"live": live})


@role_required(*MARKETING)
@require_POST
def segment_delete_view(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    segment_delete(segment=segment)
    messages.success(request, _("Segmento «%(name)s» eliminado.") % {"name": segment.name})
    return redirect("outbound:segment_list")
