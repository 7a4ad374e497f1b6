from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from . import modes, services
from .models import Invitation, Partnership, PartnershipRequest


class ModeListFilter(admin.SimpleListFilter):
    title = "mode"
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return [(mode, modes.MODE_LABELS[mode]) for mode in modes.MODES]

    def queryset(self, request, queryset):
        if self.value() in modes.MODES:
            return queryset.with_mode().filter(mode_value=self.value())
        return queryset


class PartnershipAdminForm(forms.ModelForm):
    """Staff create and change partnerships through the services, so every rule holds."""

    class Meta:
        model = Partnership
        fields = ["upstream", "downstream", *modes.FLAG_NAMES]

    def clean(self):
        cleaned_data = super().clean()
        upstream, downstream = cleaned_data.get("upstream"), cleaned_data.get("downstream")
        if self.instance.pk:
            if (upstream, downstream) != (self.instance.upstream, self.instance.downstream):
                raise ValidationError(
                    "A partnership's organizations cannot change; end it and create another."
                )
            if not self.instance.is_active:
                raise ValidationError("This partnership has ended; its flags can no longer change.")
        flags = {name: cleaned_data.get(name, False) for name in modes.FLAG_NAMES}
        try:
            modes.validate_flags(**flags)
        except ValidationError:
            # Said once, beside Allow Edit, by the model's clean() (rule F1); the partnership
            # rules are for a combination that can exist.
            return cleaned_data
        if upstream and downstream:
            try:
                if not self.instance.pk or (
                    cleaned_data.get("is_exclusive") and not self.instance.is_exclusive
                ):
                    services.check_partnership_rules(
                        upstream,
                        downstream,
                        is_exclusive=cleaned_data.get("is_exclusive", False),
                        exclude_pk=self.instance.pk,
                    )
            except ValidationError as error:
                raise ValidationError(error.messages) from error
        return cleaned_data


@admin.register(Partnership)
class PartnershipAdmin(admin.ModelAdmin):
    form = PartnershipAdminForm
    # "Channel manager → partner" names both sides: no upstream and downstream columns, so the
    # list fits a 1280-pixel screen.
    list_display = [
        "__str__",
        "mode_column",
        "is_exclusive",
        "data_sync_enabled",
        "allow_downstream_edit",
        "status",
        "created_at",
    ]
    list_filter = [
        ModeListFilter,
        "status",
        "is_exclusive",
        "data_sync_enabled",
        "allow_downstream_edit",
        "created_at",
    ]
    search_fields = ["upstream__name", "downstream__name", "upstream__slug", "downstream__slug"]
    list_select_related = ["upstream", "downstream"]
    autocomplete_fields = ["upstream", "downstream"]
    readonly_fields = [
        "status",
        "version",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "ended_by",
        "ended_at",
    ]
    date_hierarchy = "created_at"
    actions = ["end_selected"]  # the sync app adds "Preview sync" and "Resync"

    def get_queryset(self, request):
        return super().get_queryset(request).with_mode()

    @admin.display(description="mode", ordering="mode_value")
    def mode_column(self, obj) -> str:
        return modes.MODE_LABELS[obj.mode]

    def save_model(self, request, obj, form, change):
        flags = {name: form.cleaned_data[name] for name in modes.FLAG_NAMES}
        if change:
            saved = services.update_flags(obj, by=request.user, **flags)
        else:
            saved = services.create_partnership(
                form.cleaned_data["upstream"],
                form.cleaned_data["downstream"],
                by=request.user,
                **flags,
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # partnerships end; their history stays

    @admin.action(description="End selected partnerships")
    def end_selected(self, request, queryset):
        ended = 0
        for partnership in queryset.filter(status=Partnership.Status.ACTIVE):
            services.end_partnership(partnership, by=request.user)
            ended += 1
        self.message_user(request, f"Ended {ended} partnership(s).", messages.SUCCESS)


class InvitationStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    LABELS = [
        ("pending", "Pending"),
        ("expired", "Expired"),
        ("accepted", "Accepted"),
        ("revoked", "Withdrawn"),
    ]

    def lookups(self, request, model_admin):
        return self.LABELS

    def queryset(self, request, queryset):
        from django.utils import timezone

        now = timezone.now()
        value = self.value()
        if value == "pending":
            return queryset.filter(status="pending", expires_at__gt=now)
        if value == "expired":
            return queryset.filter(status="pending", expires_at__lte=now)
        if value in ("accepted", "revoked"):
            return queryset.filter(status=value)
        return queryset


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "organization_name",
        "email",
        "upstream",
        "state_label",
        "email_status",
        "expires_at",
    ]
    list_filter = [InvitationStateFilter, "email_status", "data_sync_enabled", "is_exclusive"]
    search_fields = ["organization_name", "email", "upstream__name"]
    list_select_related = ["upstream"]
    readonly_fields = [
        "upstream",
        "organization_name",
        "email",
        *modes.FLAG_NAMES,
        "expires_at",
        "status",
        "email_status",
        "email_attempts",
        "email_error",
        "invited_by",
        "created_at",
        "accepted_by",
        "accepted_at",
        "partnership",
    ]
    exclude = ["token_hash"]

    @admin.display(description="state")
    def state_label(self, obj) -> str:
        return dict(InvitationStateFilter.LABELS)[obj.state]

    def has_add_permission(self, request) -> bool:
        return False  # invitations are sent from the Partnerships tab, with an email


@admin.register(PartnershipRequest)
class PartnershipRequestAdmin(admin.ModelAdmin):
    list_display = ["upstream", "downstream", "status", "created_at", "decided_at"]
    list_filter = ["status", "data_sync_enabled", "is_exclusive"]
    search_fields = ["upstream__name", "downstream__name"]
    list_select_related = ["upstream", "downstream"]
    readonly_fields = [
        "upstream",
        "downstream",
        *modes.FLAG_NAMES,
        "message",
        "status",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
        "partnership",
    ]

    def has_add_permission(self, request) -> bool:
        return False
