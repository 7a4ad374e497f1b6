"""Django admin for every settings category, built from the registry."""

from __future__ import annotations

from django.contrib import admin

from organizations.admin import ArchivableAdmin, ArchivedListFilter

from . import registry
from .items import DIVERGED, OWN, SYNCED
from .pages import LOCAL_PAGES


class SyncStateFilter(admin.SimpleListFilter):
    title = "sync state"
    parameter_name = "sync_state"

    def lookups(self, request, model_admin):
        return [(OWN, "Own"), (SYNCED, "Synced"), (DIVERGED, "Diverged (edited locally)")]

    def queryset(self, request, queryset):
        if self.value() in (OWN, SYNCED, DIVERGED):
            return queryset.with_sync_state().filter(sync_state_value=self.value())
        return queryset


class SyncedItemAdmin(ArchivableAdmin):
    list_filter = [SyncStateFilter, ArchivedListFilter, "organization"]
    list_select_related = ["organization", "synced_partnership__upstream"]
    autocomplete_fields = ["organization"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_sync_state()

    @admin.display(description="sync state", ordering="sync_state_value")
    def sync_state(self, obj) -> str:
        return obj.sync_state_value

    @admin.display(description="copied from")
    def source(self, obj) -> str:
        return str(obj.synced_partnership.upstream) if obj.synced_partnership_id else "—"

    def get_readonly_fields(self, request, obj=None):
        baselines = [f.name for f in self.model._meta.fields if f.name.startswith("baseline_")]
        return [
            "synced_partnership",
            "synced_from",
            "synced_at",
            "archived_by_sync",
            "archived_at",
            "archived_by",
            "archive_reason",
            "updated_at",
            *baselines,
        ]


class SingletonAdmin(admin.ModelAdmin):
    list_filter = ["organization"]
    search_fields = ["organization__name"]
    list_select_related = ["organization", "synced_partnership__upstream"]
    readonly_fields = ["organization", "synced_partnership", "synced_at", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False  # one row per organization, created with it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for category in registry.all():
    if category.kind == registry.COLLECTION:
        admin.site.register(
            category.model,
            type(
                f"{category.model.__name__}Admin",
                (SyncedItemAdmin,),
                {
                    "list_display": [
                        "__str__",
                        *category.columns[1:],
                        "organization",
                        "sync_state",
                        "source",
                        "archived",
                    ],
                    "search_fields": [*category.search_fields, "organization__name"],
                },
            ),
        )
    elif category.kind == registry.SINGLETON:
        admin.site.register(
            category.model,
            type(
                f"{category.model.__name__}Admin",
                (SingletonAdmin,),
                {"list_display": ["organization", *category.synced_fields, "synced_at"]},
            ),
        )

for page in LOCAL_PAGES:
    admin.site.register(
        page.model,
        type(
            f"{page.model.__name__}Admin",
            (admin.ModelAdmin,),
            {
                "list_display": ["__str__", *page.columns[1:], "organization"],
                "list_filter": ["organization"],
                "search_fields": [*page.search_fields, "organization__name"],
                "autocomplete_fields": ["organization"],
                "list_select_related": ["organization"],
            },
        ),
    )
