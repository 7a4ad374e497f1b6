"""The life of a recorded run: queued → running → succeeded, skipped or failed.

=========  ===========================================================================
queued     recorded in the transaction that caused it; a task is enqueued on commit
running    a worker claimed it (``claim``); it starts once it holds its partner's lock
succeeded  applied: its counts and changes are written in the same transaction
skipped    it no longer applies to the partnership as it is now (ended, sync off, …)
failed     nothing it planned was written; the error is kept; ``retry`` records a new run
=========  ===========================================================================

A run delivered twice (a requeued run whose first worker was only slow) is applied once: the
second delivery finds it finished, before or after waiting for the partner. Every step that
moves a run from one status to another is here (docs/design.md §7).
"""

from __future__ import annotations

import logging
import traceback

from django.db import InterfaceError, OperationalError, connection, models, transaction
from django.utils import timezone

from organizations.models import Organization
from partnerships.models import Partnership

from .. import policy
from ..models import SyncRun
from .plan import Plan
from .planning import build
from .reads import Reads
from .writes import apply, bulk_write

logger = logging.getLogger(__name__)

#: What finishing a run writes to its record.
FINISHED_FIELDS = ["status", "note", "mode", "started_at", "counts", "finished_at"]


def schedule_record(
    partnership: Partnership,
    event: str,
    *,
    by=None,
    trigger: str = "",
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> SyncRun:
    """The record of a run about to be queued (status "queued")."""
    return SyncRun.objects.create(
        partnership=partnership,
        event=event,
        mode=mode_before if event == policy.UNLINK and mode_before else partnership.mode,
        categories=categories,
        started_by=by,
        trigger=trigger[:200],
    )


def execute(sync_run: SyncRun) -> SyncRun:
    """Apply a recorded run: atomically, serialised per partner, from the current state.

    The run is "running" from the moment a worker takes it; it starts (``started_at``) once it
    holds its partner, so the history never shows two runs into one partner overlapping.
    """
    if not claim([sync_run]):
        return _refreshed(sync_run)
    try:
        with transaction.atomic():
            _lock_partners([sync_run.partnership_id])
            if _finished([sync_run]):
                return _refreshed(sync_run)
            sync_run.started_at = timezone.now()
            partnership = Partnership.objects.select_related("upstream", "downstream").get(
                pk=sync_run.partnership_id
            )
            _settle([(_plan_run(sync_run, partnership), sync_run)])
            sync_run.save(update_fields=FINISHED_FIELDS)
    except Exception as error:
        logger.exception("Sync run %s failed", sync_run.pk)
        _fail(sync_run, error)
    return sync_run


def execute_many(sync_runs: list[SyncRun]) -> list[SyncRun]:
    """Apply several recorded runs into different partners (one upstream change fanned out)
    in one transaction, reading each category once for all of them and writing it in bulk.

    Each run is as atomic as on its own (all of them are). If anything fails, or the runs
    cannot share their reads, each run is applied on its own instead, so one partner's
    failure is recorded against that partner's run only.
    """
    if len(sync_runs) < 2:
        return [execute(sync_run) for sync_run in sync_runs]
    claim(sync_runs)
    try:
        applied = _apply_together(sync_runs)
    except Exception as error:
        logger.warning("Sync runs applied one by one after: %s", error, exc_info=True)
        applied = False
    if not applied:
        return [execute(sync_run) for sync_run in sync_runs]
    return sync_runs


def _apply_together(sync_runs: list[SyncRun]) -> bool:
    """Apply the runs in one transaction; False (nothing written) when they must be applied
    one after the other."""
    with transaction.atomic():
        _lock_partners([sync_run.partnership_id for sync_run in sync_runs])
        if _finished(sync_runs):  # some were applied by another delivery: leave those alone
            return False
        started = timezone.now()
        for sync_run in sync_runs:
            sync_run.started_at = started
        partnerships = Partnership.objects.select_related("upstream", "downstream").in_bulk(
            [sync_run.partnership_id for sync_run in sync_runs]
        )
        downstream = [p.downstream_id for p in partnerships.values()]
        upstream = {p.upstream_id for p in partnerships.values()}
        if len(set(downstream)) < len(sync_runs) or upstream.intersection(downstream):
            # Runs into one partner, or a partner that is another run's channel manager:
            # their reads depend on each other's writes.
            return False
        reads = Reads(list(partnerships.values()))
        _settle(
            [
                (_plan_run(sync_run, partnerships[sync_run.partnership_id], reads), sync_run)
                for sync_run in sync_runs
            ]
        )
        bulk_write(SyncRun.objects, sync_runs, FINISHED_FIELDS)
    return True


def claim(sync_runs: list[SyncRun]) -> bool:
    """queued/running → running, unless finished already (then False, for one run)."""
    claimed = SyncRun.objects.filter(
        pk__in=[sync_run.pk for sync_run in sync_runs],
        status__in=SyncRun.PENDING,
    ).update(status=SyncRun.Status.RUNNING, started_at=None, error="")
    for sync_run in sync_runs:
        sync_run.status, sync_run.started_at, sync_run.error = SyncRun.Status.RUNNING, None, ""
    return claimed > 0


def _lock_partners(partnership_ids: list[int]) -> None:
    """Two runs into one partner never interleave: the partner's row is the lock (taken in
    primary-key order, so runs locking several partners cannot deadlock each other)."""
    list(
        Organization.objects.select_for_update(of=("self",))
        .filter(upstream_partnerships__pk__in=partnership_ids)
        .order_by("pk")
    )


def _finished(sync_runs: list[SyncRun]) -> set[int]:
    """Which of the runs another delivery finished while this one waited for their partners."""
    return set(
        SyncRun.objects.filter(pk__in=[sync_run.pk for sync_run in sync_runs])
        .exclude(status=SyncRun.Status.RUNNING)
        .values_list("pk", flat=True)
    )


def _refreshed(sync_run: SyncRun) -> SyncRun:
    sync_run.refresh_from_db()
    return sync_run


def _plan_run(sync_run: SyncRun, partnership: Partnership, reads: Reads | None = None) -> Plan:
    return build(
        partnership,
        sync_run.event,
        mode_before=sync_run.mode if sync_run.event == policy.UNLINK else None,
        categories=sync_run.categories,
        by=sync_run.started_by,
        reads=reads,
    )


def _settle(runs: list[tuple[Plan, SyncRun]]) -> None:
    """running → succeeded or skipped: apply the plans that still apply and fill in each
    run's outcome (saved by the caller, in the same transaction)."""
    apply([(plan, sync_run) for plan, sync_run in runs if not plan.skipped])
    finished = timezone.now()
    for plan, sync_run in runs:
        if plan.skipped:
            sync_run.status = SyncRun.Status.SKIPPED
        else:
            sync_run.status = SyncRun.Status.SUCCEEDED
            sync_run.mode = plan.mode
        sync_run.note = plan.skipped
        sync_run.counts = {key: counts for key, counts in plan.summary().items() if counts}
        sync_run.finished_at = finished


def _fail(sync_run: SyncRun, error: Exception) -> None:
    """running → failed, recorded even when the failure was the database connection itself."""
    sync_run.status = SyncRun.Status.FAILED
    sync_run.error = "".join(traceback.format_exception_only(error)).strip()[:2000]
    sync_run.counts = {}
    sync_run.finished_at = timezone.now()
    fields = ["status", "error", "started_at", "counts", "finished_at"]
    try:
        sync_run.save(update_fields=fields)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        connection.close()  # reconnect on the next query
        sync_run.save(update_fields=fields)


def requeue_stalled(older_than) -> list[SyncRun]:
    """Runs whose worker died (still queued or running after ``older_than``) → queued again.
    Their changes were never committed, so running them again is safe. The caller enqueues
    them."""
    cutoff = timezone.now() - older_than
    stalled = list(
        SyncRun.objects.filter(status__in=SyncRun.PENDING, created_at__lt=cutoff).filter(
            models.Q(started_at__isnull=True) | models.Q(started_at__lt=cutoff)
        )
    )
    for sync_run in stalled:
        SyncRun.objects.filter(pk=sync_run.pk).update(status=SyncRun.Status.QUEUED)
    return stalled


def run(
    partnership: Partnership,
    event: str,
    *,
    by=None,
    trigger: str = "",
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> SyncRun:
    """Apply ``event`` to the partner now and return the recorded run."""
    sync_run = schedule_record(
        partnership,
        event,
        by=by,
        trigger=trigger or "Run directly",
        mode_before=mode_before,
        categories=categories,
    )
    return execute(sync_run)


def record_retry(sync_run: SyncRun, *, by=None) -> SyncRun:
    """failed → a new queued run linked to the failed one."""
    if sync_run.status != SyncRun.Status.FAILED:
        raise ValueError("Only a failed run can be retried.")
    again = schedule_record(
        sync_run.partnership,
        sync_run.event,
        by=by or sync_run.started_by,
        trigger=f"Retry of run #{sync_run.pk}",
        mode_before=sync_run.mode if sync_run.event == policy.UNLINK else None,
        categories=sync_run.categories,
    )
    again.retry_of = sync_run
    again.save(update_fields=["retry_of"])
    return again


def retry(sync_run: SyncRun, *, by=None) -> SyncRun:
    """Run a failed run again now (a new record, linked to the failed one)."""
    return execute(record_retry(sync_run, by=by))
