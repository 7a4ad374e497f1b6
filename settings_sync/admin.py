"""Django admin for every settings category, built from the registry."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from organizations.admin import ArchivableAdmin, ArchivedListFilter

from . import exports, registry, services
from .items import DIVERGED, OWN, SYNCED
from .models import SyncChange, SyncRun
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
    actions = [*ArchivableAdmin.actions, "export_csv"]
    category: registry.Category

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return exports.export_items(
            category=self.category, items=queryset, file_name=f"{self.category.key}-selected"
        )

    @admin.display(description="import")
    def import_link(self, obj) -> str:
        if obj is None or obj.organization_id is None:
            return "—"
        return format_html(
            '<a href="{}">Import into {}</a>',
            reverse(
                "settings_sync:import-upload",
                kwargs={
                    "org": obj.organization.slug,
                    "group": self.category.group,
                    "key": self.category.key,
                },
            ),
            obj.organization,
        )

    def get_queryset(self, request):
        return super().get_queryset(request).with_sync_state()

    @admin.display(description="sync state", ordering="sync_state_value")
    def sync_state(self, obj) -> str:
        return obj.sync_state_value

    @admin.display(description="copied from")
    def source(self, obj) -> str:
        return str(obj.synced_partnership.upstream) if obj.synced_partnership_id else "—"

    def get_readonly_fields(self, request, obj=None):
        return [*self.model.bookkeeping_fields(), "import_link"]


class SingletonAdmin(admin.ModelAdmin):
    list_filter = ["organization"]
    search_fields = ["organization__name"]
    list_select_related = ["organization", "synced_partnership__upstream"]

    def get_readonly_fields(self, request, obj=None):
        return ["organization", *self.model.bookkeeping_fields()]

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
                    "category": category,
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


# Sync history (read-only) -----------------------------------------------------------------


class SyncChangeInline(admin.TabularInline):
    model = SyncChange
    extra = 0
    fields = ["category", "action", "label", "before", "after", "note"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "partnership",
        "event",
        "mode",
        "status",
        "trigger",
        "started_by",
        "created_at",
        "duration",
        "total_changes",
    ]
    list_filter = ["status", "event", "mode", "created_at"]
    search_fields = ["partnership__upstream__name", "partnership__downstream__name", "trigger"]
    list_select_related = ["partnership__upstream", "partnership__downstream", "started_by"]
    date_hierarchy = "created_at"
    inlines = [SyncChangeInline]
    actions = ["retry_failed"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["counts_table"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="counts")
    def counts_table(self, obj) -> str:
        return format_html_join(
            "",
            "<div><strong>{}</strong>: {}</div>",
            (
                (key, ", ".join(f"{count} {action}" for action, count in counts.items()))
                for key, counts in obj.counts.items()
            ),
        )

    @admin.action(description="Retry selected failed runs", permissions=["change"])
    def retry_failed(self, request, queryset):
        failed = list(queryset.filter(status=SyncRun.Status.FAILED).select_related("partnership"))
        with transaction.atomic():
            for sync_run in failed:
                services.retry_run(sync_run, by=request.user)
        skipped = queryset.count() - len(failed)
        self.message_user(
            request,
            f"Queued a retry of {len(failed)} failed run(s)"
            + (f"; {skipped} run(s) had not failed and were left as they are." if skipped else "."),
            messages.INFO,
        )


@admin.register(SyncChange)
class SyncChangeAdmin(admin.ModelAdmin):
    list_display = ["run", "category", "action", "label", "note"]
    list_filter = ["action", "category"]
    search_fields = ["label", "note", "run__partnership__downstream__name"]
    list_select_related = ["run__partnership__upstream", "run__partnership__downstream"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# Preview sync and Resync on the partnerships admin.
from .partnership_admin import install  # noqa: E402

install()
