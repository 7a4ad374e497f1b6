"""Collection items: provenance and sync state read from content, whatever path changed it
(the admin, code, a queryset update, the settings page), in Python and in SQL alike; and
archive / restore, in code and through the admin action."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from settings_sync import registry
from settings_sync.items import DIVERGED, OWN, SYNCED
from settings_sync.usage.models import Persona
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_partnership
from tests.settings_sync import catalogue_data as data
from tests.settings_sync.catalogue_data import SYNCED_COLLECTIONS, url

pytestmark = pytest.mark.django_db

#: per category, two edits of a synced field (the second one to or from NULL where possible)
CHANGES = {
    "equipment": ({"unit_cost": Decimal("300")}, {"rating": None}),
    "adders": ({"amount": Decimal("1300")}, {"applied_by_default": True}),
    "personas": (
        {"annual_kwh": 13000},
        {"monthly_profile": [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 10, 10]},
    ),
    "rate_escalations": (
        {"annual_escalation_percent": Decimal("4")},
        {"utility_name": "UTILITY 0003"},  # the same key in other letters is still an edit
    ),
    "comparable_values": ({"factor_per_mwh": Decimal("0.3")}, {"unit": "vehicles"}),
}


def test_every_synced_collection_has_changes():
    assert set(CHANGES) == {category.key for category in SYNCED_COLLECTIONS}


def states(item) -> tuple[str, str]:
    """(the ``sync_state`` property after a fresh read, the SQL annotation)."""
    model = type(item)
    fresh = model.all_objects.get(pk=item.pk)
    annotated = model.all_objects.with_sync_state().get(pk=item.pk)
    return fresh.sync_state, annotated.sync_state_value


def admin_post_data(item, **changes) -> dict:
    """The admin change form's POST for ``item`` with ``changes`` applied."""
    post = {"organization": str(item.organization_id)}
    for name in item.SYNCED_FIELDS:
        value = changes.get(name, getattr(item, name))
        if isinstance(value, bool):
            if value:
                post[name] = "on"
        elif value is None:
            post[name] = ""
        elif isinstance(value, list):
            post[name] = json.dumps(value)
        else:
            post[name] = str(value)
    return post


def admin_change_url(item) -> str:
    opts = item._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[item.pk])


def admin_changelist_url(model) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


@pytest.fixture
def partnership(channel_manager, partner):
    return make_partnership(channel_manager, partner, **data.NON_EXCLUSIVE)


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def partner_client(client, partner):
    client.force_login(MembershipFactory(organization=partner, role="admin").user)
    return client


def make_copy(category, partnership, i: int = 3, **source_values):
    """A channel manager's item and its downstream copy, made by hand: content equal to the
    baseline."""
    source = data.make_item(category.key, partnership.upstream, i, **source_values)
    copy = category.model.objects.create(
        organization=partnership.downstream,
        synced_partnership=partnership,
        **data.copy_values(category, source),
    )
    return source, copy


def list_row(client, organization, category, item) -> str:
    """The row of ``item`` (as it is now in the database) on its list page."""
    item.refresh_from_db()
    content = client.get(url("page", organization, category)).content.decode()
    return data.row_of(content, getattr(item, data.LIST_CASES[category.key].display_field))


