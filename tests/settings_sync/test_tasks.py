"""The task entry points of the sync (docs/design.md §7.3): `run_sync` and `run_sync_batch` as a
worker calls them, a run delivered twice (one after the other, and two workers at once), and
`manage.py sync_requeue` putting back only the runs whose worker stopped, once per cutoff."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from organizations.models import Organization
from settings_sync import engine
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder
from settings_sync.tasks import run_sync, run_sync_batch
from tests.factories import OrganizationFactory, make_partnership

from .concurrency import TIMEOUT, in_thread, rows_locked, wait_for, waiting_backends, waiting_behind
from .conftest import CHANGE_COUNTS, record_change

pytestmark = pytest.mark.django_db

DATABASE_QUEUE = "django_tasks_db.DatabaseBackend"


def stored(sync_run: SyncRun) -> SyncRun:
    return SyncRun.objects.get(pk=sync_run.pk)


def history(sync_run: SyncRun) -> list[tuple]:
    return list(
        SyncChange.objects.filter(run=sync_run).values_list("category", "action", "item_id")
    )


def requeue(older_than: timedelta) -> str:
    """One cron tick of `manage.py sync_requeue`; what it printed."""
    output = StringIO()
    call_command("sync_requeue", minutes=older_than.total_seconds() / 60, stdout=output)
    return output.getvalue().strip()


def queued_tasks(sync_run: SyncRun) -> int:
    """Tasks waiting in django-tasks-db's queue for the run."""
    return sum(
        task.args_kwargs["args"] == [sync_run.pk]
        for task in DBTaskResult.objects.filter(task_path__endswith=".run_sync")
    )


@pytest.fixture
def two_partners(syncing, django_capture_on_commit_callbacks) -> list:
    """``syncing`` and another partnership of its channel manager, both linked (before the
    change ``record_change`` makes)."""
    with django_capture_on_commit_callbacks(execute=True):
        other = make_partnership(syncing.upstream, OrganizationFactory(), data_sync_enabled=True)
    return [syncing, other]


# run_sync and run_sync_batch ---------------------------------------------------------------


def test_run_sync_applies_the_run_from_the_state_now(waiting_change):
    assert run_sync.call(waiting_change.pk) == "succeeded"
    run = stored(waiting_change)
    assert run.counts == CHANGE_COUNTS
    assert run.started_at <= run.finished_at
    partner = waiting_change.partnership.downstream
    assert Adder.objects.get(organization=partner, name="Trenching").amount == 1400


def test_run_sync_batch_applies_runs_into_different_partners(two_partners):
    batch = record_change(*two_partners)
    assert run_sync_batch.call([run.pk for run in batch]) == {"succeeded": 2}
    for run in batch:
        assert stored(run).counts == CHANGE_COUNTS
        assert len(history(run)) == 1


