"""The thread's message lines and the list's rows are built by template tags
(inbox/templatetags/inbox_lines.py), not by the template engine: the same HTML as the partials
they replaced, byte for byte, for every status, author, attachment and row state, in both
languages, escaped alike. The old partials are kept here verbatim, as index.html had them."""

# ruff: noqa: E501 (the old partials' long lines, verbatim)

from datetime import timedelta
from itertools import product

import pytest
from django.contrib.auth.models import User
from django.template import engines
from django.template.loader import render_to_string
from django.utils import timezone, translation

from customers.models import Customer
from inbox import channels
from inbox.models import DEFAULT_CHANNEL, Channel, Conversation, Message

LANGUAGES = ["es-ec", "en"]
HOSTILE = "<script>alert(\"x\")</script> & 'q'"

OLD_CHIP = """{% load i18n %}
{% if label %}<span class="channel-chip colour-{{ label.1 }}" title="{% translate 'Canal' %}">{{ label.0 }}</span>{% endif %}
"""

OLD_CONV_ROW = """
<a id="conv-{{ c.pk }}" class="conv-row status-{{ c.status }}{% if c.unread_count %} unread{% endif %}{% if c.urgent %} urgent{% endif %}"
   data-key="{{ c|conv_key }}" data-unread="{{ c.unread_count }}"
   href="{% url 'inbox:conversation' c.pk %}" hx-get="{% url 'inbox:conversation' c.pk %}" hx-target="#thread-pane" hx-push-url="true">
  <span class="conv-line">
    <span class="badge {{ c.status }}" title="{{ c.get_status_display }}">{{ c.status|status_badge }} {{ c.get_status_display }}</span>
    <strong class="conv-name">{{ c.customer.name|default:c.customer.phone }}</strong>
    {% if c.urgent %}<span class="conv-urgent" title="{% translate 'Urgente' %}">❗</span>{% endif %}
    {% channel_chip c.channel_id %}
    <time class="conv-time" datetime="{{ c.last_message_at|date:'c' }}">{{ c.last_message_at|short_time }}</time>
  </span>
  <span class="conv-line">
    <span class="conv-preview">{{ c.last_message_preview }}</span>
    {% if c.unread_count %}<span class="unread-count" aria-label="{% translate 'sin leer' %}">{{ c.unread_count }}</span>{% endif %}
  </span>
  {% if c.assignee %}<span class="conv-assignee muted">→ {{ c.assignee|user_label }}</span>{% endif %}
</a>
"""

