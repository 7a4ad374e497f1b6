"""The partnerships admin with the sync's actions, *Preview sync* and *Resync*.

Registered from here (``unregister`` the partnerships app's admin, ``register`` a subclass), so
partnerships never imports the sync.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from partnerships.admin import PartnershipAdmin
from partnerships.models import Partnership

from . import engine, policy, services


class SyncedPartnershipAdmin(PartnershipAdmin):
    actions = [*PartnershipAdmin.actions, "preview_sync", "resync"]

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
