"""The life of a recorded run (docs/design.md §7.2): claimed by a worker, applied, skipped when
it no longer applies, failed and retried, serialised per partner, and queued again when its
worker stopped. What the tests look at is the run's record, its changes and the partner's rows."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from organizations.prepared import ROWS_PER_STATEMENT, insert_rows
from partnerships import services
from partnerships.models import Partnership
from settings_sync import engine
from settings_sync.engine import runs
from settings_sync.models import SyncBatch, SyncChange, SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory

from .conftest import CHANGE_COUNTS

pytestmark = pytest.mark.django_db


def stored(sync_run: SyncRun) -> SyncRun:
    return SyncRun.objects.get(pk=sync_run.pk)


def rows_of(organization) -> list[dict]:
    """Every adder of the organization, archived ones included, with all their columns."""
    return list(Adder.all_objects.filter(organization=organization).order_by("pk").values())


# claim -------------------------------------------------------------------------------------


def test_a_claimed_run_is_running_and_its_worker_has_shown_it_is_alive(waiting_change):
    before = timezone.now()
    assert runs.claim([waiting_change])
    run = stored(waiting_change)
    assert run.status == "running"
    assert run.started_at is None  # it starts once it holds its partner (rule R5)
    assert run.heartbeat_at >= before


def test_a_finished_run_is_not_claimed_again(waiting_change):
    finished = engine.execute(waiting_change)
    assert (finished.status, finished.counts) == ("succeeded", CHANGE_COUNTS)
    assert not runs.claim([stored(finished)])
    run = stored(finished)
    assert (run.status, run.counts, run.started_at) == (
        "succeeded",
        CHANGE_COUNTS,
        finished.started_at,
    )


# skip (rule R3) ----------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["change", "resync"])
@pytest.mark.parametrize("how", ["ended", "sync_off"])
def test_a_queued_run_that_no_longer_applies_is_skipped_and_writes_nothing(
    syncing, django_capture_on_commit_callbacks, event, how
):
    """A run queued while the partnership synced, delivered after it ended (or Data Sync was
    turned off): it must not sync into a partner the channel manager no longer manages."""
    queued = engine.schedule_record(syncing, event, categories=["adders"])
    Adder.objects.filter(organization=syncing.upstream, name="Trenching").update(amount=1400)
    with django_capture_on_commit_callbacks(execute=True):
        if how == "ended":
            services.end_partnership(syncing, by=None)
        else:
            services.update_flags(syncing, by=None)
    partnership = Partnership.objects.get(pk=syncing.pk)
    # Ending keeps the flags: only the status says the partnership is over.
    assert partnership.data_sync_enabled == (how == "ended")
    assert not Adder.objects.filter(synced_partnership=syncing).exists()  # unlink detached them
    before = rows_of(syncing.downstream)

    run = engine.execute(stored(queued))

    expected = {
        "ended": "The partnership has ended.",
        "sync_off": "Data Sync is off for this partnership.",
    }[how]
    assert (run.status, run.note, run.counts) == ("skipped", expected, {})
    assert (stored(run).status, stored(run).note) == ("skipped", expected)
    assert not SyncChange.objects.filter(run=run).exists()
    assert rows_of(syncing.downstream) == before


def test_a_stale_unlink_detaches_nothing(syncing):
    """A queued unlink that runs after sync was turned back on must not detach."""
    stale = engine.schedule_record(syncing, "unlink", mode_before="non_exclusive")
    run = engine.execute(stale)
    assert run.status == "skipped"
    assert "Sync is on again" in run.note
    copies = Adder.objects.filter(organization=syncing.downstream, synced_partnership=syncing)
    assert sorted(copies.values_list("name", flat=True)) == ["Tile roof", "Trenching"]


# fail and retry (rule R9) ------------------------------------------------------------------


def test_a_failed_run_changes_nothing_and_its_retry_is_linked_to_it(waiting_change):
    partner = waiting_change.partnership.downstream
    before = rows_of(partner)

    def fail_on_history(execute, sql, params, many, context):
        if "settings_sync_syncchange" in sql and sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("connection lost while writing the history")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_on_history):
        failed = engine.execute(waiting_change)
    assert failed.status == "failed"
    assert "connection lost" in stored(failed).error
    assert stored(failed).finished_at is not None
    assert not failed.changes.exists()
    assert rows_of(partner) == before  # the copy written before the failure was rolled back

    retried = engine.retry(failed)
    assert (retried.status, retried.retry_of, retried.counts) == (
        "succeeded",
        failed,
        CHANGE_COUNTS,
    )
    assert Adder.objects.get(organization=partner, name="Trenching").amount == 1400
    assert stored(failed).status == "failed"  # the failed run stays as it was


# serialised per partner (rule R5) ----------------------------------------------------------


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_into_one_partner_serialise(channel_manager, partner):
    """Two runs of one partnership at once: the partner's row lock makes the second see the
    first's copies, so each upstream item ends with exactly one copy and nothing fails."""
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    AdderFactory(organization=channel_manager, name="Tile roof", amount=35)
    partnership = Partnership.objects.create(
        upstream=channel_manager, downstream=partner, data_sync_enabled=True
    )
    barrier = threading.Barrier(2)
    results: list[SyncRun] = []

    def resync():
        try:
            barrier.wait()
            results.append(engine.run(partnership, "resync"))
        finally:
            connection.close()

    threads = [threading.Thread(target=resync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run.status for run in results) == ["succeeded", "succeeded"]
    copies = Adder.all_objects.filter(organization=partner, synced_partnership=partnership)
    assert sorted(copies.values_list("synced_from__name", flat=True)) == ["Tile roof", "Trenching"]
    writes = sorted(
        sum(
            count
            for counts in run.counts.values()
            for action, count in counts.items()
            if action in engine.WRITING_ACTIONS
        )
        for run in results
    )
    assert writes[0] == 0  # the second found nothing left to write


# requeue (rule R10) ------------------------------------------------------------------------


def recorded(partnership, *, status="queued", ago=None, heartbeat=None, requeued=None):
    """A run as a worker (or none) left it: recorded ``ago``, its worker's last heartbeat and
    its last requeue that long ago (None: never)."""
    now = timezone.now()
    run = engine.schedule_record(partnership, "resync")
    SyncRun.objects.filter(pk=run.pk).update(
        status=status,
        created_at=now - ago if ago else now,
        heartbeat_at=now - heartbeat if heartbeat is not None else None,
        requeued_at=now - requeued if requeued is not None else None,
    )
    return run


def test_requeue_moves_back_only_the_runs_whose_worker_stopped(syncing):
    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    never_delivered = recorded(syncing, ago=hour)
    worker_died = recorded(syncing, status="running", ago=hour, heartbeat=hour)
    requeued_long_ago = recorded(syncing, ago=hour, requeued=hour)
    left = {
        "just recorded": recorded(syncing),
        "waiting, its worker alive": recorded(
            syncing, status="running", ago=hour, heartbeat=minute
        ),
        "requeued a minute ago": recorded(syncing, ago=hour, requeued=minute),
        "finished": recorded(syncing, status="succeeded", ago=hour),
        "failed": recorded(syncing, status="failed", ago=hour, heartbeat=hour),
    }
    before = {name: stored(run) for name, run in left.items()}

    requeued = runs.requeue_stalled(timedelta(minutes=15))

    stalled = [never_delivered, worker_died, requeued_long_ago]
    assert [run.pk for run in requeued] == [run.pk for run in stalled]
    for run in stalled:
        assert stored(run).status == "queued"
        assert timezone.now() - stored(run).requeued_at < minute
    for name, run in left.items():
        after = stored(run)
        assert (after.status, after.requeued_at) == (before[name].status, before[name].requeued_at)
    assert runs.requeue_stalled(timedelta(minutes=15)) == []  # once per cutoff

    # A requeued run is applied like any other.
    assert engine.execute(stored(worker_died)).status == "succeeded"


@pytest.mark.parametrize("started_by", [True, False])
def test_a_runs_compiled_read_gives_what_the_orm_reads(syncing, started_by):
    """A task's run is read by one statement compiled once (docs/design.md §10): the run, its
    partnership with its overrides, both organizations and who started it must be what the
    ORM reads, JSON and times included. Fails if a raw value is left unconverted."""
    from settings_sync.models import CategoryOverride
    from tests.factories import UserFactory

    CategoryOverride.objects.create(partnership=syncing, category="adders", value="off")
    CategoryOverride.objects.create(partnership=syncing, category="personas", value="follow")
    user = UserFactory() if started_by else None
    recorded = engine.schedule_record(syncing, "resync", by=user, categories=["adders"])
    SyncRun.objects.filter(pk=recorded.pk).update(
        counts={"adders": {"created": 2}}, started_at=timezone.now()
    )
    read = runs._read_run(recorded.pk)
    orm = SyncRun.objects.select_related(
        "started_by", "partnership__upstream", "partnership__downstream"
    ).get(pk=recorded.pk)

    def fields(instance):
        return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}

    assert fields(read) == fields(orm)
    assert read.categories == ["adders"]
    assert read.counts == {"adders": {"created": 2}}
    assert fields(read.partnership) == fields(orm.partnership)
    assert fields(read.partnership.upstream) == fields(orm.partnership.upstream)
    assert fields(read.partnership.downstream) == fields(orm.partnership.downstream)
    assert (read.started_by and fields(read.started_by)) == (
        orm.started_by and fields(orm.started_by)
    )
    assert read.partnership._override_values == {"adders": "off", "personas": "follow"}


