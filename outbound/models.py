import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inbox.models import channel_key_field


class MessageTemplate(models.Model):
    class Category(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        SUPPORT = "support", _("Soporte")
        NOTIFICATION = "notification", _("Notificación")

    name = models.CharField(_("nombre"), max_length=120, unique=True)
    category = models.CharField(_("categoría"), max_length=12, choices=Category.choices)
    # Text with {variables}: see outbound.templating for the known ones.
    body = models.TextField(_("mensaje"))
    archived = models.BooleanField(_("archivada"), default=False)
    # The Meta template this one goes out as on a Cloud API number (outside the 24-hour
    # window only an approved template may): its name and language, chatdesk's variables in
    # the order of its body's {{1}}, {{2}}..., and the link of its header when it has a media
    # header. Blank name: not linked (outbound/meta_templates.py).
    meta_name = models.CharField(_("plantilla de Meta"), max_length=512, blank=True)
    meta_language = models.CharField(_("idioma de Meta"), max_length=16, blank=True, default="es")
    meta_params = models.JSONField(_("variables de Meta, en orden"), default=list, blank=True)
    meta_header_url = models.URLField(_("archivo del encabezado"), max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("plantilla")
        verbose_name_plural = _("plantillas")

    def __str__(self):
        return self.name


class MetaTemplate(models.Model):
    """A message template of a Cloud API channel's WhatsApp Business Account, as Meta lists it
    (CloudApiClient.templates_list): filled by the sync (a button and a periodic actor) and
    kept current by the message_template_status_update webhook. Meta's review decides what
    may go out: only APPROVED templates are offered or sent."""

    class Status(models.TextChoices):
        APPROVED = "APPROVED", _("Aprobada")
        PENDING = "PENDING", _("En revisión")
        REJECTED = "REJECTED", _("Rechazada")
        PAUSED = "PAUSED", _("Pausada")
        DISABLED = "DISABLED", _("Desactivada")
        IN_APPEAL = "IN_APPEAL", _("En apelación")
        DELETED = "DELETED", _("Eliminada")

    channel = models.ForeignKey(
        "inbox.Channel", on_delete=models.CASCADE, related_name="+", verbose_name=_("canal")
    )
    template_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(_("nombre"), max_length=512)
    language = models.CharField(_("idioma"), max_length=16)
    # Meta's words, upper case; an unknown one is kept as given.
    status = models.CharField(_("estado"), max_length=20)
    category = models.CharField(_("categoría"), max_length=20, blank=True)
    components = models.JSONField(default=list, blank=True)
    body = models.TextField(_("texto"), blank=True)
    params_count = models.PositiveSmallIntegerField(default=0)
    header_format = models.CharField(max_length=10, blank=True)  # image / video / document / text
    reason = models.CharField(_("motivo"), max_length=300, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "language"]
        verbose_name = _("plantilla de Meta")
        verbose_name_plural = _("plantillas de Meta")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "name", "language"], name="one_meta_template_per_language"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.language})"

    @property
    def approved(self) -> bool:
        return self.status == self.Status.APPROVED

    def status_label(self) -> str:
        return str(dict(self.Status.choices).get(self.status, self.status))


class MetaSend(models.Model):
    """An outbox row that goes out as a Meta template: what exactly is sent (so a retry sends
    the same), and the marketing cap's retries. Meta's 131049 ("Limitado por Meta") never sends
    the same row twice: the capped row fails, and a new row, scheduled later, points back to
    it (`retry_of`, unique: one retry per capped row however often the news arrives)."""

    message = models.OneToOneField(
        "inbox.Message", primary_key=True, on_delete=models.CASCADE, related_name="meta_send"
    )
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    body_params = models.JSONField(default=list, blank=True)
    header_kind = models.CharField(max_length=10, blank=True)
    header_ref = models.CharField(max_length=1000, blank=True)
    retry_of = models.OneToOneField(
        "inbox.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="meta_cap_retry",
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    # When Meta held this message (capped_at), and first held its chain: retries stop
    # META_MARKETING_RETRY_DAYS after the first.
    capped_at = models.DateTimeField(null=True, blank=True)
    first_capped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.message_id}: {self.name}"


def channel_field():
    """The WhatsApp number a campaign or reminder goes out from."""
    return channel_key_field(verbose_name=_("número de WhatsApp"))


