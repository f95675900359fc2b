"""Channels: every conversation moves to the WhatsApp number it was on (its WaSender session
name, "default" on every install so far), which becomes a WaSender channel configured from
the environment. Nothing changes for a one-number install."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F, Q
from django.utils import timezone


def channels_from_sessions(apps, schema_editor):
    Channel = apps.get_model("inbox", "Channel")
    Conversation = apps.get_model("inbox", "Conversation")
    keys = set(Conversation.objects.values_list("session", flat=True).distinct()) | {"default"}
    for key in sorted(keys):
        Channel.objects.get_or_create(
            key=key,
            defaults={
                "name": "WhatsApp" if key == "default" else key,
                "provider": "wasender",
                "from_env": key == "default",
            },
        )
    Conversation.objects.update(channel_id=F("session"))


def sessions_from_channels(apps, schema_editor):
    Conversation = apps.get_model("inbox", "Conversation")
    Conversation.objects.update(session=F("channel_id"))


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0006_message_unconfirmed_marketing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Channel",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.SlugField(max_length=64, unique=True, verbose_name="clave")),
                ("name", models.CharField(max_length=60, verbose_name="nombre")),
                ("colour", models.CharField(choices=[("green", "Verde"), ("blue", "Azul"), ("purple", "Morado"), ("orange", "Naranja"), ("red", "Rojo"), ("teal", "Turquesa"), ("grey", "Gris")], default="green", max_length=7, verbose_name="color")),
                (
                    "provider",
                    models.CharField(
                        choices=[
                            ("wasender", "WaSender"),
                            ("cloudapi", "WhatsApp Cloud API (Meta)"),
                        ],
                        default="wasender",
                        max_length=10,
                        verbose_name="proveedor",
                    ),
                ),
                (
                    "account",
                    models.CharField(
                        blank=True, max_length=64, verbose_name="identificador del número"
                    ),
                ),
                (
                    "waba_id",
                    models.CharField(
                        blank=True, max_length=64, verbose_name="cuenta de WhatsApp Business (WABA)"
                    ),
                ),
                (
                    "display_phone",
                    models.CharField(blank=True, max_length=32, verbose_name="número"),
                ),
                ("credentials", models.TextField(blank=True, editable=False)),
                (
                    "from_env",
                    models.BooleanField(default=False, verbose_name="configurado por el entorno"),
                ),
                (
                    "sends_per_second",
                    models.PositiveIntegerField(
                        blank=True, null=True, verbose_name="envíos por segundo"
                    ),
                ),
                (
                    "daily_customer_limit",
                    models.PositiveIntegerField(
                        blank=True, null=True, verbose_name="límite de clientes en 24 h"
                    ),
                ),
                ("active", models.BooleanField(default=True, verbose_name="activo")),
                ("created_at", models.DateTimeField(default=timezone.now)),
                (
                    "agents",
                    models.ManyToManyField(
                        blank=True,
                        related_name="channels",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="agentes",
                    ),
                ),
            ],
            options={
                "verbose_name": "canal",
                "verbose_name_plural": "canales",
                "ordering": ["created_at", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=~Q(account=""),
                        fields=("provider", "account"),
                        name="one_channel_per_number",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="conversation",
            name="channel",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="conversations",
                to="inbox.channel",
                to_field="key",
                db_constraint=False,
                verbose_name="canal",
            ),
        ),
        migrations.RunPython(channels_from_sessions, sessions_from_channels),
        migrations.AlterField(
            model_name="conversation",
            name="channel",
            field=models.ForeignKey(
                default="default",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="conversations",
                to="inbox.channel",
                to_field="key",
                db_constraint=False,
                verbose_name="canal",
            ),
        ),
        migrations.RemoveConstraint(model_name="conversation", name="one_conversation_per_number"),
        migrations.RemoveField(model_name="conversation", name="session"),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.UniqueConstraint(
                fields=("customer", "channel"), name="one_conversation_per_channel"
            ),
        ),
    ]
