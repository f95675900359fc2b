"""Segment pages (admins and marketers): the saved segments with their live counts, the
segment form with the audience's live preview, delete."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chatdesk.roles import MARKETING, role_required
from customers.models import Segment, Subscription
from outbound.forms import SegmentForm
from outbound.segments import (
    SegmentFilterError,
    segment_count,
    segment_create,
    segment_delete,
    segment_presets,
    segment_queryset,
    segment_update,
)

PREVIEW_RECIPIENTS = 20
SEGMENTS_PAGE = 20


def _audience(filters: dict, *, recipients: bool) -> dict:
    """Count, opted-out left out and (optionally) the first recipients of some filters."""
    try:
        count, excluded = segment_count(filters)
    except SegmentFilterError as error:
        return {"invalid": error.errors}
    audience: dict[str, object] = {"count": count, "excluded": excluded}
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
