"""Background work of the sync, through Django's tasks framework.

A run is recorded as "queued" in the caller's transaction and enqueued once it commits: a
rolled-back change never syncs. The immediate backend (development, tests) runs it right
after the commit; in production `manage.py db_worker` processes run them.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.tasks import task
from django.tasks.backends.immediate import ImmediateBackend

from partnerships.models import Partnership

from . import drift_counts, engine, overrides, policy, signals, transaction_marks
from .models import CategoryOverride, SyncBatch, SyncRun

#: Runs of one fan-out applied together by one task (they share their reads and writes);
#: several workers share a large fan-out batch by batch.
FAN_OUT_BATCH = 50


@task()
def run_sync(run_id: int) -> str:
    """Apply one recorded run (it re-reads the partnership: it works from the state now)."""
    finished = engine.execute_id(run_id)  # claimed first: a duplicate delivery stops there
    if finished is None:  # already done (a duplicate delivery)
        return SyncRun.objects.values_list("status", flat=True).get(pk=run_id)
    signals.announce_finished([finished])
    return finished.status


@task()
def run_sync_batch(run_ids: list[int]) -> dict[str, int]:
    """Apply several recorded runs into different partners together (a fan-out's batch)."""
    pending = list(
        SyncRun.objects.select_related("started_by")
        .filter(pk__in=run_ids, status__in=SyncRun.PENDING)
        .order_by("pk")
    )
    finished = engine.execute_many(pending)
    signals.announce_finished(finished)
    return dict(Counter(sync_run.status for sync_run in finished))


class _Gathering:
    """The runs scheduled while a profile is applied to many partners: recorded in its batch
    and enqueued together, ``FAN_OUT_BATCH`` a task, instead of one task each."""

    current: ContextVar[list[SyncRun] | None] = ContextVar("gathered_runs", default=None)


@contextmanager
def gathered(batch: SyncBatch):
    """Runs scheduled inside this block, and by receivers when its transactions commit, belong
    to ``batch`` and are enqueued together once they are all recorded.

    Inside a caller's transaction the receivers run at its commit, after this block: two
    on-commit callbacks around theirs open the gathering again for them, then close it.
    """
    runs: list[SyncRun] = []
    outer = transaction.get_connection().in_atomic_block
    tokens: list = []
    if outer:
        transaction.on_commit(lambda: tokens.append(_Gathering.current.set(runs)))
    token = _Gathering.current.set(runs)
    try:
        yield runs
    finally:
        _Gathering.current.reset(token)
        if outer:
            transaction.on_commit(lambda: _finish(batch, runs, tokens))
        else:
            _finish(batch, runs, tokens)


def _finish(batch: SyncBatch, runs: list[SyncRun], tokens: list) -> None:
    for token in reversed(tokens):
        _Gathering.current.reset(token)
    if runs:
        SyncRun.objects.filter(pk__in=[run.pk for run in runs]).update(batch=batch)
        enqueue_on_commit(runs)


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
    gathering = _Gathering.current.get()
    if gathering is not None:
        gathering.append(sync_run)
    else:
        enqueue_on_commit([sync_run])
    return sync_run


def apply_link_now(partnership: Partnership, *, by=None, trigger: str = "", admins=None) -> SyncRun:
    """Record the link run of a partnership being created and apply it now, in the
    transaction that creates it (when ``applies_now``), instead of once it commits.

    The caller holds the partner's row (the service locked both organizations, rule R5) and
    its transaction commits as soon as it returns, so the run reads what it would have read
    after the commit; it applies in a savepoint, and a failure is recorded against the run
    and committed with the partnership, to be retried like any other (R4, R9). No worker can
    see the run before the commit, so there is nothing to claim (R7) and nothing to requeue
    (R10). That saves a task's round: the run's record committed on its own, the claim, a
    second transaction that locks the partner and reads the run again, and two commits that
    wait for the disk (docs/design.md §10). Whoever listens to finished runs hears of it
    once the partnership has committed, with ``admins`` (both organizations' admins, as the
    service read them with its locks).
    """
    # Recorded in the text of the run's first statement (``execute_held``).
    sync_run = engine.new_record(partnership, policy.LINK, by=by, trigger=trigger)
    engine.execute_held(sync_run)
    transaction.on_commit(partial(signals.announce_finished, [sync_run], admins))
    return sync_run


def applies_now() -> bool:
    """Whether a run recorded now may be applied now, in the caller's transaction: that
    transaction is the outermost one (it commits when the service that sends the event
    returns, nothing of a caller's comes after it) and tasks run in this process as soon as
    it commits (the immediate backend: development, tests, ``bench_sync``), and no gathering
    (``gathered``) wants its runs enqueued together. With a queue (production, rule R2) runs
    stay tasks for the workers."""
    return (
        _Gathering.current.get() is None
        and len(transaction.get_connection().atomic_blocks) == 1
        and isinstance(run_sync.get_backend(), ImmediateBackend)
    )


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

    The runs are recorded in the transaction that makes the change, so a committed change
    always has its runs (if enqueueing them fails after the commit, ``sync_requeue`` finds
    them still queued); they are enqueued once it commits (docs/design.md §7.3). Many edits in
    one transaction (an import, a bulk action) become one run per partner: the runs work from
    the data as it is when they run, so they see every edit of the transaction.

    Every save, archive, restore or delete of an item and every import comes here, whoever's
    partner or channel manager the organization is: the drift counts of its partnerships, on
    either side, for this category are marked stale first (docs/design.md §10).
    """
    drift_counts.mark([(organization_id, category_key)])
    key = (organization_id, category_key)
    if _recorded_in_this_transaction(key):
        return
    turned_off = CategoryOverride.objects.filter(
        partnership=OuterRef("pk"), category=category_key, value=CategoryOverride.Value.OFF
    )
    partnerships = list(
        Partnership.objects.active()
        .filter(upstream_id=organization_id, data_sync_enabled=True)
        .exclude(Exists(turned_off))  # not synced for that partner (docs/design.md §12)
        .select_related("upstream")
    )
    overrides.prefetch(partnerships)  # each run records its category's mode (§12.2)
    runs = SyncRun.objects.bulk_create(
        SyncRun(
            partnership=partnership,
            event=policy.CHANGE,
            mode=overrides.effective_mode(partnership, category_key),
            categories=[category_key],
            trigger=f"{partnership.upstream} changed {label}"[:200],
        )
        for partnership in partnerships
    )
    if runs:
        transaction_marks.leave(_ChangeRecorded(key, runs[0].pk))
        enqueue_on_commit(runs)


class _ChangeRecorded(transaction_marks.Mark):
    """The runs of a category's change are recorded in this transaction (a mark lives as long
    as the runs it stands for)."""

    def __init__(self, key: tuple[int, str], run_id: int) -> None:
        self.key = key
        self.run_id = run_id


def _recorded_in_this_transaction(key: tuple[int, str]) -> bool:
    # Outside a transaction (autocommit) on_commit runs at once and nothing is pending. The
    # runs must also still be waiting: a run already under way may have read the data before
    # this change.
    marks = [c.run_id for c in transaction_marks.pending(_ChangeRecorded) if c.key == key]
    return (
        bool(marks) and SyncRun.objects.filter(pk=marks[-1], status=SyncRun.Status.QUEUED).exists()
    )


def requeue_stalled(older_than: timedelta) -> list[SyncRun]:
    """Queue again the runs whose worker stopped, each once per ``older_than``: only the runs
    :func:`engine.runs.requeue_stalled` actually moved back to queued get a task
    (docs/design.md §7.3, rule R10)."""
    requeued = engine.runs.requeue_stalled(older_than)
    for sync_run in requeued:
        run_sync.enqueue(sync_run.pk)
    return requeued
