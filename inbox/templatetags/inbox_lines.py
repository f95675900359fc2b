"""The thread's message lines and the list's conversation rows, built here, not by the template
engine: a thread page renders ~50 lines and the list 30 rows (and the socket one of each per
event), and the {% partialdef %} versions cost the thread page ~40% of its time in variable
lookups, reverse() and gettext (issue 19). The HTML is the partials', byte for byte
(tests/inbox/test_line_tags.py keeps the old partials and compares them in both languages);
index.html's message_line and conv_row partials call these tags, so every caller keeps working.
"""

from dataclasses import dataclass

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.template.defaultfilters import linebreaksbr, truncatechars
from django.template.defaulttags import CsrfTokenNode
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation
from django.utils.dateformat import format as date_format
from django.utils.formats import localize
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import gettext as _

from inbox.models import Conversation, Message
from inbox.templatetags.inbox_tags import (
    author_label,
    channel_chip_html,
    conv_key,
    msg_key,
    short_time,
    status_badge,
    status_rank,
    tick,
    tick_class,
    user_label,
)

register = template.Library()


# --- what {{ }} and {% url %} print, cheaper --------------------------------------------------


def _number(value: int) -> str:
    """What {{ value }} prints for a whole number (an id, a count)."""
    return str(value) if not settings.USE_THOUSAND_SEPARATOR else localize(value)


def _date(moment, fmt: str) -> str:
    """{{ moment|date:fmt }}: in the current time zone, "" for no date."""
    return date_format(template_localtime(moment), fmt) if moment else ""


# reverse() costs ~30 µs; these paths have one <int:> each, so each is reversed once (per
# URLconf and script prefix) with a stand-in number and the id goes between the two halves.
_STAND_IN = "987654321987654321"
_paths: dict[tuple, list[str]] = {}


def _url(name: str, pk: int) -> str:
    key = (name, get_script_prefix(), get_urlconf(settings.ROOT_URLCONF))
    halves = _paths.get(key)
    if halves is None:
        halves = _paths[key] = reverse(name, args=[int(_STAND_IN)]).split(_STAND_IN)
    if len(halves) != 2:
        return reverse(name, args=[pk])
    return f"{halves[0]}{pk}{halves[1]}"


_CSRF = CsrfTokenNode()


@dataclass(frozen=True)
class _Texts:
    """The lines' fixed words in one language, escaped as {% translate %} prints them; the
    status and kind labels as get_FOO_display() gives them (~27 µs a call)."""

    statuses: dict
    kinds: dict
    conversation_statuses: dict
    reply: str
    image: str
    download_audio: str
    check_title: str
    check: str
    not_sent: str
    sent_again: str
    retry: str
    unknown: str
    duplicate_warning: str
    resend: str
    scheduled_for: str
    cancel: str
    cancelled: str
    urgent: str
    unread: str


def _build_texts() -> _Texts:
    return _Texts(
        statuses={value: str(label) for value, label in Message.Status.choices},
        kinds={value: str(label) for value, label in Message.Kind.choices},
        conversation_statuses={value: str(label) for value, label in Conversation.Status.choices},
        reply=escape(_("Responder citando")),
        image=_("imagen"),
        download_audio=escape(_("Descargar audio")),
        check_title=escape(_("Preguntar a WaSender si ya se entregó o leyó")),
        check=escape(_("Consultar estado")),
        not_sent=_("No se pudo enviar."),
        sent_again=escape(_("Enviado otra vez")),
        retry=escape(_("Reintentar")),
        unknown=_("Estado desconocido."),
        duplicate_warning=escape(
            _("Puede que el cliente ya lo tenga: si lo reenvías, podría recibirlo dos veces.")
        ),
        resend=escape(_("Sí, reenviar")),
        scheduled_for=_("Programado para %(when)s"),
        cancel=escape(_("Cancelar")),
        cancelled=_("Envío programado cancelado"),
        urgent=escape(_("Urgente")),
        unread=escape(_("sin leer")),
    )


# Per language code. A deactivated translation (override(None)) reports LANGUAGE_CODE and
# translates nothing, which for Spanish msgids is the Spanish catalogue's answer too.
_texts_by_language: dict[str, _Texts] = {}


def _texts() -> _Texts:
    language = translation.get_language()
    texts = _texts_by_language.get(language)
    if texts is None:
        texts = _texts_by_language[language] = _build_texts()
    return texts


