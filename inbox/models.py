from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Customer

# The first WhatsApp number: what every install had before channels, configured from the
# environment (WASENDER_*), and where a one-number install's conversations stay.
DEFAULT_CHANNEL = "default"


class Channel(models.Model):
    """One WhatsApp number on one provider: a WaSender session, or a Cloud API phone number
    (its phone_number_id, under a WhatsApp Business Account). Conversations belong to one.

    Credentials come from the environment (`from_env`: WASENDER_* for the default channel,
    META_* for the Cloud API number configured there), or are stored encrypted
    (inbox/channels.py); they are never rendered back.
    """

    class Provider(models.TextChoices):
        WASENDER = "wasender", "WaSender"
        CLOUDAPI = "cloudapi", _("WhatsApp Cloud API (Meta)")

    key = models.SlugField(_("clave"), max_length=64, unique=True)
    name = models.CharField(_("nombre"), max_length=60)

    class Colour(models.TextChoices):
        # A palette, not any colour: the chip's colour is a CSS class (no inline styles
        # under the Content-Security-Policy).
        GREEN = "green", _("Verde")
        BLUE = "blue", _("Azul")
        PURPLE = "purple", _("Morado")
        ORANGE = "orange", _("Naranja")
        RED = "red", _("Rojo")
        TEAL = "teal", _("Turquesa")
        GREY = "grey", _("Gris")

    colour = models.CharField(_("color"), max_length=7, choices=Colour.choices, default="green")
    provider = models.CharField(
        _("proveedor"), max_length=10, choices=Provider.choices, default=Provider.WASENDER
    )
    # Cloud API: the phone_number_id Meta routes events by; WaSender: blank (one session per
    # API key) or the session's id as its webhooks name it.
    account = models.CharField(_("identificador del número"), max_length=64, blank=True)
    waba_id = models.CharField(_("cuenta de WhatsApp Business (WABA)"), max_length=64, blank=True)
    display_phone = models.CharField(_("número"), max_length=32, blank=True)
    # A Fernet token of a JSON object (access token, app secret, verify token, API key, ...).
    credentials = models.TextField(blank=True, editable=False)
    from_env = models.BooleanField(_("configurado por el entorno"), default=False)
    # The provider's pace for this number (Meta: 80 messages a second by default).
    sends_per_second = models.PositiveIntegerField(_("envíos por segundo"), null=True, blank=True)
    # Meta's messaging limit: distinct customers a business-initiated message may reach in a
    # rolling 24 h (250, 1,000, 10,000, 100,000; empty: no limit known).
    daily_customer_limit = models.PositiveIntegerField(
        _("límite de clientes en 24 h"), null=True, blank=True
    )
    # Agents limited to some numbers see only these; nobody listed: every agent sees it.
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="channels", verbose_name=_("agentes")
    )
    active = models.BooleanField(_("activo"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("canal")
        verbose_name_plural = _("canales")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "account"],
                condition=~Q(account=""),
                name="one_channel_per_number",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_cloudapi(self) -> bool:
        return self.provider == self.Provider.CLOUDAPI

    @property
    def pace(self) -> int | None:
        """Sends a second of a Cloud API number (its own, else META_SENDS_PER_SECOND: Meta's 80
        by default); None for WaSender's, whose pace is the account's (SEND_RATE_PER_MINUTE)."""
        if not self.is_cloudapi:
            return None
        return self.sends_per_second or settings.META_SENDS_PER_SECOND


def channel_key_field(*, related_name: str = "+", **options) -> models.ForeignKey:
    """A WhatsApp number named by its channel's key (conversations, resolutions, campaigns,
    reminder rules). The default channel is implicit (WASENDER_* in the environment): its row
    may be missing (a flushed test database) without breaking what points at it, so no
    database constraint."""
    return models.ForeignKey(
        Channel,
        to_field="key",
        on_delete=models.PROTECT,
        default=DEFAULT_CHANNEL,
        related_name=related_name,
        db_constraint=False,
        **options,
    )


class Conversation(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("Nuevo")
        ANSWERED = "answered", _("Respondido")
        RESOLVED = "resolved", _("Resuelto")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="conversations")
    # The WhatsApp number the customer wrote to (or was written from).
    channel = channel_key_field(related_name="conversations", verbose_name=_("canal"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
        verbose_name=_("asignado a"),
    )
    urgent = models.BooleanField(_("urgente"), default=False)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=160, blank=True)
    # Inbound messages since an agent last answered or opened it.
    unread_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("conversación")
        verbose_name_plural = _("conversaciones")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel"], name="one_conversation_per_channel"
            ),
        ]
        indexes = [
            # The conversation list: newest first, keyset-paginated on (last_message_at, id).
            models.Index(fields=["-last_message_at", "-id"], name="conv_list_idx"),
            models.Index(fields=["status", "-last_message_at", "-id"], name="conv_status_list_idx"),
            models.Index(
                fields=["assignee", "-last_message_at", "-id"], name="conv_assignee_list_idx"
            ),
            # New conversations counted by their day (the panel, the rollups' fold).
            models.Index(fields=["created_at"], name="conv_created_idx"),
            # The list filtered by number.
            models.Index(
                fields=["channel", "-last_message_at", "-id"], name="conv_channel_list_idx"
            ),
            # The inbox's unread total (every page and every live push counts it): the few
            # unread conversations, not a scan of all of them.
            models.Index(fields=["id"], name="conv_unread_idx", condition=Q(unread_count__gt=0)),
        ]

    def __str__(self):
        return str(self.customer)


