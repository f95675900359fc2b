"""The channel settings form: a number, its provider, who works on it, its secrets (asked for,
never shown back)."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chatdesk.forms import IdsField
from chatdesk.roles import SUPPORT
from inbox import channels
from inbox.models import Channel

SECRET_LABELS = {
    "api_key": gettext_lazy("Clave de API de WaSender"),
    "webhook_secret": gettext_lazy("Secreto del webhook de WaSender"),
    "access_token": gettext_lazy("Token de acceso (Meta)"),
    "app_secret": gettext_lazy("Clave secreta de la app (Meta)"),
    "verify_token": gettext_lazy("Token de verificación del webhook (Meta)"),
}


class ChannelForm(forms.ModelForm):
    api_key = forms.CharField(required=False, max_length=500)
    webhook_secret = forms.CharField(required=False, max_length=500)
    access_token = forms.CharField(required=False, max_length=1000)
    app_secret = forms.CharField(required=False, max_length=500)
    verify_token = forms.CharField(required=False, max_length=500)

    class Meta:
        model = Channel
        fields = [
            "name",
            "key",
            "colour",
            "provider",
            "account",
            "waba_id",
            "display_phone",
            "sends_per_second",
            "daily_customer_limit",
            "agents",
            "active",
        ]
        widgets = {"agents": forms.CheckboxSelectMultiple}
        field_classes = {"agents": IdsField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agents"].queryset = (
            get_user_model()
            .objects.filter(is_active=True, groups__name__in=SUPPORT)
            .distinct()
            .order_by("username")
        )
        self.fields["agents"].help_text = _(
            "Un agente marcado en algún número solo ve los números donde está marcado; "
            "nadie marcado: lo ven los demás agentes. Los administradores ven todos."
        )
        self.fields["key"].help_text = _("Letras, números y guiones; no cambia después.")
        self.fields["account"].help_text = _(
            "Cloud API: el «Phone number ID» de Meta. WaSender: el id de la sesión (opcional)."
        )
        stored = channels.credentials_stored(self.instance) if self.instance.pk else {}
        for name, label in SECRET_LABELS.items():
            field = self.fields[name]
            field.label = label
            field.widget = forms.PasswordInput(
                render_value=False,
                attrs={
                    "autocomplete": "new-password",
                    "placeholder": _("guardado (déjalo vacío para no cambiarlo)")
                    if stored.get(name)
                    else "",
                },
            )
        if self.instance.pk:
            self.fields["key"].disabled = True
            self.fields["provider"].disabled = True
        if self.instance.from_env:
            for name in ("account", "waba_id", "display_phone", "provider", *SECRET_LABELS):
                self.fields[name].disabled = True
                self.fields[name].help_text = _("Configurado por variables de entorno.")

    def clean(self):
        data = super().clean()
        provider = data.get("provider") or self.instance.provider
        if provider == Channel.Provider.CLOUDAPI and not self.instance.from_env:
            if not (data.get("account") or "").isdigit():
                self.add_error("account", _("Escribe el «Phone number ID» de Meta (solo dígitos)."))
            stored = channels.credentials_stored(self.instance) if self.instance.pk else {}
            for name in ("access_token", "app_secret", "verify_token"):
                if not data.get(name) and not stored.get(name):
                    self.add_error(name, _("Falta este dato para conectar el número."))
        return data

    def save(self, commit=True):
        channel = super().save(commit=False)
        if not channel.from_env:
            secrets = {name: self.cleaned_data.get(name) or "" for name in SECRET_LABELS}
            allowed = channels.CREDENTIAL_FIELDS[channel.provider]
            channels.credentials_update(channel, {k: v for k, v in secrets.items() if k in allowed})
        if commit:
            channel.save()
            self.save_m2m()
            channels.labels_forget()
        return channel