def _forget(*, setting, **kwargs) -> None:
    """Tests that change the languages or catalogues get their words read again."""
    if setting in {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "ROOT_URLCONF"}:
        _texts_by_language.clear()
        _paths.clear()


setting_changed.connect(_forget)


# --- the thread's line ------------------------------------------------------------------------


@register.simple_tag(takes_context=True)
def message_line(context, m: Message) -> SafeString:
    """index.html's message_line: one message of the thread, with its status and actions."""
    texts = _texts()
    ref = getattr(m, "live_ref", "")
    status = m.status
    out = m.direction == "out"
    quote = m.reply_to
    check = ""
    if out and status == "sent" and m.provider_msg_id:
        url = _url("inbox:status_check", m.pk)
        check = format_html(
            '\n      <form method="post" class="status-check" action="{}" hx-post="{}" '
            'hx-swap="none">\n        {}<button type="submit" class="link-button" '
            'title="{}">{}</button>\n      </form>\n    ',
            url,
            url,
            _CSRF.render(context),
            texts.check_title,
            texts.check,
        )
    note = context.get("status_note")
    return format_html(
        '<div id="msg-{}" class="msg msg-{} author-{} status-{}" data-key="{}" data-rank="{}" '
        'data-conversation="{}"{}>\n'
        '  <div class="msg-author">{}</div>\n'
        "  {}\n"
        "  {}\n"
        "  {}\n"
        '  <div class="msg-meta">\n'
        '    <time datetime="{}">{}</time>\n'
        "    {}\n"
        '    <button type="button" class="quote-btn" data-reply-to="{}" title="{}">↩︎</button>\n'
        "    {}\n"
        "  </div>\n"
        "  {}\n"
        "  {}\n"
        "</div>",
        _number(m.pk),
        m.direction,
        m.author_kind,
        status,
        msg_key(m),
        _number(status_rank(m)),
        _number(m.conversation_id),
        format_html(' data-ref="{}"', ref) if ref else "",
        author_label(m),
        format_html(
            '<blockquote class="quote"><strong>{}</strong> {}</blockquote>',
            author_label(quote),
            truncatechars(quote.body, 140),
        )
        if quote
        else "",
        format_html(
            '\n    <div class="msg-media">\n      {}\n    </div>\n  ', _media(m, texts, out)
        )
        if m.kind != "text"
        else "",
        format_html('<div class="msg-body">{}</div>', linebreaksbr(m.body)) if m.body else "",
        _date(m.created_at, "c"),
        _date(m.created_at, "d/m H:i"),
        format_html(
            '<span class="tick {}" title="{}" data-status="{}">{}</span>',
            tick_class(m),
            texts.statuses.get(status, status),
            status,
            tick(m),
        )
        if out
        else "",
        _number(m.pk),
        texts.reply,
        check,
        format_html('<p class="status-note muted" role="status">{}</p>', note) if note else "",
        _status_block(context, m, texts),
    )


def _media(m: Message, texts: _Texts, out: bool) -> SafeString:
    """The attachment: a link to the stored file, the outbound URL, or why there is none."""
    kind = m.kind
    if m.media_file:
        url = _url("inbox:media", m.pk)
        if kind == "image" or kind == "sticker":
            shown = format_html(
                '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="{}" '
                'loading="lazy"></a>\n        ',
                url,
                url,
                m.media_filename or texts.image,
            )
        elif kind == "audio":
            shown = format_html(
                '<audio controls preload="none" src="{}"></audio> <a href="{}">{}</a>\n        ',
                url,
                url,
                texts.download_audio,
            )
        else:
            shown = format_html(
                '<a href="{}">📄 {}</a>', url, m.media_filename or texts.kinds.get(kind, kind)
            )
        return format_html("\n        \n        {}\n      ", shown)
    label = texts.kinds.get(kind, kind)
    if out and m.media_url:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">📎 {}</a>\n      ',
            m.media_url,
            label,
        )
    if m.media_error:
        return format_html('<span class="muted">[{}] {}</span>\n      ', label, m.media_error)
    return format_html(
        '<span class="muted">[{}]{}</span>',
        label,
        format_html(" {}", m.media_filename) if m.media_filename else "",
    )


