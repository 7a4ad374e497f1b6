"""The values of a first copy's ``created`` history rows (docs/design.md §7.5).

On PostgreSQL one partnership's first copy writes its ``created`` rows without their values:
each copy holds them in its baseline until that first changes, when the database writes them
into the row. Whatever happens to the copy afterwards, the run page and the admin show the
values the copy was created with."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from partnerships import services
from settings_sync import conflicts, history_values, registry
from settings_sync.items import baseline_name
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder
from tests.factories import (
    AdderFactory,
    ComparableValueFactory,
    EquipmentFactory,
    MembershipFactory,
    OrganizationFactory,
    PersonaFactory,
    RateEscalationFactory,
    UserFactory,
    make_partnership,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}
CREATED = SyncChange.Action.CREATED


@pytest.fixture
def linked(django_capture_on_commit_callbacks):
    """A channel manager with two adders, linked to a new partner (flexible): its link run
    copied them by one partnership's first copy."""
    upstream = OrganizationFactory(name="Helios Energy Partners")
    AdderFactory(organization=upstream, name="Trenching", amount=Decimal("1250.00"))
    AdderFactory(organization=upstream, name="Tile roof", amount=Decimal("0.35"))
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(upstream, OrganizationFactory(), **FLEXIBLE)
    return partnership


def created_rows(partnership) -> dict[str, SyncChange]:
    """The link run's ``created`` rows by label, as stored."""
    run = SyncRun.objects.get(partnership=partnership, event="link")
    return {c.label: c for c in run.changes.filter(action=CREATED)}


def shown(partnership) -> dict[str, dict]:
    """The values each ``created`` row of the link run shows."""
    rows = list(created_rows(partnership).values())
    history_values.fill(rows)
    return {row.label: row.after for row in rows}


def copy_of(partnership, name="Trenching") -> Adder:
    return Adder.all_objects.get(organization=partnership.downstream, name=name)


AT_CREATION = {
    "Trenching": {
        "name": "Trenching",
        "pricing": "fixed",
        "amount": 1250.0,
        "applied_by_default": False,
    },
    "Tile roof": {
        "name": "Tile roof",
        "pricing": "fixed",
        "amount": 0.35,
        "applied_by_default": False,
    },
}


def test_a_first_copys_rows_are_written_without_values_and_show_the_copys(linked):
    rows = created_rows(linked)
    assert {label: row.after for label, row in rows.items()} == {
        "Trenching": None,
        "Tile roof": None,
    }
    assert copy_of(linked).created_change_id == rows["Trenching"].pk
    assert shown(linked) == AT_CREATION


def test_an_edit_of_the_partners_own_values_leaves_them_in_the_copy(linked):
    copy = copy_of(linked)
    copy.amount = Decimal("999.00")
    copy.name = "Trenching (long)"
    copy.save()
    assert created_rows(linked)["Trenching"].after is None  # the baseline did not move
    assert shown(linked) == AT_CREATION


def test_an_upstream_change_keeps_the_values_of_the_creation(
    linked, django_capture_on_commit_callbacks
):
    source = Adder.objects.get(organization=linked.upstream, name="Trenching")
    source.amount = Decimal("1400.00")
    with django_capture_on_commit_callbacks(execute=True):
        source.save()  # the change run moves the copy's values and baseline
    assert copy_of(linked).amount == Decimal("1400.00")
    assert created_rows(linked)["Trenching"].after == AT_CREATION["Trenching"]  # written in
    assert copy_of(linked).created_change_id is None
    assert shown(linked) == AT_CREATION
    update = SyncChange.objects.get(run__partnership=linked, action="updated")
    assert (Decimal(update.before["amount"]), Decimal(update.after["amount"])) == (1250, 1400)


@pytest.mark.parametrize("decision", ["keep_local", "take_upstream"])
def test_a_partners_decision_keeps_the_values_of_the_creation(
    linked, decision, django_capture_on_commit_callbacks
):
    copy = copy_of(linked)
    copy.amount = Decimal("1300.00")
    copy.save()
    source = Adder.objects.get(organization=linked.upstream, name="Trenching")
    source.amount = Decimal("1400.00")
    with django_capture_on_commit_callbacks(execute=True):
        source.save()  # kept the partner's edit: an update waits
    assert created_rows(linked)["Trenching"].after is None  # nothing moved its baseline yet
    with django_capture_on_commit_callbacks(execute=True):
        getattr(conflicts, decision)(copy_of(linked), by=None)
    assert created_rows(linked)["Trenching"].after == AT_CREATION["Trenching"]
    assert shown(linked) == AT_CREATION