# the record ---------------------------------------------------------------------------------


def test_records_inserted_at_once_are_the_orms_to_the_last_column(syncing, admin_user):
    """``insert_rows`` writes, for one run and for several, exactly the rows
    ``bulk_create`` writes (every column, each value prepared by its field), and gives each
    run its id (docs/design.md §10)."""
    batch = SyncBatch.objects.create(organization=syncing.upstream)
    when = timezone.now() - timedelta(minutes=3)

    def made(count: int) -> list[SyncRun]:
        return [
            SyncRun(
                partnership=syncing,
                event="resync",
                mode=syncing.mode,
                categories=["adders", f"n{n}"] if n % 2 else None,
                started_by=admin_user if n % 2 else None,
                trigger=f"Trigger {n}",
                batch=batch if n % 2 else None,
                counts={"adders": {"created": n}},
                overwritten=n,
                created_at=when,
            )
            for n in range(count)
        ]

    # One run, several, and more than one statement takes (a resync of thousands of partners).
    for count in (1, 3, ROWS_PER_STATEMENT + 2):
        ours, orms = insert_rows(made(count)), SyncRun.objects.bulk_create(made(count))
        assert all(run.pk and not run._state.adding for run in ours)
        columns = [f.attname for f in SyncRun._meta.concrete_fields if not f.primary_key]
        assert [SyncRun.objects.values(*columns).get(pk=run.pk) for run in ours] == [
            SyncRun.objects.values(*columns).get(pk=run.pk) for run in orms
        ]
        assert [stored(run).trigger for run in ours] == [run.trigger for run in ours]


def test_records_of_thousands_of_partners_are_inserted_in_several_statements(syncing):
    """A resync of thousands of partners records thousands of runs: more parameters than one
    statement may carry on SQLite (about 32,000), so they go in several, each run given its
    own id."""
    made = [SyncRun(partnership=syncing, event="resync", mode=syncing.mode) for _ in range(2500)]
    with CaptureQueriesContext(connection) as queries:
        insert_rows(made)
    assert len(queries) == -(-2500 // ROWS_PER_STATEMENT)
    assert len({run.pk for run in made}) == 2500
    assert SyncRun.objects.filter(pk__in=[run.pk for run in made]).count() == 2500