OLD_MESSAGE_LINE = """
<div id="msg-{{ m.pk }}" class="msg msg-{{ m.direction }} author-{{ m.author_kind }} status-{{ m.status }}" data-key="{{ m|msg_key }}" data-rank="{{ m|status_rank }}" data-conversation="{{ m.conversation_id }}"{% if m.live_ref %} data-ref="{{ m.live_ref }}"{% endif %}>
  <div class="msg-author">{{ m|author_label }}</div>
  {% if m.reply_to %}<blockquote class="quote"><strong>{{ m.reply_to|author_label }}</strong> {{ m.reply_to.body|truncatechars:140 }}</blockquote>{% endif %}
  {% if m.kind != "text" %}
    <div class="msg-media">
      {% if m.media_file %}
        {% url 'inbox:media' m.pk as media_url %}
        {% if m.kind == "image" or m.kind == "sticker" %}<a href="{{ media_url }}" target="_blank" rel="noopener"><img src="{{ media_url }}" alt="{{ m.media_filename|default:_('imagen') }}" loading="lazy"></a>
        {% elif m.kind == "audio" %}<audio controls preload="none" src="{{ media_url }}"></audio> <a href="{{ media_url }}">{% translate "Descargar audio" %}</a>
        {% else %}<a href="{{ media_url }}">📄 {{ m.media_filename|default:m.get_kind_display }}</a>{% endif %}
      {% elif m.direction == "out" and m.media_url %}<a href="{{ m.media_url }}" target="_blank" rel="noopener noreferrer">📎 {{ m.get_kind_display }}</a>
      {% elif m.media_error %}<span class="muted">[{{ m.get_kind_display }}] {{ m.media_error }}</span>
      {% else %}<span class="muted">[{{ m.get_kind_display }}]{% if m.media_filename %} {{ m.media_filename }}{% endif %}</span>{% endif %}
    </div>
  {% endif %}
  {% if m.body %}<div class="msg-body">{{ m.body|linebreaksbr }}</div>{% endif %}
  <div class="msg-meta">
    <time datetime="{{ m.created_at|date:'c' }}">{{ m.created_at|date:"d/m H:i" }}</time>
    {% if m.direction == "out" %}<span class="tick {{ m|tick_class }}" title="{{ m.get_status_display }}" data-status="{{ m.status }}">{{ m|tick }}</span>{% endif %}
    <button type="button" class="quote-btn" data-reply-to="{{ m.pk }}" title="{% translate 'Responder citando' %}">↩︎</button>
    {% if m.direction == "out" and m.status == "sent" and m.provider_msg_id %}
      <form method="post" class="status-check" action="{% url 'inbox:status_check' m.pk %}" hx-post="{% url 'inbox:status_check' m.pk %}" hx-swap="none">
        {% csrf_token %}<button type="submit" class="link-button" title="{% translate 'Preguntar a WaSender si ya se entregó o leyó' %}">{% translate "Consultar estado" %}</button>
      </form>
    {% endif %}
  </div>
  {% if status_note %}<p class="status-note muted" role="status">{{ status_note }}</p>{% endif %}
  {% if m.status == "failed" %}
    <div class="msg-failed">⚠ {{ m.failure_reason|default:_("No se pudo enviar.") }}
      {% if m.retried_at %}<span class="muted">{% translate "Enviado otra vez" %}</span>
      {% else %}
      <form method="post" action="{% url 'inbox:retry' m.pk %}" hx-post="{% url 'inbox:retry' m.pk %}" hx-swap="none">
        {% csrf_token %}<button type="submit" class="small">{% translate "Reintentar" %}</button>
      </form>
      {% endif %}
    </div>
  {% elif m.status == "unconfirmed" %}
    <div class="msg-unconfirmed muted">🕓 {{ m.failure_reason }}</div>
  {% elif m.status == "unknown" %}
    <div class="msg-failed msg-unknown">⚠ {{ m.failure_reason|default:_("Estado desconocido.") }}
      {% if not m.retried_at %}
      <details class="retry-confirm">
        <summary class="small">{% translate "Reintentar" %}</summary>
        <p>{% translate "Puede que el cliente ya lo tenga: si lo reenvías, podría recibirlo dos veces." %}</p>
        <form method="post" action="{% url 'inbox:retry' m.pk %}" hx-post="{% url 'inbox:retry' m.pk %}" hx-swap="none">
          {% csrf_token %}<input type="hidden" name="confirm_duplicate" value="1">
          <button type="submit" class="small">{% translate "Sí, reenviar" %}</button>
        </form>
      </details>
      {% else %}<span class="muted">{% translate "Enviado otra vez" %}</span>
      {% endif %}
    </div>
  {% elif m.status == "scheduled" %}
    <div class="msg-scheduled">🗓 {% blocktranslate with when=m.scheduled_for|date:"d/m/Y H:i" %}Programado para {{ when }}{% endblocktranslate %}
      <form method="post" action="{% url 'inbox:cancel' m.pk %}" hx-post="{% url 'inbox:cancel' m.pk %}" hx-swap="none">
        {% csrf_token %}<button type="submit" class="small secondary outline">{% translate "Cancelar" %}</button>
      </form>
    </div>
  {% elif m.status == "cancelled" %}<div class="msg-scheduled muted">{{ m.failure_reason|default:_("Envío programado cancelado") }}</div>
  {% endif %}
</div>
"""


def _old(source: str, context: dict) -> str:
    return engines["django"].from_string("{% load i18n inbox_tags %}" + source).render(context)


def _partial(name: str, context: dict) -> str:
    return render_to_string(f"inbox/index.html#{name}", context)


@pytest.fixture
def two_channels(db):
    channels.labels_forget()
    Channel.objects.get_or_create(key=DEFAULT_CHANNEL, defaults={"name": "WhatsApp"})
    Channel.objects.create(key="ventas", name="Ventas <b>", colour="blue")
    yield
    channels.labels_forget()


