"""What the pages and the admin both do to runs: resync partners, retry a failed run.

Each function records the runs in the caller's transaction and enqueues them once it commits
(never runs them inside the request); who may call them is decided by the views and the admin
(docs/design.md §7).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from organizations.models import Organization
from organizations.prepared import insert_rows
from partnerships.models import Partnership

from . import engine, policy, tasks
from .models import SyncBatch, SyncRun


def resyncable_partnerships(organization: Organization):
    """The partnerships of a channel manager that a resync concerns: active, Data Sync on."""
    return Partnership.objects.active().filter(upstream=organization, data_sync_enabled=True)


@transaction.atomic(savepoint=False)  # one insert: nothing to roll back on its own
def resync_partnerships(
    partnerships: Iterable[Partnership], *, by=None, trigger: str, batch: SyncBatch | None = None
) -> list[SyncRun]:
    """Queue a resync of each partnership: one insert for all their runs, applied in batches."""
    runs = insert_rows(
        [
            SyncRun(
                partnership=partnership,
                event=policy.RESYNC,
                mode=partnership.mode,
                started_by=by,
                trigger=trigger[:200],
                batch=batch,
            )
            for partnership in partnerships
        ]
    )
    tasks.enqueue_on_commit(runs)
    return runs


@transaction.atomic
def resync_all_partners(organization: Organization, *, by=None) -> SyncBatch:
    """Queue a resync of every partner of ``organization``, followed as one batch."""
    batch = SyncBatch.objects.create(organization=organization, created_by=by)
    resync_partnerships(
        resyncable_partnerships(organization), by=by, trigger="Resync all partners", batch=batch
    )
    return batch


@transaction.atomic
def retry_run(sync_run: SyncRun, *, by=None) -> SyncRun:
    """Queue a failed run again: a new run, linked to the failed one."""
    if sync_run.status != SyncRun.Status.FAILED:
        raise ValidationError("Only a failed sync can be retried.", code="not_failed")
    again = engine.record_retry(sync_run, by=by)
    tasks.enqueue_on_commit([again])
    return again
