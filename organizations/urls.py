from django.urls import path

from . import views

app_name = "organizations"

urlpatterns = [
    path("", views.settings_index, name="settings"),
    path("organization/", views.organization_tab, name="organization"),
    path("organization/licenses/add/", views.license_form, name="license-add"),
    path("organization/licenses/<int:pk>/", views.license_form, name="license-edit"),
    path("organization/licenses/<int:pk>/delete/", views.license_archive, name="license-archive"),
]
