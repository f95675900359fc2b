from django.contrib import admin

from outbound.models import MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "archived", "updated_at"]
    list_filter = ["category", "archived"]
    search_fields = ["name", "body"]
