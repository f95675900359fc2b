from django import forms
from django.utils.translation import gettext_lazy as _

from chatdesk.forms import IdsField
from customers.models import Customer, Segment, Service, Tag
from inbox.models import DEFAULT_CHANNEL, Channel
from outbound.meta_templates import meta_link_errors
from outbound.models import MessageTemplate
from outbound.segments import SegmentFilterError, segment_filters_clean
from outbound.templating import CAMPAIGN_VARIABLES, template_validate


class MetaParamsField(forms.CharField):
    """chatdesk's variables for Meta's {{1}}, {{2}}... in order: "nombre, servicio" (braces
    optional)."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part.strip().strip("{}").strip() for part in text.split(",") if part.strip()]


def channel_choices() -> list[tuple[str, str]]:
    """The active channels a campaign or reminder may go out from; [] on a one-channel install
    (the form then shows no choice and uses the default channel)."""
    rows = list(Channel.objects.filter(active=True).values_list("key", "name"))
    return rows if len(rows) > 1 else []


def channel_field_setup(form: forms.BaseForm, *, name: str = "channel") -> None:
    """Offer the channels when there are several, else drop the field (one-channel installs
    look as before)."""
    choices = channel_choices()
    if not choices:
        del form.fields[name]
        return
    field = form.fields[name]
    if isinstance(field, forms.ModelChoiceField):
        field.queryset = Channel.objects.filter(active=True)
        field.empty_label = None
    elif isinstance(field, forms.ChoiceField):
        field.choices = choices
    if not form.is_bound and not form.initial.get(name):
        form.initial[name] = DEFAULT_CHANNEL if DEFAULT_CHANNEL in dict(choices) else choices[0][0]


class TemplateForm(forms.ModelForm):
    meta_params = MetaParamsField(
        label=_("Variables de Meta, en orden"),
        required=False,
        max_length=500,
        help_text=_("Para {{1}}, {{2}}... de la plantilla de Meta, p. ej.: nombre, servicio"),
    )

    class Meta:
        model = MessageTemplate
        fields = ["name", "category", "body", "meta_name", "meta_language", "meta_header_url"]
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}

    field_order = ["name", "category", "body", "meta_name", "meta_language", "meta_params"]

    def clean_body(self):
        body = self.cleaned_data["body"]
        errors = template_validate(body)
        if errors:
            raise forms.ValidationError(errors)
        return body

    def clean(self):
        data = super().clean()
        data["meta_name"] = (data.get("meta_name") or "").strip()
        data["meta_language"] = (data.get("meta_language") or "").strip() or "es"
        errors = meta_link_errors(
            name=data["meta_name"],
            language=data["meta_language"],
            params=data.get("meta_params") or [],
            header_url=data.get("meta_header_url") or "",
        )
        for field, message in errors.items():
            self.add_error(field, message)
        return data

    def save(self, commit=True):
        self.instance.meta_params = self.cleaned_data.get("meta_params") or []
        return super().save(commit)


class TemplateFilterForm(forms.Form):
    """The list's GET filters; a bad value is ignored, never an error page."""

    q = forms.CharField(required=False, max_length=100)
    category = forms.ChoiceField(
        required=False, choices=[("", _("Todas las categorías")), *MessageTemplate.Category.choices]
    )
    archived = forms.BooleanField(required=False)

    def values(self) -> dict:
        self.is_valid()
        return {
            "q": self.cleaned_data.get("q") or "",
            "category": self.cleaned_data.get("category") or "",
            "archived": bool(self.cleaned_data.get("archived")),
        }


class PreviewForm(forms.Form):
    """What the live preview renders: the body, a customer search, sample campaign values."""

    body = forms.CharField(required=False, strip=False)
    customer_q = forms.CharField(required=False, max_length=100)
    nuevo_servicio = forms.CharField(required=False, max_length=120)
    caracteristicas = forms.CharField(required=False, max_length=300)
    tema = forms.CharField(required=False, max_length=120)
    descuento = forms.CharField(required=False, max_length=10)

    def extra(self) -> dict:
        return {name: self.cleaned_data.get(name, "") for name in CAMPAIGN_VARIABLES}


