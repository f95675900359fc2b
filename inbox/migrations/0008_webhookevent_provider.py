from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inbox", "0007_channel")]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="provider",
            field=models.CharField(
                choices=[("wasender", "WaSender"), ("cloudapi", "WhatsApp Cloud API (Meta)")],
                default="wasender",
                max_length=10,
            ),
        ),
    ]
