import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user token for /api/v1/. Only its SHA-256 is stored; it acts with its user's role."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("nombre"), max_length=80)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("token de API")
        verbose_name_plural = _("tokens de API")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, user, name: str) -> tuple["ApiToken", str]:
        raw = "cd_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, digest=token_digest(raw), prefix=raw[:10])
        return token, raw


class DemoClock(models.Model):
    """Written only by `seed_demo`: the moment the demo data is dated from. Its presence marks
    the database as a demo, so a later `seed_demo --if-empty` may move that data forward to
    today (devdata.demo.demo_refresh); a real business's database has no such row."""

    anchor = models.DateTimeField()

    class Meta:
        verbose_name = _("reloj de la demo")
        verbose_name_plural = _("reloj de la demo")

    def __str__(self):
        return f"demo {self.anchor:%Y-%m-%d %H:%M}"