def _place_choices(field: str) -> list[tuple[str, str]]:
    names = (
        Customer.objects.exclude(**{field: ""})
        .order_by(field)
        .values_list(field, flat=True)
        .distinct()
    )
    return [(name, name) for name in names]


class SegmentForm(forms.Form):
    """The builder. Its fields become the JSON filters of outbound.segments, which has the
    last word on what a valid filter is."""

    name = forms.CharField(label=_("Nombre del segmento"), max_length=120, required=False)
    services = IdsField(
        label=_("Servicios"),
        queryset=Service.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    service_mode = forms.ChoiceField(
        label=_("Con esos servicios"),
        choices=[
            ("any", _("alguno de ellos")),
            ("all", _("todos ellos")),
            ("only", _("solo esos, ningún otro")),
        ],
        initial="any",
        required=False,
        widget=forms.RadioSelect,
    )
    state = forms.ChoiceField(
        label=_("Estado"),
        choices=[
            ("", _("Cualquier estado")),
            ("active", _("Activos (con suscripción vigente)")),
            ("expired", _("Inactivos (todas vencidas)")),
            ("new", _("Nuevos")),
        ],
        required=False,
    )
    new_days = forms.IntegerField(
        label=_("Nuevos en los últimos (días)"), min_value=1, max_value=3650, required=False
    )
    expiring_days = forms.IntegerField(
        label=_("Vence dentro de (días)"), min_value=0, max_value=366, required=False
    )
    behaviour = forms.ChoiceField(
        label=_("Comportamiento (últimos 90 días)"),
        choices=[
            ("", _("Cualquiera")),
            ("fast", _("Responde rápido (mediana < 1 h)")),
            ("slow", _("Responde lento (mediana ≥ 1 h)")),
            ("never", _("Nunca responde")),
        ],
        required=False,
    )
    cities = forms.MultipleChoiceField(label=_("Ciudades"), required=False)
    provinces = forms.MultipleChoiceField(label=_("Provincias"), required=False)
    tags = IdsField(
        label=_("Etiquetas (alguna de ellas)"),
        queryset=Tag.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    contact = forms.ChoiceField(
        label=_("Último contacto"),
        choices=[
            ("", _("Cualquiera")),
            ("within", _("Con mensajes en los últimos N días")),
            ("older", _("Sin mensajes en los últimos N días")),
        ],
        required=False,
    )
    contact_days = forms.IntegerField(
        label=_("N días"), min_value=1, max_value=3650, required=False
    )

    def __init__(self, *args, require_name: bool = False, segment: Segment | None = None, **kw):
        super().__init__(*args, **kw)
        self.segment = segment
        self.fields["name"].required = require_name
        # Both are MultipleChoiceFields; django-stubs types form.fields as dict[str, Field].
        self.fields["cities"].choices = _place_choices("city")  # type: ignore[attr-defined]
        self.fields["provinces"].choices = _place_choices("province")  # type: ignore[attr-defined]

    @staticmethod
    def initial_from(filters: dict, *, name: str = "") -> dict:
        return {**filters, "name": name}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if name:
            taken = Segment.objects.filter(name__iexact=name)
            if self.segment is not None:
                taken = taken.exclude(pk=self.segment.pk)
            if taken.exists():
                raise forms.ValidationError(_("Ya existe un segmento con ese nombre."))
        return name

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        raw = {
            "services": [service.pk for service in data.get("services") or []],
            "service_mode": data.get("service_mode") or "any",
            "state": data.get("state"),
            "new_days": data.get("new_days"),
            "expiring_days": data.get("expiring_days"),
            "behaviour": data.get("behaviour"),
            "cities": data.get("cities") or [],
            "provinces": data.get("provinces") or [],
            "tags": [tag.pk for tag in data.get("tags") or []],
            "contact": data.get("contact"),
            "contact_days": data.get("contact_days"),
        }
        try:
            self.filters = segment_filters_clean(raw)
        except SegmentFilterError as error:
            for key, message in error.errors.items():
                self.add_error(key if key in self.fields else None, message)
        return data
