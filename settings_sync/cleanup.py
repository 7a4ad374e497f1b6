"""Remove organizations with everything that hangs off them, without starting any sync.

For benchmark and load-test data (partnerships are never deleted in normal use). Rows are
deleted with plain SQL: no signals, so no sync, and no loading of millions of objects.
"""

from __future__ import annotations

from django.db import connection, transaction

from organizations.models import Organization
from partnerships.models import Invitation, Partnership, PartnershipRequest

from . import registry
from .models import SyncChange, SyncRun


def _delete(model, where: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where}",  # noqa: S608
            params,
        )


@transaction.atomic
def delete_organizations(organizations) -> None:
    ids = list(
        Organization.objects.filter(pk__in=organizations.values("pk")).values_list("pk", flat=True)
    )
    if not ids:
        return
    marks = ", ".join(["%s"] * len(ids))
    partnership_ids = list(
        Partnership.objects.filter(upstream_id__in=ids).values_list("pk", flat=True)
    ) + list(Partnership.objects.filter(downstream_id__in=ids).values_list("pk", flat=True))
    for category in registry.all():
        model = category.model
        if category.copied_as_files:
            continue  # fields of the organization itself
        if hasattr(model, "synced_from"):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {model._meta.db_table} SET synced_from_id = NULL "  # noqa: S608
                    f"WHERE organization_id IN ({marks})",
                    ids,
                )
        _delete(model, f"organization_id IN ({marks})", ids)
    if partnership_ids:
        runs = SyncRun.objects.filter(partnership_id__in=partnership_ids).values_list(
            "pk", flat=True
        )
        SyncChange.objects.filter(run_id__in=runs)._raw_delete(SyncChange.objects.db)
        SyncRun.objects.filter(partnership_id__in=partnership_ids).delete()
    Invitation.objects.filter(upstream_id__in=ids).delete()
    PartnershipRequest.objects.filter(upstream_id__in=ids).delete()
    Partnership.objects.filter(pk__in=partnership_ids).delete()
    Organization.objects.filter(pk__in=ids).delete()


def refresh_statistics() -> None:
    """After bulk loads or deletes: on PostgreSQL, reclaim the dead rows and refresh the
    planner's statistics now rather than whenever autovacuum gets to it (a table left with a
    million dead rows turns index lookups into scans)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