# --- automations: reminders, auto-replies, opt-out (outbound.reminders, outbound.rules) ------
class ReminderRule(models.Model):
    """A time-based message: N days before / on / after a subscription's expiry, or on its
    anniversary, sent from a notification template inside a daily window (Guayaquil time)."""

    class Kind(models.TextChoices):
        EXPIRY = "expiry", _("Vencimiento")
        ANNIVERSARY = "anniversary", _("Aniversario de la suscripción")

    name = models.CharField(_("nombre"), max_length=120, unique=True)
    kind = models.CharField(_("tipo"), max_length=12, choices=Kind.choices, default=Kind.EXPIRY)
    # Days from the expiry date: -3 is three days before, 0 the day itself, 1 the day after.
    days_from_expiry = models.SmallIntegerField(_("días desde el vencimiento"), default=0)
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("plantilla")
    )
    window_start = models.TimeField(_("desde"), default=datetime.time(9, 0))
    window_end = models.TimeField(_("hasta"), default=datetime.time(20, 0))
    # Reminders are service messages, not marketing: by default they still reach customers
    # who opted out of promotions.
    include_opted_out = models.BooleanField(_("también a quienes pidieron la baja"), default=True)
    channel = channel_field()
    active = models.BooleanField(_("activa"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "days_from_expiry", "name"]
        verbose_name = _("recordatorio")
        verbose_name_plural = _("recordatorios")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_start__lt=models.F("window_end")),
                name="reminder_window_ordered",
            ),
        ]

    def __str__(self):
        return self.name


