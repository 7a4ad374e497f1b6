"""Background work of the sync, through Django's tasks framework.

A run is recorded as "queued" in the caller's transaction and enqueued once it commits: a
rolled-back change never syncs. The immediate backend (development, tests) runs it right
after the commit; in production `manage.py db_worker` processes run them.
"""

from __future__ import annotations

from django.db import transaction
from django.tasks import task

from partnerships.models import Partnership

from . import engine, policy
from .models import SyncRun


@task()
def run_sync(run_id: int) -> str:
    """Apply one recorded run (it re-reads the partnership: it works from the state now)."""
    sync_run = SyncRun.objects.select_related("started_by").get(pk=run_id)
    if sync_run.status not in (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING):
        return sync_run.status  # already done (a duplicate delivery)
    return engine.execute(sync_run).status


def schedule(
    partnership: Partnership,
    event: str,
    *,
    by=None,
    trigger: str = "",
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> SyncRun:
    """Record a run and enqueue it once the current transaction commits."""
    sync_run = engine.schedule_record(
        partnership,
        event,
        by=by,
        trigger=trigger,
        mode_before=mode_before,
        categories=categories,
    )
    transaction.on_commit(lambda: run_sync.enqueue(sync_run.pk))
    return sync_run


def schedule_upstream_change(organization_id: int, category_key: str, label: str) -> None:
    """A channel manager's setting changed: a ``change`` run for each partner it syncs to.

    Many edits in one transaction (an import, a bulk action) become one run per partner.
    """
    key = ("change", organization_id, category_key)
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        getattr(callback, "sync_key", None) == key for _, callback, _ in connection.run_on_commit
    ):
        return

    def fan_out() -> None:
        partnerships = list(
            Partnership.objects.active()
            .filter(upstream_id=organization_id, data_sync_enabled=True)
            .select_related("upstream")
        )
        with transaction.atomic():
            for partnership in partnerships:
                schedule(
                    partnership,
                    policy.CHANGE,
                    trigger=f"{partnership.upstream} changed {label}",
                    categories=[category_key],
                )

    fan_out.sync_key = key
    transaction.on_commit(fan_out)