def test_ending_the_partnership_keeps_the_values_of_the_creation(
    linked, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.end_partnership(linked, by=None)  # detached: the baselines are emptied
    assert copy_of(linked).synced_partnership_id is None
    assert shown(linked) == AT_CREATION
    assert all(row.after is not None for row in created_rows(linked).values())


def test_a_deleted_copy_leaves_the_values_of_its_creation(linked):
    copy_of(linked, "Tile roof").delete()
    assert created_rows(linked)["Tile roof"].after == AT_CREATION["Tile roof"]
    assert created_rows(linked)["Trenching"].after is None


FACTORIES = {
    "equipment": lambda o: EquipmentFactory(organization=o, rating=Decimal("410.00")),
    "adders": lambda o: AdderFactory(organization=o),
    "personas": lambda o: PersonaFactory(
        organization=o, description="Two adults, a heat pump", monthly_profile=[8, 9] * 6
    ),
    "rate_escalations": lambda o: RateEscalationFactory(organization=o),
    "comparable_values": lambda o: ComparableValueFactory(organization=o),
}


@pytest.mark.parametrize(
    "category", [c for c in registry.all() if c.is_collection], ids=lambda c: c.key
)
def test_any_move_of_any_baseline_writes_every_value_in(
    category, django_capture_on_commit_callbacks
):
    """Each synced field's baseline, moved alone by a plain statement, writes the values of
    the creation into the row first: the database's triggers know every synced field of
    every collection (a migration that changes them must change the triggers)."""
    upstream = OrganizationFactory()
    fields = category.synced_fields
    for _ in fields:
        FACTORIES[category.key](upstream)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(upstream, OrganizationFactory(), **FLEXIBLE)
    run = SyncRun.objects.get(partnership=partnership, event="link")
    rows = list(run.changes.order_by("upstream_item_id"))
    assert [row.after for row in rows] == [None] * len(fields)
    history_values.fill(rows)
    at_creation = {row.pk: row.after for row in rows}
    assert all(set(values) == set(fields) for values in at_creation.values())
    copies = category.model.all_objects.filter(organization=partnership.downstream)
    for row, field in zip(rows, fields, strict=True):
        copies.filter(pk=row.item_id).update(**{baseline_name(field): None})
    for row in SyncChange.objects.filter(run=run):
        assert row.after == at_creation[row.pk]
    assert not copies.filter(created_change_id__isnull=False).exists()


def test_the_run_page_and_the_admin_show_the_values_of_the_creation(
    client, linked, django_capture_on_commit_callbacks
):
    source = Adder.objects.get(organization=linked.upstream, name="Tile roof")
    source.amount = Decimal("0.40")
    with django_capture_on_commit_callbacks(execute=True):
        source.save()  # Tile roof's values written in; Trenching's still in its copy
    run = SyncRun.objects.get(partnership=linked, event="link")
    client.force_login(MembershipFactory(organization=linked.downstream, role="admin").user)
    page = client.get(reverse("settings_sync:run", args=[linked.downstream.slug, run.pk]))
    text = page.content.decode()
    assert 'Amount:</dt> <dd class="d-inline">1250</dd>' in text
    assert 'Amount:</dt> <dd class="d-inline">0.35</dd>' in text
    trenching = created_rows(linked)["Trenching"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    change_page = client.get(
        reverse("admin:settings_sync_syncchange_change", args=[trenching.pk])
    ).content.decode()
    assert "<div>Amount: 1250</div>" in change_page
    run_page = client.get(
        reverse("admin:settings_sync_syncrun_change", args=[run.pk])
    ).content.decode()
    assert "<div>Amount: 1250</div>" in run_page
    assert "<div>Amount: 0.35</div>" in run_page
    # The copy's page does not show the id of the row its values wait in.
    copy_page = client.get(
        reverse("admin:project_adder_change", args=[copy_of(linked).pk])
    ).content.decode()
    assert "Trenching" in copy_page
    assert "created change" not in copy_page.lower()


def test_a_copy_that_stops_pointing_at_its_row_writes_the_values_in_first(linked):
    """A write that empties the pointer without moving the baseline (a copy given fresh
    bookkeeping) still leaves the row its values."""
    Adder.all_objects.filter(pk=copy_of(linked).pk).update(created_change_id=None)
    assert created_rows(linked)["Trenching"].after == AT_CREATION["Trenching"]
    assert shown(linked) == AT_CREATION


def test_values_written_in_are_never_written_over(linked):
    """A copy saved from a form read before its values were written in points at its row
    again: a later move of its baseline leaves the row's values as they are."""
    row = created_rows(linked)["Trenching"]
    copies = Adder.all_objects.filter(pk=copy_of(linked).pk)
    copies.update(baseline_amount=Decimal("1400.00"))  # written in
    copies.update(created_change_id=row.pk)
    copies.update(baseline_amount=Decimal("1500.00"))
    assert created_rows(linked)["Trenching"].after == AT_CREATION["Trenching"]
