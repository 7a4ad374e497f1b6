"""Drift: what the Partnerships tab says about each partner, read in bulk (docs/design.md
§10): diverged copies, missing copies, and copies out of date with their upstream item."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from settings_sync import engine, status
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership

pytestmark = pytest.mark.django_db

SYNC = {"data_sync_enabled": True}


@pytest.fixture
def channel_manager():
    organization = OrganizationFactory(name="Helios Energy Partners")
    AdderFactory(organization=organization, name="Trenching", amount=1250)
    AdderFactory(organization=organization, name="Tile roof", amount=300)
    return organization


@pytest.fixture
def partnership(channel_manager):
    partnership = make_partnership(
        channel_manager, OrganizationFactory(name="Sunrise Solar"), **SYNC
    )
    engine.run(partnership, "link")
    return partnership


def drift_of(partnership) -> status.PartnerStatus:
    return status.statuses([partnership])[partnership.pk]


def test_in_sync_after_a_run(partnership):
    assert (drift_of(partnership).drift, drift_of(partnership).stale) == (0, 0)


def test_a_change_no_run_applied_is_out_of_date(channel_manager, partnership):
    Adder.objects.filter(organization=channel_manager, name="Trenching").update(amount=1500)
    assert drift_of(partnership).stale == 1
    assert drift_of(partnership).by_category["adders"]["stale"] == 1


def test_an_archive_no_run_applied_is_out_of_date(channel_manager, partnership):
    Adder.objects.filter(organization=channel_manager, name="Trenching").update(
        archived_at="2026-01-01T00:00Z"
    )
    assert drift_of(partnership).stale == 1


def test_a_hard_delete_no_run_applied_is_out_of_date(channel_manager, partnership):
    Adder.objects.filter(organization=channel_manager, name="Trenching").delete()
    assert drift_of(partnership).stale == 1


def test_a_copy_the_partner_edited_is_diverged_not_out_of_date(partnership):
    Adder.objects.filter(organization=partnership.downstream, name="Trenching").update(amount=1)
    assert (drift_of(partnership).diverged, drift_of(partnership).stale) == (1, 0)


def test_a_kept_edit_with_an_update_waiting_is_diverged_not_out_of_date(
    channel_manager, partnership
):
    Adder.objects.filter(organization=partnership.downstream, name="Trenching").update(amount=1)
    Adder.objects.filter(organization=channel_manager, name="Trenching").update(amount=1500)
    engine.run(partnership, "change")  # keeps the partner's edit
    assert (drift_of(partnership).diverged, drift_of(partnership).stale) == (1, 0)


def test_null_values_compare_equal(channel_manager):
    """An optional field left empty upstream and in the copy's baseline is not a change."""
    from settings_sync.usage.models import Persona

    Persona.objects.create(organization=channel_manager, name="Retired couple", annual_kwh=7000)
    partnership = make_partnership(channel_manager, **SYNC)
    engine.run(partnership, "link")
    assert drift_of(partnership).drift == 0


@override_settings(TASKS={"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}})
def test_a_lost_fan_out_shows_on_the_partnerships_tab_and_resync_repairs_it(
    client, channel_manager, partnership, django_capture_on_commit_callbacks
):
    """The edit commits and its runs are recorded, but no worker ever applies them (here: a
    task backend that keeps what it is given). The tab says the partner is out of date;
    Resync brings it back."""
    client.force_login(MembershipFactory(organization=channel_manager, role="admin").user)
    trenching = Adder.objects.get(organization=channel_manager, name="Trenching")
    trenching.amount = 1500
    with django_capture_on_commit_callbacks(execute=True):
        trenching.save()
    assert SyncRun.objects.get(event="change").status == "queued"  # recorded, never applied
    tab = reverse("partnerships:list", args=[channel_manager.slug])
    row = next(r for r in client.get(tab).content.decode().split("<tr") if "Sunrise Solar" in r)
    assert "0 diverged · 0 missing · 1 out of date" in row
    detail = client.get(reverse("partnerships:detail", args=[channel_manager.slug, partnership.pk]))
    assert "1 out of date: a change Helios Energy Partners made has not reached it yet." in (
        detail.content.decode()
    )

    with override_settings(
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    ):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("settings_sync:resync", args=[channel_manager.slug, partnership.pk])
            )
        row = next(r for r in client.get(tab).content.decode().split("<tr") if "Sunrise" in r)
    assert "In sync" in row
    copy = Adder.objects.get(organization=partnership.downstream, name="Trenching")
    assert copy.amount == 1500


def test_an_optional_field_filled_in_by_the_partner_is_diverged(channel_manager):
    """A field empty in the baseline and filled in the copy is a local edit (NULL ≠ value)."""
    from settings_sync.usage.models import Persona

    Persona.objects.create(organization=channel_manager, name="Retired couple", annual_kwh=7000)
    partnership = make_partnership(channel_manager, **SYNC)
    engine.run(partnership, "link")
    copy = Persona.objects.get(organization=partnership.downstream)
    assert copy.monthly_profile is None
    Persona.objects.filter(pk=copy.pk).update(monthly_profile=[10] * 8 + [5] * 4)
    assert drift_of(partnership).diverged == 1


def test_three_queries_whatever_the_number_of_partners(channel_manager, django_assert_num_queries):
    partnerships = [make_partnership(channel_manager, **SYNC) for _ in range(3)]
    for partnership in partnerships:
        engine.run(partnership, "link")
    # The runs marked their counts stale: read, recounted, stored, overrides, last runs.
    with django_assert_num_queries(5):
        found = status.statuses(partnerships)
    assert [found[p.pk].drift for p in partnerships] == [0, 0, 0]
    with django_assert_num_queries(3):  # kept counts, overrides, last runs
        found = status.statuses(partnerships)
    assert [found[p.pk].drift for p in partnerships] == [0, 0, 0]


def test_a_partners_answer_does_not_hide_a_failed_sync(partnership):
    """The last sync shown is the last sync, not a take-theirs or keep-mine answer after it."""
    from settings_sync.models import DECISION

    failed = SyncRun.objects.create(
        partnership=partnership, event="change", mode="non_exclusive", status="failed"
    )
    SyncRun.objects.create(
        partnership=partnership, event=DECISION, mode="non_exclusive", status="succeeded"
    )
    assert drift_of(partnership).last_run == failed


def test_the_tab_names_the_categories_an_override_sets_otherwise(client, channel_manager):
    """A strict partnership with adders flexible and personas off: the tab's sync cell says
    so beside the partnership's mode; a partnership without overrides says nothing more."""
    from settings_sync import overrides

    client.force_login(MembershipFactory(organization=channel_manager, role="admin").user)
    strict = {"is_exclusive": True, "data_sync_enabled": True}
    chosen = make_partnership(channel_manager, OrganizationFactory(name="Boise Solar"), **strict)
    overrides.set_overrides(chosen, {"adders": "flexible", "personas": "off"})
    make_partnership(channel_manager, OrganizationFactory(name="Austin Solar"), **strict)
    tab = client.get(reverse("partnerships:list", args=[channel_manager.slug])).content.decode()
    rows = {name: next(r for r in tab.split("<tr") if name in r) for name in ("Boise", "Austin")}
    assert "Adders: Flexible · Usage personas: Off" in rows["Boise"]
    assert 'data-testid="otherwise"' not in rows["Austin"]
