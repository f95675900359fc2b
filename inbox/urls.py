from django.urls import path

from inbox import channel_views, views

app_name = "inbox"
urlpatterns = [
    path("", views.inbox_index, name="index"),
    path("list/", views.conversation_list, name="list"),
    path("c/<int:conversation_id>/", views.inbox_index, name="conversation"),
    path("c/<int:conversation_id>/messages/", views.thread_messages, name="messages"),
    path("c/<int:conversation_id>/reply/", views.message_reply, name="reply"),
    path("c/<int:conversation_id>/template/", views.template_fill, name="template_fill"),
    path("c/<int:conversation_id>/assign/", views.conversation_assign, name="assign"),
    path("c/<int:conversation_id>/resolve/", views.conversation_resolve, name="resolve"),
    path("c/<int:conversation_id>/reopen/", views.conversation_reopen, name="reopen"),
    path("c/<int:conversation_id>/urgent/", views.conversation_urgent, name="urgent"),
    path("c/<int:conversation_id>/notes/", views.note_add, name="note_add"),
    path("m/<int:message_id>/retry/", views.message_retry, name="retry"),
    path("m/<int:message_id>/cancel/", views.message_cancel, name="cancel"),
    path("m/<int:message_id>/status/", views.message_status_check, name="status_check"),
    path("m/<int:message_id>/media/", views.message_media, name="media"),
    path("channels/", channel_views.channel_list, name="channels"),
    path("channels/new/", channel_views.channel_edit, name="channel_new"),
    path("channels/<slug:key>/", channel_views.channel_edit, name="channel_edit"),
    path("customers/<int:customer_id>/history/", views.customer_history, name="customer_history"),
]
