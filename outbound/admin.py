from django.contrib import admin

from outbound.models import (
    AutomationSettings,
    AutoReplyRule,
    AwayNotice,
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    InboundReaction,
    MessageTemplate,
    MetaSend,
    MetaTemplate,
    ReminderRule,
    ReminderSent,
)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "archived", "updated_at"]
    list_filter = ["category", "archived"]
    search_fields = ["name", "body"]


@admin.register(ReminderRule)
class ReminderRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "days_from_expiry", "template", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name"]
    list_select_related = ["template"]


class ReadOnlyRecordAdmin(admin.ModelAdmin):
    """Records of what the automations did: evidence that keeps them from acting twice, so
    nobody adds or edits them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReminderSent)
class ReminderSentAdmin(ReadOnlyRecordAdmin):
    list_display = ["created_at", "rule", "subscription", "expiry_date", "outcome", "skip_reason"]
    list_filter = ["outcome", "rule"]
    search_fields = ["subscription__customer__name", "subscription__customer__phone"]
    raw_id_fields = ["subscription", "message"]
    list_select_related = ["rule", "subscription__customer", "subscription__service"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(AutoReplyRule)
class AutoReplyRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "keywords", "match", "template", "priority", "active"]
    list_filter = ["match", "active", "mark_urgent"]
    search_fields = ["name", "keywords"]
    raw_id_fields = ["assign_to"]
    list_select_related = ["template"]


@admin.register(AutomationSettings)
class AutomationSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "away_enabled", "updated_at"]


@admin.register(InboundReaction)
class InboundReactionAdmin(ReadOnlyRecordAdmin):
    list_display = ["created_at", "conversation", "rule", "action"]
    list_filter = ["action", "rule"]
    raw_id_fields = ["message", "conversation"]
    list_select_related = ["conversation__customer", "rule"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(AwayNotice)
class AwayNoticeAdmin(ReadOnlyRecordAdmin):
    list_display = ["conversation", "sent_at"]
    raw_id_fields = ["conversation"]
    list_select_related = ["conversation__customer"]


class CampaignVariantInline(admin.TabularInline):
    model = CampaignVariant
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyRecordAdmin):
    """View only: launch, pause, resume and cancel go through the campaign services (and the
    Campañas pages), which keep the fan-out's invariants; a hand edit here would not."""

    list_display = ["title", "kind", "state", "scheduled_at", "launched_at", "recipients_total"]
    list_filter = ["state", "kind"]
    search_fields = ["title", "body"]
    date_hierarchy = "created_at"
    list_select_related = ["template", "segment"]
    inlines = [CampaignVariantInline]


@admin.register(CampaignVariant)
class CampaignVariantAdmin(ReadOnlyRecordAdmin):
    list_display = ["campaign", "label"]
    search_fields = ["campaign__title", "body"]
    list_select_related = ["campaign"]


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(ReadOnlyRecordAdmin):
    list_display = ["campaign", "customer", "variant", "state", "skip_reason", "queued_at"]
    list_filter = ["state"]
    search_fields = ["campaign__title", "customer__name", "customer__phone"]
    raw_id_fields = ["campaign", "customer", "variant", "message"]
    list_select_related = ["campaign", "customer", "variant"]
    show_full_result_count = False  # one row per customer per campaign: large


@admin.register(MetaTemplate)
class MetaTemplateAdmin(admin.ModelAdmin):
    """Read from Meta (the sync and the template status webhook): looked at, not edited."""

    list_display = ["name", "language", "channel", "status", "category"]
    list_filter = ["status", "channel"]
    search_fields = ["name", "body"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MetaSend)
class MetaSendAdmin(admin.ModelAdmin):
    """What went out as a Meta template for a message, and its marketing-cap retries."""

    list_display = ["message", "name", "language", "attempt", "capped_at"]
    raw_id_fields = ["message", "retry_of"]
    list_select_related = ["message"]

    def has_add_permission(self, request):
        return False
