from django.urls import path

from outbound import (
    automation_views,
    campaign_views,
    renewal_views,
    segment_views,
    template_views,
)

app_name = "outbound"
urlpatterns = [
    path("campaigns/", campaign_views.campaign_list, name="campaign_list"),
    path("campaigns/new/", campaign_views.campaign_new, name="campaign_new"),
    path("campaigns/audience/", campaign_views.campaign_audience_count, name="campaign_audience"),
    path("campaigns/<int:campaign_id>/", campaign_views.campaign_detail, name="campaign_detail"),
    path(
        "campaigns/<int:campaign_id>/progress/",
        campaign_views.campaign_progress,
        name="campaign_progress",
    ),
    path(
        "campaigns/<int:campaign_id>/export.csv",
        campaign_views.campaign_export,
        name="campaign_export",
    ),
    path(
        "campaigns/<int:campaign_id>/duplicate/",
        campaign_views.campaign_duplicate_view,
        name="campaign_duplicate",
    ),
    path(
        "campaigns/<int:campaign_id>/retarget/",
        campaign_views.campaign_retarget_view,
        name="campaign_retarget",
    ),
    path(
        "campaigns/<int:campaign_id>/<str:action>/",
        campaign_views.campaign_action,
        name="campaign_action",
    ),
    path("templates/", template_views.template_list, name="template_list"),
    path("templates/new/", template_views.template_create, name="template_create"),
    path("templates/preview/", template_views.template_preview, name="template_preview"),
    path(
        "templates/meta-sync/", template_views.meta_templates_sync_view, name="meta_templates_sync"
    ),
    path("templates/<int:template_id>/", template_views.template_edit, name="template_edit"),
    path(
        "templates/<int:template_id>/duplicate/",
        template_views.template_duplicate_view,
        name="template_duplicate",
    ),
    path(
        "templates/<int:template_id>/archive/",
        template_views.template_archive,
        name="template_archive",
    ),
    path("segments/", segment_views.segment_list, name="segment_list"),
    path("segments/new/", segment_views.segment_create_view, name="segment_create"),
    path("segments/preview/", segment_views.segment_preview, name="segment_preview"),
    path("segments/<int:segment_id>/", segment_views.segment_edit, name="segment_edit"),
    path(
        "segments/<int:segment_id>/delete/",
        segment_views.segment_delete_view,
        name="segment_delete",
    ),
    path("automations/", automation_views.automation_index, name="automation_index"),
    path(
        "automations/reminders/new/",
        automation_views.automation_reminder_edit,
        name="automation_reminder_create",
    ),
    path(
        "automations/reminders/<int:rule_id>/",
        automation_views.automation_reminder_edit,
        name="automation_reminder_edit",
    ),
    path(
        "automations/replies/new/",
        automation_views.automation_reply_edit,
        name="automation_reply_create",
    ),
    path(
        "automations/replies/<int:rule_id>/",
        automation_views.automation_reply_edit,
        name="automation_reply_edit",
    ),
    path(
        "automations/<str:kind>/<int:rule_id>/toggle/",
        automation_views.automation_toggle,
        name="automation_toggle",
    ),
    path(
        "automations/settings/",
        automation_views.automation_settings_edit,
        name="automation_settings",
    ),
    path(
        "renewals/new/<int:customer_id>/",
        renewal_views.renewal_create,
        name="renewal_create",
    ),
]