@pytest.mark.parametrize("category", SYNCED_COLLECTIONS, ids=data.key_id)
class TestSyncState:
    def test_copies_are_synced_and_own_items_own(
        self, partner_client, partnership, partner, category
    ):
        source, synced = make_copy(category, partnership, 1)
        _, diverged = make_copy(category, partnership, 2)
        category.model.objects.filter(pk=diverged.pk).update(**CHANGES[category.key][0])
        own = data.make_item(category.key, partner, 4)
        assert synced.sync_state == SYNCED
        assert synced.synced_from == source
        assert states(synced) == (SYNCED, SYNCED)
        assert states(diverged) == (DIVERGED, DIVERGED)
        assert own.sync_state == OWN
        assert states(own) == (OWN, OWN)

        model = category.model
        assert set(model.objects.copies()) == {synced, diverged}
        assert list(model.objects.diverged()) == [diverged]
        by_state = dict(
            model.objects.filter(organization=partner)
            .with_sync_state()
            .values_list("pk", "sync_state_value")
        )
        assert by_state == {synced.pk: SYNCED, diverged.pk: DIVERGED, own.pk: OWN}

        content = partner_client.get(url("page", partner, category)).content.decode()
        field = data.LIST_CASES[category.key].display_field
        row = data.row_of(content, getattr(synced, field))
        assert f"Synced from {data.UPSTREAM_NAME}" in row
        assert "Edited locally" not in row
        diverged.refresh_from_db()
        row = data.row_of(content, getattr(diverged, field))
        assert "Edited locally" in row
        assert "Synced from" not in row
        row = data.row_of(content, getattr(own, field))
        assert "provenance" not in row  # no badge at all
        for badge in ("Synced from", "Edited locally", "Managed by"):
            assert badge not in row

        # A copy keeps its partnership (and state) when its upstream item is hard-deleted.
        source.delete()
        synced.refresh_from_db()
        assert synced.synced_partnership == partnership
        assert states(synced) == (SYNCED, SYNCED)

    def test_the_admin_change_form(self, staff_client, partnership, partner, category):
        _, copy = make_copy(category, partnership)
        # Saved unchanged (values re-typed as text): still synced.
        response = staff_client.post(admin_change_url(copy), admin_post_data(copy))
        assert response.status_code == 302, response.content.decode()[:3000]
        assert states(copy) == (SYNCED, SYNCED)
        for changes in CHANGES[category.key]:
            copy.refresh_from_db()
            response = staff_client.post(admin_change_url(copy), admin_post_data(copy, **changes))
            assert response.status_code == 302, response.content.decode()[:3000]
            assert states(copy) == (DIVERGED, DIVERGED), changes
        client = staff_client
        client.force_login(MembershipFactory(organization=partner, role="admin").user)
        row = list_row(client, partner, category, copy)
        assert "Edited locally" in row
        assert "Synced from" not in row

    def test_save_in_code(self, partner_client, partnership, partner, category):
        _, copy = make_copy(category, partnership)
        copy.save()  # no change yet
        assert states(copy) == (SYNCED, SYNCED)
        for changes in CHANGES[category.key]:
            for name, value in changes.items():
                setattr(copy, name, value)
            copy.save()
            assert states(copy) == (DIVERGED, DIVERGED), changes
        assert "Edited locally" in list_row(partner_client, partner, category, copy)

    def test_queryset_update(self, partner_client, partnership, partner, category):
        _, copy = make_copy(category, partnership)
        original = copy.synced_values()
        for changes in CHANGES[category.key]:
            category.model.objects.filter(pk=copy.pk).update(**changes)  # no signals, no save()
            assert states(copy) == (DIVERGED, DIVERGED), changes
            assert "Edited locally" in list_row(partner_client, partner, category, copy)
            # Back to the copied content: synced again (content decides, not history).
            category.model.objects.filter(pk=copy.pk).update(**original)
            assert states(copy) == (SYNCED, SYNCED), changes

    def test_the_settings_page(self, partner_client, partnership, partner, category):
        _, copy = make_copy(category, partnership)
        form = admin_post_data(copy, **CHANGES[category.key][0])
        del form["organization"]  # the page takes it from the URL
        response = partner_client.post(url("edit", partner, category, copy.pk), form)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert states(copy) == (DIVERGED, DIVERGED)
        assert "Edited locally" in list_row(partner_client, partner, category, copy)


def test_json_profiles_compare_by_content(partnership):
    """The monthly profile (JSON) is compared in SQL too, on every database."""
    category = registry.get("personas")
    profile = [7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7]
    _, copy = make_copy(category, partnership, monthly_profile=profile)
    assert copy.monthly_profile == profile
    assert states(copy) == (SYNCED, SYNCED)
    Persona.objects.filter(pk=copy.pk).update(monthly_profile=[*profile[:10], 8, 6])
    assert states(copy) == (DIVERGED, DIVERGED)
    Persona.objects.filter(pk=copy.pk).update(monthly_profile=None)
    assert states(copy) == (DIVERGED, DIVERGED)
    Persona.objects.filter(pk=copy.pk).update(monthly_profile=profile)
    assert states(copy) == (SYNCED, SYNCED)


def test_edit_form_of_a_copy_says_where_it_comes_from(partner_client, partnership, partner):
    category = registry.get("adders")
    _, copy = make_copy(category, partnership)
    content = partner_client.get(url("edit", partner, category, copy.pk)).content.decode()
    assert f"Copied from {data.UPSTREAM_NAME}" in content
    own = data.make_item("adders", partner, 6)
    content = partner_client.get(url("edit", partner, category, own.pk)).content.decode()
    assert "Copied from" not in content


