"""The live inbox and the customer history. Every page works with a full reload; with htmx the
same views answer with the named partial the page swaps in."""

from datetime import datetime

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from chatdesk.csvexport import csv_response
from chatdesk.roles import SUPPORT, has_role, role_required
from customers.models import Customer
from inbox import channels, conversations, live, selectors
from inbox.context_processors import unread_total
from inbox.models import Conversation, Message
from outbound import composer
from provider import wasender
from provider.errors import ProviderError

INLINE_IMAGES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
INLINE_AUDIO = {"audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/opus"}


def _conversation_or_404(request, conversation_id: int) -> Conversation:
    """The conversation, if it exists on a channel this user works on."""
    try:
        conversation = selectors.conversation_get(conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404 from None
    keys = channels.channel_keys_for_request(request)
    if not selectors.conversation_visible(channel_keys=keys, conversation=conversation):
        raise Http404
    return conversation


def _message_or_404(request, message_id: int) -> Message:
    try:
        message = selectors.message_get(message_id=message_id)
    except Message.DoesNotExist:
        raise Http404 from None
    keys = channels.channel_keys_for_request(request)
    if not selectors.conversation_visible(channel_keys=keys, conversation=message.conversation):
        raise Http404
    return message


def _view_choices() -> list[tuple[str, str]]:
    return [
        ("all", _("Todas")),
        ("new", _("Nuevas")),
        ("answered", _("Respondidas")),
        ("resolved", _("Resueltas")),
        ("mine", _("Mías")),
        ("unassigned", _("Sin asignar")),
    ]


def _list_context(request, filters: selectors.ListFilters) -> dict:
    rows, next_cursor = selectors.conversation_list(
        user=request.user,
        channel_keys=channels.channel_keys_for_request(request),
        filters=filters,
        after=request.GET.get("after"),
    )
    return {
        "rows": rows,
        "next_cursor": next_cursor,
        "filters": filters,
        "view_choices": _view_choices(),
        "channel_choices": channels.channels_for(request.user),
    }


def _thread_context(request, conversation: Conversation) -> dict:
    rows, before = selectors.thread_messages(conversation=conversation)
    live.reply_refs_attach(rows)
    customer = selectors.customer_panel(customer_id=conversation.customer_id)
    return {
        "conversation": conversation,
        "thread_rows": rows,
        "before_cursor": before,
        "customer": customer,
        "campaign_messages": selectors.campaign_messages_received(customer=customer),
        "agents": selectors.agents(),
        "templates": composer.composer_templates(),
        "window": composer.window_state(conversation),
    }


def _open(conversation: Conversation) -> None:
    """Opening a conversation reads it."""
    conversations.conversation_mark_read(conversation=conversation)


def _id_param(value: str | None) -> int | None:
    """An id from a query or form field; anything else (or beyond a bigint) is no id."""
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@role_required(*SUPPORT)
@require_GET
def inbox_index(request, conversation_id: int | None = None):
    conversation_id = conversation_id or _id_param(request.GET.get("conversation"))
    filters = selectors.ListFilters.from_params(request.GET)
    conversation = None
    if conversation_id:
        conversation = _conversation_or_404(request, conversation_id)
        _open(conversation)
    if request.htmx and conversation is not None:
        return render(
            request, "inbox/index.html#thread_pane", _thread_context(request, conversation)
        )
    context = _list_context(request, filters)
    context.update(_thread_context(request, conversation) if conversation else {})
    context["unread_total"] = unread_total(request)
    return render(request, "inbox/index.html", context)


@role_required(*SUPPORT)
@require_GET
def conversation_list(request):
    """The list alone: filters, search, "cargar más" (with `after`) and resync."""
    filters = selectors.ListFilters.from_params(request.GET)
    context = _list_context(request, filters)
    template = "inbox/index.html#list_page" if request.GET.get("after") else "inbox/index.html#list"
    if not request.htmx:
        return redirect(reverse("inbox:index") + "?" + request.GET.urlencode())
    # A re-fetch after a reconnect or a flood: the tab's unread count and the navigation's
    # badge come along (out of band).
    context["unread_total"] = unread_total(request)
    return render(request, template, context)


@role_required(*SUPPORT)
@require_GET
def thread_messages(request, conversation_id: int):
    """Older lines ("cargar anteriores", with `before`) or the newest page (resync)."""
    conversation = _conversation_or_404(request, conversation_id)
    before = request.GET.get("before")
    rows, before_cursor = selectors.thread_messages(conversation=conversation, before=before)
    live.reply_refs_attach(rows)
    context = {"conversation": conversation, "thread_rows": rows, "before_cursor": before_cursor}
    return render(request, "inbox/index.html#messages", context)


def _after_action(request, conversation: Conversation):
    if request.htmx:
        conversation.refresh_from_db()
        context = {"conversation": conversation, "agents": selectors.agents()}
        return render(request, "inbox/index.html#thread_head", context)
    return redirect("inbox:conversation", conversation.pk)


@role_required(*SUPPORT)
@require_POST
def conversation_assign(request, conversation_id: int):
    conversation = _conversation_or_404(request, conversation_id)
    choice = request.POST.get("assignee", "")
    if choice == "me":
        assignee = request.user
    elif choice in ("", "none"):
        assignee = None
    else:
        assignee = get_object_or_404(selectors.agents(), pk=_id_param(choice) or 0)
    conversations.conversation_assign(conversation=conversation, assignee=assignee)
    return _after_action(request, conversation)


@role_required(*SUPPORT)
@require_POST
def conversation_resolve(request, conversation_id: int):
    conversation = _conversation_or_404(request, conversation_id)
    conversations.conversation_resolve(conversation=conversation)
    return _after_action(request, conversation)


@role_required(*SUPPORT)
@require_POST
def conversation_reopen(request, conversation_id: int):
    conversation = _conversation_or_404(request, conversation_id)
    conversations.conversation_reopen(conversation=conversation)
    return _after_action(request, conversation)


@role_required(*SUPPORT)
@require_POST
def conversation_urgent(request, conversation_id: int):
    conversation = _conversation_or_404(request, conversation_id)
    urgent = request.POST.get("urgent") == "1"
    conversations.conversation_mark_urgent(conversation=conversation, urgent=urgent)
    return _after_action(request, conversation)


@role_required(*SUPPORT)
@require_POST
def note_add(request, conversation_id: int):
    conversation = _conversation_or_404(request, conversation_id)
    try:
        conversations.note_add(
            customer=conversation.customer,
            author=request.user,
            body=request.POST.get("body", ""),
            conversation_id=conversation.pk,
        )
    except ValueError:
        messages.error(request, _("La nota está vacía."))
    if request.htmx:
        context = {
            "conversation": conversation,
            "customer": selectors.customer_panel(customer_id=conversation.customer_id),
        }
        return render(request, "inbox/index.html#notes", context)
    return redirect("inbox:conversation", conversation.pk)


def _scheduled_for(raw: str) -> datetime | None:
    """A datetime-local value, in the agency's time zone (Guayaquil)."""
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)  # ValueError for a well-formed impossible one (30 February)
    except ValueError:
        moment = None
    if moment is None:
        raise composer.SendRejected("scheduled_for", _("La fecha y hora no son válidas."))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment <= timezone.now():
        raise composer.SendRejected("scheduled_for", _("Elige una fecha y hora en el futuro."))
    return moment