class ReminderSent(models.Model):
    """One row per (rule, subscription, date): inserted before the message is written, in the
    same transaction, so a repeated tick or a second scheduler inserts nothing and sends
    nothing. `expiry_date` is the expiry the reminder spoke of (for an anniversary rule, the
    anniversary day)."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Enviado")
        SKIPPED = "skipped", _("Omitido")

    rule = models.ForeignKey(ReminderRule, on_delete=models.CASCADE, related_name="sent")
    subscription = models.ForeignKey(
        "customers.Subscription", on_delete=models.CASCADE, related_name="+"
    )
    expiry_date = models.DateField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    skip_reason = models.CharField(max_length=300, blank=True)
    message = models.OneToOneField(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("recordatorio enviado")
        verbose_name_plural = _("recordatorios enviados")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subscription", "expiry_date"], name="one_reminder_per_expiry"
            ),
        ]
        indexes = [
            models.Index(fields=["subscription", "created_at"]),
            # Reminders counted by the day they were sent (today's funnel, the rollups' fold).
            models.Index(fields=["created_at"], name="remindersent_created_idx"),
        ]

    def __str__(self):
        return f"{self.rule} · {self.subscription_id} · {self.expiry_date}"


class AutoReplyRule(models.Model):
    """Keywords in a customer's message -> a reply from a template, and optionally a tag, an
    assignee, the urgent flag. Rules are tried by priority; the first that matches wins."""

    class Match(models.TextChoices):
        EXACT = "exact", _("El mensaje es la palabra clave")
        CONTAINS = "contains", _("El mensaje contiene la palabra clave")

    name = models.CharField(_("nombre"), max_length=120, unique=True)
    # Comma-separated; compared without case, accents, punctuation or emoji.
    keywords = models.CharField(_("palabras clave"), max_length=300)
    match = models.CharField(_("coincidencia"), max_length=8, choices=Match.choices)
    template = models.ForeignKey(
        MessageTemplate,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("responder con"),
    )
    tag = models.CharField(_("etiquetar al cliente con"), max_length=60, blank=True)
    assign_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("asignar la conversación a"),
    )
    mark_urgent = models.BooleanField(_("marcar la conversación como urgente"), default=False)
    priority = models.PositiveSmallIntegerField(_("prioridad"), default=100)
    active = models.BooleanField(_("activa"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["priority", "id"]
        verbose_name = _("respuesta automática")
        verbose_name_plural = _("respuestas automáticas")

    def __str__(self):
        return self.name


def business_hours_default() -> dict:
    # Weekday (Monday "0") -> [opens, closes], Guayaquil time; a missing day is closed.
    week = {str(day): ["09:00", "19:00"] for day in range(5)}
    return {**week, "5": ["09:00", "13:00"]}


class AutomationSettings(models.Model):
    """One row (pk=1): opt-out / opt-in keywords and answers, business hours, away message."""

    opt_out_keywords = models.CharField(
        _("palabras para darse de baja"), max_length=300, default="BAJA, STOP, NO MÁS, DESUSCRIBIR"
    )
    opt_out_reply = models.TextField(
        _("respuesta a la baja"),
        default="Listo, no te enviaremos más promociones. Escribe ALTA para volver.",
    )
    opt_in_keywords = models.CharField(_("palabras para volver"), max_length=300, default="ALTA")
    opt_in_reply = models.TextField(
        _("respuesta al alta"),
        default="¡Listo! Volverás a recibir nuestras promociones. Escribe BAJA para dejarlas.",
    )
    business_hours = models.JSONField(_("horario de atención"), default=business_hours_default)
    away_enabled = models.BooleanField(_("mensaje fuera de horario"), default=True)
    away_message = models.TextField(
        _("mensaje fuera de horario"),
        default=(
            "¡Hola! 👋 Ahora estamos fuera de horario (lunes a viernes de 9:00 a 19:00, "
            "sábados de 9:00 a 13:00). Te responderemos apenas volvamos."
        ),
    )
    away_every_hours = models.PositiveSmallIntegerField(
        _("como máximo una vez cada (horas)"), default=12
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("ajustes de automatizaciones")
        verbose_name_plural = _("ajustes de automatizaciones")

    def __str__(self):
        return str(_("Ajustes de automatizaciones"))


class InboundReaction(models.Model):
    """What the rules did with one inbound message. The primary key is the message: a second
    call for the same message inserts nothing and answers nothing."""

    message = models.OneToOneField(
        "inbox.Message", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+"
    )
    rule = models.ForeignKey(
        AutoReplyRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "opt_out", "opt_in", "rule", "away", "none" (comma-joined when several); "" while the
    # reaction is pending (the intake made the row, the worker has not reacted yet).
    action = models.CharField(max_length=40, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "rule", "created_at"]),
            models.Index(
                fields=["created_at"], name="reaction_pending_idx", condition=models.Q(action="")
            ),
        ]

    def __str__(self):
        return f"{self.message_id}: {self.action}"


class AwayNotice(models.Model):
    """When a conversation last got the away message: claimed with a conditional update, so
    two messages arriving together produce one notice."""

    conversation = models.OneToOneField(
        "inbox.Conversation", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    sent_at = models.DateTimeField()

    def __str__(self):
        return f"{self.conversation_id} @ {self.sent_at}"


# --- campaigns (outbound.campaigns) ----------------------------------------------------------
def window_start_default() -> datetime.time:
    return datetime.time(9, 0)


def window_end_default() -> datetime.time:
    return datetime.time(20, 0)


class Campaign(models.Model):
    """One message to an audience. The body (and the audience's filters) are copied when the
    campaign is created: editing the template or the saved segment later changes nothing here.
    The funnel is read from the recipients and their messages (outbound.campaigns)."""

    class Kind(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        NOTIFICATION = "notification", _("Notificación")
        SUPPORT = "support", _("Soporte")
        EVENT = "event", _("Evento")

    class State(models.TextChoices):
        DRAFT = "draft", _("Borrador")
        SCHEDULED = "scheduled", _("Programada")
        RUNNING = "running", _("Activa")
        PAUSED = "paused", _("Pausada")
        COMPLETED = "completed", _("Completada")
        CANCELLED = "cancelled", _("Cancelada")
        # The launch could not be done (bad variables, a body that cannot be rendered, a
        # segment that errors) after LAUNCH_MAX_ATTEMPTS: `failure_reason` says why.
        FAILED = "failed", _("Fallida")

    class Audience(models.TextChoices):
        # Retargeting: who of the source campaign's recipients gets the follow-up.
        NOT_READ = "not_read", _("No leyeron")
        NOT_REPLIED = "not_replied", _("No respondieron")

    title = models.CharField(_("título"), max_length=200)
    kind = models.CharField(_("tipo"), max_length=12, choices=Kind.choices, default=Kind.MARKETING)
    template = models.ForeignKey(
        MessageTemplate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaigns",
        verbose_name=_("plantilla"),
    )
    body = models.TextField(_("mensaje"))
    # Values of the campaign variables ({nuevo_servicio}, {descuento}...).
    extra = models.JSONField(_("variables de la campaña"), default=dict, blank=True)
    segment = models.ForeignKey(
        "customers.Segment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("segmento"),
    )
    filters = models.JSONField(_("filtros"), default=dict, blank=True)
    retarget_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retargets"
    )
    retarget_audience = models.CharField(max_length=12, choices=Audience.choices, blank=True)
    state = models.CharField(_("estado"), max_length=10, choices=State.choices, default=State.DRAFT)
    scheduled_at = models.DateTimeField(_("enviar el"), null=True, blank=True)
    window_start = models.TimeField(_("enviar desde"), default=window_start_default)
    window_end = models.TimeField(_("enviar hasta"), default=window_end_default)
    best_hour = models.BooleanField(_("a la mejor hora de cada cliente"), default=False)
    channel = channel_field()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    launched_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(_("motivo del fallo"), max_length=300, blank=True)
    launch_attempts = models.PositiveSmallIntegerField(default=0)
    # Counted once at launch.
    recipients_total = models.PositiveIntegerField(default=0)
    opted_out_excluded = models.PositiveIntegerField(default=0)
    # The fan-out chain: only a run carrying the current token goes on; `fanout_next_at` is
    # when the chain promised to run again (the scheduler tick re-kicks a broken promise).
    fanout_token = models.PositiveIntegerField(default=0)
    fanout_next_at = models.DateTimeField(null=True, blank=True)
    # More numbers that share the audience with `channel` (their keys, in the order chosen):
    # each recipient goes out from one of them (CampaignRecipient.channel), each number at its
    # own pace and within its own messaging limit. Empty: everything from `channel`.
    split_channels = models.JSONField(_("repartir también entre"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaña")
        verbose_name_plural = _("campañas")
        indexes = [
            models.Index(
                fields=["state", "scheduled_at"],
                name="campaign_due_idx",
                condition=models.Q(state__in=["scheduled", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_start__lt=models.F("window_end")),
                name="campaign_window_ordered",
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def channel_keys(self) -> list[str]:
        """Every number it goes out from, its own first."""
        return list(dict.fromkeys([self.channel_id, *self.split_channels]))

    def recipient_channel(self, key: str) -> str:
        """CampaignRecipient.channel for a recipient going out from `key`."""
        return "" if key == self.channel_id else key

    def channel_of(self, recipient_channel: str) -> str:
        return recipient_channel or self.channel_id  # type: ignore[return-value]  # FK default: never None


class CampaignVariant(models.Model):
    """Up to three bodies of one campaign, split at random across its recipients."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=1)
    body = models.TextField(_("mensaje"))

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "label"], name="one_variant_per_label"),
        ]

    def __str__(self):
        return f"{self.campaign_id} {self.label}"


