"""The history's reference to its run (docs/design.md §7.4): the database refuses a change whose
run does not exist, and the deletion of a run that still has changes, as a foreign key would; on
PostgreSQL with statement-level triggers, which also hold the runs against a concurrent delete.
Django's own deletes (a run with its changes, the cleanup of organizations) still work."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection, transaction

from organizations.models import Organization
from settings_sync.cleanup import delete_organizations
from settings_sync.models import SyncChange, SyncRun

from .concurrency import TIMEOUT, in_thread, wait_for, waiting_backends
from .conftest import record_change

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY = SyncChange._meta.db_table
RUNS = SyncRun._meta.db_table


def execute(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def a_missing_run() -> int:
    return (SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def history_of(run_id: int) -> list[int]:
    return list(SyncChange.objects.filter(run_id=run_id).values_list("pk", flat=True))


def refused_at_its_statement(write) -> None:
    """``write`` raises IntegrityError itself, not the commit after it: the statement is
    refused, and the transaction goes on without it."""
    with transaction.atomic(), pytest.raises(IntegrityError), transaction.atomic():
        write()


def refused(write) -> None:
    """``write`` in a transaction of its own is refused, at its statement or at its commit."""
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


# Changes whose run does not exist -----------------------------------------------------------


def test_a_change_of_a_missing_run_is_refused_at_its_statement(syncing):
    missing = a_missing_run()
    refused_at_its_statement(
        lambda: SyncChange.objects.create(
            run_id=missing, category="adders", action="created", label="Trenching"
        )
    )
    assert history_of(missing) == []


BULK_HISTORY = (
    f"INSERT INTO {HISTORY} (run_id, category, action, label, note) "  # noqa: S608
    f"SELECT runs.id, 'adders', 'created', 'copy ' || copies.n, '' FROM {RUNS} runs "
    "CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) copies"
)


def test_one_missing_run_refuses_a_whole_insert_select_of_many_changes(syncing):
    record_change(syncing)  # a second run
    before = SyncChange.objects.count()
    missing = a_missing_run()
    refused_at_its_statement(
        lambda: execute(
            f"{BULK_HISTORY} UNION ALL SELECT %s, 'adders', 'created', 'stray', ''", [missing]
        )
    )
    assert SyncChange.objects.count() == before
    assert execute(BULK_HISTORY) == 6  # the same rows for existing runs only are accepted
    assert SyncChange.objects.count() == before + 6


def test_a_change_moved_to_a_missing_run_is_refused(syncing):
    change = SyncChange.objects.filter(run__partnership=syncing).first()
    missing = a_missing_run()
    refused_at_its_statement(lambda: SyncChange.objects.filter(pk=change.pk).update(run_id=missing))
    assert SyncChange.objects.get(pk=change.pk).run_id == change.run_id
    (other,) = record_change(syncing)
    SyncChange.objects.filter(pk=change.pk).update(run_id=other.pk)  # to a run that exists
    assert history_of(other.pk) == [change.pk]


# Runs that still have changes -----------------------------------------------------------------


def test_a_run_with_changes_is_not_deleted_behind_django(syncing):
    run = SyncRun.objects.get(partnership=syncing)
    changes = history_of(run.pk)
    assert changes
    refused(lambda: execute(f"DELETE FROM {RUNS} WHERE id = %s", [run.pk]))  # noqa: S608
    refused(lambda: SyncRun.objects.filter(pk=run.pk)._raw_delete(SyncRun.objects.db))
    refused(lambda: execute(f"UPDATE {RUNS} SET id = id + 100000 WHERE id = %s", [run.pk]))  # noqa: S608
    assert SyncRun.objects.filter(pk=run.pk).exists()
    assert history_of(run.pk) == changes


def test_django_deletes_a_run_with_its_changes(syncing):
    run = SyncRun.objects.get(partnership=syncing)
    (other,) = record_change(syncing)
    SyncChange.objects.create(run=other, category="adders", action="updated", label="Trenching")
    assert history_of(run.pk)
    run.delete()
    assert not SyncRun.objects.filter(pk=run.pk).exists()
    assert history_of(run.pk) == []
    assert len(history_of(other.pk)) == 1
    SyncRun.objects.filter(pk=other.pk).delete()  # a queryset's delete cascades as well
    assert SyncChange.objects.count() == 0


def test_the_cleanup_deletes_organizations_with_their_runs_and_changes(syncing):
    assert SyncChange.objects.exists()
    delete_organizations(
        Organization.objects.filter(pk__in=[syncing.upstream_id, syncing.downstream_id])
    )
    assert not SyncRun.objects.exists()
    assert not SyncChange.objects.exists()


@pytest.mark.postgres
def test_runs_are_not_truncated_without_their_changes(syncing):
    refused(lambda: execute(f"TRUNCATE {RUNS}"))
    assert SyncRun.objects.filter(partnership=syncing).exists()
    execute(f"TRUNCATE {RUNS}, {HISTORY}")  # as Django's test flush does, every table at once
    assert not SyncRun.objects.exists()


@pytest.mark.postgres
def test_lookups_of_a_runs_changes_use_an_index(syncing):
    """The (run, category) index serves every lookup by run: a run's page, the admin's inline
    and the deletes of a run's changes (docs/design.md §7.4)."""
    run = SyncRun.objects.get(partnership=syncing)
    lookups = [
        run.changes.all(),
        run.changes.filter(category="adders"),
        SyncChange.objects.filter(run__in=SyncRun.objects.filter(partnership=syncing)),
    ]
    with transaction.atomic():
        execute("SET LOCAL enable_seqscan = off")
        for queryset in lookups:
            plan = queryset.explain()
            assert "Seq Scan on settings_sync_syncchange" not in plan, plan
            assert "settings_sy_run_id_649d94_idx" in plan, plan
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN DELETE FROM {HISTORY} WHERE run_id = %s", [run.pk])  # noqa: S608
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "settings_sy_run_id_649d94_idx" in plan, plan


