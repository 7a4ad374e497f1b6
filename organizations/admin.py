from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q

from .models import License, Membership, Organization


class ArchivedListFilter(admin.SimpleListFilter):
    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "Live"), ("yes", "Archived")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(archived_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset


class ArchivableAdmin(admin.ModelAdmin):
    """Shows archived rows too (filterable) and restores them with an action."""

    actions = ["restore_selected"]

    def get_queryset(self, request):
        return self.model.all_objects.get_queryset()

    @admin.display(boolean=True, description="archived", ordering="archived_at")
    def archived(self, obj) -> bool:
        return obj.is_archived

    @admin.action(description="Restore selected archived items")
    def restore_selected(self, request, queryset):
        restored = refused = 0
        for item in queryset.filter(archived_at__isnull=False):
            try:
                item.restore()
            except ValidationError as error:
                refused += 1
                self.message_user(request, f"{item}: {' '.join(error.messages)}", messages.ERROR)
            else:
                restored += 1
        summary = f"Restored {restored} item(s)."
        if refused:
            summary += f" {refused} could not be restored (see above)."
        self.message_user(request, summary, messages.WARNING if refused else messages.SUCCESS)


# Stacked, not tabular: a tabular inline's fields have no label of their own (only a column
# heading), which screen readers and axe-core report.
class MembershipInline(admin.StackedInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class LicenseInline(admin.StackedInline):
    model = License
    fk_name = "organization"
    extra = 0
    fields = ["license_type", "number", "jurisdiction", "expires_on"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "admin_count", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, LicenseInline]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("memberships"),
                admin_count=Count("memberships", filter=Q(memberships__role="admin")),
            )
        )

    @admin.display(ordering="member_count", description="members")
    def member_count(self, obj) -> int:
        return obj.member_count

    @admin.display(ordering="admin_count", description="admins")
    def admin_count(self, obj) -> int:
        return obj.admin_count


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(License)
class LicenseAdmin(ArchivableAdmin):
    list_display = [
        "number",
        "license_type",
        "jurisdiction",
        "organization",
        "expires_on",
        "archived",
    ]
    list_filter = [ArchivedListFilter, "jurisdiction", "organization"]
    search_fields = ["number", "license_type", "jurisdiction", "organization__name"]
    autocomplete_fields = ["organization"]
    list_select_related = ["organization"]
    readonly_fields = ["copied_from_organization", "archived_at", "archived_by", "archive_reason"]
