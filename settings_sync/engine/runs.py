"""The life of a recorded run: queued → running → succeeded, skipped or failed.

=========  ===========================================================================
queued     recorded in the transaction that caused it; a task is enqueued on commit
running    a worker claimed it (``claim``); it starts once it holds its partner's lock, and
           while it waits for that lock the worker beats its ``heartbeat_at``
succeeded  applied: its counts and changes are written in the same transaction
skipped    it no longer applies to the partnership as it is now (ended, sync off, …)
failed     nothing it planned was written; the error is kept; ``retry`` records a new run
=========  ===========================================================================

A run delivered twice (a requeued run whose first worker was only slow) is applied once: the
second delivery finds it finished, before or after waiting for the partner. A run whose worker
stopped (no heartbeat for a while) is queued again by ``requeue_stalled``, at most once per
cutoff, and never once it has finished. Every step that moves a run from one status to another
is here (docs/design.md §7).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, models, transaction
from django.db.models import sql
from django.utils import timezone

from organizations.models import Organization
from organizations.prepared import (
    Planned,
    Prepared,
    fetched_together,
    insert_rows,
    padded_ids,
    savepoint_sent_ahead,
    sqlstate,
)
from partnerships.models import Partnership

from .. import overrides, policy
from ..models import SyncRun
from . import cascade
from .plan import Plan
from .planning import build
from .reads import Reads
from .writes import apply, bulk_write

logger = logging.getLogger(__name__)

#: What finishing a run writes to its record.
FINISHED_FIELDS = ["status", "note", "mode", "started_at", "counts", "overwritten", "finished_at"]

#: How long a worker waits for its partners' rows before it beats the heartbeat of its runs and
#: waits again (the setting ``SYNC_HEARTBEAT_SECONDS`` overrides it). ``sync_requeue`` must be
#: given a longer cutoff (docs/design.md §7.3, rule R10).
HEARTBEAT_SECONDS = 60

#: PostgreSQL's SQLSTATE for a lock not granted within ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"


def schedule_record(partnership: Partnership, event: str, **details) -> SyncRun:
    """The record of a run about to be queued (status "queued"; ``details`` as
    ``new_record`` takes them), inserted by the statement built once (``insert_rows``)."""
    return insert_rows([new_record(partnership, event, **details)])[0]


def new_record(
    partnership: Partnership,
    event: str,
    *,
    by=None,
    trigger: str = "",
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> SyncRun:
    """The record of a run about to be queued (status "queued"), not inserted yet."""
    return SyncRun(
        partnership=partnership,
        event=event,
        mode=mode_before if event == policy.UNLINK and mode_before else partnership.mode,
        categories=categories,
        started_by=by,
        trigger=trigger[:200],
    )


def execute_id(run_id: int) -> SyncRun | None:
    """``execute`` of the run with this id (a task's run): nothing is read before the claim,
    and the record is read once, with its partnership, after its partner is locked. None
    when the claim finds the run finished already (a duplicate delivery)."""
    sync_run = SyncRun(pk=run_id)
    sync_run._from_id = True
    if not claim([sync_run]):
        return None
    return _apply_claimed(sync_run)


def execute(sync_run: SyncRun) -> SyncRun:
    """Apply a recorded run: atomically, serialised per partner, from the current state.

    The run is "running" from the moment a worker takes it; it starts (``started_at``) once it
    holds its partner, so the history never shows two runs into one partner overlapping.
    """
    if not claim([sync_run]):
        return _refreshed(sync_run)
    return _apply_claimed(sync_run)


def execute_held(sync_run: SyncRun) -> SyncRun:
    """Apply a run recorded in the caller's transaction, which already holds its partner's
    row (rule R5) and commits once the caller returns: no claim (no worker can see the run
    before that commit), no lock and no second read of the record. The run applies in a
    savepoint (sent with its first statement, released by the commit): a failure rolls back
    its writes alone and is recorded against the run, to commit with the rest (R4, R9).

    A record not inserted yet (``new_record``) is inserted in the same text, before the
    savepoint: one round trip fewer, and no failure of the run takes it back."""
    try:
        with savepoint_sent_ahead(sync_run if sync_run._state.adding else None):
            sync_run.status, sync_run.error = SyncRun.Status.RUNNING, ""
            sync_run.started_at = sync_run.heartbeat_at = timezone.now()
            plan = _plan_run(sync_run, sync_run.partnership)
            _settle([(plan, sync_run)], outcome=[*FINISHED_FIELDS, "heartbeat_at"])
    except Exception as error:
        logger.exception("Sync run %s failed", sync_run.pk)
        _fail(sync_run, error)
    # The partnership and both organizations are the ones the caller created and locked:
    # what is told of the finished run need not read them again.
    carry_partnership(sync_run, sync_run.partnership)
    return sync_run


def _apply_claimed(sync_run: SyncRun) -> SyncRun:
    """Apply a claimed run holding its partner; a failure is recorded against the run."""
    try:
        return _holding_partners(
            [sync_run],
            lambda rows: _apply_one(sync_run, rows),
            then=(_RUN_QUERY, [sync_run.pk]),
        )
    except Exception as error:
        logger.exception("Sync run %s failed", sync_run.pk)
        _fail(sync_run, error)
    return sync_run


def _apply_one(sync_run: SyncRun, rows: list[tuple]) -> SyncRun:
    """Apply the run (its partner locked, in the caller's transaction), unless another
    delivery finished it while this one waited for the partner (rule R7).

    ``rows`` are the run as it is now (finished by another delivery?) with its partnership,
    both organizations and the partnership's category overrides, read in the round trip
    that locked the partner; the run's record is written once, when it is done.
    """
    stored = _run_from(sync_run.pk, rows)
    if stored.status != SyncRun.Status.RUNNING:
        return _refreshed(sync_run, stored)
    partnership = stored.partnership
    if not _loaded(sync_run):
        _copy_fields(stored, sync_run)
    else:
        carry_partnership(sync_run, partnership)
    sync_run.started_at = timezone.now()
    plan = _plan_run(sync_run, partnership)
    _settle([(plan, sync_run)], outcome=None if plan.leaves_everything else FINISHED_FIELDS)
    if plan.leaves_everything:
        _save_unflushed(sync_run)
    return sync_run


def _write(sync_run: SyncRun, fields: list[str]) -> None:
    """``sync_run.save(update_fields=fields)`` by the statement built once per shape
    (``_runs_update``; the model sends no signal that anything listens to)."""
    with connection.cursor() as cursor:
        cursor.execute(*_fields_update(sync_run, fields))


def _fields_update(sync_run: SyncRun, fields: list[str]) -> tuple[str, list]:
    """The statement and parameters of ``_write``."""
    return _runs_update(
        {name: getattr(sync_run, name) for name in fields}, [sync_run.pk], pending=False
    )


def _save_unflushed(sync_run: SyncRun) -> None:
    """Write the outcome of a run that changed nothing else, and let its transaction commit
    without waiting for the disk (on PostgreSQL; ``synchronous_commit`` off for this
    transaction, set in the same text as the update).

    Nothing is lost that a crash could not give back: the outcome, if it never reached the
    disk, leaves the run running with an old heartbeat, ``sync_requeue`` puts it back (rule
    R10), and applying it again finds nothing to do again (R6). The other runs' commits,
    which write data, still wait (docs/design.md §7.3).
    """
    if connection.vendor != "postgresql":
        _write(sync_run, FINISHED_FIELDS)
        return
    _send_unflushed(*_fields_update(sync_run, FINISHED_FIELDS))


#: The run's read, compiled once per process (it changes only in the run's id): the run, its
#: partnership (with its category overrides), both organizations and who started it.
_RUN_QUERY = Prepared(
    lambda ids: (
        SyncRun.objects.filter(pk__in=ids)
        .select_related("partnership__upstream", "partnership__downstream", "started_by")
        .annotate(override_values=overrides.listed())
        .order_by()  # one run: nothing to order
    ),
    by_key=True,
)


def _read_run(pk: int) -> SyncRun:
    """The run as it is now, with its partnership (its overrides remembered on it), both
    organizations and who started it: one query, built and compiled once per process."""
    return _run_from(pk, _RUN_QUERY.rows([pk]))


def _run_from(pk: int, rows: list[tuple]) -> SyncRun:
    """The run, its partnership and the rest as model instances, from ``_RUN_QUERY``'s rows
    (read in the round trip that locked the partner)."""
    if not rows:
        raise SyncRun.DoesNotExist(f"No sync run {pk}.")
    (sync_run,) = _RUN_QUERY.instances(rows, [pk])
    overrides.remember(sync_run.partnership, sync_run.override_values)
    return sync_run


def _loaded(sync_run: SyncRun) -> bool:
    """Whether the run object carries its record (``execute_id`` starts from its id alone)."""
    return getattr(sync_run, "_from_id", False) is False


def _copy_fields(source: SyncRun, target: SyncRun) -> None:
    """Give ``target`` the record ``source`` was read with (a claimed run: still running)."""
    for field in SyncRun._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    if source.started_by_id is not None:
        target.started_by = source.started_by
    carry_partnership(target, source.partnership)
    target._from_id = False


def carry_partnership(sync_run: SyncRun, partnership: Partnership) -> None:
    """Give the run the partnership it was applied to, as read under its partner's lock with
    both organizations, so that what is told of the finished run need not read it again
    (``carries_partnership``)."""
    sync_run.partnership = partnership
    sync_run._partnership_read = True


def carries_partnership(sync_run: SyncRun) -> bool:
    """Whether a finished run holds the partnership it was applied to, with both
    organizations, as its run read them (``carry_partnership``)."""
    return getattr(sync_run, "_partnership_read", False)


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
    return _holding_partners(sync_runs, lambda _rows: _apply_all(sync_runs))


def _apply_all(sync_runs: list[SyncRun]) -> bool:
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
    for sync_run in sync_runs:  # what the run was applied to, for those told of it
        carry_partnership(sync_run, partnerships[sync_run.partnership_id])
    reads = Reads(list(partnerships.values()), skip_plain=True)
    _settle(
        [
            (_plan_run(sync_run, partnerships[sync_run.partnership_id], reads), sync_run)
            for sync_run in sync_runs
        ]
    )
    bulk_write(SyncRun.objects, sync_runs, FINISHED_FIELDS)
    return True


def claim(sync_runs: list[SyncRun]) -> bool:
    """queued/running → running, unless finished already (then False, for one run). The claim
    is the worker's first heartbeat."""
    sql, params = _runs_update(
        {
            "status": SyncRun.Status.RUNNING,
            "started_at": None,
            "error": "",
            "heartbeat_at": timezone.now(),
        },
        [sync_run.pk for sync_run in sync_runs],
        pending=True,
    )
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            claimed = cursor.rowcount
    else:
        claimed = _send_unflushed(sql, params)
    for sync_run in sync_runs:
        sync_run.status, sync_run.started_at, sync_run.error = SyncRun.Status.RUNNING, None, ""
    return claimed > 0


def _update_unflushed(queryset: models.QuerySet, **values) -> int:
    """``queryset.update(**values)``; on PostgreSQL, outside a transaction, committed without
    waiting for the disk (``synchronous_commit`` off for that statement alone).

    For a claim or a heartbeat that loses nothing: the server writes its log in order, so the
    run's own commit, which waits, makes the claim durable with it, and a crash before that
    leaves the run queued or running with an old heartbeat, which ``sync_requeue`` takes back
    (rule R10) exactly as when a worker stops. A loaded disk makes each waiting commit cost
    several milliseconds, more than the rest of a run with nothing to do.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return queryset.update(**values)
    # One text, so one implicit transaction: SET LOCAL holds for the update alone.
    return _unflushed(queryset, values)


def _unflushed(queryset: models.QuerySet, values: dict) -> int:
    """PostgreSQL: ``queryset.update(**values)`` sent in one text after ``SET LOCAL
    synchronous_commit = off``, so that the transaction it runs in (its own, or the caller's)
    commits without waiting for the disk; the number of rows updated."""
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    return _send_unflushed(*query.get_compiler(queryset.db).as_sql())


def _runs_update(values: dict, ids: list[int], *, pending: bool) -> tuple[str, list]:
    """``SyncRun.objects.filter(pk__in=ids[, status__in=PENDING]).update(**values)``: its
    statement and parameters, the text built once per shape and the values prepared for the
    database by their fields, as the ORM prepares them. A run's claim and the outcome of a
    run with nothing to do are the whole of such a run's own work; building and compiling
    their updates cost more of the worker's CPU than the rest of it (docs/design.md §10)."""
    shape = (connection.alias, tuple(values), len(ids), pending)
    text = _RUN_UPDATES.get(shape)
    fields = [SyncRun._meta.get_field(name) for name in values]
    if text is None:
        quote = connection.ops.quote_name
        table = quote(SyncRun._meta.db_table)
        where = f"{table}.{quote(SyncRun._meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})"
        if pending:
            status = quote(SyncRun._meta.get_field("status").column)
            where += f" AND {table}.{status} IN ({', '.join(['%s'] * len(SyncRun.PENDING))})"
        text = _RUN_UPDATES[shape] = (
            f"UPDATE {table} SET "  # noqa: S608 (identifiers from the model)
            + ", ".join(f"{quote(field.column)} = %s" for field in fields)
            + f" WHERE {where}"
        )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    params += ids
    if pending:
        params += [str(status) for status in SyncRun.PENDING]
    return text, params


#: The statements of ``_runs_update``, per shape.
_RUN_UPDATES: dict[tuple, str] = {}


def _send_unflushed(text: str, params: list) -> int:
    """PostgreSQL: the update sent in one text after ``SET LOCAL synchronous_commit = off``
    (see ``_unflushed``); the number of rows updated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL synchronous_commit = off; " + connection.ops.compose_sql(text, params)
        )
        cursor.nextset()
        return cursor.rowcount


class _PartnersBusy(Exception):
    """Another transaction held a partner's row for a whole heartbeat."""


def _holding_partners[T](
    sync_runs: list[SyncRun],
    apply: Callable[[list[tuple]], T],
    then: tuple[Prepared, list[int]] | None = None,
) -> T:
    """``apply(rows)`` in one transaction that holds the rows of the runs' partners (rule R5),
    ``rows`` being those the query ``then`` (with its ids) reads once they are held.

    While another transaction holds one of them, the worker waits a heartbeat at a time and,
    between waits, records that it is alive in an autocommit statement of its own, so
    ``sync_requeue`` leaves a run that only waits for its partner alone (rule R10).
    """
    while True:
        try:
            with transaction.atomic():
                return apply(_lock_partners([sync_run.pk for sync_run in sync_runs], then))
        except _PartnersBusy:
            _update_unflushed(
                SyncRun.objects.filter(
                    pk__in=[sync_run.pk for sync_run in sync_runs], status__in=SyncRun.PENDING
                ),
                heartbeat_at=timezone.now(),
            )


def _lock_partners(
    run_ids: list[int], then: tuple[Prepared, list[int]] | None = None
) -> list[tuple]:
    """Two runs into one partner never interleave: the partner's row is the lock (taken in
    primary-key order, so runs locking several partners cannot deadlock each other). Once
    the lock is held, the query ``then`` (if any) reads its ids and its rows are returned:
    on PostgreSQL in the same round trip as the lock.

    On PostgreSQL the wait is bounded by a heartbeat (a ``lock_timeout`` for the run's
    transaction): past it, ``_PartnersBusy`` ends the transaction. On SQLite a transaction
    takes the whole database when it begins (``BEGIN IMMEDIATE``), so the wait happened there
    and no other statement, not even a heartbeat, could have been written meanwhile.
    """
    if connection.vendor != "postgresql":
        _PARTNERS.rows(run_ids)
        return [] if then is None else then[0].rows(then[1])
    heartbeat = getattr(settings, "SYNC_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)
    # For the rest of this transaction no statement of a run waits longer for a lock. Once the
    # partner is held nothing else a run writes is locked for long (the rows are the
    # partner's), so it is not worth a statement to lift the bound again. The bound, the lock
    # and what the run reads first go to the server as one text, one round trip. Both are
    # parsed and planned once per connection, for any runs (planning them took several times
    # what answering them takes), and written so that such a plan reads every row by its key
    # (docs/design.md §10).
    padded = padded_ids(run_ids)
    statements: list = [
        (f"SET LOCAL lock_timeout = {max(1, int(heartbeat * 1000))}", None),
        Planned(_locked_partners_sql(len(padded)), padded, by_index=True),
    ]
    if then is not None:
        statements.append(Planned(*then[0].planned(then[1]), by_index=True))
    try:
        results = fetched_together(statements)
    except OperationalError as error:
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            raise _PartnersBusy from error
        raise
    return [] if then is None else results[2]


def _locked_partners_sql(count: int) -> str:
    """PostgreSQL: the lock of the partners of ``count`` runs (``$1`` … ``$n``), in primary-key
    order. Written without a join: each step finds its rows by primary key in an array the
    step before made, so a plan made once, while the tables were small, still reads each
    table through its primary key however large they grow (docs/design.md §10)."""
    quote = connection.ops.quote_name
    organizations = quote(Organization._meta.db_table)
    partnerships = quote(Partnership._meta.db_table)
    runs = quote(SyncRun._meta.db_table)
    ids = ", ".join(f"${n}" for n in range(1, count + 1))
    return (
        f"SELECT o.id FROM {organizations} o WHERE o.id = ANY (ARRAY("  # noqa: S608
        f"SELECT p.downstream_id FROM {partnerships} p WHERE p.id = ANY (ARRAY("
        f"SELECT r.partnership_id FROM {runs} r WHERE r.id IN ({ids}))))) "
        "ORDER BY o.id FOR UPDATE OF o"
    )


#: The partners of some runs, locked in primary-key order (compiled once per number of runs).
_PARTNERS = Prepared(
    lambda ids: (
        Organization.objects.select_for_update(of=("self",))
        .filter(upstream_partnerships__sync_runs__pk__in=ids)
        .order_by("pk")
        .values_list("pk")
    )
)


def _finished(sync_runs: list[SyncRun]) -> set[int]:
    """Which of the runs another delivery finished while this one waited for their partners."""
    return set(
        SyncRun.objects.filter(pk__in=[sync_run.pk for sync_run in sync_runs])
        .exclude(status=SyncRun.Status.RUNNING)
        .values_list("pk", flat=True)
    )


def _refreshed(sync_run: SyncRun, stored: SyncRun | None = None) -> SyncRun:
    if stored is None:
        sync_run.refresh_from_db()
    else:
        _copy_fields(stored, sync_run)
    return sync_run


def _plan_run(sync_run: SyncRun, partnership: Partnership, reads: Reads | None = None) -> Plan:
    return build(
        partnership,
        sync_run.event,
        mode_before=sync_run.mode if sync_run.event == policy.UNLINK else None,
        categories=sync_run.categories,
        by=sync_run.started_by,
        reads=reads,
        skip_in_sync=reads is None,
    )


def _settle(runs: list[tuple[Plan, SyncRun]], *, outcome: list[str] | None = None) -> None:
    """running → succeeded or skipped: apply the plans that still apply, record the runs
    they start below their partners, and fill in each run's outcome (saved by the caller, in
    the same transaction; with ``outcome``, for one run, those fields of its record are
    written here, in the round trip of its writes, docs/design.md §10).

    The cascade's read of the partnerships below travels with the writes too. Should
    anything after fail, the caller's savepoint or transaction takes all of it back."""
    applying = [(plan, sync_run) for plan, sync_run in runs if not plan.skipped]
    finished = timezone.now()
    for plan, sync_run in runs:
        if plan.skipped:
            sync_run.status = SyncRun.Status.SKIPPED
        else:
            sync_run.status = SyncRun.Status.SUCCEEDED
            sync_run.mode = plan.mode
        sync_run.note = plan.skipped
        sync_run.counts = {key: counts for key, counts in plan.summary().items() if counts}
        sync_run.overwritten = plan.overwritten()
        sync_run.finished_at = finished
    started = cascade.Cascade(applying)
    reads = started.read()
    also = [*reads, *([_fields_update(runs[0][1], outcome)] if outcome else [])]
    sent = apply(applying, also=also)
    started.record(sent[0] if reads else None)


def _fail(sync_run: SyncRun, error: Exception) -> None:
    """running → failed, recorded even when the failure was the database connection itself.
    A run that another delivery finished meanwhile keeps that delivery's outcome (rule R7)."""
    sync_run.status = SyncRun.Status.FAILED
    sync_run.error = "".join(traceback.format_exception_only(error)).strip()[:2000]
    sync_run.counts = {}
    sync_run.finished_at = timezone.now()
    failure = {
        field: getattr(sync_run, field)
        for field in ["status", "error", "started_at", "counts", "finished_at"]
    }
    still_pending = SyncRun.objects.filter(pk=sync_run.pk, status__in=SyncRun.PENDING)
    try:
        recorded = still_pending.update(**failure)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        connection.close()  # reconnect on the next query
        recorded = still_pending.update(**failure)
    if not recorded:
        sync_run.refresh_from_db()


def requeue_stalled(older_than: timedelta) -> list[SyncRun]:
    """queued/running → queued, for the runs whose worker stopped (rule R10); the caller
    enqueues the runs returned.

    Stalled means: still queued or running, recorded more than ``older_than`` ago, no
    heartbeat of a worker since then (a worker waiting for the partner beats it) and not
    requeued since then either (so each cron tick does not enqueue it once more). Each run is
    moved by an update that checks all of that again: a run that a worker claimed or finished
    after it was selected is left as it is, and is not returned.
    """
    now = timezone.now()
    stalled = _stalled_since(now - older_than)
    requeued = []
    for sync_run in SyncRun.objects.filter(stalled).order_by("pk"):
        moved = SyncRun.objects.filter(stalled, pk=sync_run.pk).update(
            status=SyncRun.Status.QUEUED, requeued_at=now
        )
        if moved:
            sync_run.status, sync_run.requeued_at = SyncRun.Status.QUEUED, now
            requeued.append(sync_run)
    return requeued


def _stalled_since(cutoff) -> models.Q:
    """Runs pending since before ``cutoff`` with no sign of a worker and no requeue since."""
    return (
        models.Q(status__in=SyncRun.PENDING, created_at__lt=cutoff)
        & (models.Q(heartbeat_at__isnull=True) | models.Q(heartbeat_at__lt=cutoff))
        & (models.Q(requeued_at__isnull=True) | models.Q(requeued_at__lt=cutoff))
    )


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