# Archive and restore ------------------------------------------------------------------------

ARCHIVABLE = [*SYNCED_COLLECTIONS, registry.get("licenses")]


def duplicate_message(category) -> str:
    constraint = next(
        c
        for c in category.model._meta.constraints
        if getattr(c, "violation_error_code", None) == "duplicate"
    )
    return constraint.violation_error_message


def same_key_values(category, i: int = 0) -> dict:
    """The i-th item's values with its natural key in other letters and surrounding spaces."""
    return {
        name: f" {value.swapcase()}  " if name in category.natural_key and name != "kind" else value
        for name, value in data.item_values(category.key, i).items()
    }


@pytest.mark.parametrize("category", ARCHIVABLE, ids=data.key_id)
class TestArchiveAndRestore:
    def test_restore_and_its_refusal(self, category):
        organization = OrganizationFactory()
        user = UserFactory()
        item = data.make_item(category.key, organization)
        item.archive(by=user, reason="No longer offered")
        assert not category.model.objects.filter(pk=item.pk).exists()
        archived = category.model.all_objects.get(pk=item.pk)
        assert archived.is_archived
        assert (archived.archived_by, archived.archive_reason) == (user, "No longer offered")
        archived.restore()
        restored = category.model.objects.get(pk=item.pk)
        assert (restored.archived_at, restored.archived_by, restored.archive_reason) == (
            None,
            None,
            "",
        )

        # Archived again, and meanwhile a live item took the same natural key.
        restored.archive(by=user)
        category.model.objects.create(organization=organization, **same_key_values(category))
        with pytest.raises(ValidationError) as refused:
            restored.restore()
        assert refused.value.messages == [duplicate_message(category)]
        item.refresh_from_db()
        assert item.is_archived
        assert category.model.objects.filter(organization=organization).count() == 1

    def test_the_admin_action(self, staff_client, category):
        organization = OrganizationFactory()
        item = data.make_item(category.key, organization)
        blocked = data.make_item(category.key, organization, 1)
        live = data.make_item(category.key, organization, 2)
        item.archive(reason="test")
        blocked.archive(reason="test")
        category.model.objects.create(organization=organization, **same_key_values(category, 1))
        changelist = admin_changelist_url(category.model)

        listed = staff_client.get(changelist, {"archived": "yes"})
        assert listed.status_code == 200
        assert set(listed.context["cl"].result_list) == {item, blocked}
        assert live not in listed.context["cl"].result_list

        response = staff_client.post(
            changelist,
            {"action": "restore_selected", "_selected_action": [item.pk, blocked.pk]},
            follow=True,
        )
        assert response.status_code == 200
        messages = {str(message): message.level_tag for message in response.context["messages"]}
        # One refusal makes the summary a warning, not a success.
        assert messages["Restored 1 item(s). 1 could not be restored (see above)."] == "warning"
        assert f"{blocked}: {duplicate_message(category)}" in messages
        item.refresh_from_db()
        blocked.refresh_from_db()
        assert not item.is_archived
        assert blocked.is_archived


def test_an_unchanged_resave_through_the_page_stays_synced_in_sql(
    partner_client, partnership, partner
):
    category = registry.get("personas")
    profile = [7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7]  # as code or the admin store it
    _, copy = make_copy(category, partnership, monthly_profile=profile)
    form = {
        "name": copy.name,
        "annual_kwh": str(copy.annual_kwh),
        "monthly_profile": ", ".join(str(share) for share in profile),
        "description": copy.description,
    }
    response = partner_client.post(url("edit", partner, category, copy.pk), form)
    assert response.status_code == 302
    assert states(copy) == (SYNCED, SYNCED)


def test_a_partner_deletion_after_a_restore_is_the_partners(partner_client, partnership, partner):
    category = registry.get("adders")
    _, copy = make_copy(category, partnership)
    # The sync archived the copy (its upstream item was archived) ...
    category.model.objects.filter(pk=copy.pk).update(
        archived_at=timezone.now(), archive_reason="Archived channel_manager", archived_by_sync=True
    )
    # ... staff restored it, and the partner deleted it through its settings page.
    category.model.all_objects.get(pk=copy.pk).restore()
    response = partner_client.post(url("archive", partner, category, copy.pk))
    assert response.status_code == 302
    archived = category.model.all_objects.get(pk=copy.pk)
    assert archived.is_archived
    assert archived.archived_by_sync is False
