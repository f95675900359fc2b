from django.contrib import admin
from django.db import models

from inbox.models import (
    Channel,
    Conversation,
    Message,
    Note,
    Resolution,
    SessionState,
    WebhookEvent,
)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "channel",
        "status",
        "assignee",
        "urgent",
        "unread_count",
        "last_message_at",
    ]
    list_filter = ["status", "urgent", "channel", "assignee"]
    search_fields = ["customer__name", "customer__phone", "last_message_preview"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "assignee"]
    date_hierarchy = "last_message_at"
    show_full_result_count = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "conversation",
        "direction",
        "author_kind",
        "kind",
        "status",
        "short_body",
    ]
    list_filter = ["direction", "author_kind", "status", "kind"]
    search_fields = ["body", "wa_id", "conversation__customer__phone"]
    raw_id_fields = ["conversation", "reply_to", "agent"]
    list_select_related = ["conversation__customer"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # a million messages: no exact count per page
    readonly_fields = ["wa_id", "provider_msg_id"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="texto")
    def short_body(self, message):
        return message.body[:60]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Read-mostly: the raw record of what WaSender sent is evidence and is never edited; only
    its processing state may be changed (to mark one for reprocessing)."""

    list_display = ["received_at", "event", "state", "attempts", "processed_at"]
    list_filter = ["state", "event"]
    date_hierarchy = "received_at"
    readonly_fields = ["received_at", "event", "payload", "attempts", "error", "processed_at"]
    fields = ["received_at", "event", "state", "attempts", "error", "processed_at", "payload"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(SessionState)
class SessionStateAdmin(admin.ModelAdmin):
    list_display = ["session", "status", "changed_at"]
    readonly_fields = ["session", "status", "changed_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["created_at", "customer", "author", "body"]
    search_fields = ["body", "customer__name", "customer__phone"]
    raw_id_fields = ["customer", "author"]
    list_select_related = ["customer", "author"]
    date_hierarchy = "created_at"


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    """Read-mostly: channels are edited on /inbox/channels/ (credentials never shown here)."""

    list_display = ["name", "key", "provider", "account", "display_phone", "active"]
    list_filter = ["provider", "active"]
    exclude = ["credentials"]
    filter_horizontal = ["agents"]


@admin.register(Resolution)
class ResolutionAdmin(admin.ModelAdmin):
    """A record of each time a conversation was marked resolved (the analytics read it)."""

    list_display = ["resolved_at", "conversation", "channel", "assignee", "started_at"]
    list_filter = ["channel"]
    search_fields = ["conversation__customer__name", "conversation__customer__phone"]
    readonly_fields = ["conversation", "channel", "assignee", "started_at", "resolved_at"]
    date_hierarchy = "resolved_at"
