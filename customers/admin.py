from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from customers.models import (
    Customer,
    CustomerImport,
    Renewal,
    Segment,
    Service,
    Subscription,
    Tag,
)


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    autocomplete_fields = ["service"]
    fields = ["service", "price", "started_on", "expires_on"]


class OptedOutFilter(admin.SimpleListFilter):
    title = _("publicidad")
    parameter_name = "opted_out"

    def lookups(self, request, model_admin):
        return [("yes", _("Dado de baja")), ("no", _("Recibe publicidad"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(marketing_opt_out_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(marketing_opt_out_at__isnull=True)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "phone", "city", "province", "marketing_opt_out_at", "created_at"]
    list_filter = [OptedOutFilter, "province", "tags", "created_at"]
    search_fields = ["name", "phone", "city", "whatsapp_lid"]
    autocomplete_fields = ["tags"]
    date_hierarchy = "created_at"
    inlines = [SubscriptionInline]
    list_per_page = 50
    show_full_result_count = False  # an exact count on every page is slow on a big book


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "normal_price", "active"]
    list_filter = ["active"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["customer", "service", "price", "started_on", "expires_on"]
    list_filter = ["service", "expires_on"]
    search_fields = ["customer__name", "customer__phone"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "service"]
    date_hierarchy = "expires_on"


@admin.register(Renewal)
class RenewalAdmin(admin.ModelAdmin):
    list_display = ["subscription", "renewed_at", "previous_expiry", "new_expiry", "amount"]
    list_filter = ["subscription__service", "renewed_at"]
    search_fields = ["subscription__customer__name", "subscription__customer__phone"]
    raw_id_fields = ["subscription"]
    list_select_related = ["subscription__customer", "subscription__service"]
    date_hierarchy = "renewed_at"


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at", "updated_at"]
    search_fields = ["name"]
    raw_id_fields = ["created_by"]
    list_select_related = ["created_by"]


@admin.register(CustomerImport)
class CustomerImportAdmin(admin.ModelAdmin):
    list_display = ["filename", "created_at", "created_by", "created", "updated", "rejected"]
    list_filter = ["created_at"]
    readonly_fields = [
        "filename",
        "created_by",
        "created_at",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "rejected_rows",
    ]

    def has_add_permission(self, request):
        return False