# Concurrent transactions (PostgreSQL, READ COMMITTED) ----------------------------------------


def _change(run_id: int) -> None:
    SyncChange.objects.create(run_id=run_id, category="adders", action="updated", label="x")


def _delete_run(run_id: int) -> None:
    execute(f"DELETE FROM {RUNS} WHERE id = %s", [run_id])  # noqa: S608


def _held(first, run_id: int, done: threading.Event, release: threading.Event, commit: bool):
    """``first`` in a transaction kept open until ``release``, then committed or rolled back."""
    with transaction.atomic():
        first(run_id)
        done.set()
        assert release.wait(TIMEOUT)
        if not commit:
            transaction.set_rollback(True)


def _in_transaction(write, run_id: int) -> None:
    with transaction.atomic():
        write(run_id)


def _second_waits_for_first(first, second, run_id: int, commit: bool):
    """Run ``first`` in one connection and, while its transaction is open, ``second`` in another
    (in a transaction of its own); ``second`` must wait for ``first`` to end. Returns
    ``second``'s future once both have ended."""
    done, release = threading.Event(), threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        held = in_thread(pool, _held, first, run_id, done, release, commit)
        try:
            assert done.wait(TIMEOUT)
            waiting = in_thread(pool, _in_transaction, second, run_id)
            wait_for(lambda: waiting_backends() or waiting.done(), "the second to wait")
            assert not waiting.done(), "the second statement did not wait for the first"
        finally:
            release.set()
            held.result(TIMEOUT)
        waiting.exception(TIMEOUT)
        return waiting


@pytest.mark.postgres
@pytest.mark.parametrize("commit", [True, False], ids=["committed", "rolled back"])
def test_a_run_with_changes_being_written_is_not_deleted(waiting_change, commit):
    """The change's statement locks its run: a delete of the run waits for its transaction and
    is refused once the change is committed (or goes ahead if it was rolled back)."""
    run_id = waiting_change.pk
    deleting = _second_waits_for_first(_change, _delete_run, run_id, commit)
    if commit:
        with pytest.raises(IntegrityError):
            deleting.result()
        assert SyncRun.objects.filter(pk=run_id).exists()
        assert len(history_of(run_id)) == 1
    else:
        deleting.result()
        assert not SyncRun.objects.filter(pk=run_id).exists()
        assert history_of(run_id) == []


@pytest.mark.postgres
@pytest.mark.parametrize("commit", [True, False], ids=["committed", "rolled back"])
def test_no_change_is_written_for_a_run_being_deleted(waiting_change, commit):
    """A change of a run another transaction is deleting waits for it, and is refused once the
    delete is committed (or written if it was rolled back)."""
    run_id = waiting_change.pk
    writing = _second_waits_for_first(_delete_run, _change, run_id, commit)
    if commit:
        with pytest.raises(IntegrityError):
            writing.result()
        assert not SyncRun.objects.filter(pk=run_id).exists()
        assert history_of(run_id) == []
    else:
        writing.result()
        assert SyncRun.objects.filter(pk=run_id).exists()
        assert len(history_of(run_id)) == 1
