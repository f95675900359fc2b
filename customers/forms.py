from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, Service, Tag
from customers.selectors import SORTS


class CustomerFilterForm(forms.Form):
    """The list's GET filters. An invalid value is dropped, never an error page."""

    q = forms.CharField(label=_("Buscar"), required=False, max_length=100)
    service = forms.ModelChoiceField(
        label=_("Servicio"),
        queryset=Service.objects.order_by("name"),
        required=False,
        empty_label=_("Todos los servicios"),
    )
    state = forms.ChoiceField(
        label=_("Estado"),
        required=False,
        choices=[
            ("", _("Cualquier estado")),
            ("active", _("Activa")),
            ("expired", _("Vencida")),
            ("none", _("Sin suscripción")),
        ],
    )
    expiring_days = forms.IntegerField(
        label=_("Vence en (días)"), required=False, min_value=0, max_value=366
    )
    city = forms.CharField(label=_("Ciudad"), required=False, max_length=80)
    province = forms.CharField(label=_("Provincia"), required=False, max_length=80)
    tag = forms.ModelChoiceField(
        label=_("Etiqueta"),
        queryset=Tag.objects.order_by("name"),
        required=False,
        empty_label=_("Todas las etiquetas"),
    )
    opted_out = forms.ChoiceField(
        label=_("Publicidad"),
        required=False,
        choices=[("", _("Todos")), ("no", _("Recibe publicidad")), ("yes", _("Dado de baja"))],
    )
    sort = forms.ChoiceField(
        label=_("Orden"),
        required=False,
        choices=[
            ("name", _("Nombre A-Z")),
            ("-name", _("Nombre Z-A")),
            ("-created", _("Más recientes")),
            ("created", _("Más antiguos")),
        ],
    )

    def filters(self) -> dict:
        self.is_valid()
        data = self.cleaned_data
        return {
            "q": data.get("q") or "",
            "service": data["service"].pk if data.get("service") else None,
            "state": data.get("state") or "",
            "expiring_days": data.get("expiring_days"),
            "city": data.get("city") or "",
            "province": data.get("province") or "",
            "tag": data["tag"].pk if data.get("tag") else None,
            "opted_out": data.get("opted_out") or "",
            "sort": data.get("sort") if data.get("sort") in SORTS else "name",
        }


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("Archivo CSV"))


class CustomerEditForm(forms.Form):
    name = forms.CharField(label=_("Nombre"), max_length=120, required=False)
    city = forms.CharField(label=_("Ciudad"), max_length=80, required=False)
    province = forms.CharField(label=_("Provincia"), max_length=80, required=False)
    tags = forms.CharField(
        label=_("Etiquetas"),
        required=False,
        max_length=1000,
        help_text=_("Separadas por comas; las nuevas se crean."),
    )
    notes = forms.CharField(
        label=_("Notas"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    @classmethod
    def for_customer(cls, customer: Customer) -> "CustomerEditForm":
        return cls(
            initial={
                "name": customer.name,
                "city": customer.city,
                "province": customer.province,
                "notes": customer.notes,
                "tags": ", ".join(t.name for t in customer.tags.all()),
            }
        )

    def clean_tags(self) -> list[str]:
        names = [" ".join(t.split()) for t in self.cleaned_data["tags"].split(",")]
        names = [n for n in names if n]
        too_long = [n for n in names if len(n) > 60]
        if too_long:
            raise forms.ValidationError(
                _("La etiqueta «%(tag)s» tiene más de 60 caracteres."), params={"tag": too_long[0]}
            )
        return names
