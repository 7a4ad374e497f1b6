"""Syncs travel down a network (docs/design.md §14): a run that writes into B starts a `change`
run for each of B's partnerships with sync on, recorded with B's run, for the categories it
changed; chained copies point at the copy above them; a run that writes nothing, or fails,
starts nothing; `sync_requeue` finishes a cascade whose tasks were lost."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from settings_sync import engine
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder, Equipment
from settings_sync.proposal.models import ProposalExpiration
from settings_sync.tasks import run_sync, run_sync_batch
from tests.factories import AdderFactory, EquipmentFactory, OrganizationFactory, make_partnership
from tests.settings_sync.catalogue_data import FLEXIBLE, NON_EXCLUSIVE, STRICT

pytestmark = pytest.mark.django_db

DATABASE_QUEUE = "django_tasks_db.DatabaseBackend"


@pytest.fixture
def drain(django_capture_on_commit_callbacks):
    """Run a block and everything it queued (and what that queued, …) with the immediate
    backend, as production's workers would once the block commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def chain(drain, *flags: dict) -> list:
    """Organizations A → B → … linked with the given flags, each link applied."""
    organizations = [OrganizationFactory(name=f"Level {n}") for n in range(len(flags) + 1)]
    with drain():
        AdderFactory(organization=organizations[0], name="Trenching", amount=1250)
    for level, link_flags in enumerate(flags):
        with drain():
            make_partnership(organizations[level], organizations[level + 1], **link_flags)
    return organizations


def trenching(organization) -> Adder:
    return Adder.objects.get(organization=organization, name="Trenching")


def runs_into(organization) -> list[SyncRun]:
    return list(SyncRun.objects.filter(partnership__downstream=organization).order_by("pk"))


def test_a_change_at_the_top_reaches_the_bottom_of_a_strict_chain(drain):
    a, b, c, d = chain(drain, STRICT, STRICT, STRICT)
    with drain():
        Adder.objects.filter(organization=a).update(amount=1400)
        change = engine.run(a.downstream_partnerships.get(), "change", categories=["adders"])

    assert [trenching(org).amount for org in (b, c, d)] == [1400] * 3
    into_c, into_d = runs_into(c)[-1], runs_into(d)[-1]
    assert (into_c.event, into_c.status, into_c.categories) == ("change", "succeeded", ["adders"])
    assert into_c.caused_by == change
    assert into_d.caused_by == into_c
    assert into_c.counts == {"adders": {"updated": 1}}
    assert "Level 1 received changes from Level 0" in into_c.trigger


def test_chained_copies_point_at_the_copy_above(drain):
    a, b, c = chain(drain, STRICT, NON_EXCLUSIVE)
    assert trenching(c).synced_from == trenching(b)
    assert trenching(b).synced_from == trenching(a)
    assert trenching(c).synced_partnership.upstream == b


def test_an_edit_that_bypasses_signals_travels_with_the_next_run(drain):
    """The runs below work from the data as it is when they run, like every run."""
    a, _b, c = chain(drain, FLEXIBLE, FLEXIBLE)
    with drain():
        Adder.objects.filter(organization=a).update(name="Trenching (deep)")
        engine.run(a.downstream_partnerships.get(), "change", categories=["adders"])
    assert Adder.objects.get(organization=c).name == "Trenching (deep)"


def test_a_run_that_writes_nothing_starts_nothing(drain):
    a, _b, _c = chain(drain, STRICT, STRICT)
    before = SyncRun.objects.count()
    with drain():
        resync = engine.run(a.downstream_partnerships.get(), "resync")
    assert resync.status == "succeeded"
    assert not resync.caused.exists()
    assert SyncRun.objects.count() == before + 1


def test_only_the_categories_that_changed_travel_and_only_where_they_do_something(drain):
    """A → B strict, B → C flexible, B → D strict: a singleton changed in A reaches B and D
    (strict matches singletons) but starts no run into C (merge leaves singletons alone)."""
    a, b, c = chain(drain, STRICT, FLEXIBLE)
    d = OrganizationFactory(name="Level 2b")
    with drain():
        make_partnership(b, d, **STRICT)
    ProposalExpiration.objects.filter(organization=a).update(days_valid=12)
    with drain():
        change = engine.run(a.downstream_partnerships.get(), "change")

    (started,) = change.caused.all()
    assert (started.partnership.downstream, started.categories) == (d, ["proposal_expiration"])
    assert ProposalExpiration.objects.get(organization=d).days_valid == 12
    assert ProposalExpiration.objects.get(organization=c).days_valid != 12


