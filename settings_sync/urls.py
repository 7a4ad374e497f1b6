from django.urls import path

from . import conflict_views, drift_views, profile_views, sync_views, transfer_views, views
from .pages import GROUPS

app_name = "settings_sync"

urlpatterns = [
    path("sync/", sync_views.history, name="history"),
    path("sync/runs/<int:pk>/", sync_views.run_detail, name="run"),
    path("sync/runs/<int:pk>/retry/", sync_views.retry_run, name="retry"),
    path(
        "sync/runs/<int:pk>/changes/<int:change_pk>/restore/",
        sync_views.restore_change,
        name="restore",
    ),
    path("sync/partnerships/<int:pk>/resync/", sync_views.resync, name="resync"),
    path("sync/partnerships/<int:pk>/drift/", drift_views.partner_drift, name="drift"),
    path("sync/resync-all/", sync_views.resync_all, name="resync-all"),
    path("sync/batches/<int:pk>/", sync_views.batch, name="batch"),
    path("sync/profiles/", profile_views.profile_list, name="profiles"),
    path("sync/profiles/new/", profile_views.profile_form, name="profile-new"),
    path("sync/profiles/<int:pk>/", profile_views.profile_form, name="profile-edit"),
    path("sync/profiles/<int:pk>/archive/", profile_views.profile_archive, name="profile-archive"),
    path("sync/profiles/<int:pk>/apply/", profile_views.profile_apply, name="profile-apply"),
    path("sync/export/", transfer_views.export_history, name="history-export"),
    path("imports/", transfer_views.import_history, name="imports"),
    path("imports/<int:pk>/", transfer_views.import_detail, name="import"),
    path("imports/<int:pk>/apply/", transfer_views.import_apply, name="import-apply"),
    *[
        path(f"{group}/", views.group_index, {"group": group}, name=group)
        for group in GROUPS
        if group != "organization"
    ],
    path("<slug:group>/<slug:key>/", views.settings_page, name="page"),
    path("<slug:group>/<slug:key>/add/", views.item_form, name="add"),
    path("<slug:group>/<slug:key>/export/", transfer_views.export_items, name="export"),
    path("<slug:group>/<slug:key>/import/", transfer_views.import_upload, name="import-upload"),
    path(
        "<slug:group>/<slug:key>/import/template/",
        transfer_views.import_template,
        name="import-template",
    ),
    path("<slug:group>/<slug:key>/<int:pk>/", views.item_form, name="edit"),
    path("<slug:group>/<slug:key>/<int:pk>/delete/", views.item_archive, name="archive"),
    path("<slug:group>/<slug:key>/<int:pk>/update/", conflict_views.item_update, name="update"),
]
