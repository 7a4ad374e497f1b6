"""Sync profiles in the admin, with the partnerships that follow them (docs/design.md §12.3).

Staff inspect them here; a channel manager's admins create, change and apply them on their
pages, through the services (a change here would raise no runs), so the admin only reads.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from partnerships.modes import MODE_LABELS

from . import registry
from .models import ProfileAssignment, SyncProfile
from .override_forms import CHOICE_LABELS


class ProfileAssignmentInline(admin.TabularInline):
    model = ProfileAssignment
    fields = ["partnership", "applied_at", "applied_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "partnership following it"
    verbose_name_plural = "partnerships following it"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncProfile)
class SyncProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "mode_column", "followers", "archived_at"]
    list_filter = ["archived_at", "is_exclusive", "data_sync_enabled", "allow_downstream_edit"]
    search_fields = ["name", "organization__name"]
    list_select_related = ["organization"]
    fields = [
        "organization",
        "name",
        "mode_column",
        "per_category",
        "created_by",
        "created_at",
        "updated_at",
        "archived_at",
    ]
    readonly_fields = fields
    inlines = [ProfileAssignmentInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(follower_count=Count("assignments"))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="mode")
    def mode_column(self, obj) -> str:
        return MODE_LABELS[obj.mode]

    @admin.display(description="partnerships following it", ordering="follower_count")
    def followers(self, obj) -> int:
        return obj.follower_count

    @admin.display(description="per category")
    def per_category(self, obj) -> str:
        chosen = [
            f"{registry.get(key).label}: {CHOICE_LABELS[value]}"
            for key, value in obj.override_items
        ]
        return "; ".join(chosen) or "Every category follows the mode."