def test_one_run_below_per_partnership_for_every_category_that_changed(drain):
    """Coalesced: a link that writes two categories into B starts one run into C."""
    b, c = OrganizationFactory(), OrganizationFactory()
    with drain():
        make_partnership(b, c, **FLEXIBLE)
    a = OrganizationFactory()
    AdderFactory(organization=a, name="Trenching")
    EquipmentFactory(organization=a, model="Alpha 405")
    with drain():
        partnership = make_partnership(a, b, **NON_EXCLUSIVE)

    link = partnership.sync_runs.get()
    (started,) = link.caused.all()
    assert sorted(started.categories) == ["adders", "equipment"]
    assert Equipment.objects.get(organization=c).model == "Alpha 405"
    assert trenching(c).synced_from == trenching(b)


def test_a_fan_out_batch_starts_the_runs_below_each_partner(drain):
    """A batch of runs into several partners records the cascade of each, batched again."""
    a = OrganizationFactory(name="Top")
    AdderFactory(organization=a, name="Trenching", amount=1)
    dealers = [OrganizationFactory() for _ in range(3)]
    installers = {dealer.pk: [OrganizationFactory() for _ in range(2)] for dealer in dealers}
    with drain():
        for dealer in dealers:
            make_partnership(a, dealer, **STRICT)
            for installer in installers[dealer.pk]:
                make_partnership(dealer, installer, **FLEXIBLE)
    with drain():
        trench = trenching(a)
        trench.amount = 2
        trench.save()

    for dealer in dealers:
        (into_dealer,) = runs_into(dealer)[1:]
        below = into_dealer.caused.all()
        assert {run.partnership.downstream for run in below} == set(installers[dealer.pk])
        for installer in installers[dealer.pk]:
            assert trenching(installer).amount == 2


def test_a_failed_run_starts_nothing_below_until_it_is_retried(drain):
    a, _b, c = chain(drain, STRICT, STRICT)
    Adder.objects.filter(organization=a).update(amount=1400)
    waiting = engine.schedule_record(a.downstream_partnerships.get(), "change")

    def fail_on_history(execute, sql, params, many, context):
        if "settings_sync_syncchange" in sql and sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("connection lost while writing the history")
        return execute(sql, params, many, context)

    before = SyncRun.objects.count()
    with drain(), connection.execute_wrapper(fail_on_history):
        failed = engine.execute(waiting)
    assert failed.status == "failed"
    assert SyncRun.objects.count() == before
    assert trenching(c).amount == 1250

    with drain():
        retried = engine.retry(failed)
    assert retried.caused.get().status == "succeeded"
    assert trenching(c).amount == 1400


def test_the_runs_below_are_recorded_with_the_run_and_requeue_finishes_them(drain, task_queue):
    """The worker of B's run dies right after its commit, before the runs below reach the
    queue: they are recorded (queued) with B's run, so `sync_requeue` sends them."""
    a, _b, c = chain(drain, STRICT, STRICT)
    task_queue(DATABASE_QUEUE)
    Adder.objects.filter(organization=a).update(amount=1400)
    waiting = engine.schedule_record(a.downstream_partnerships.get(), "change")
    assert run_sync.call(waiting.pk) == "succeeded"
    (below,) = SyncRun.objects.get(pk=waiting.pk).caused.all()
    assert below.status == "queued"
    DBTaskResult.objects.all().delete()  # the tasks were lost with the worker

    SyncRun.objects.filter(pk=below.pk).update(created_at=timezone.now() - timedelta(hours=1))
    output = StringIO()
    call_command("sync_requeue", minutes=15, stdout=output)
    assert output.getvalue().strip() == "Requeued 1 stalled sync run(s)."
    (task,) = DBTaskResult.objects.all()
    assert run_sync.call(*task.args_kwargs["args"]) == "succeeded"
    assert trenching(c).amount == 1400


