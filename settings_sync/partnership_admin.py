"""Admin actions on partnerships that belong to the sync: *Preview sync* and *Resync*.

Added to the partnerships admin from here, so partnerships never imports the sync.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse

from partnerships.models import Partnership

from . import engine, policy
from .tasks import schedule


@admin.action(description="Preview sync (resync) of selected partnerships")
def preview_sync(modeladmin, request, queryset):
    plans = [
        engine.preview(partnership, policy.RESYNC)
        for partnership in queryset.select_related("upstream", "downstream")
    ]
    return TemplateResponse(
        request,
        "admin/settings_sync/preview.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Preview sync",
            "plans": plans,
            "opts": Partnership._meta,
        },
    )


@admin.action(description="Resync selected partnerships")
def resync(modeladmin, request, queryset):
    partnerships = list(
        queryset.filter(status=Partnership.Status.ACTIVE, data_sync_enabled=True).select_related(
            "upstream"
        )
    )
    with transaction.atomic():
        for partnership in partnerships:
            schedule(partnership, policy.RESYNC, by=request.user, trigger="Resync (admin)")
    skipped = queryset.count() - len(partnerships)
    modeladmin.message_user(
        request,
        f"Queued a resync of {len(partnerships)} partnership(s)"
        + (f"; {skipped} skipped (ended or Data Sync off)." if skipped else "."),
        messages.SUCCESS,
    )


def install() -> None:
    partnership_admin = admin.site._registry[Partnership]
    partnership_admin.actions = [*partnership_admin.actions, preview_sync, resync]
