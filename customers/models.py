from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Service(models.Model):
    """A product we sell (Netflix, HBO Max...)."""

    name = models.CharField(_("nombre"), max_length=80, unique=True)
    normal_price = models.DecimalField(_("precio normal (USD)"), max_digits=8, decimal_places=2)
    active = models.BooleanField(_("se vende"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("servicio")
        verbose_name_plural = _("servicios")

    def __str__(self):
        return self.name


class Tag(models.Model):
    """A custom group of customers ("VIP", "Quito norte"...)."""

    name = models.CharField(_("nombre"), max_length=60)

    class Meta:
        ordering = ["name"]
        verbose_name = _("etiqueta")
        verbose_name_plural = _("etiquetas")
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_name_ci_unique")]

    def __str__(self):
        return self.name


class Customer(models.Model):
    name = models.CharField(_("nombre"), max_length=120, blank=True)
    # E.164, normalised by customers.phones; the one identity of a customer.
    phone = models.CharField(_("teléfono"), max_length=20, unique=True)
    # False when the phone library calls the number invalid but WhatsApp delivered a message
    # from it (new ranges, foreign numbers): kept, and shown to be checked by a person.
    phone_valid = models.BooleanField(_("número verificado"), default=True)
    # WhatsApp may address the same person by an opaque "...@lid" id; learnt from webhooks
    # that carry both, so a later LID-only message finds this customer.
    whatsapp_lid = models.CharField(max_length=64, unique=True, null=True, blank=True)
    city = models.CharField(_("ciudad"), max_length=80, blank=True)
    province = models.CharField(_("provincia"), max_length=80, blank=True)
    tags = models.ManyToManyField(
        Tag, blank=True, related_name="customers", verbose_name=_("etiquetas")
    )
    marketing_opt_out_at = models.DateTimeField(_("baja de publicidad"), null=True, blank=True)
    marketing_opt_out_reason = models.CharField(_("motivo de la baja"), max_length=200, blank=True)
    notes = models.TextField(_("notas"), blank=True)
    created_at = models.DateTimeField(_("creado"), default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("cliente")
        verbose_name_plural = _("clientes")
        indexes = [
            models.Index(fields=["city"]),
            models.Index(fields=["province"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self):
        return self.name or self.phone

    @property
    def opted_out(self) -> bool:
        return self.marketing_opt_out_at is not None


class Subscription(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="subscriptions")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="subscriptions")
    price = models.DecimalField(_("precio pagado (USD)"), max_digits=8, decimal_places=2)
    started_on = models.DateField(_("inicio"))
    expires_on = models.DateField(_("vence"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["expires_on"]
        verbose_name = _("suscripción")
        verbose_name_plural = _("suscripciones")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "service"], name="one_subscription_per_service"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_on"]),
            models.Index(fields=["service", "expires_on"]),
        ]

    def __str__(self):
        return f"{self.customer} · {self.service}"

    @property
    def is_active(self) -> bool:
        return self.expires_on >= timezone.localdate()

    @property
    def days_left(self) -> int:
        return (self.expires_on - timezone.localdate()).days


class Renewal(models.Model):
    """A subscription extended; what "conversion" counts after a reminder or a campaign."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="renewals"
    )
    renewed_at = models.DateTimeField(_("renovado"), default=timezone.now)
    previous_expiry = models.DateField(_("vencía"))
    new_expiry = models.DateField(_("nuevo vencimiento"))
    amount = models.DecimalField(_("monto (USD)"), max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["-renewed_at"]
        verbose_name = _("renovación")
        verbose_name_plural = _("renovaciones")
        indexes = [models.Index(fields=["renewed_at"])]

    def __str__(self):
        return f"{self.subscription} → {self.new_expiry}"


class Segment(models.Model):
    """A saved audience: filters over customers, evaluated when used (see outbound.segments)."""

    name = models.CharField(_("nombre"), max_length=120, unique=True)
    filters = models.JSONField(_("filtros"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("creado por"),
    )
    created_at = models.DateTimeField(_("creado"), default=timezone.now)
    updated_at = models.DateTimeField(_("modificado"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segmento")
        verbose_name_plural = _("segmentos")

    def __str__(self):
        return self.name


class CustomerImport(models.Model):
    """What a confirmed CSV import did, kept so the import page can show the last ones: the
    counts and every rejected line with its reason (the file itself is not kept)."""

    filename = models.CharField(_("archivo"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("importado por"),
    )
    created_at = models.DateTimeField(_("fecha"), default=timezone.now)
    created = models.PositiveIntegerField(_("nuevos"), default=0)
    updated = models.PositiveIntegerField(_("actualizados"), default=0)
    unchanged = models.PositiveIntegerField(_("sin cambios"), default=0)
    rejected = models.PositiveIntegerField(_("rechazados"), default=0)
    # [{"line": 5, "phone": "12345", "name": "...", "reason": "..."}], at most REJECTED_KEPT.
    rejected_rows = models.JSONField(default=list, blank=True)

    REJECTED_KEPT = 200

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("importación de clientes")
        verbose_name_plural = _("importaciones de clientes")

    def __str__(self):
        return f"{self.filename} ({self.created_at:%Y-%m-%d})"
