from django.contrib import admin

from chatdesk.models import ApiToken, DemoClock


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Only the prefix is ever shown: the digest identifies a secret and stays out of sight.
    Tokens are issued from the app (ApiToken.issue shows the secret once), not typed here."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]
    fields = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False


@admin.register(DemoClock)
class DemoClockAdmin(admin.ModelAdmin):
    """Read-only: seed_demo writes it; deleting it makes `seed_demo --if-empty` leave the data's
    dates alone from then on."""

    list_display = ["anchor"]
    readonly_fields = ["anchor"]

    def has_add_permission(self, request):
        return False
