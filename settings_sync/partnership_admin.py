"""The partnerships admin with the sync's actions, *Preview sync* and *Resync*.

Registered from here (``unregister`` the partnerships app's admin, ``register`` a subclass), so
partnerships never imports the sync.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse

from partnerships.admin import PartnershipAdmin
from partnerships.models import Partnership

from . import engine, overrides, policy, registry, services
from .models import CategoryOverride


class CategoryOverrideForm(forms.ModelForm):
    category = forms.ChoiceField(choices=[(c.key, c.label) for c in registry.all()])

    class Meta:
        model = CategoryOverride
        fields = ["category", "value"]

    def clean(self) -> dict:
        cleaned_data = super().clean()
        # The partnership as this save leaves it: its flags are the ones being saved.
        partnership = self.partnership
        if "category" in cleaned_data and "value" in cleaned_data:
            errors = overrides.errors_for(
                {cleaned_data["category"]: cleaned_data["value"]},
                flags=partnership.flags,
                stored=overrides.saved_overrides(partnership.pk),
            )
            if errors:
                raise ValidationError(
                    [message for found in errors.values() for e in found for message in e.messages]
                )
        return cleaned_data


class CategoryOverrideFormSet(BaseInlineFormSet):
    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.partnership = self.instance  # with the flags of this save, not the stored ones
        return form


class CategoryOverrideInline(admin.StackedInline):  # labelled fields, for screen readers
    """Per-category overrides (docs/design.md §12), saved through ``overrides.set_overrides``
    so a change raises its runs as on the Partnership Details page."""

    model = CategoryOverride
    form = CategoryOverrideForm
    formset = CategoryOverrideFormSet
    extra = 0
    can_delete = False  # "Follow the partnership" is the way back
    fields = ["category", "value", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]
    verbose_name = "category override"


class SyncedPartnershipAdmin(PartnershipAdmin):
    actions = [*PartnershipAdmin.actions, "preview_sync", "resync"]
    inlines = [*PartnershipAdmin.inlines, CategoryOverrideInline]

    def get_inlines(self, request, obj):
        # Overrides are set on a partnership that exists: its runs need the partnership.
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        stored = Partnership.objects.filter(pk=obj.pk).first() if change else None
        form.mode_before = stored.mode if stored else None
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is not CategoryOverride:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # what the change message lists; set_overrides writes
        values = {
            row.cleaned_data["category"]: row.cleaned_data["value"]
            for row in formset.forms
            if row.has_changed() and row.cleaned_data
        }
        if values:
            overrides.set_overrides(
                form.instance, values, by=request.user, mode_before=form.mode_before
            )
        return None

    @admin.action(description="Preview a resync of selected partnerships")
    def preview_sync(self, request, queryset):
        plans = [
            engine.preview(partnership, policy.RESYNC)
            for partnership in queryset.select_related("upstream", "downstream")
        ]
        return TemplateResponse(
            request,
            "admin/settings_sync/preview.html",
            {
                **self.admin_site.each_context(request),
                "title": "Preview sync",
                "plans": plans,
                "opts": Partnership._meta,
            },
        )

    @admin.action(description="Resync selected partnerships")
    def resync(self, request, queryset):
        partnerships = list(
            queryset.filter(status=Partnership.Status.ACTIVE, data_sync_enabled=True)
        )
        services.resync_partnerships(partnerships, by=request.user, trigger="Resync (admin)")
        skipped = queryset.count() - len(partnerships)
        self.message_user(
            request,
            f"Queued a resync of {len(partnerships)} partnership(s)"
            + (f"; {skipped} skipped (ended or Data Sync off)." if skipped else "."),
            messages.SUCCESS,
        )


def install() -> None:
    admin.site.unregister(Partnership)
    admin.site.register(Partnership, SyncedPartnershipAdmin)
