"""The owner's proposal's templates, shipped as examples (left alone when a name exists)."""

from django.db import migrations

EXAMPLES = [
    (
        "Promoción",
        "marketing",
        "🎬 ¡Hola {nombre}!\n\n"
        "🔥 *OFERTA ESPECIAL* para ti:\n"
        "{servicio} con {descuento}% de descuento\n\n"
        "💰 Solo ${precio_descuento} (antes ${precio_normal})\n"
        "⏰ Válido hasta {fecha_limite}\n\n"
        '¿Te interesa? Responde "SÍ" para activar.',
    ),
    (
        "Nuevo servicio",
        "marketing",
        "📺 ¡Novedad {nombre}!\n\n"
        "Ahora tenemos *{nuevo_servicio}* disponible:\n"
        "✨ {caracteristicas}\n"
        "💰 Precio especial: ${precio}\n\n"
        "¿Quieres agregarlo a tu plan?",
    ),
    (
        "Soporte",
        "support",
        "👋 Hola {nombre}\n\n"
        "Recibimos tu consulta sobre {tema}.\n"
        "Un agente te contactará en las próximas 2 horas.\n\n"
        '¿Es urgente? Responde "URGENTE"',
    ),
    (
        "Vencimiento",
        "notification",
        "⏰ Hola {nombre}, tu *{servicio}* vence el {fecha_vencimiento} "
        "(faltan {dias_restantes} días).\n\n"
        "Renueva por ${precio} y sigue disfrutando sin cortes.\n"
        '¿Deseas renovar? Responde "SÍ".',
    ),
]


def add_examples(apps, schema_editor):
    template = apps.get_model("outbound", "MessageTemplate")
    for name, category, body in EXAMPLES:
        template.objects.get_or_create(name=name, defaults={"category": category, "body": body})


class Migration(migrations.Migration):
    dependencies = [("outbound", "0001_initial")]

    operations = [migrations.RunPython(add_examples, migrations.RunPython.noop)]
