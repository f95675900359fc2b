from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("plantilla")
        verbose_name_plural = _("plantillas")

    def __str__(self):
        return self.name
