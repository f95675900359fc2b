from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import set_language

from chatdesk import views
from chatdesk.api import api_urls
from inbox import meta_webhooks
from inbox import webhooks as inbox_webhooks
from insights import views as insights_views

urlpatterns = [
    path("", insights_views.home, name="home"),
    path("insights/", include("insights.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("ops/", views.ops, name="ops"),
    path("api/v1/", api_urls()),
    path("account/tokens/", views.token_list, name="token_list"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("admin/", admin.site.urls),
    # The history is the inbox's page (inbox:customer_history); its first address stays valid.
    path(
        "customers/<int:customer_id>/history/",
        RedirectView.as_view(
            pattern_name="inbox:customer_history", permanent=True, query_string=True
        ),
        name="customer_history_moved",
    ),
    path("customers/", include("customers.urls")),
    path("inbox/", include("inbox.urls")),
    path("webhooks/wasender/", inbox_webhooks.wasender_webhook, name="wasender_webhook"),
    path("webhooks/meta/", meta_webhooks.meta_webhook, name="meta_webhook"),
    path("", include("outbound.urls")),
]
