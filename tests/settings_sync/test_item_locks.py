"""Locks travel through exclusive partnerships, item by item (docs/design.md §14.3), and every
page that shows provenance names the origin too (§14.2): A → B strict, B → C flexible leaves
C with A's items read-only ("Managed by A"), B's items editable and its own items its own; a
forged POST on a locked item is refused with 403 and changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerships import services
from settings_sync.locks import is_item_locked
from settings_sync.models import SyncChange
from settings_sync.project.models import Adder
from settings_sync.provenance import origin
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership
from tests.settings_sync.catalogue_data import FLEXIBLE, NON_EXCLUSIVE, STRICT

pytestmark = pytest.mark.django_db


@pytest.fixture
def drain(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def network(drain):
    """Distributor → Dealer (the given mode) → Installer (the given mode), each with an item
    of its own: "Trenching" (the distributor's), "Tile roof" (the dealer's), "Tree removal"
    (the installer's)."""

    def build(top: dict, below: dict):
        a = OrganizationFactory(name="Distributor")
        b = OrganizationFactory(name="Dealer")
        c = OrganizationFactory(name="Installer")
        AdderFactory(organization=a, name="Trenching", amount=1250)
        AdderFactory(organization=b, name="Tile roof", amount=35)
        AdderFactory(organization=c, name="Tree removal", amount=900)
        with drain():
            make_partnership(b, c, **below)
        with drain():
            make_partnership(a, b, **top)
        return a, b, c

    return build


def item(organization, name: str) -> Adder:
    return Adder.all_objects.select_related("managed_by", "synced_origin").get(
        organization=organization, name=name
    )


def admin_of(client, organization):
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    return client


def adders_url(organization, *parts) -> str:
    if not parts:
        return reverse("settings_sync:page", args=[organization.slug, "project", "adders"])
    name, *rest = parts
    return reverse(f"settings_sync:{name}", args=[organization.slug, "project", "adders", *rest])


# The rule --------------------------------------------------------------------------------


def test_a_strict_lock_travels_through_a_flexible_partnership(network):
    a, b, c = network(STRICT, FLEXIBLE)
    assert is_item_locked(item(b, "Trenching"))
    assert is_item_locked(item(c, "Trenching"))
    assert item(c, "Trenching").managed_by == a
    assert not is_item_locked(item(c, "Tree removal"))  # the installer's own, beside it
    # Strict matched the dealer's own item away, in the dealer and, travelling on, below it.
    assert item(b, "Tile roof").is_archived
    assert item(c, "Tile roof").is_archived


def test_a_non_exclusive_partnership_delivers_editable_copies(network):
    _a, b, c = network(STRICT, NON_EXCLUSIVE)
    assert is_item_locked(item(b, "Trenching"))
    assert not is_item_locked(item(c, "Trenching"))


def test_strict_below_strict_is_managed_by_the_top(network):
    a, b, c = network(STRICT, STRICT)
    assert item(c, "Trenching").managed_by == a
    assert item(c, "Tile roof").managed_by == b
    assert not Adder.objects.filter(organization=c, name="Tree removal").exists()  # matched


def test_a_change_of_lock_is_a_write_that_travels_down(network, drain):
    a, _b, c = network(FLEXIBLE, FLEXIBLE)
    assert not is_item_locked(item(c, "Trenching"))
    with drain():
        services.update_flags(a.downstream_partnerships.get(), by=None, **STRICT)
    assert item(c, "Trenching").managed_by == a
    note = SyncChange.objects.get(
        run__partnership__downstream=c, label="Trenching", action="updated"
    )
    assert note.note == "Now read-only in Installer."

    with drain():
        services.update_flags(a.downstream_partnerships.get(), by=None, **FLEXIBLE)
    assert not is_item_locked(item(c, "Trenching"))


def test_a_lock_reaching_an_edited_copy_overwrites_it_and_keeps_the_old_values(network, drain):
    a, _b, c = network(FLEXIBLE, FLEXIBLE)
    copy = item(c, "Trenching")
    copy.amount = Decimal("99")
    copy.save()
    assert copy.sync_state == "diverged"
    with drain():
        services.update_flags(a.downstream_partnerships.get(), by=None, **STRICT)
    copy = item(c, "Trenching")
    assert (copy.amount, copy.sync_state, copy.managed_by) == (1250, "synced", a)
    change = SyncChange.objects.get(
        run__partnership__downstream=c, label="Trenching", action="updated"
    )
    assert Decimal(change.before["amount"]) == 99


def test_ending_the_top_partnership_unlocks_and_rebases_the_chain(network, drain):
    a, b, c = network(STRICT, FLEXIBLE)
    with drain():
        services.end_partnership(a.downstream_partnerships.get(), by=None)
    assert item(b, "Trenching").synced_partnership is None  # the dealer's own now
    copy = item(c, "Trenching")
    assert not is_item_locked(copy)
    assert origin(copy) == b
    assert copy.synced_from == item(b, "Trenching")


# Origin ----------------------------------------------------------------------------------


def test_origin_is_the_top_of_the_chain(network):
    a, b, c = network(FLEXIBLE, NON_EXCLUSIVE)
    assert origin(item(c, "Trenching")) == a
    assert origin(item(c, "Tile roof")) == b
    assert origin(item(c, "Tree removal")) == c
    assert origin(item(a, "Trenching")) == a


def test_a_singletons_origin_follows_the_partnerships_that_overwrote_it(network):
    from settings_sync.proposal.models import ProposalExpiration

    a, _b, c = network(STRICT, STRICT)
    assert origin(ProposalExpiration.objects.get(organization=c)) == a


# Pages -----------------------------------------------------------------------------------


def test_the_list_shows_each_rows_lock_and_origin(client, network):
    _a, _b, c = network(STRICT, FLEXIBLE)
    page = admin_of(client, c).get(adders_url(c)).content.decode()
    assert "Managed by Distributor · synced from Dealer" in page
    assert 'aria-label="Edit Tree removal"' in page  # the installer's own, beside it
    assert 'aria-label="Edit Trenching"' not in page
    assert 'aria-label="Delete Trenching"' not in page


def test_the_list_names_the_origin_of_an_editable_chained_copy(client, network):
    _a, _b, c = network(FLEXIBLE, NON_EXCLUSIVE)
    page = admin_of(client, c).get(adders_url(c)).content.decode()
    assert "Synced from Dealer · originally from Distributor" in page
    assert 'aria-label="Edit Trenching"' in page


def test_the_list_costs_the_same_queries_for_many_rows(client, network, drain):
    a, _b, c = network(STRICT, FLEXIBLE)
    admin_of(client, c)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(adders_url(c)).status_code == 200
        return len(captured)

    queries()  # the first request of a session reads what later ones find cached
    few = queries()
    with drain():
        for n in range(15):
            AdderFactory(organization=a, name=f"Critter guard {n}")
    assert Adder.objects.filter(organization=c).count() == 17
    assert queries() == few


def test_forged_posts_on_a_locked_item_are_refused_and_change_nothing(client, network):
    _a, _b, c = network(STRICT, FLEXIBLE)
    admin_of(client, c)
    locked = item(c, "Trenching")
    before = list(Adder.all_objects.filter(organization=c).order_by("pk").values())
    edit = client.post(
        adders_url(c, "edit", locked.pk), {"name": "Trenching", "pricing": "fixed", "amount": "1"}
    )
    archive = client.post(adders_url(c, "archive", locked.pk))
    assert (edit.status_code, archive.status_code) == (403, 403)
    assert b"managed by Distributor" in edit.content
    assert client.get(adders_url(c, "edit", locked.pk)).status_code == 403
    assert list(Adder.all_objects.filter(organization=c).order_by("pk").values()) == before


def test_an_unlocked_item_beside_it_is_edited_as_usual(client, network):
    _a, _b, c = network(STRICT, FLEXIBLE)
    admin_of(client, c)
    editable = item(c, "Tree removal")
    response = client.post(
        adders_url(c, "edit", editable.pk),
        {"name": "Tree removal", "pricing": "fixed", "amount": "4"},
    )
    assert response.status_code == 302
    assert item(c, "Tree removal").amount == 4
    assert client.post(adders_url(c, "archive", editable.pk)).status_code == 302
    assert item(c, "Tree removal").is_archived


def test_a_locked_archived_copy_is_not_restored_from_the_history(client, network, drain):
    a, _b, c = network(STRICT, FLEXIBLE)
    with drain():
        item(a, "Trenching").archive(reason="discontinued")
    copy = item(c, "Trenching")
    assert copy.is_archived
    assert is_item_locked(copy)
    change = SyncChange.objects.get(
        run__partnership__downstream=c, action="archived", item_id=copy.pk
    )
    admin_of(client, c)
    run_url = reverse("settings_sync:run", args=[c.slug, change.run_id])
    assert b"Restore Trenching" not in client.get(run_url).content
    restore = reverse("settings_sync:restore", args=[c.slug, change.run_id, change.pk])
    assert client.post(restore).status_code == 403
    assert item(c, "Trenching").is_archived


def test_the_admin_shows_lock_and_origin(admin_client, network):
    from django.contrib.auth import get_user_model

    _a, _b, c = network(STRICT, FLEXIBLE)
    staff = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    admin_client.force_login(staff)
    page = admin_client.get(
        reverse("admin:project_adder_changelist") + f"?organization__id__exact={c.pk}"
    ).content.decode()
    assert "Managed by Distributor" in page
    assert "Dealer · originally from Distributor" in page
    assert "No: the partner may edit it" in page


def test_an_import_may_not_change_a_locked_item(client, network):
    from settings_sync import imports, registry, spreadsheets

    _a, _b, c = network(STRICT, FLEXIBLE)
    _, table = spreadsheets.read_table(
        b"Name,Pricing,Amount,Applied by default\nTrenching,fixed,5,no\n",
        file_name="adders.csv",
    )
    plan = imports.plan_import(
        category=registry.get("adders"), organization=c, table=table, archive_missing=True
    )
    (error,) = plan.errors
    assert "Trenching" in error.label
    assert "managed by Distributor" in " ".join(message for _, message in error.errors)
    assert [i.name for i in plan.archived] == ["Tree removal"]  # the locked row stays too


def test_no_update_to_take_or_keep_on_a_copy_locked_from_above(client, network):
    """The comparison page refuses a copy whose lock travelled through a flexible partnership,
    although the category itself is editable there (docs/design.md §13.2, §14.3)."""
    _a, _b, c = network(STRICT, FLEXIBLE)
    locked = item(c, "Trenching")
    response = admin_of(client, c).get(
        reverse("settings_sync:update", args=[c.slug, "project", "adders", locked.pk])
    )
    assert response.status_code == 403
    assert "managed by Distributor" in response.content.decode()
