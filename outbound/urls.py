from django.urls import path

from outbound import views

app_name = "outbound"
urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("templates/", views.template_list, name="template_list"),
]