def test_the_runs_below_are_enqueued_in_batches(drain, task_queue):
    a = OrganizationFactory()
    AdderFactory(organization=a, name="Trenching", amount=1)
    b = OrganizationFactory()
    installers = [OrganizationFactory() for _ in range(3)]
    with drain():
        make_partnership(a, b, **STRICT)
        for installer in installers:
            make_partnership(b, installer, **STRICT)
    task_queue(DATABASE_QUEUE)
    Adder.objects.filter(organization=a).update(amount=2)
    waiting = engine.schedule_record(a.downstream_partnerships.get(), "change")
    with drain():
        assert run_sync.call(waiting.pk) == "succeeded"
    (task,) = DBTaskResult.objects.filter(task_path__endswith=".run_sync_batch")
    (run_ids,) = task.args_kwargs["args"]
    assert run_sync_batch.call(run_ids) == {"succeeded": 3}
    assert {trenching(installer).amount for installer in installers} == {2}


#: What one `change` run of one category costs, whatever the number of items (looking for
#: partnerships below included; the partnership's overrides come with the run's read, and on
#: PostgreSQL that read and the bound on the wait for the partner's lock with the lock, and
#: the mark of the drift counts, the look below and the run's outcome are one text; the
#: category read as three queries: the upstream items, the partner's plain copies, its other
#: items); starting runs below costs two more: the overrides of the partnerships found there,
#: and the insert of the runs.
QUERIES_OF_A_RUN = 11 if connection.vendor == "postgresql" else 13


@pytest.mark.parametrize("items", [1, 20])
def test_queries_of_a_run_and_its_cascade_do_not_depend_on_the_number_of_items(
    drain, items, django_assert_num_queries
):
    a, _b, c = chain(drain, STRICT, STRICT)
    with drain():
        for n in range(items):
            AdderFactory(organization=a, name=f"Extra {n}")
    Adder.objects.filter(organization=a).update(amount=7)
    into_b = engine.schedule_record(
        a.downstream_partnerships.get(), "change", categories=["adders"]
    )
    with django_assert_num_queries(QUERIES_OF_A_RUN + 2):
        engine.execute(into_b)
    into_c = into_b.caused.get()
    with django_assert_num_queries(QUERIES_OF_A_RUN):
        engine.execute(into_c)
    assert {adder.amount for adder in Adder.objects.filter(organization=c)} == {7}
    assert Adder.objects.filter(organization=c).count() == items + 1


def test_two_paths_report_the_second_paths_item_once_until_a_side_changes_it(drain):
    """A → B → C and A → C, all non-exclusive: C keeps the copy it received first (through
    B); A's own path reports a conflict once, not on every run, and again once A changes it."""
    a, b, c = chain(drain, NON_EXCLUSIVE, NON_EXCLUSIVE)
    with drain():
        direct = make_partnership(a, c, **NON_EXCLUSIVE)

    def conflicts() -> int:
        return SyncChange.objects.filter(run__partnership=direct, action="conflict").count()

    assert trenching(c).synced_partnership.upstream == b
    assert conflicts() == 1
    with drain():
        again = engine.run(direct, "change")
    assert again.counts == {}
    assert conflicts() == 1
    with drain():
        item = trenching(a)
        item.amount = 1300
        item.save()  # travels through B (C's copy follows) and runs A → C again
    assert trenching(c).amount == 1300
    assert conflicts() == 2


def test_an_item_declined_through_one_path_stays_declined_through_the_other(drain):
    """A → B → C and A → C (non-exclusive): C deletes the copy it received through B; A's
    next run into C does not bring the same item back (docs/design.md §14.4)."""
    a, _b, c = chain(drain, NON_EXCLUSIVE, NON_EXCLUSIVE)
    with drain():
        direct = make_partnership(a, c, **NON_EXCLUSIVE)
    with drain():
        trenching(c).archive(reason="not for us")
    with drain():
        again = engine.run(direct, "change")
    assert again.counts == {"adders": {"kept_local": 1}}
    assert not Adder.objects.filter(organization=c, name="Trenching").exists()
