from django.urls import path

websocket_urlpatterns: list = [
    # /ws/inbox/ arrives with the live inbox.
]