@pytest.fixture
def one_channel(db):
    channels.labels_forget()
    Channel.objects.get_or_create(key=DEFAULT_CHANNEL, defaults={"name": "WhatsApp"})
    yield
    channels.labels_forget()


def _people():
    return [
        None,
        User.objects.create_user("ana", first_name="Ana", last_name="Ruiz"),
        User.objects.create_user("solo-usuario"),
        User.objects.create_user("hostil", first_name=HOSTILE),
    ]


def _customer(n: int, name: str) -> Customer:
    return Customer.objects.create(phone=f"+5939681960{n:02d}", name=name)


# --- the list's row ---------------------------------------------------------------------------


def _rows() -> list[Conversation]:
    people = _people()
    names = ["Carlos Pérez", "", HOSTILE]
    now = timezone.now()
    rows = []
    n = 0
    for status in Conversation.Status.values:
        for unread in (0, 3, 1234):
            for urgent in (False, True):
                for person in people:
                    n += 1
                    rows.append(
                        Conversation.objects.create(
                            customer=_customer(n, names[n % 3]),
                            channel_id=DEFAULT_CHANNEL if n % 2 else "ventas",
                            status=status,
                            unread_count=unread,
                            urgent=urgent,
                            assignee=person,
                            last_message_at=(
                                None if n % 5 == 0 else now - timedelta(days=(n % 4) * 200)
                            ),
                            last_message_preview=["Hola", HOSTILE, "línea\notra", ""][n % 4],
                        )
                    )
    return rows


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel_count", [1, 2])
def test_conv_row_is_the_partials_html(request, language, channel_count):
    request.getfixturevalue("one_channel" if channel_count == 1 else "two_channels")
    rows = _rows()
    with translation.override(language):
        for c in Conversation.objects.select_related("customer", "assignee").filter(
            pk__in=[r.pk for r in rows]
        ):
            old = _old(OLD_CONV_ROW, {"c": c})
            assert _partial("conv_row", {"c": c}) == old
            tag = engines["django"].from_string("{% load inbox_lines %}{% conv_row c %}")
            assert tag.render({"c": c}) == old.strip("\n")
    assert ("channel-chip" in old) == (channel_count == 2)


@pytest.mark.parametrize("language", LANGUAGES)
def test_channel_chip_is_its_templates_html(two_channels, language):
    tag = engines["django"].from_string("{% load inbox_tags %}{% channel_chip key %}")
    with translation.override(language):
        for key in (DEFAULT_CHANNEL, "ventas", "gone"):
            old = _old(OLD_CHIP, {"label": channels.labels().get(key)})
            assert tag.render({"key": key}) == old
    assert "Ventas &lt;b&gt;" in tag.render({"key": "ventas"})


def test_conv_row_escapes_what_it_prints(one_channel):
    c = Conversation.objects.create(
        customer=_customer(1, HOSTILE), last_message_preview=HOSTILE, unread_count=2
    )
    html = _partial("conv_row", {"c": c})
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") == 2


# --- the thread's line ------------------------------------------------------------------------

MEDIA_KINDS = [k for k in Message.Kind.values if k != "text"]


