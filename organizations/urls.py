from django.urls import path

from . import views

app_name = "organizations"

urlpatterns = [
    path("", views.settings_index, name="settings"),
    path("organization/", views.organization_tab, name="organization"),
]
