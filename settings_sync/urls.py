from django.urls import path

from . import views
from .pages import GROUPS

app_name = "settings_sync"

urlpatterns = [
    *[
        path(f"{group}/", views.group_index, {"group": group}, name=group)
        for group in GROUPS
        if group != "organization"
    ],
    path("<slug:group>/<slug:key>/", views.settings_page, name="page"),
    path("<slug:group>/<slug:key>/add/", views.item_form, name="add"),
    path("<slug:group>/<slug:key>/<int:pk>/", views.item_form, name="edit"),
    path("<slug:group>/<slug:key>/<int:pk>/delete/", views.item_archive, name="archive"),
]