def _messages() -> list[Message]:
    """Every status, author and attachment state the thread can show, in both directions."""
    agent = User.objects.create_user("bea", first_name="Bea", last_name="Mora")
    nameless = User.objects.create_user("sin-nombre")
    named = Conversation.objects.create(customer=_customer(90, "Carlos <Pérez>"))
    phone_only = Conversation.objects.create(customer=_customer(91, ""))
    now = timezone.now()
    made = []

    def add(conversation=named, **fields):
        fields.setdefault("direction", "out")
        fields.setdefault("author_kind", "agent")
        fields.setdefault("status", "sent" if fields["direction"] == "out" else "received")
        fields.setdefault("body", "Hola")
        fields.setdefault("created_at", now - timedelta(minutes=len(made) * 97))
        made.append(Message.objects.create(conversation=conversation, **fields))
        return made[-1]

    quoted_long = add(direction="in", author_kind="customer", body="x" * 139 + "yz" + HOSTILE)
    quoted_short = add(agent=agent, body="corto")
    # Every author, both ways, both customers.
    for direction in ("in", "out"):
        for author in Message.Author.values:
            for conversation in (named, phone_only):
                for who in (None, agent, nameless):
                    add(conversation, direction=direction, author_kind=author, agent=who)
    # Every status, with and without what changes its line, and inbound.
    for status in Message.Status.values:
        for provider_msg_id, retried_at, reason in product(
            (None, 12345), (None, now), ("", "Número inválido <x> & 'y'")
        ):
            add(
                status=status,
                provider_msg_id=provider_msg_id,
                retried_at=retried_at,
                failure_reason=reason,
                scheduled_for=None if retried_at else now + timedelta(days=1),
            )
        add(status=status, direction="in", provider_msg_id=0, failure_reason=HOSTILE)

    # Every attachment kind: stored file, outbound URL, error, filename, nothing.
    for kind in MEDIA_KINDS:
        for direction in ("in", "out"):
            add(direction=direction, kind=kind, media_file=f"media/2026/01/a.{kind}", body="")
            add(
                direction=direction,
                kind=kind,
                media_file=f"media/2026/01/b.{kind}",
                media_filename="recibo <1>.pdf",
            )
            add(direction=direction, kind=kind, media_url="https://cdn.example/a?x=1&y=<2>")
            add(direction=direction, kind=kind, media_error="Descarga fallida & <perdida>")
            add(direction=direction, kind=kind, media_filename="nota de voz.ogg")
            add(direction=direction, kind=kind, body="")
    # Quotes, bodies to escape and break, references the page gave its replies.
    add(reply_to=quoted_long, body="respuesta")
    add(reply_to=quoted_short, direction="in", author_kind="customer")
    add(body=f"uno\ndos\r\ntres {HOSTILE}")
    add(body="")
    add(body="con referencia").live_ref = "r-123<4>"
    add(body="referencia vacía").live_ref = ""
    old_one = add(body="hace un año")
    old_one.created_at = now - timedelta(days=400)
    return made


def _lines():
    made = _messages()
    live_refs = {m.pk: m.live_ref for m in made if hasattr(m, "live_ref")}
    lines = list(
        Message.objects.select_related("conversation__customer", "agent", "reply_to")
        .filter(pk__in=[m.pk for m in made])
        .order_by("pk")
    )
    for m in lines:
        if m.pk in live_refs:
            m.live_ref = live_refs[m.pk]
    return lines


CONTEXTS = [
    {"csrf_token": "NOTPROVIDED"},
    {"csrf_token": "tok3n<&>", "status_note": "Sin cambios: <nada> & más"},
    {"csrf_token": "tok3n", "status_note": ""},
    {},
]


@pytest.mark.parametrize(("language", "zone"), [("es-ec", "America/Guayaquil"), ("en", "UTC")])
def test_message_line_is_the_partials_html(db, language, zone):
    lines = _lines()
    assert len(lines) > 150
    tag = engines["django"].from_string("{% load inbox_lines %}{% message_line m %}")
    seen = set()
    with translation.override(language), timezone.override(zone):
        for m in lines:
            for extra in CONTEXTS:
                context = {"m": m, **extra}
                old = _old(OLD_MESSAGE_LINE, context)
                assert _partial("message_line", context) == old, (m.pk, m.status, m.kind)
                assert tag.render(context) == old.strip("\n")
                seen.update(
                    part
                    for part in (
                        "msg-media",
                        "quote",
                        "status-check",
                        "retry-confirm",
                        "msg-scheduled",
                        "csrfmiddlewaretoken",
                        "status-note",
                        "data-ref",
                        "<br>",
                        "<img",
                        "<audio",
                    )
                    if part in old
                )
    # Every branch of the partial was taken somewhere above.
    assert len(seen) == 11, seen


def test_message_line_escapes_what_it_prints(db):
    lines = _lines()
    for m in lines:
        html = _partial("message_line", {"m": m, "csrf_token": "NOTPROVIDED"})
        assert "<script>" not in html