def _composer(request, conversation: Conversation, *, error: str = "", text: str = "", **extra):
    context = {"conversation": conversation, "error": error, "text": text, **extra}
    context["templates"] = composer.composer_templates()
    context["window"] = composer.window_state(conversation)
    return render(request, "inbox/index.html#composer", context, status=422 if error else 200)


def _line_answer(request, message: Message, **extra) -> HttpResponse:
    """A message line as the answer to an htmx request: the same placement op the socket sends
    (docs/live.md), so whichever copy comes first, the page keeps one line, the furthest."""
    line = render_to_string(
        "inbox/index.html#message_line", {"m": message, **extra}, request=request
    )
    return HttpResponse(live.staging([live.op("upsert", line)]))


@role_required(*SUPPORT)
@require_POST
def message_reply(request, conversation_id: int):
    """The page has already shown the reply (optimistically, 🕓); the answer is its line, with
    the page's reference so the page swaps one for the other. The composer is answered only
    with an error: the agent may be typing the next reply."""
    conversation = _conversation_or_404(request, conversation_id)
    text = request.POST.get("text", "")
    ref = live.reply_ref_clean(request.POST.get("client_ref"))
    reply_to = None
    if reply_to_id := _id_param(request.POST.get("reply_to")):
        reply_to = Message.objects.filter(pk=reply_to_id, conversation=conversation).first()
    try:
        scheduled_for = _scheduled_for(request.POST.get("scheduled_for", ""))
        with transaction.atomic():
            message = composer.reply_send(
                conversation=conversation,
                agent=request.user,
                text=text,
                reply_to=reply_to,
                scheduled_for=scheduled_for,
                upload=request.FILES.get("attachment"),
                meta_template=request.POST.get("meta_template") or None,
            )
            # Before commit: the socket's copies of the line are rendered after it.
            live.reply_ref_note(message_id=message.pk, ref=ref)
    except composer.SendRejected as rejected:
        if not request.htmx:
            messages.error(request, rejected.message)
            return redirect("inbox:conversation", conversation.pk)
        return _composer(request, conversation, error=rejected.message, text=text)
    if message.status != Message.Status.SCHEDULED:
        conversations.conversation_mark_answered(conversation=conversation)
    if not request.htmx:
        return redirect("inbox:conversation", conversation.pk)
    message.live_ref = ref
    return _line_answer(request, message)


