"""Forms of the automations pages (reminder rules, auto-reply rules, opt-out and hours) and of
the renewal form on the customer page."""

from datetime import time
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chatdesk.roles import SUPPORT
from customers.models import Subscription
from outbound.forms import channel_field_setup
from outbound.meta_templates import template_channel_errors
from outbound.models import AutomationSettings, AutoReplyRule, MessageTemplate, ReminderRule
from outbound.renewals import MONTHS_MAX
from outbound.rules import WEEKDAYS, business_hours_parse, keywords_parse
from outbound.services import TEXT_MAX

WEEKDAY_NAMES = [
    gettext_lazy("Lunes"),
    gettext_lazy("Martes"),
    gettext_lazy("Miércoles"),
    gettext_lazy("Jueves"),
    gettext_lazy("Viernes"),
    gettext_lazy("Sábado"),
    gettext_lazy("Domingo"),
]
DAYS_LIMIT = 90


def _templates():
    return MessageTemplate.objects.filter(archived=False).order_by("category", "name")


class ReminderRuleForm(forms.ModelForm):
    class Meta:
        model = ReminderRule
        fields = [
            "name",
            "kind",
            "days_from_expiry",
            "template",
            "window_start",
            "window_end",
            "include_opted_out",
            "channel",
            "active",
        ]
        widgets = {
            "window_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "window_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        help_texts = {
            "days_from_expiry": gettext_lazy(
                "Negativo: días antes del vencimiento (-3); 0: el mismo día; positivo: días "
                "después (1 = recordatorio de pago). No se usa en aniversarios."
            ),
            "include_opted_out": gettext_lazy(
                "Los recordatorios son avisos de servicio, no publicidad: por omisión también "
                "los reciben quienes pidieron la baja."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = _templates()
        channel_field_setup(self)

    def clean_days_from_expiry(self):
        days = self.cleaned_data["days_from_expiry"]
        if not -DAYS_LIMIT <= days <= DAYS_LIMIT:
            raise forms.ValidationError(
                _("Entre -%(limit)s y %(limit)s días.") % {"limit": DAYS_LIMIT}
            )
        return days

    def clean(self):
        data = super().clean()
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and start >= end:
            self.add_error(
                "window_end", _("La hora final debe ser posterior a la inicial (mismo día).")
            )
        if data.get("kind") == ReminderRule.Kind.ANNIVERSARY:
            data["days_from_expiry"] = 0
        channel, template = data.get("channel"), data.get("template")
        if channel is not None and template is not None:
            # A Cloud API number sends reminders only as an approved Meta template.
            problems = template_channel_errors(template=template, channel=channel.key)
            if problems:
                self.add_error("template", " ".join(problems))
        return data


class AutoReplyRuleForm(forms.ModelForm):
    class Meta:
        model = AutoReplyRule
        fields = [
            "name",
            "keywords",
            "match",
            "template",
            "tag",
            "assign_to",
            "mark_urgent",
            "priority",
            "active",
        ]
        help_texts = {
            "keywords": gettext_lazy(
                "Separadas por comas. Sin importar mayúsculas, tildes, signos ni emojis: "
                "«si» también reconoce «SÍ» y «Sí.»."
            ),
            "priority": gettext_lazy(
                "Se prueban de menor a mayor; responde la primera que coincide."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = _templates()
        self.fields["template"].empty_label = _("(no responder)")
        self.fields["assign_to"].queryset = (
            get_user_model()
            .objects.filter(is_active=True, groups__name__in=SUPPORT)
            .distinct()
            .order_by("first_name", "username")
        )
        self.fields["assign_to"].empty_label = _("(no asignar)")

    def clean_keywords(self):
        raw = self.cleaned_data["keywords"]
        if not keywords_parse(raw):
            raise forms.ValidationError(_("Escribe al menos una palabra clave."))
        return raw

    def clean(self):
        data = super().clean()
        acts = data.get("template") or data.get("tag") or data.get("assign_to")
        if not acts and not data.get("mark_urgent"):
            raise forms.ValidationError(
                _("La regla debe hacer algo: responder, etiquetar, asignar o marcar urgente.")
            )
        return data


class AutomationSettingsForm(forms.ModelForm):
    """The settings row, plus two time fields and an "open" box per weekday."""

    class Meta:
        model = AutomationSettings
        fields = [
            "opt_out_keywords",
            "opt_out_reply",
            "opt_in_keywords",
            "opt_in_reply",
            "away_enabled",
            "away_message",
            "away_every_hours",
        ]
        widgets = {
            "opt_out_reply": forms.Textarea(attrs={"rows": 2}),
            "opt_in_reply": forms.Textarea(attrs={"rows": 2}),
            "away_message": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hours = business_hours_parse(self.instance.business_hours)
        for day in WEEKDAYS:
            opens, closes = hours.get(day, (time(9, 0), time(19, 0)))
            self.fields[f"open_{day}"] = forms.BooleanField(
                label=WEEKDAY_NAMES[day], required=False, initial=day in hours
            )
            self.fields[f"from_{day}"] = forms.TimeField(
                required=False, initial=opens, widget=forms.TimeInput({"type": "time"}, "%H:%M")
            )
            self.fields[f"to_{day}"] = forms.TimeField(
                required=False, initial=closes, widget=forms.TimeInput({"type": "time"}, "%H:%M")
            )

    def week(self):
        """(name, open field, from field, to field) per weekday, for the template."""
        return [
            (WEEKDAY_NAMES[d], self[f"open_{d}"], self[f"from_{d}"], self[f"to_{d}"])
            for d in WEEKDAYS
        ]

    def _text(self, name):
        text = self.cleaned_data[name].strip()
        if not text:
            raise forms.ValidationError(_("Escribe el mensaje."))
        if len(text) > TEXT_MAX:
            raise forms.ValidationError(_("Demasiado largo."))
        return text

    def clean_opt_out_reply(self):
        return self._text("opt_out_reply")

    def clean_opt_in_reply(self):
        return self._text("opt_in_reply")

    def clean_away_message(self):
        return self._text("away_message")

    def clean_opt_out_keywords(self):
        raw = self.cleaned_data["opt_out_keywords"]
        if not keywords_parse(raw):
            raise forms.ValidationError(_("Escribe al menos una palabra para darse de baja."))
        return raw

    def clean_away_every_hours(self):
        hours = self.cleaned_data["away_every_hours"]
        if not 1 <= hours <= 168:
            raise forms.ValidationError(_("Entre 1 y 168 horas."))
        return hours

    def clean(self):
        data = super().clean()
        shared = set(keywords_parse(data.get("opt_out_keywords", ""))) & set(
            keywords_parse(data.get("opt_in_keywords", ""))
        )
        if shared:
            self.add_error(
                "opt_in_keywords",
                _("Estas palabras no pueden servir para la baja y el alta a la vez: %(words)s")
                % {"words": ", ".join(sorted(shared))},
            )
        hours = {}
        for day in WEEKDAYS:
            if not data.get(f"open_{day}"):
                continue
            opens, closes = data.get(f"from_{day}"), data.get(f"to_{day}")
            if not opens or not closes or opens >= closes:
                self.add_error(
                    f"to_{day}", _("Indica una hora de apertura anterior a la de cierre.")
                )
                continue
            hours[str(day)] = [opens.strftime("%H:%M"), closes.strftime("%H:%M")]
        self.instance.business_hours = hours
        return data


class RenewalForm(forms.Form):
    # Its queryset is the customer's subscriptions (__init__).
    subscription: "forms.ModelChoiceField[Subscription]" = forms.ModelChoiceField(
        queryset=None, label=gettext_lazy("Servicio")
    )
    how = forms.ChoiceField(
        label=gettext_lazy("Renovar"),
        choices=[("months", gettext_lazy("por meses")), ("date", gettext_lazy("hasta una fecha"))],
        initial="months",
        widget=forms.RadioSelect,
    )
    months = forms.IntegerField(
        label=gettext_lazy("Meses"), min_value=1, max_value=MONTHS_MAX, initial=1, required=False
    )
    new_expiry = forms.DateField(
        label=gettext_lazy("Nuevo vencimiento"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Monto pagado (USD)"),
        min_value=Decimal(0),
        max_digits=8,
        decimal_places=2,
    )
    send_confirmation = forms.BooleanField(
        label=gettext_lazy("Enviar la confirmación de pago por WhatsApp"),
        required=False,
        initial=True,
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        subscriptions = customer.subscriptions.select_related("service").order_by("service__name")
        self.fields["subscription"].queryset = subscriptions
        self.fields["subscription"].label_from_instance = lambda s: (
            _("%(service)s (vence %(date)s)")
            % {"service": s.service.name, "date": s.expires_on.strftime("%d/%m/%Y")}
        )
        first = subscriptions.first()
        if first is not None and not self.is_bound:
            self.initial.setdefault("subscription", first.pk)
            self.initial.setdefault("amount", first.price)

    def clean(self):
        data = super().clean()
        if data.get("how") == "date":
            data["months"] = None
            if not data.get("new_expiry"):
                self.add_error("new_expiry", _("Indica la nueva fecha de vencimiento."))
        else:
            data["new_expiry"] = None
            if not data.get("months"):
                self.add_error("months", _("Indica los meses."))
        return data
