"""Meta's error codes, once: what each means for a send (retry? when? for whom?) and the Spanish
sentence a person reads. The client uses it for errors in an HTTP answer, the payload parser for
the errors a `failed` status webhook carries (Meta reports most delivery failures that way).

Codes from Meta's Cloud API error-code reference and the Graph API's error handling guide.
"""

from dataclasses import dataclass

from django.utils.translation import gettext as _

RATE_LIMIT = "130429"  # the number's throughput (80/s by default)
PAIR_RATE = "131056"  # too many messages to the same user in a short time
MARKETING_CAP = "131049"  # Meta held a marketing message "for healthy ecosystem engagement"
WINDOW_CLOSED = "131047"  # more than 24 h since the customer last wrote: a template is needed
UNDELIVERABLE = "131026"
SPAM_RATE = "131048"
TOKEN_EXPIRED = "190"  # noqa: S105 (an error code, not a secret)
INVALID_PARAMETER = "100"
POLICY_BLOCK = "368"
TEMPLATE_CODES = range(132000, 132016)

# Seconds to wait before trying again; Meta gives no Retry-After for these.
RETRY_AFTER = {
    RATE_LIMIT: 2.0,
    PAIR_RATE: 6.0,
    MARKETING_CAP: 24 * 3600.0,  # the next day; the pipeline grows it and gives up after N days
    SPAM_RATE: 3600.0,
    "4": 60.0,  # the app's call rate
    "80007": 60.0,  # the WABA's call rate
    "131016": 30.0,  # service temporarily unavailable
}
PER_RECIPIENT = {PAIR_RATE, MARKETING_CAP}


@dataclass(frozen=True)
class Meaning:
    permanent: bool
    reason: str
    retry_after: float | None = None
    per_recipient: bool = False


def _reasons() -> dict[str, str]:
    """Built per call: gettext must run in the active language, not at import."""
    return {
        RATE_LIMIT: _("Meta limitó los envíos de este número; se reintentará."),
        PAIR_RATE: _("Demasiados mensajes seguidos a este cliente; se reintentará en segundos."),
        MARKETING_CAP: _(
            "Limitado por Meta: no entregó el mensaje de marketing para cuidar la experiencia "
            "del cliente; se reintentará más tarde."
        ),
        WINDOW_CLOSED: _(
            "Pasaron más de 24 horas desde el último mensaje del cliente: solo se puede "
            "enviar una plantilla aprobada."
        ),
        UNDELIVERABLE: _(
            "WhatsApp no pudo entregar el mensaje (el número no tiene WhatsApp o no aceptó "
            "las condiciones actuales)."
        ),
        SPAM_RATE: _("Meta restringió los envíos de este número por posible spam."),
        "131051": _("WhatsApp no admite este tipo de mensaje."),
        "131052": _("WhatsApp no pudo descargar el archivo del cliente."),
        "131053": _("Meta no pudo subir el archivo del mensaje."),
        "131021": _("No se puede enviar un mensaje al mismo número que lo envía."),
        "131031": _("Meta bloqueó la cuenta de WhatsApp Business."),
        "131042": _("Hay un problema de pago en la cuenta de WhatsApp Business."),
        "131045": _("El número no está registrado correctamente en la API de WhatsApp."),
        "131050": _("El cliente pidió no recibir mensajes de marketing."),
        "133010": _("El número de WhatsApp Business no está registrado."),
        "131016": _("El servicio de Meta no está disponible por ahora; se reintentará."),
        "131000": _("Meta tuvo un error inesperado."),
        "132000": _("La cantidad de variables no coincide con la plantilla."),
        "132001": _("La plantilla no existe en ese idioma o no está aprobada."),
        "132005": _("El texto de la plantilla con sus variables es demasiado largo."),
        "132007": _("La plantilla infringe las políticas de formato de Meta."),
        "132012": _("Las variables no tienen el formato que la plantilla espera."),
        "132015": _("La plantilla está pausada por su baja calidad."),
        "132016": _("La plantilla fue desactivada por su baja calidad."),
        INVALID_PARAMETER: _("Meta rechazó un dato del mensaje (parámetro no válido)."),
        TOKEN_EXPIRED: _("El token de acceso de Meta venció o no es válido."),
        POLICY_BLOCK: _("Meta bloqueó temporalmente el número por infringir sus políticas."),
        "4": _("La aplicación de Meta superó su límite de llamadas; se reintentará."),
        "80007": _("La cuenta de WhatsApp Business superó su límite de llamadas; se reintentará."),
        "10": _("La aplicación de Meta no tiene permiso para esta acción."),
        "200": _("La aplicación de Meta no tiene permiso para esta acción."),
    }


def meaning(code: str, detail: str = "") -> Meaning:
    """What an error code means for a send; unknown codes are permanent, with Meta's words."""
    reasons = _reasons()
    retry_after = RETRY_AFTER.get(code)
    if code in reasons:
        reason = reasons[code]
    elif code.isdigit() and int(code) in TEMPLATE_CODES:
        reason = _("Meta rechazó la plantilla (error %(code)s).") % {"code": code}
    else:
        detail = detail.strip()[:200]
        reason = (
            _("Meta rechazó el mensaje (error %(code)s): %(detail)s")
            % {"code": code or "?", "detail": detail}
            if detail
            else _("Meta rechazó el mensaje (error %(code)s).") % {"code": code or "?"}
        )
    return Meaning(
        permanent=retry_after is None,
        reason=reason,
        retry_after=retry_after,
        per_recipient=code in PER_RECIPIENT,
    )
