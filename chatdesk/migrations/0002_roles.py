"""The three roles as groups, with the model permissions Django admin needs for each."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "admin": "__all__",
    "agent": [
        "customers.view_customer", "customers.change_customer", "customers.view_subscription",
        "customers.view_renewal", "customers.view_service", "customers.view_tag",
        "inbox.view_conversation", "inbox.change_conversation", "inbox.view_message",
        "inbox.add_message", "outbound.view_messagetemplate",
    ],
    "marketer": [
        "customers.view_customer", "customers.add_customer", "customers.change_customer",
        "customers.view_subscription", "customers.add_subscription", "customers.change_subscription",
        "customers.view_renewal", "customers.add_renewal", "customers.view_service",
        "customers.view_tag", "customers.add_tag", "customers.change_tag",
        "inbox.view_conversation", "inbox.view_message",
        "outbound.view_messagetemplate", "outbound.add_messagetemplate",
        "outbound.change_messagetemplate",
    ],
}
APPS = ["chatdesk", "customers", "inbox", "outbound", "auth"]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); make them now.
    for label in APPS:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        if codenames == "__all__":
            perms = Permission.objects.filter(content_type__app_label__in=APPS)
        else:
            perms = [
                Permission.objects.get(content_type__app_label=app, codename=codename)
                for app, codename in (name.split(".") for name in codenames)
            ]
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("chatdesk", "0001_initial"),
        ("customers", "0001_initial"),
        ("inbox", "0001_initial"),
        ("outbound", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
