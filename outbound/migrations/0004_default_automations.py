"""Default automations: the expiry reminders the business already sends, the anniversary,
"SÍ" and "URGENTE" auto-replies, the opt-out settings row, and the templates they use. Left
alone when a name exists (a re-run or an owner who already wrote their own)."""

import datetime

from django.db import migrations

TEMPLATES = [
    (
        "Vence hoy",
        "notification",
        "⏰ Hola {nombre}, tu *{servicio}* vence *hoy* ({fecha_vencimiento}).\n\n"
        "Renueva por ${precio} y sigue disfrutando sin cortes.\n"
        '¿Deseas renovar? Responde "SÍ".',
    ),
    (
        "Recordatorio de pago",
        "notification",
        "Hola {nombre}, tu *{servicio}* venció el {fecha_vencimiento}. 😕\n\n"
        "Para reactivarlo realiza el pago de ${precio} y envíanos el comprobante por aquí.\n"
        "¡Gracias!",
    ),
    (
        "Aniversario",
        "notification",
        "🎉 ¡Feliz aniversario, {nombre}!\n\n"
        "Hoy cumples un año más disfrutando *{servicio}* con nosotros. "
        "¡Gracias por tu confianza!",
    ),
    (
        "Respuesta: interesado",
        "support",
        "¡Genial! 🙌 Ya tomamos nota de tu interés.\n"
        "Un asesor te escribirá en breve para activarlo.",
    ),
    (
        "Respuesta: urgente",
        "support",
        "🚨 Recibimos tu mensaje urgente.\nUn agente te atenderá lo antes posible.",
    ),
    (
        # The same text seed_demo writes into its history.
        "Pago recibido",
        "support",
        "✅ ¡Pago recibido, {nombre}! Tu {servicio} quedó renovado hasta el {fecha_vencimiento}.\n"
        "Gracias por confiar en nosotros 🙌",
    ),
]

# name, kind, days from expiry, template, window, include opted-out
REMINDERS = [
    ("3 días antes del vencimiento", "expiry", -3, "Vencimiento", (9, 20), True),
    ("El día del vencimiento", "expiry", 0, "Vence hoy", (9, 20), True),
    ("Recordatorio de pago (1 día después)", "expiry", 1, "Recordatorio de pago", (9, 20), True),
    ("Aniversario de la suscripción", "anniversary", 0, "Aniversario", (10, 19), False),
]

# name, keywords, match, template, tag, urgent, priority
AUTO_REPLIES = [
    ("Urgente", "URGENTE", "contains", "Respuesta: urgente", "", True, 10),
    (
        "Interesado en una oferta (SÍ)",
        "SÍ, SI, SÍ QUIERO, QUIERO, ME INTERESA",
        "exact",
        "Respuesta: interesado",
        "interesado",
        False,
        20,
    ),
]


def add_defaults(apps, schema_editor):
    template_model = apps.get_model("outbound", "MessageTemplate")
    reminder_model = apps.get_model("outbound", "ReminderRule")
    reply_model = apps.get_model("outbound", "AutoReplyRule")
    settings_model = apps.get_model("outbound", "AutomationSettings")
    for name, category, body in TEMPLATES:
        template_model.objects.get_or_create(name=name, defaults={"category": category, "body": body})
    templates = {t.name: t for t in template_model.objects.all()}
    for name, kind, days, template, (start, end), opted_out in REMINDERS:
        if template in templates:
            reminder_model.objects.get_or_create(
                name=name,
                defaults={
                    "kind": kind,
                    "days_from_expiry": days,
                    "template": templates[template],
                    "window_start": datetime.time(start, 0),
                    "window_end": datetime.time(end, 0),
                    "include_opted_out": opted_out,
                },
            )
    for name, keywords, match, template, tag, urgent, priority in AUTO_REPLIES:
        reply_model.objects.get_or_create(
            name=name,
            defaults={
                "keywords": keywords,
                "match": match,
                "template": templates.get(template),
                "tag": tag,
                "mark_urgent": urgent,
                "priority": priority,
            },
        )
    settings_model.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("outbound", "0003_automations")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