@role_required(*SUPPORT)
@require_POST
def message_retry(request, message_id: int):
    """A failed line is sent again as a fresh copy (the failed row stays as the record, marked
    as sent again, without its button: "Reintentar" works once, however many pages click it);
    an unknown one only when the agent confirms that the customer may get it twice."""
    failed = _message_or_404(request, message_id)
    duplicate_ok = request.POST.get("confirm_duplicate") == "1"
    try:
        with transaction.atomic():
            if conversations.message_retry_claim(message=failed, duplicate_ok=duplicate_ok):
                composer.reply_copy_send(failed=failed, agent=request.user)
    except composer.SendRejected as rejected:
        messages.error(request, rejected.message)
    if request.htmx:
        return _line_answer(request, _message_or_404(request, message_id))
    return redirect("inbox:conversation", failed.conversation_id)


@role_required(*SUPPORT)
@require_POST
def message_status_check(request, message_id: int):
    """ "Consultar estado": ask WaSender about a line stuck in "sent"; forward only."""
    message = _message_or_404(request, message_id)
    note = ""
    try:
        moved = conversations.message_status_check(message=message, provider=wasender.client())
    except ProviderError as error:
        moved, note = False, _("No se pudo consultar: %(reason)s") % {"reason": error.reason}
    if not moved and not note:
        note = _("Sin cambios: WaSender no informa un estado más avanzado.")
    if not request.htmx:
        if note:
            messages.info(request, note)
        return redirect("inbox:conversation", message.conversation_id)
    return _line_answer(request, _message_or_404(request, message_id), status_note=note)


@role_required(*SUPPORT)
@require_POST
def message_cancel(request, message_id: int):
    message = _message_or_404(request, message_id)
    conversations.message_schedule_cancel(message=message)
    if request.htmx:
        return _line_answer(request, _message_or_404(request, message_id))
    return redirect("inbox:conversation", message.conversation_id)


@role_required(*SUPPORT)
@require_GET
def template_fill(request, conversation_id: int):
    """The composer's text with a template filled from the customer, to edit before sending."""
    conversation = _conversation_or_404(request, conversation_id)
    text, error = composer.template_fill(
        template_id=_id_param(request.GET.get("template")), conversation=conversation
    )
    return render(
        request,
        "inbox/index.html#composer_text",
        {"conversation": conversation, "text": text, "template_error": error},
    )


@role_required(*SUPPORT)
@require_GET
def message_media(request, message_id: int):
    """Our copy of a message's media, to logged-in agents only. Only plain raster images and
    audio are shown inline; anything else downloads, so no uploaded file runs in our origin."""
    message = _message_or_404(request, message_id)
    if not message.media_file:
        raise Http404
    mime = message.media_mime.split(";")[0].strip().lower()
    inline = mime in INLINE_IMAGES or mime in INLINE_AUDIO
    response = FileResponse(
        message.media_file.open("rb"),
        as_attachment=not inline,
        filename=message.media_filename or message.media_file.name.rsplit("/", 1)[-1],
        content_type=mime if inline else "application/octet-stream",
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- history -------------------------------------------------------------------------------

HISTORY_PAGE = 100


def _history_filters(params) -> selectors.HistoryFilters:
    author = params.get("author", "")
    return selectors.HistoryFilters(
        date_from=parse_date(params.get("from") or "") if _is_date(params.get("from")) else None,
        date_to=parse_date(params.get("to") or "") if _is_date(params.get("to")) else None,
        author=author if author in Message.Author.values else "",
        q=(params.get("q") or "").strip()[:100],
    )


def _is_date(raw: str | None) -> bool:
    try:
        return bool(raw) and parse_date(raw) is not None
    except ValueError:
        return False


def _history_csv(customer: Customer, rows):
    header = [
        _("Fecha"),
        _("Dirección"),
        _("Autor"),
        _("Agente"),
        _("Tipo"),
        _("Mensaje"),
        _("Estado"),
        _("Motivo del fallo"),
    ]
    lines = (
        (
            timezone.localtime(m.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            m.get_direction_display(),
            m.get_author_kind_display(),
            m.agent.get_full_name() or m.agent.get_username() if m.agent else "",
            m.get_kind_display(),
            m.body,
            m.get_status_display(),
            m.failure_reason,
        )
        for m in rows.iterator(chunk_size=1000)
    )
    return csv_response(f"historial-{customer.pk}.csv", header, lines)


@role_required(*SUPPORT)
@require_GET
def customer_history(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    filters = _history_filters(request.GET)
    rows = selectors.customer_history(customer=customer, filters=filters)
    if request.GET.get("format") == "csv":
        return _history_csv(customer, rows)
    before = request.GET.get("before")
    page, next_cursor = selectors.history_page(messages=rows, before=before, limit=HISTORY_PAGE)
    params = request.GET.copy()
    for name in ("before", "format"):
        params.pop(name, None)
    context = {
        "customer": customer,
        "filters": filters,
        "rows": page,
        "next_cursor": next_cursor,
        "authors": Message.Author.choices,
        "query_without_cursor": params.urlencode(),
        "conversations": customer.conversations.all(),
        "can_chat": has_role(request.user, *SUPPORT),
    }
    template = "inbox/history.html"
    if request.htmx:
        template += "#rows" if before else "#results"
    return render(request, template, context)