class Resolution(models.Model):
    """One "resuelta" by an agent: reopening keeps it, resolving again adds another. The
    analytics' resolution time is resolved_at - started_at, credited to the assignee of that
    moment."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="resolutions"
    )
    # The conversation's number when it was resolved (no join for the per-number figures).
    channel = channel_key_field()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The first customer message after the previous resolution; None when the customer wrote
    # nothing since (an agent reopened and resolved again).
    started_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("resolución")
        verbose_name_plural = _("resoluciones")
        indexes = [
            # The analytics' period, all numbers or one.
            models.Index(fields=["resolved_at"], name="resolution_at_idx"),
            models.Index(fields=["channel", "resolved_at"], name="resolution_channel_at_idx"),
        ]

    def __str__(self):
        return f"{self.conversation_id} @ {self.resolved_at}"


class Message(models.Model):
    """Both directions. Outbound rows are also the outbox: the send pipeline works from them."""

    class Direction(models.TextChoices):
        IN = "in", _("Entrante")
        OUT = "out", _("Saliente")

    class Author(models.TextChoices):
        CUSTOMER = "customer", _("Cliente")
        AGENT = "agent", _("Agente")
        BOT = "bot", _("Bot")
        CAMPAIGN = "campaign", _("Campaña")
        REMINDER = "reminder", _("Recordatorio")
        PHONE = "phone", _("Desde el teléfono")
        API = "api", _("API")

    class Status(models.TextChoices):
        # Order matters: an outbound status only moves forward along this list.
        SCHEDULED = "scheduled", _("Programado")
        QUEUED = "queued", _("En cola")
        SENDING = "sending", _("Enviando")
        # The send may or may not have reached WhatsApp (a lost or broken answer): never sent
        # again; the echo webhook or message info settles it, else it becomes unknown.
        UNCONFIRMED = "unconfirmed", _("Sin confirmar")
        SENT = "sent", _("Enviado")
        DELIVERED = "delivered", _("Entregado")
        READ = "read", _("Leído")
        PLAYED = "played", _("Reproducido")
        FAILED = "failed", _("Fallido")
        UNKNOWN = "unknown", _("Desconocido")
        CANCELLED = "cancelled", _("Cancelado")
        RECEIVED = "received", _("Recibido")

    # Groups of statuses, each defined here once.
    # The steps WhatsApp reports, in order: a status only moves forward along them.
    STEPS = (Status.SENT, Status.DELIVERED, Status.READ, Status.PLAYED)
    # Reached the customer's phone (sent counts: WhatsApp accepted it for them).
    REACHED_STATUSES = STEPS
    DELIVERED_STATUSES = (Status.DELIVERED, Status.READ, Status.PLAYED)
    READ_STATUSES = (Status.READ, Status.PLAYED)
    # Waiting for the send pipeline.
    IN_FLIGHT_STATUSES = (Status.QUEUED, Status.SENDING)
    # Left the pipeline without a known outcome: the provider's answer, its echo or message
    # info may still settle them (never a new send).
    UNSETTLED_STATUSES = (Status.SENDING, Status.UNCONFIRMED, Status.UNKNOWN)
    # Not at an end yet (a campaign recipient stays open while its message is one of these).
    OPEN_STATUSES = (Status.QUEUED, Status.SENDING, Status.UNCONFIRMED)

    class Kind(models.TextChoices):
        TEXT = "text", _("Texto")
        IMAGE = "image", _("Imagen")
        VIDEO = "video", _("Video")
        AUDIO = "audio", _("Audio")
        DOCUMENT = "document", _("Documento")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Ubicación")
        CONTACT = "contact", _("Contacto")
        # Meta's Cloud API sends reactions as messages (the emoji; empty takes it back) and
        # names types it cannot show "unsupported".
        REACTION = "reaction", _("Reacción")
        UNSUPPORTED = "unsupported", _("Tipo no soportado")
        OTHER = "other", _("Otro")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    author_kind = models.CharField(max_length=10, choices=Author.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TEXT)
    body = models.TextField(blank=True)
    # Media: the provider's (expiring) URL, then our own copy once downloaded.
    media_url = models.URLField(max_length=1000, blank=True)
    media_file = models.FileField(upload_to="media/%Y/%m/", blank=True)
    media_mime = models.CharField(max_length=100, blank=True)
    media_filename = models.CharField(max_length=255, blank=True)
    media_size = models.PositiveBigIntegerField(null=True, blank=True)
    # What decrypt-media needs (the WhatsApp key and message), kept until the copy is ours.
    media_source = models.JSONField(null=True, blank=True)
    # Why the download gave up (Spanish, shown beside the message).
    media_error = models.CharField(max_length=300, blank=True)
    # key.id from WhatsApp: the deduplication key for everything WaSender tells us.
    wa_id = models.CharField(max_length=128, unique=True, null=True, blank=True)
    # WaSender's own integer id, answered by /send-message; not the WhatsApp id.
    provider_msg_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    # Marketing (a marketing or event campaign): never sent to a customer who opted out, even
    # when the opt-out came after it was queued (checked by the send's claim).
    marketing = models.BooleanField(default=False)
    failure_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the message was written (inbound: WhatsApp's timestamp; outbound: when queued).
    created_at = models.DateTimeField(default=timezone.now)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    played_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Set once when an agent sends a failed line again: a second click finds it set.
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("mensaje")
        verbose_name_plural = _("mensajes")
        indexes = [
            # A thread, newest first, keyset on (created_at, id).
            models.Index(fields=["conversation", "-created_at", "-id"], name="msg_thread_idx"),
            # Daily statistics by direction.
            models.Index(fields=["direction", "created_at"], name="msg_stats_idx"),
            models.Index(fields=["sent_at"], name="msg_sent_at_idx"),
            # The panel and analytics count each delivery step by the day it happened.
            models.Index(fields=["delivered_at"], name="msg_delivered_at_idx"),
            models.Index(fields=["read_at"], name="msg_read_at_idx"),
            models.Index(fields=["failed_at"], name="msg_failed_at_idx"),
            # The sweeper and the scheduler look only at the few unfinished rows.
            models.Index(
                fields=["status", "created_at"],
                name="msg_pending_idx",
                condition=Q(status__in=["scheduled", "queued", "sending", "unconfirmed"]),
            ),
        ]

    def __str__(self):
        return f"{self.get_direction_display()} {self.created_at:%Y-%m-%d %H:%M} {self.body[:40]}"


class WebhookEvent(models.Model):
    """Every webhook body that passed the secret check, committed before we answer 200."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pendiente")
        PROCESSED = "processed", _("Procesado")
        IGNORED = "ignored", _("Ignorado")
        FAILED = "failed", _("Fallido, se reintentará")

    received_at = models.DateTimeField(default=timezone.now)
    # Whose shape the payload has: which parser reads it (provider/<name>/payloads.py).
    provider = models.CharField(
        max_length=10, choices=Channel.Provider.choices, default=Channel.Provider.WASENDER
    )
    event = models.CharField(max_length=64, blank=True)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When a pending or failed event is due again; claimed by moving it forward (a lease).
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("evento de webhook")
        verbose_name_plural = _("eventos de webhook")
        indexes = [
            models.Index(fields=["-received_at"], name="webhook_recent_idx"),
            models.Index(
                fields=["retry_at"],
                name="webhook_retry_due_idx",
                condition=Q(state__in=["pending", "failed"]),
            ),
        ]

    def __str__(self):
        return f"{self.event} {self.received_at:%Y-%m-%d %H:%M:%S}"


class SessionState(models.Model):
    """The WhatsApp number's connection as WaSender last reported it (session.status)."""

    session = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=20)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("estado de la sesión de WhatsApp")
        verbose_name_plural = _("estados de la sesión de WhatsApp")

    def __str__(self):
        return f"{self.session}: {self.status}"


class Note(models.Model):
    """A note about a customer that only agents see (shown beside every conversation of theirs)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="agent_notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(_("nota"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("nota de agente")
        verbose_name_plural = _("notas de agentes")

    def __str__(self):
        return self.body[:60]