def _status_block(context, m: Message, texts: _Texts) -> SafeString | str:
    """What a failed, unsettled, scheduled or cancelled send says and offers."""
    status = m.status
    if status == "failed":
        if m.retried_at:
            action = format_html(
                '<span class="muted">{}</span>\n      ',
                texts.sent_again,
            )
        else:
            url = _url("inbox:retry", m.pk)
            action = format_html(
                '\n      <form method="post" action="{}" hx-post="{}" hx-swap="none">\n'
                '        {}<button type="submit" class="small">{}</button>\n'
                "      </form>\n      ",
                url,
                url,
                _CSRF.render(context),
                texts.retry,
            )
        return format_html(
            '\n    <div class="msg-failed">⚠ {}\n      {}\n    </div>\n  ',
            m.failure_reason or texts.not_sent,
            action,
        )
    if status == "unconfirmed":
        return format_html(
            '\n    <div class="msg-unconfirmed muted">🕓 {}</div>\n  ', m.failure_reason
        )
    if status == "unknown":
        if not m.retried_at:
            url = _url("inbox:retry", m.pk)
            action = format_html(
                '\n      <details class="retry-confirm">\n'
                '        <summary class="small">{}</summary>\n'
                "        <p>{}</p>\n"
                '        <form method="post" action="{}" hx-post="{}" hx-swap="none">\n'
                '          {}<input type="hidden" name="confirm_duplicate" value="1">\n'
                '          <button type="submit" class="small">{}</button>\n'
                "        </form>\n"
                "      </details>\n      ",
                texts.retry,
                texts.duplicate_warning,
                url,
                url,
                _CSRF.render(context),
                texts.resend,
            )
        else:
            action = format_html('<span class="muted">{}</span>\n      ', texts.sent_again)
        return format_html(
            '\n    <div class="msg-failed msg-unknown">⚠ {}\n      {}\n    </div>\n  ',
            m.failure_reason or texts.unknown,
            action,
        )
    if status == "scheduled":
        url = _url("inbox:cancel", m.pk)
        # {% blocktranslate %}'s way: the catalogue's sentence as it is, the date escaped.
        when = {"when": escape(_date(m.scheduled_for, "d/m/Y H:i"))}
        return format_html(
            '\n    <div class="msg-scheduled">🗓 {}\n'
            '      <form method="post" action="{}" hx-post="{}" hx-swap="none">\n'
            '        {}<button type="submit" class="small secondary outline">{}</button>\n'
            "      </form>\n    </div>\n  ",
            mark_safe(texts.scheduled_for % when),  # noqa: S308
            url,
            url,
            _CSRF.render(context),
            texts.cancel,
        )
    if status == "cancelled":
        return format_html(
            '<div class="msg-scheduled muted">{}</div>\n  ', m.failure_reason or texts.cancelled
        )
    return ""


# --- the list's row ---------------------------------------------------------------------------


@register.simple_tag
def conv_row(c: Conversation) -> SafeString:
    """index.html's conv_row: one conversation of the list."""
    texts = _texts()
    url = _url("inbox:conversation", c.pk)
    unread = c.unread_count
    label = texts.conversation_statuses.get(c.status, c.status)
    customer = c.customer
    return format_html(
        '<a id="conv-{}" class="conv-row status-{}{}{}"\n'
        '   data-key="{}" data-unread="{}"\n'
        '   href="{}" hx-get="{}" hx-target="#thread-pane" hx-push-url="true">\n'
        '  <span class="conv-line">\n'
        '    <span class="badge {}" title="{}">{} {}</span>\n'
        '    <strong class="conv-name">{}</strong>\n'
        "    {}\n"
        "    \n{}\n\n"
        '    <time class="conv-time" datetime="{}">{}</time>\n'
        "  </span>\n"
        '  <span class="conv-line">\n'
        '    <span class="conv-preview">{}</span>\n'
        "    {}\n"
        "  </span>\n"
        "  {}\n"
        "</a>",
        _number(c.pk),
        c.status,
        " unread" if unread else "",
        " urgent" if c.urgent else "",
        conv_key(c),
        _number(unread),
        url,
        url,
        c.status,
        label,
        status_badge(c.status),
        label,
        customer.name or customer.phone,
        format_html('<span class="conv-urgent" title="{}">❗</span>', texts.urgent)
        if c.urgent
        else "",
        channel_chip_html(c.channel_id),
        _date(c.last_message_at, "c"),
        short_time(c.last_message_at),
        c.last_message_preview,
        format_html(
            '<span class="unread-count" aria-label="{}">{}</span>', texts.unread, _number(unread)
        )
        if unread
        else "",
        format_html('<span class="conv-assignee muted">→ {}</span>', user_label(c.assignee))
        if c.assignee
        else "",
    )
