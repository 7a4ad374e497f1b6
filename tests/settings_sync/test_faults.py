"""Faults a production sync must survive (PostgreSQL only): real `manage.py db_worker`
processes draining one fan-out together, a worker killed in the middle of a run, a database
connection dropped mid-run, an upstream item deleted or archived while a run is in flight, and
two admins saving flags at the same moment.

A run is stopped in the middle deterministically, never with sleeps: the test holds
``SELECT … FOR UPDATE`` on a row of the partner that the run must write, from a connection of
its own, and waits until PostgreSQL shows the run's backend waiting for that lock. What the
tests look at is public behaviour only: services, model saves (the receivers), the task
queue, ``SyncRun``/``SyncChange`` records, ``engine.preview``/``engine.retry``,
``manage.py sync_requeue`` and ``manage.py db_worker``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from organizations.models import Organization
from partnerships import services
from partnerships.models import Partnership
from settings_sync import engine, registry
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder, DefaultCosts, Equipment
from settings_sync.proposal.models import ProposalExpiration
from tests.factories import MembershipFactory, OrganizationFactory

from .concurrency import (
    TIMEOUT,
    in_thread,
    rows_locked,
    wait_for,
    waiting_backends,
    waiting_behind,
)

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NON_EXCLUSIVE = {"data_sync_enabled": True}
FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}
STRICT = {"is_exclusive": True, "data_sync_enabled": True}
MODES = {"non_exclusive": NON_EXCLUSIVE, "flexible": FLEXIBLE, "strict": STRICT}

BASE_DIR = Path(django_settings.BASE_DIR)
FINISHED = (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED, SyncRun.Status.SKIPPED)


# The backends of other connections ---------------------------------------------------------


def backend_exists(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid])
        return cursor.fetchone()[0]


def tables_written_by(pid: int) -> set[str]:
    """Tables the backend's open transaction has inserted into, updated or deleted from."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = %s AND l.mode = 'RowExclusiveLock' AND c.relkind = 'r'",
            [pid],
        )
        return {name for (name,) in cursor.fetchall()}


# db_worker processes ------------------------------------------------------------------------


@dataclass
class DbWorker:
    id: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.id} did not exit:\n{self.output()}") from None


