"""Background work of the sync, through Django's tasks framework.

A run is recorded as "queued" in the caller's transaction and enqueued once it commits: a
rolled-back change never syncs. The immediate backend (development, tests) runs it right
after the commit; in production `manage.py db_worker` processes run them.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.tasks import task

from partnerships.models import Partnership

from . import engine, policy
from .models import SyncRun

#: Runs of one fan-out applied together by one task (they share their reads and writes);
#: several workers share a large fan-out batch by batch.
FAN_OUT_BATCH = 50


@task()
def run_sync(run_id: int) -> str:
    """Apply one recorded run (it re-reads the partnership: it works from the state now)."""
    sync_run = SyncRun.objects.select_related("started_by").get(pk=run_id)
    if sync_run.status not in SyncRun.PENDING:
        return sync_run.status  # already done (a duplicate delivery)
    return engine.execute(sync_run).status


@task()
def run_sync_batch(run_ids: list[int]) -> dict[str, int]:
    """Apply several recorded runs into different partners together (a fan-out's batch)."""
    pending = list(
        SyncRun.objects.select_related("started_by")
        .filter(pk__in=run_ids, status__in=SyncRun.PENDING)
        .order_by("pk")
    )
    return dict(Counter(sync_run.status for sync_run in engine.execute_many(pending)))


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
    enqueue_on_commit([sync_run])
    return sync_run


def enqueue_on_commit(sync_runs: list[SyncRun]) -> None:
    """Once the current transaction commits, enqueue the recorded runs: one task for a single
    run, tasks of ``FAN_OUT_BATCH`` runs (applied together) for many."""
    if len(sync_runs) == 1:
        run_id = sync_runs[0].pk
        transaction.on_commit(lambda: run_sync.enqueue(run_id))
        return
    for start in range(0, len(sync_runs), FAN_OUT_BATCH):
        batch = [sync_run.pk for sync_run in sync_runs[start : start + FAN_OUT_BATCH]]
        transaction.on_commit(partial(run_sync_batch.enqueue, batch))


def schedule_upstream_change(organization_id: int, category_key: str, label: str) -> None:
    """A channel manager's setting changed: a ``change`` run for each partner it syncs to.

    Many edits in one transaction (an import, a bulk action) become one run per partner.
    """
    key = (organization_id, category_key)
    registered = _next_sequence()

    def fan_out() -> None:
        # Runs after the commit. If a fan-out for the same category ran in this thread after
        # this one was registered, it already saw this change: nothing more to do.
        done = _fanned_out()
        if done.get(key, -1) > registered:
            return
        done[key] = _next_sequence()
        partnerships = list(
            Partnership.objects.active()
            .filter(upstream_id=organization_id, data_sync_enabled=True)
            .select_related("upstream")
        )
        with transaction.atomic():
            runs = SyncRun.objects.bulk_create(
                SyncRun(
                    partnership=partnership,
                    event=policy.CHANGE,
                    mode=partnership.mode,
                    categories=[category_key],
                    trigger=f"{partnership.upstream} changed {label}"[:200],
                )
                for partnership in partnerships
            )
            enqueue_on_commit(runs)

    transaction.on_commit(fan_out)


_local = threading.local()


def _next_sequence() -> int:
    _local.sequence = getattr(_local, "sequence", 0) + 1
    return _local.sequence


def _fanned_out() -> dict:
    if not hasattr(_local, "fanned_out"):
        _local.fanned_out = {}
    return _local.fanned_out


def requeue_stalled(older_than: timedelta) -> list[SyncRun]:
    """Queue again the runs whose worker stopped, each once per ``older_than``: only the runs
    :func:`engine.runs.requeue_stalled` actually moved back to queued get a task
    (docs/design.md §7.3, rule R10)."""
    requeued = engine.runs.requeue_stalled(older_than)
    for sync_run in requeued:
        run_sync.enqueue(sync_run.pk)
    return requeued