class CampaignRecipient(models.Model):
    """One customer of one campaign; unique, so a customer cannot be sent a campaign twice.
    `queued` means its message exists (the send pipeline owns it from there); the outcome is
    copied back from the message (sent / failed / unknown) by the fan-out and the tick."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pendiente")
        QUEUED = "queued", _("En cola")
        SENT = "sent", _("Enviado")
        SKIPPED = "skipped", _("Omitido")
        # The customer opted out after the launch: their message was not sent, or cancelled.
        OPTED_OUT = "opted_out", _("Cancelado por baja")
        FAILED = "failed", _("Fallido")
        UNKNOWN = "unknown", _("Desconocido")

    # No index of its own: one_send_per_customer and recipient_due_idx lead with it (a third
    # index would only slow the launch's 100,000-row insert).
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="campaign_recipients"
    )
    # Indexed where set (recipient_variant_idx): most recipients have none.
    variant = models.ForeignKey(
        CampaignVariant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipients",
        db_index=False,
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    skip_reason = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    message = models.OneToOneField(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The number it goes out from when the campaign splits its audience: a channel's key, or
    # blank for the campaign's own (every recipient of a one-number campaign).
    channel = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        verbose_name = _("destinatario")
        verbose_name_plural = _("destinatarios")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="one_send_per_customer"),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "state", "channel", "planned_at"], name="recipient_due_idx"
            ),
            models.Index(
                fields=["variant"],
                name="recipient_variant_idx",
                condition=models.Q(variant__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.campaign_id} → {self.customer_id}"
