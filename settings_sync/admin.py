"""Django admin for every settings category, built from the registry."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from organizations import wording
from organizations.admin import ArchivableAdmin, ArchivedListFilter

from . import exports, history_values, locks, provenance, registry, services
from .items import DIVERGED, OWN, SYNCED
from .models import SyncChange, SyncRun
from .pages import LOCAL_PAGES
from .templatetags.settings_tags import action_label, category_label, change_values

SYNC_STATE_LABELS = {OWN: "Own", SYNCED: "Synced", DIVERGED: "Diverged (edited locally)"}


class SyncStateFilter(admin.SimpleListFilter):
    title = "sync state"
    parameter_name = "sync_state"

    def lookups(self, request, model_admin):
        return list(SYNC_STATE_LABELS.items())

    def queryset(self, request, queryset):
        if self.value() in (OWN, SYNCED, DIVERGED):
            return queryset.with_sync_state().filter(sync_state_value=self.value())
        return queryset


class SyncedItemAdmin(ArchivableAdmin):
    list_filter = [SyncStateFilter, ArchivedListFilter, "organization"]
    list_select_related = [
        "organization",
        "synced_partnership__upstream",
        "managed_by",
        "synced_origin",
    ]
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
        return SYNC_STATE_LABELS[obj.sync_state_value]

    @admin.display(description="copied from")
    def source(self, obj) -> str:
        if not obj.synced_partnership_id:
            return "—"
        upstream, top = obj.synced_partnership.upstream, provenance.origin(obj)
        return str(upstream) if top == upstream else f"{upstream} · originally from {top}"

    @admin.display(description="locked")
    def lock(self, obj) -> str:
        if not locks.is_item_locked(obj):
            return "No: the partner may edit it"
        return f"Managed by {obj.managed_by}"

    def get_readonly_fields(self, request, obj=None):
        # Which history row a first copy's values wait in is the database's own bookkeeping
        # (docs/design.md §7.5): an id that tells staff nothing, not shown.
        shown = [name for name in self.model.bookkeeping_fields() if name != "created_change_id"]
        return [*shown, "lock", "import_link"]


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
                        "__str__",  # names the item by its label fields: no column repeats them
                        *(c for c in category.columns if c not in category.label_fields),
                        "organization",
                        "sync_state",
                        "source",
                        "lock",
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


class ChangeValuesMixin:
    """A sync change's category by its label, its values by field labels (not keys and JSON)."""

    @admin.display(description="category", ordering="category")
    def category_name(self, obj) -> str:
        return category_label(obj.category)

    @admin.display(description="before")
    def values_before(self, obj) -> str:
        return self._values(obj, obj.before)

    @admin.display(description="after")
    def values_after(self, obj) -> str:
        return self._values(obj, obj.after)

    def _values(self, obj, values) -> str:
        rows = change_values(obj, values)
        return format_html_join("", "<div>{}: {}</div>", rows) if rows else "—"


class ChangesShownFormSet(BaseInlineFormSet):
    """A run's changes, each with the values it shows (``history_values.fill``)."""

    def get_queryset(self):
        if not hasattr(self, "_shown"):
            self._shown = list(super().get_queryset())
            history_values.fill(self._shown)
        return self._shown


class SyncChangeInline(ChangeValuesMixin, admin.TabularInline):
    model = SyncChange
    formset = ChangesShownFormSet
    extra = 0
    fields = ["category_name", "action", "label", "values_before", "values_after", "note"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "partnership_name",
        "event",
        "mode",
        "status",
        "started",
        "created_at",
        "took",
    ]
    list_filter = ["status", "event", "mode", "created_at"]
    search_fields = ["partnership__upstream__name", "partnership__downstream__name", "trigger"]
    list_select_related = ["partnership__upstream", "partnership__downstream", "started_by"]
    date_hierarchy = "created_at"
    inlines = [SyncChangeInline]
    actions = ["retry_failed"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["counts_table"]

    def get_fields(self, request, obj=None):
        # The counts read as a table (counts_table), with category labels, not as JSON.
        return [name for name in self.get_readonly_fields(request, obj) if name != "counts"]

    @admin.display(description="partnership", ordering="partnership")
    def partnership_name(self, obj) -> str:
        # The admin keeps a foreign key's cell on one line; a name of two organizations wraps.
        return str(obj.partnership)

    @admin.display(description="started by")
    def started(self, obj) -> str:
        person = obj.started_by.get_full_name() or obj.started_by.username if obj.started_by else ""
        return person or obj.trigger or "—"

    @admin.display(description="duration")
    def took(self, obj) -> str:
        return wording.duration(obj.duration)

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
                (
                    category_label(key),
                    ", ".join(
                        f"{count} {action_label(action)}" for action, count in counts.items()
                    ),
                )
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


class CategoryListFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return [(category.key, category.label) for category in registry.all()]

    def queryset(self, request, queryset):
        return queryset.filter(category=self.value()) if self.value() else queryset


@admin.register(SyncChange)
class SyncChangeAdmin(ChangeValuesMixin, admin.ModelAdmin):
    # The run by its number: its full name (event, both organizations, status) filled the list.
    list_display = ["run_number", "category_name", "action", "label", "note"]
    list_filter = ["action", CategoryListFilter]
    search_fields = ["label", "note", "run__partnership__downstream__name"]
    list_select_related = ["run__partnership__upstream", "run__partnership__downstream"]

    def get_readonly_fields(self, request, obj=None):
        fields = [field.name for field in self.model._meta.fields]
        return [*fields, "category_name", "values_before", "values_after"]

    def get_fields(self, request, obj=None):
        # Labels and readable values in place of the stored keys and JSON.
        shown = {"category": "category_name", "before": "values_before", "after": "values_after"}
        return [shown.get(field.name, field.name) for field in self.model._meta.fields]

    def get_object(self, request, object_id, from_field=None):
        change = super().get_object(request, object_id, from_field)
        if change is not None:
            history_values.fill([change])
        return change

    @admin.display(description="run", ordering="run")
    def run_number(self, obj) -> str:
        return f"#{obj.run_id}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# Preview sync and Resync on the partnerships admin.
from . import profile_admin  # noqa: E402, F401 (registers the sync profiles)
from .partnership_admin import install  # noqa: E402

install()