@pytest.mark.faults
def test_a_run_delivered_again_after_it_finished_is_left_as_it_is(waiting_change):
    """A requeued run whose first worker was only slow reaches a second worker: every later
    delivery, alone or in a batch, finds it finished and neither applies nor records anything
    again (docs/design.md §7.3, rule R7)."""
    late_copy = stored(waiting_change)  # what a second worker loaded before the first finished
    assert run_sync.call(waiting_change.pk) == "succeeded"
    first = stored(waiting_change)
    recorded = history(first)

    assert run_sync.call(waiting_change.pk) == "succeeded"
    assert run_sync_batch.call([waiting_change.pk]) == {}
    assert late_copy.status == "queued"
    assert engine.execute(late_copy).status == "succeeded"
    assert engine.execute_many([late_copy, stored(waiting_change)])

    again = stored(waiting_change)
    assert (again.counts, again.started_at, again.finished_at) == (
        CHANGE_COUNTS,
        first.started_at,
        first.finished_at,
    )
    assert history(again) == recorded


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("task", ["run_sync", "run_sync_batch"])
def test_two_workers_delivering_one_run_at_once_apply_it_once(request, task):
    """Attacks: rule R7 under a real race. The same run (or batch of runs) is delivered to two
    workers at once; both claim it, and both wait for the partner's row, which another
    transaction holds, so whichever gets it second waits until the first has committed. Fails
    if the second applies the run again: its counts would be replaced by the second
    application's (nothing left to do) and its times moved."""
    if task == "run_sync":
        batch = record_change(request.getfixturevalue("syncing"))
    else:
        batch = record_change(*request.getfixturevalue("two_partners"))
    partners = Organization.objects.filter(pk__in=[run.partnership.downstream_id for run in batch])

    def deliver():
        if task == "run_sync":
            return run_sync.call(batch[0].pk)
        return run_sync_batch.call([run.pk for run in batch])

    with ThreadPoolExecutor(max_workers=2) as pool:
        with rows_locked(partners):
            deliveries = [in_thread(pool, deliver) for _ in range(2)]
            wait_for(lambda: len(waiting_backends()) == 2, "both workers to wait for the partner")
            for run in batch:
                assert stored(run).status == "running"  # both deliveries claimed it
        results = [delivery.result(TIMEOUT) for delivery in deliveries]

    if task == "run_sync":
        assert results == ["succeeded", "succeeded"]
    else:
        assert results == [{"succeeded": len(batch)}] * 2
    for run in batch:
        after = stored(run)
        assert (after.status, after.counts) == ("succeeded", CHANGE_COUNTS)
        assert len(history(after)) == 1
        assert after.started_at <= after.finished_at
        copy = Adder.objects.get(organization=run.partnership.downstream, name="Trenching")
        assert (copy.amount, copy.sync_state) == (1400, "synced")


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delivery_failing_after_another_finished_the_run_leaves_its_outcome(waiting_change):
    """Attacks: rules R7 and R9 together. The second delivery has claimed the run when the first
    applies it; then the second's database connection drops. Fails if that failure is recorded
    over the first delivery's success (the run "failed", its counts gone, a retry offered for
    a change that was applied)."""
    steps: list[str] = []  # what happened to this delivery

    def other_delivery_finishes_then_connection_drops(execute, sql, params, many, context):
        if steps == ["claimed"]:  # the statement after this delivery's claim
            with ThreadPoolExecutor(max_workers=1) as pool:
                steps.append(in_thread(pool, run_sync.call, waiting_change.pk).result(TIMEOUT))
            raise OperationalError("server closed the connection unexpectedly")
        result = execute(sql, params, many, context)
        if not steps and f'UPDATE "{SyncRun._meta.db_table}"' in sql:
            steps.append("claimed")
        return result

    with connection.execute_wrapper(other_delivery_finishes_then_connection_drops):
        assert run_sync.call(waiting_change.pk) == "succeeded"

    assert steps == ["claimed", "succeeded"]  # the other delivery applied the run
    run = stored(waiting_change)
    assert (run.status, run.counts, run.error) == ("succeeded", CHANGE_COUNTS, "")
    assert len(history(run)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_outside_a_transaction_is_one_statement_that_counts_what_it_moved(
    waiting_change,
):
    """The claim is committed without waiting for the disk (docs/design.md §7.3, R7), in one
    text with its setting: it still moves a queued run, stores the heartbeat, and tells a
    finished run apart. Fails if the count it returns is the setting's, not the update's."""
    run = SyncRun(pk=waiting_change.pk)
    with CaptureQueriesContext(connection) as queries:
        assert engine.runs.claim([run])
    assert len(queries.captured_queries) == 1
    assert "synchronous_commit" in queries.captured_queries[0]["sql"]
    claimed = stored(waiting_change)
    assert claimed.status == "running"
    assert claimed.heartbeat_at is not None
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded")
    assert not engine.runs.claim([SyncRun(pk=run.pk)])
    assert stored(waiting_change).status == "succeeded"


# sync_requeue ------------------------------------------------------------------------------


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_requeue_leaves_a_run_that_finished_after_it_was_selected(waiting_change):
    """Attacks: rule R10's "never once it has finished". A worker finishes the run right
    after `sync_requeue` has selected it as stalled and before it moves it back to queued.
    Fails if the finished run is reopened: queued again, applied again, its counts lost."""
    finished_meanwhile: list[str] = []

    def finish_once_selected(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        selecting = sql.lstrip().upper().startswith("SELECT") and SyncRun._meta.db_table in sql
        if selecting and not finished_meanwhile:
            with ThreadPoolExecutor(max_workers=1) as pool:
                status = in_thread(pool, run_sync.call, waiting_change.pk).result(TIMEOUT)
            finished_meanwhile.append(status)
        return result

    with connection.execute_wrapper(finish_once_selected):
        output = requeue(timedelta(0))

    assert finished_meanwhile == ["succeeded"]
    assert output == "Requeued 0 stalled sync run(s)."
    run = stored(waiting_change)
    assert (run.status, run.counts, run.requeued_at) == ("succeeded", CHANGE_COUNTS, None)
    assert len(history(run)) == 1


@pytest.mark.faults
def test_two_ticks_of_requeue_enqueue_a_stalled_run_once(waiting_change, task_queue):
    """Attacks: "at most once per cutoff". The run's task was lost an hour ago; cron runs
    `sync_requeue` every few minutes. Fails if each tick enqueues it again."""
    task_queue(DATABASE_QUEUE)
    SyncRun.objects.filter(pk=waiting_change.pk).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    quarter = timedelta(minutes=15)
    assert requeue(quarter) == "Requeued 1 stalled sync run(s)."
    assert requeue(quarter) == "Requeued 0 stalled sync run(s)."
    assert queued_tasks(waiting_change) == 1
    assert stored(waiting_change).status == "queued"

    # Still not delivered a cutoff later (a cutoff of 0 here): queued once more.
    assert requeue(timedelta(0)) == "Requeued 1 stalled sync run(s)."
    assert queued_tasks(waiting_change) == 2
    # Both tasks reach a worker: the run is applied once.
    assert [run_sync.call(waiting_change.pk) for _ in range(2)] == ["succeeded"] * 2
    assert stored(waiting_change).counts == CHANGE_COUNTS
    assert len(history(waiting_change)) == 1


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_waiting_for_its_partner_is_not_requeued_while_its_worker_beats(
    waiting_change, settings, task_queue
):
    """Attacks: rule R10's heartbeat. Another transaction holds the partner's row for longer
    than the requeue cutoff; the worker of the run waits for it, beating its heartbeat. Fails if
    `sync_requeue` takes that run for stalled (a second task for a live run, every tick)."""
    settings.SYNC_HEARTBEAT_SECONDS = 0.1
    task_queue(DATABASE_QUEUE)  # a requeued run would wait in the queue, not run here
    cutoff = timedelta(seconds=1.5)
    partner = Organization.objects.filter(pk=waiting_change.partnership.downstream_id)

    with ThreadPoolExecutor(max_workers=1) as pool:
        with rows_locked(partner) as holder:
            delivery = in_thread(pool, run_sync.call, waiting_change.pk)
            wait_for(lambda: waiting_behind(holder), "the worker to wait for the partner")
            wait_for(
                lambda: timezone.now() - waiting_change.created_at > 2 * cutoff,
                "the run to wait for longer than the cutoff",
            )
            assert requeue(cutoff) == "Requeued 0 stalled sync run(s)."
            assert requeue(cutoff) == "Requeued 0 stalled sync run(s)."
            waiting = stored(waiting_change)
            assert waiting.status == "running"
            assert timezone.now() - waiting.heartbeat_at < cutoff
        assert delivery.result(TIMEOUT) == "succeeded"

    run = stored(waiting_change)
    assert (run.counts, run.requeued_at) == (CHANGE_COUNTS, None)
    assert queued_tasks(waiting_change) == 0
