from django.urls import path

from insights import views

app_name = "insights"
urlpatterns = [
    path("", views.insights_index, name="index"),
    path("export/<slug:kind>.csv", views.export_csv, name="export"),
]