def _worker_environment(worker_id: str, media_root, bytecode: Path) -> dict[str, str]:
    """Production settings (the database task backend) pointed at the test database; the
    worker id doubles as the connection's application_name, to find its backend. Workers
    share a bytecode cache outside the project (starting Django uncompiled takes seconds)."""
    database = connection.settings_dict
    credentials = quote(database["USER"] or "")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"])
    host = quote(database["HOST"] or "localhost", safe="")  # a socket directory too
    port = f":{database['PORT']}" if database["PORT"] else ""
    url = (
        f"postgres://{credentials}@{host}{port}/{quote(database['NAME'])}"
        f"?application_name={worker_id}"
    )
    environment = {
        name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
    }
    return {
        **environment,
        "PYTHONPYCACHEPREFIX": str(bytecode),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "fault-tests-only-not-a-secret",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "EMAIL_URL": "consolemail://",
        "DEFAULT_FROM_EMAIL": "Channel Data Sync <noreply@localhost>",
        "SITE_URL": "http://localhost",
        "DJANGO_MEDIA_ROOT": str(media_root),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def worker_bytecode() -> Path:
    """Kept between test sessions, outside the project (Python checks it against sources)."""
    return Path(tempfile.gettempdir()) / "channel-data-sync-worker-bytecode"


@pytest.fixture
def db_workers(transactional_db, settings, tmp_path, worker_bytecode):
    """Start real `manage.py db_worker` processes on the test database. Whatever happens they
    are stopped (SIGTERM, then SIGKILL) and their backends ended before the database is
    flushed."""
    started: list[DbWorker] = []

    def start(worker_id: str, *options: str) -> DbWorker:
        worker_id = f"faults-{worker_id}"
        log = tmp_path / f"{worker_id}.log"
        with log.open("w") as output:
            process = subprocess.Popen(  # noqa: S603 (a fixed command line)
                [
                    sys.executable,
                    "manage.py",
                    "db_worker",
                    "--worker-id",
                    worker_id,
                    "--interval",
                    "0.05",
                    "--no-startup-delay",
                    "--no-reload",
                    *options,
                ],
                cwd=BASE_DIR,
                env=_worker_environment(worker_id, settings.MEDIA_ROOT, worker_bytecode),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        worker = DbWorker(worker_id, process, log)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in started:
            try:
                worker.process.wait(10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(10)
        # A killed worker's backend may outlive it (waiting for a lock): end it, so the flush
        # of the test database is not blocked. Only this test database's workers are touched.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE %s",
                ["faults-%"],
            )


# Data ---------------------------------------------------------------------------------------


def channel_manager(name: str):
    organization = OrganizationFactory(name=name)
    Adder.objects.create(organization=organization, name="Trenching", amount=1250)
    Adder.objects.create(
        organization=organization, name="Tile roof", amount=Decimal("0.35"), pricing="per_watt"
    )
    Equipment.objects.create(
        organization=organization,
        kind="module",
        manufacturer="REC",
        model="Alpha 410",
        unit_cost=265,
    )
    DefaultCosts.objects.filter(organization=organization).update(
        module_cost_per_watt=Decimal("0.42")
    )
    ProposalExpiration.objects.filter(organization=organization).update(days_valid=21)
    return organization


def link_partner(upstream, mode: str, name: str | None = None) -> Partnership:
    """A partner with an own adder, linked in ``mode`` (its link run is queued on commit)."""
    partner = OrganizationFactory(**({"name": name} if name else {}))
    Adder.objects.create(organization=partner, name="Tree removal", amount=900)
    return services.create_partnership(upstream, partner, by=None, **MODES[mode])


def partner_of(upstream, mode: str, name: str | None = None) -> Partnership:
    """A partner linked in ``mode`` in-process (the immediate task backend)."""
    partnership = link_partner(upstream, mode, name)
    assert SyncRun.objects.get(partnership=partnership).status == "succeeded"
    return partnership


def copy_of(partnership: Partnership, name: str) -> Adder:
    return Adder.objects.get(organization=partnership.downstream, name=name)


def save_amount(organization, name: str, amount) -> None:
    """The channel manager edits an adder (a plain save: the receivers fan it out)."""
    item = Adder.objects.get(organization=organization, name=name)
    item.amount = amount
    item.save()


def snapshot(organization) -> dict[str, list[dict]]:
    """Every row of every synced category of ``organization``, archived ones included."""
    rows = {}
    for category in registry.all():
        model = category.model
        if category.key == "logo":
            queryset = model.objects.filter(pk=organization.pk)
        else:
            manager = getattr(model, "all_objects", model._default_manager)
            queryset = manager.filter(organization=organization)
        rows[category.key] = list(queryset.order_by("pk").values())
    return rows


def adders_of(organization) -> list[tuple]:
    """The partner's adders, comparable across partners of the same mode."""
    return sorted(
        (
            item.name,
            item.pricing,
            item.amount,
            item.applied_by_default,
            item.is_archived,
            item.sync_state,
        )
        for item in Adder.all_objects.filter(organization=organization)
    )


def assert_mirrors_upstream(partnership: Partnership) -> None:
    """Every live upstream adder has exactly one live copy with its values, and no live copy
    points at an upstream item that is gone (docs/design.md §5.3, rule M4)."""
    upstream = {item.pk: item for item in Adder.objects.filter(organization=partnership.upstream)}
    copies = Adder.objects.filter(
        organization=partnership.downstream, synced_partnership=partnership
    )
    assert Counter(copy.synced_from_id for copy in copies) == Counter(upstream.keys()), (
        "live copies are not one per live upstream item"
    )
    for copy in copies:
        assert copy.synced_values() == upstream[copy.synced_from_id].synced_values()
        assert copy.sync_state == "synced"


def assert_settled(partnership: Partnership) -> None:
    """What the engine would do now (the mode's resync) writes nothing: the partner is in the
    state the mode requires."""
    plan = engine.preview(Partnership.objects.get(pk=partnership.pk), "resync")
    assert not plan.writes_anything, plan.summary()


def run_ids_of(task_result: DBTaskResult) -> list[int]:
    """The sync run ids a queued task carries (however its arguments are shaped)."""

    def ints(value) -> list[int]:
        if isinstance(value, bool):
            return []
        if isinstance(value, int):
            return [value]
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            return [number for element in value for number in ints(element)]
        return []

    return ints(task_result.args_kwargs)


@contextmanager
def held_up_in(worker: DbWorker, locked, trigger: Callable[[], object]) -> Iterator[int]:
    """Trigger a run and yield the pid of ``worker``'s backend once the run waits, mid-run,
    for the test's lock on the rows of ``locked``; the lock is released on exit."""
    with rows_locked(locked) as holder:
        trigger()
        yield wait_for(
            lambda: waiting_behind(holder, worker.id), f"{worker.id} to wait inside the run"
        )


def wait_until_finished(runs) -> None:
    wait_for(lambda: not runs.exclude(status__in=FINISHED).exists(), "the runs to finish")


def requeue(minutes: float) -> int:
    """One tick of `manage.py sync_requeue` (from cron): how many runs it requeued."""
    output = StringIO()
    call_command("sync_requeue", minutes=minutes, stdout=output)
    requeued = re.fullmatch(r"Requeued (\d+) stalled sync run\(s\)\.", output.getvalue().strip())
    assert requeued, output.getvalue()
    return int(requeued[1])


def requeue_and_drain(start_worker, stalled: int) -> None:
    """What the operator does after a worker died: `manage.py sync_requeue` (from cron), and
    a worker drains the queue."""
    assert requeue(minutes=0) == stalled
    finisher = start_worker("finisher", "--batch")  # exits once the queue is empty
    assert finisher.wait() == 0, finisher.output()


def stop(*workers: DbWorker) -> None:
    """Stop workers as a deployment does (SIGTERM: finish the current task, then exit)."""
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait() == 0, worker.output()


# 1. One fan-out drained by two worker processes ---------------------------------------------

#: Partners of the fan-out: more than one batch of runs per change (fan-outs are queued in
#: batches of 50 partners today), few enough to stay fast.
PARTNERS = 54


def test_fan_out_drained_by_two_worker_processes(db_workers, task_queue):
    """Attacks: one upstream change fanned out to many partners and drained by several
    `db_worker` processes at once (docs/design.md §7.3, §10). Two changes each fan out a run per
    partner. The test holds a lock on one partner's copy, so the work holding that partner stalls
    mid-apply: the other worker must then do all the rest and, finally, start that partner's
    other run while the first still holds it. Fails if two runs into one partner interleave
    (a copy would be updated twice, from the same stale value), if a task runs twice or a run
    is lost, if a worker does nothing, or if the result differs from the same changes applied
    in-process."""
    # A channel manager and a partner per mode, to apply the same changes in-process.
    twin = channel_manager("Helios Twin")
    twins = {mode: partner_of(twin, mode) for mode in MODES}

    task_queue("django_tasks_db.DatabaseBackend")
    workers = [db_workers("fan-out-1"), db_workers("fan-out-2")]
    helios = channel_manager("Helios Energy Partners")
    modes = ["non_exclusive", "flexible", "strict"] * (PARTNERS // 3)
    with transaction.atomic():  # one commit; the workers run the links it queues
        partnerships = [link_partner(helios, mode) for mode in modes]
    wait_until_finished(SyncRun.objects.all())
    copies = {p.pk: {copy_of(p, n).pk for n in ("Trenching", "Tile roof")} for p in partnerships}

    runs = SyncRun.objects.filter(partnership__upstream=helios, event="change")
    with rows_locked(Adder.objects.filter(pk=copy_of(partnerships[0], "Trenching").pk)):
        save_amount(helios, "Trenching", 1400)
        save_amount(helios, "Tile roof", Decimal("0.40"))
        assert runs.count() == 2 * PARTNERS
        # One worker waits for the test's lock inside the held partner's first run; the
        # other drains the rest, then waits for that partner in its second run.
        wait_for(lambda: len(waiting_backends()) >= 2, "both workers to wait on one partner")
    wait_until_finished(runs)
    unfinished = [TaskResultStatus.READY, TaskResultStatus.RUNNING]
    wait_for(lambda: not DBTaskResult.objects.filter(status__in=unfinished).exists(), "the queue")
    stop(*workers)

    assert Counter(runs.values_list("status", flat=True)) == {"succeeded": 2 * PARTNERS}
    queued = SyncRun.objects.filter(partnership__upstream=helios)  # the links and the changes
    assert set(queued.values_list("status", flat=True)) == {"succeeded"}
    tasks = list(DBTaskResult.objects.all())
    assert {task.status for task in tasks} == {TaskResultStatus.SUCCESSFUL}
    assert all(len(task.worker_ids) == 1 for task in tasks), "a task was claimed twice"
    assert Counter(pk for task in tasks for pk in run_ids_of(task)) == Counter(
        queued.values_list("pk", flat=True)
    ), "every run is queued and executed exactly once"
    assert {task.worker_ids[0] for task in tasks} == {worker.id for worker in workers}
    # A run applied twice would record the second time's (empty) counts over the first's.
    recorded = Counter(
        SyncChange.objects.filter(run__in=queued).values_list("run", "category", "action")
    )
    for run in queued:
        counts = {
            (run.pk, category, action): count
            for category, actions in run.counts.items()
            for action, count in actions.items()
        }
        assert counts == {key: n for key, n in recorded.items() if key[0] == run.pk}, run

    for partnership in partnerships:
        # Serialised: over the partner's two runs, each copy was updated exactly once.
        updated = SyncChange.objects.filter(
            run__partnership=partnership, category="adders", action="updated"
        ).values_list("item_id", flat=True)
        assert Counter(updated) == dict.fromkeys(copies[partnership.pk], 1), partnership
        assert_mirrors_upstream(partnership)

    task_queue("django.tasks.backends.immediate.ImmediateBackend")
    save_amount(twin, "Trenching", 1400)
    save_amount(twin, "Tile roof", Decimal("0.40"))
    for partnership in partnerships:
        expected = adders_of(twins[partnership.mode].downstream)
        assert adders_of(partnership.downstream) == expected, partnership.mode


def test_recorded_runs_into_one_partner_do_not_overlap_in_time(transactional_db):
    """Attacks: the sync history's start/end of two runs into one partner (docs/design.md §7.3, rule
    R5: runs never interleave; every run records its start and end). The first run is held mid-apply
    by the test's lock on a copy; the second waits for the partner meanwhile."""
    helios = channel_manager("Helios Energy Partners")
    partnership = partner_of(helios, "non_exclusive")
    with ThreadPoolExecutor(max_workers=2) as pool:
        with rows_locked(Adder.objects.filter(pk=copy_of(partnership, "Trenching").pk)):
            first = in_thread(pool, save_amount, helios, "Trenching", 1400)
            wait_for(lambda: len(waiting_backends()) == 1, "the first run to wait")
            second = in_thread(pool, save_amount, helios, "Tile roof", Decimal("0.40"))
            wait_for(lambda: len(waiting_backends()) == 2, "the second run to wait")
        first.result(TIMEOUT)
        second.result(TIMEOUT)
    runs = sorted(
        SyncRun.objects.filter(partnership=partnership, event="change"),
        key=lambda run: run.finished_at,
    )
    if [run.status for run in runs] != ["succeeded", "succeeded"]:
        pytest.fail(f"the runs did not both succeed: {runs}")  # not the expected failure
    earlier, later = runs
    assert later.started_at >= earlier.finished_at, "recorded runs into one partner overlap"


# 2. A worker killed in the middle of a run --------------------------------------------------


@pytest.fixture
def flexible_partner(transactional_db) -> Partnership:
    """Sunrise syncs from Helios in flexible mode, with its own adder and an edited copy."""
    helios = channel_manager("Helios Energy Partners")
    partnership = partner_of(helios, "flexible", name="Sunrise Solar")
    save_amount(partnership.downstream, "Trenching", 1300)  # edited locally: diverged
    return partnership


def switch_to_strict(partnership: Partnership) -> Callable[[], object]:
    """The channel manager turns Allow Edit off: a `link` run matching every category."""
    return lambda: services.update_flags(partnership, by=None, **STRICT)


def assert_strict_applied(partnership: Partnership) -> None:
    partner = partnership.downstream
    assert_mirrors_upstream(partnership)  # the edited copy was overwritten
    assert Adder.all_objects.get(organization=partner, name="Tree removal").is_archived
    assert ProposalExpiration.objects.get(organization=partner).days_valid == 21
    assert DefaultCosts.objects.get(organization=partner).module_cost_per_watt == Decimal("0.42")
    assert_settled(partnership)


def test_worker_killed_mid_run_changes_nothing_and_requeue_completes_it(
    flexible_partner, db_workers, task_queue
):
    """Attacks: one run applies wholly or not at all, even when its worker process dies
    (docs/design.md §7.3, rules R4 and R10), and `sync_requeue` recovers the run. The mode switch
    matches every category; the run is held on the partner's proposal expiration (a late category)
    after it has already written the partner's adders, and the worker is SIGKILLed there. Fails if
    anything the run wrote before that point survives (committed per category or per
    statement), if the run is recorded as finished, or if requeue + a worker cannot finish
    it."""
    partnership = flexible_partner
    partner = partnership.downstream
    before = snapshot(partner)
    task_queue("django_tasks_db.DatabaseBackend")

    doomed = db_workers("doomed")
    locked = ProposalExpiration.objects.filter(organization=partner)
    with held_up_in(doomed, locked, switch_to_strict(partnership)) as pid:
        # Mid-run: past the adders (written in its open transaction, or already committed
        # were the run not atomic), waiting for the proposal expiration.
        past_adders = Adder._meta.db_table in tables_written_by(pid)
        assert past_adders or snapshot(partner) != before, "not yet mid-run"
        doomed.process.kill()
        assert doomed.wait() == -signal.SIGKILL
    # Its backend notices the client is gone once the lock is released, and rolls back.
    wait_for(lambda: not backend_exists(pid), "the killed worker's backend to end")

    assert snapshot(partner) == before
    run = SyncRun.objects.filter(partnership=partnership).latest("pk")
    assert (run.event, run.status) == ("link", "running")

    requeue_and_drain(db_workers, stalled=1)
    run.refresh_from_db()
    assert (run.status, run.mode, run.error) == ("succeeded", "strict", "")
    assert_strict_applied(partnership)


def test_worker_killed_mid_fan_out_batch_changes_no_partner(db_workers, task_queue):
    """Attacks: the same, for a fan-out whose runs into several partners are applied
    together by one task. One upstream save archives an item and changes another; the batch
    is held on the last partner's copy and its worker SIGKILLed. Fails if any partner keeps
    a write of the batch, or if requeue does not finish every one of its runs."""
    helios = channel_manager("Helios Energy Partners")
    partnerships = [partner_of(helios, mode) for mode in MODES]
    before = {p.pk: snapshot(p.downstream) for p in partnerships}
    task_queue("django_tasks_db.DatabaseBackend")

    def change() -> None:
        with transaction.atomic():
            Adder.objects.get(organization=helios, name="Tile roof").archive()
            save_amount(helios, "Trenching", 1400)

    doomed = db_workers("doomed")
    locked = Adder.objects.filter(pk=copy_of(partnerships[-1], "Trenching").pk)
    with held_up_in(doomed, locked, change) as pid:
        doomed.process.kill()
        assert doomed.wait() == -signal.SIGKILL
    wait_for(lambda: not backend_exists(pid), "the killed worker's backend to end")

    assert {p.pk: snapshot(p.downstream) for p in partnerships} == before
    runs = SyncRun.objects.filter(partnership__in=partnerships, event="change")
    assert set(runs.values_list("status", flat=True)) <= {"queued", "running"}

    requeue_and_drain(db_workers, stalled=len(partnerships))
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}
    for partnership in partnerships:
        assert_mirrors_upstream(partnership)
        assert Adder.all_objects.get(
            organization=partnership.downstream, name="Tile roof"
        ).is_archived


def test_worker_killed_waiting_for_its_partner_is_requeued_once_its_heartbeat_stops(
    db_workers, task_queue
):
    """Attacks: rule R10's heartbeat from the other side. A worker waits for its partner's row
    (another transaction holds it) and is SIGKILLed there: its heartbeat stops. Fails if
    `sync_requeue` takes the run for stalled while the heartbeat is fresh, does not requeue it
    once the heartbeat is older than the cutoff, requeues it on every tick, or if the run is
    then not applied exactly once."""
    helios = channel_manager("Helios Energy Partners")
    partnership = partner_of(helios, "non_exclusive")
    task_queue("django_tasks_db.DatabaseBackend")

    doomed = db_workers("doomed")
    partner = Organization.objects.filter(pk=partnership.downstream_id)
    with held_up_in(doomed, partner, lambda: save_amount(helios, "Trenching", 1400)):
        run = SyncRun.objects.get(partnership=partnership, event="change")
        assert run.status == "running"
        assert requeue(minutes=1) == 0  # its worker claimed it moments ago
        doomed.process.kill()
        assert doomed.wait() == -signal.SIGKILL
        killed, cutoff = timezone.now(), 1  # second
        wait_for(
            lambda: timezone.now() - killed > timedelta(seconds=cutoff),
            "its last heartbeat to be older than the cutoff",
        )
        assert requeue(minutes=cutoff / 60) == 1
        assert requeue(minutes=cutoff / 60) == 0

    finisher = db_workers("finisher", "--batch")
    assert finisher.wait() == 0, finisher.output()
    run.refresh_from_db()
    assert (run.status, run.counts) == ("succeeded", {"adders": {"updated": 1}})
    assert SyncChange.objects.filter(run=run).count() == 1
    assert_mirrors_upstream(partnership)


# 3. The database connection dropped mid-run -------------------------------------------------


def test_connection_dropped_mid_run_is_recorded_failed_and_retry_succeeds(
    flexible_partner, db_workers, task_queue
):
    """Attacks: a failed run is marked failed with its error, the data stays as before, and
    it can be retried (docs/design.md §7.3, rule R9), when the failure is the database connection
    itself. The run is held as in the killed-worker test and its backend ended with
    pg_terminate_backend. Fails if the failure is not recorded (the run left "running"), if
    anything was applied, or if the retry does not complete the sync; also if the worker process
    dies of it."""
    partnership = flexible_partner
    partner = partnership.downstream
    before = snapshot(partner)
    task_queue("django_tasks_db.DatabaseBackend")

    worker = db_workers("dropped")
    locked = ProposalExpiration.objects.filter(organization=partner)
    with held_up_in(worker, locked, switch_to_strict(partnership)) as pid:
        run = SyncRun.objects.filter(partnership=partnership).latest("pk")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        # Recorded while the test still holds its lock: the failure needs no partner row.
        wait_for(
            lambda: SyncRun.objects.filter(pk=run.pk, status="failed").exists(),
            "the run to be recorded as failed",
        )

    run.refresh_from_db()
    assert "terminating connection" in run.error, run.error
    assert run.finished_at is not None
    assert snapshot(partner) == before
    assert worker.process.poll() is None, "the worker died with its connection"

    retried = engine.retry(run)
    assert (retried.status, retried.retry_of_id) == ("succeeded", run.pk)
    assert_strict_applied(partnership)


# 4. An upstream item deleted or archived while a run is in flight ---------------------------


def test_upstream_item_removed_while_a_run_is_in_flight(transactional_db, subtests):
    """Attacks: docs/design.md §5.3 under a race. A change run (adding "Critter guard", changing
    "Trenching") has read the upstream items and waits, mid-apply, for the test's lock on the
    partner's Trenching copy; meanwhile the channel manager deletes or archives the item the
    run is creating or updating. Once released, the run and the follow-up change run the
    removal triggers must leave no live copy of the item, hard-delete nothing downstream and
    fail no run; an archived item restored upstream comes back (docs/design.md, rule M7).
    (Subtests, not parameters: one database flush for the four races.)"""
    for name in ["Critter guard", "Trenching"]:  # the item the run creates / updates
        for removal in ["delete", "archive"]:
            with subtests.test(item=name, removal=removal):
                race_removal(name, removal)


def race_removal(name: str, removal: str) -> None:
    helios = channel_manager(f"Helios ({removal} {name})")
    partnership = partner_of(helios, "non_exclusive")
    partner = partnership.downstream
    rows_before = set(Adder.all_objects.filter(organization=partner).values_list("pk", flat=True))

    def change() -> None:
        with transaction.atomic():
            Adder.objects.create(organization=helios, name="Critter guard", amount=350)
            save_amount(helios, "Trenching", 1400)

    def remove() -> None:
        upstream_item = Adder.objects.get(organization=helios, name=name)
        if removal == "delete":
            upstream_item.delete()
        else:
            upstream_item.archive(reason="No longer offered")

    with ThreadPoolExecutor(max_workers=2) as pool:
        with rows_locked(Adder.objects.filter(pk=copy_of(partnership, "Trenching").pk)) as holder:
            changing = in_thread(pool, change)
            wait_for(lambda: waiting_behind(holder), "the change run to wait mid-apply")
            removing = in_thread(pool, remove)
            # The removal (or the follow-up run it triggers) now waits behind the first run.
            wait_for(
                lambda: len(waiting_backends()) >= 2 or removing.done(), "the removal to queue"
            )
        changing.result(TIMEOUT)
        removing.result(TIMEOUT)

    assert_mirrors_upstream(partnership)
    assert not Adder.objects.filter(organization=partner, name=name).exists()
    after = set(Adder.all_objects.filter(organization=partner).values_list("pk", flat=True))
    assert rows_before <= after, "a downstream item was hard-deleted"
    runs = SyncRun.objects.filter(partnership=partnership, event="change")
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}

    if removal == "archive":
        Adder.all_objects.get(organization=helios, name=name).restore()
        assert_mirrors_upstream(partnership)
        assert Adder.objects.get(organization=partner, name=name).sync_state == "synced"


# 5. Two admins saving flags at the same moment ----------------------------------------------


def save_through_service(partnership, user, flags, version) -> tuple[bool, str]:
    try:
        services.update_flags(partnership, by=user, expected_version=version, **flags)
    except ValidationError as error:
        return False, " ".join(error.messages)
    return True, ""


def save_through_view(partnership, user, flags, version) -> tuple[bool, str]:
    """Post the Partnership Details edit form, as the admin's browser does."""
    client = Client()
    client.force_login(user)
    url = reverse("partnerships:edit", args=[partnership.upstream.slug, partnership.pk])
    data = {"version": version, **{name: "on" for name, value in flags.items() if value}}
    response = client.post(url, data)
    if response.status_code == 302:
        return True, ""
    assert response.status_code == 400
    return False, response.content.decode()


@pytest.mark.parametrize("save", [save_through_service, save_through_view], ids=["service", "view"])
def test_two_admins_save_flags_at_the_same_moment(transactional_db, save):
    """Attacks: the "changed meanwhile" check (docs/design.md §1.5, rule D10) under a real race. Two
    admins opened the flags at the same version and save different modes at the same moment (a
    barrier, and a lock on the partnership row so both saves are in flight before either commits).
    Fails if both saves win (a lost update), if the loser's refusal is not the stale-edit
    message, or if the loser's mode change starts a sync."""
    helios = channel_manager("Helios Energy Partners")
    partnership = partner_of(helios, "flexible")
    admins = {
        "strict": MembershipFactory(organization=helios, role="admin").user,
        "non_exclusive": MembershipFactory(organization=helios, role="admin").user,
    }
    opened = partnership.version
    earlier_runs = set(SyncRun.objects.values_list("pk", flat=True))
    barrier = threading.Barrier(len(admins))

    def save_at_once(mode: str) -> tuple[bool, str]:
        barrier.wait(TIMEOUT)
        return save(partnership, admins[mode], MODES[mode], opened)

    with ThreadPoolExecutor(max_workers=len(admins)) as pool:
        with rows_locked(Partnership.objects.filter(pk=partnership.pk)):
            saves = {mode: in_thread(pool, save_at_once, mode) for mode in admins}
            wait_for(lambda: len(waiting_backends()) >= 2, "both saves to be in flight")
        outcomes = {mode: future.result(TIMEOUT) for mode, future in saves.items()}

    winners = [mode for mode, (saved, _) in outcomes.items() if saved]
    assert len(winners) == 1, outcomes
    (winner,) = winners
    (loser,) = set(admins) - {winner}
    assert "changed meanwhile" in outcomes[loser][1]

    partnership.refresh_from_db()
    assert (partnership.mode, partnership.version) == (winner, opened + 1)
    assert partnership.updated_by == admins[winner]
    new_runs = SyncRun.objects.exclude(pk__in=earlier_runs)
    assert [(run.event, run.mode, run.started_by, run.status) for run in new_runs] == [
        ("link", winner, admins[winner], "succeeded")
    ]
