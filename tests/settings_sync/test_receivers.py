"""Domain events become runs: a channel manager's edit records its partners' runs in its own
transaction, so a committed change can never be left without a run (docs/design.md §7.3)."""

from __future__ import annotations

import pytest
from django.db import transaction

from partnerships import services
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder, DefaultCosts
from tests.factories import AdderFactory, OrganizationFactory, make_partnership

pytestmark = pytest.mark.django_db

SYNC = {"data_sync_enabled": True}


@pytest.fixture
def channel_manager():
    return OrganizationFactory(name="Helios Energy Partners")


@pytest.fixture
def partnerships(channel_manager):
    return [make_partnership(channel_manager, **SYNC) for _ in range(3)]


def add_then_fail(channel_manager, name: str) -> None:
    with transaction.atomic():
        AdderFactory(organization=channel_manager, name=name)
        raise RuntimeError("the request failed after the save")


def change_runs():
    return SyncRun.objects.filter(event="change")


def test_an_edit_records_its_runs_before_it_commits(
    channel_manager, partnerships, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        AdderFactory(organization=channel_manager, name="Trenching")
        # Not committed yet, and already recorded: if the commit succeeds, so do the runs.
        assert change_runs().filter(status="queued").count() == 3
    assert callbacks  # enqueued only once the edit commits


def test_an_edit_rolled_back_leaves_no_run(channel_manager, partnerships):
    with pytest.raises(RuntimeError):
        add_then_fail(channel_manager, "Trenching")
    assert not change_runs().exists()
    assert not Adder.objects.exists()


def test_many_edits_in_one_transaction_make_one_run_per_partner(
    channel_manager, partnerships, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for n in range(20):
            AdderFactory(organization=channel_manager, name=f"Adder {n}")
        costs = DefaultCosts.objects.get(organization=channel_manager)
        costs.module_cost_per_watt = 1
        costs.save()  # another category: runs of its own
    assert change_runs().count() == 6
    assert set(change_runs().values_list("status", flat=True)) == {"succeeded"}
    for partnership in partnerships:
        assert Adder.objects.filter(organization=partnership.downstream).count() == 20


def test_an_edit_after_a_rolled_back_savepoint_still_records_runs(
    channel_manager, partnerships, django_capture_on_commit_callbacks
):
    """The first edit's runs vanish with its savepoint; the second edit must not count on
    them."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with pytest.raises(RuntimeError):
            add_then_fail(channel_manager, "Trenching")
        AdderFactory(organization=channel_manager, name="Tile roof")
    assert change_runs().count() == 3
    for partnership in partnerships:
        names = Adder.objects.filter(organization=partnership.downstream).values_list("name")
        assert list(names) == [("Tile roof",)]


def test_an_edit_after_its_runs_started_records_new_ones(
    channel_manager, partnerships, django_capture_on_commit_callbacks
):
    """Runs already under way may have read the data before this edit: new runs are
    recorded."""
    with django_capture_on_commit_callbacks(execute=True):
        AdderFactory(organization=channel_manager, name="Trenching")
    with django_capture_on_commit_callbacks(execute=True):
        AdderFactory(organization=channel_manager, name="Tile roof")
    assert change_runs().count() == 6
    for partnership in partnerships:
        assert Adder.objects.filter(organization=partnership.downstream).count() == 2


def test_partners_without_sync_get_no_run(channel_manager):
    make_partnership(channel_manager)
    ended = make_partnership(channel_manager, **SYNC)
    services.end_partnership(ended, by=None)
    AdderFactory(organization=channel_manager)
    assert not change_runs().exists()


def test_a_new_organization_gets_every_singleton_row_with_one_insert_each():
    """A new organization's singleton rows are written without reading anything first: it
    has none yet, and no partner can follow it yet (docs/design.md §3.1)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from organizations.models import Organization
    from settings_sync import registry

    with CaptureQueriesContext(connection) as queries:
        organization = Organization.objects.create(name="Sunrise Solar")
    statements = [q["sql"] for q in queries.captured_queries]
    singletons = [c for c in registry.all() if c.is_singleton]
    tables = [f'"{category.model._meta.db_table}"' for category in singletons]
    reads = [sql for sql in statements if sql.startswith("SELECT")]
    assert not [sql for sql in reads if any(table in sql for table in tables)], reads
    inserts = [sql for sql in statements if sql.startswith("INSERT")]
    assert len(inserts) == 1 + len(singletons), inserts
    for category in singletons:
        assert category.model.objects.filter(organization=organization).count() == 1
