"""Locking (docs/design.md §6): a strict partnership makes the downstream's synced categories
read-only — pages say "Managed by <channel manager>", show no edit controls and refuse forged
changes with 403, changing nothing. Invite-only and never-synced settings stay editable, and
every other mode edits freely."""

from __future__ import annotations

import pytest

from partnerships import services
from settings_sync import registry
from settings_sync.locks import is_locked, lock_for, managing_partnership
from tests.factories import MembershipFactory, make_partnership
from tests.settings_sync import catalogue_data as data
from tests.settings_sync.catalogue_data import LOCKABLE_PAGES, url

pytestmark = pytest.mark.django_db

MANAGED = f"Managed by {data.UPSTREAM_NAME}"
NO_FLAGS = {"is_exclusive": False, "data_sync_enabled": False, "allow_downstream_edit": False}
LOCKABLE_LISTS = [setting for setting in LOCKABLE_PAGES if setting.is_list]
LOCKABLE_FORMS = [setting for setting in LOCKABLE_PAGES if not setting.is_list]
EDITABLE_UNDER_STRICT = [
    setting for setting in data.LIST_PAGES if setting.key == "licenses" or not setting.synced
]


def test_the_lockable_pages_are_the_synced_ones():
    assert {setting.key for setting in LOCKABLE_PAGES} == {
        "equipment",
        "adders",
        "default_costs",
        "installation_dates",
        "personas",
        "rate_escalations",
        "proposal_expiration",
        "comparable_values",
        "proposal_email",
    }
    assert {setting.key for setting in EDITABLE_UNDER_STRICT} == {
        "licenses",
        *data.NEVER_SYNCED_KEYS,
    }


def downstream_of(channel_manager, partner, mode: str):
    return make_partnership(channel_manager, partner, **data.MODES[mode])


@pytest.fixture
def strict(channel_manager, partner):
    return downstream_of(channel_manager, partner, "strict")


@pytest.fixture
def partner_admin(client, partner):
    user = MembershipFactory(organization=partner, role="admin").user
    client.force_login(user)
    return user


class TestIsLocked:
    @pytest.mark.parametrize("mode", list(data.MODES))
    def test_only_lockable_categories_and_only_in_strict(self, channel_manager, partner, mode):
        for category in registry.all():  # no partnership yet
            assert is_locked(partner, category.key) is False
        downstream_of(channel_manager, partner, mode)
        for category in registry.all():
            expected = mode == "strict" and category.kind != registry.INVITE_ONLY
            assert is_locked(partner, category.key) is expected, category.key
            assert is_locked(channel_manager, category.key) is False, category.key
        assert is_locked(partner, "logo") is False
        assert is_locked(partner, "licenses") is False
        for key in data.NEVER_SYNCED_KEYS:
            assert lock_for(partner, data.page(key)) is None

    def test_the_lock_names_the_channel_manager(self, strict, partner, channel_manager):
        assert managing_partnership(partner) == strict
        assert lock_for(partner, registry.get("equipment")).upstream == channel_manager

    def test_lifted_by_allowing_edits_turning_sync_off_or_ending(self, strict, partner):
        services.update_flags(strict, by=None, **data.FLEXIBLE)
        assert not is_locked(partner, "equipment")
        services.update_flags(strict, by=None, **data.STRICT)
        assert is_locked(partner, "equipment")
        services.update_flags(strict, by=None, is_exclusive=True, data_sync_enabled=False)
        assert not is_locked(partner, "equipment")
        services.update_flags(strict, by=None, **data.STRICT)
        assert is_locked(partner, "equipment")
        services.end_partnership(strict, by=None)
        assert not is_locked(partner, "equipment")


@pytest.mark.parametrize("setting", LOCKABLE_LISTS, ids=data.key_id)
class TestStrictLocksCollections:
    def test_read_only_page_and_forged_changes_refused(
        self, client, channel_manager, strict, partner, partner_admin, setting
    ):
        category = registry.get(setting.key)
        item = data.make_item(setting.key, partner)
        source = data.make_item(setting.key, channel_manager, 7)
        copy = setting.model.objects.create(
            organization=partner, synced_partnership=strict, **data.copy_values(category, source)
        )
        response = client.get(url("page", partner, setting))
        assert response.status_code == 200
        content = response.content.decode()
        assert f"{MANAGED}." in content
        assert 'data-testid="lock-notice"' in content
        assert data.shown_text(setting.key) in content
        assert f"Add {setting.item_label}" not in content
        assert url("add", partner, setting) not in content
        for shown in (item, copy):
            assert url("edit", partner, setting, shown.pk) not in content
            assert url("archive", partner, setting, shown.pk) not in content
        copy_row = data.row_of(content, data.shown_text(setting.key, 7))
        assert MANAGED in copy_row
        assert "Synced from" not in copy_row

        case = data.LIST_CASES[setting.key]
        before = {obj.pk: obj.synced_values() for obj in (item, copy)}
        refused = client.post(url("add", partner, setting), case.valid)
        assert refused.status_code == 403
        assert data.UPSTREAM_NAME.encode() in refused.content  # it says why
        assert client.get(url("add", partner, setting)).status_code == 403
        assert client.post(url("page", partner, setting), case.valid).status_code == 403
        assert client.get(url("edit", partner, setting, item.pk)).status_code == 403
        for target in (item, copy):
            edit = client.post(url("edit", partner, setting, target.pk), case.edit)
            assert edit.status_code == 403
            assert client.post(url("archive", partner, setting, target.pk)).status_code == 403
        after = setting.model.all_objects.filter(organization=partner)
        assert {obj.pk: obj.synced_values() for obj in after} == before
        assert all(obj.archived_at is None for obj in after)

    def test_members_see_the_lock_and_the_channel_manager_edits_freely(
        self, client, channel_manager, strict, partner, setting
    ):
        item = data.make_item(setting.key, partner)
        client.force_login(MembershipFactory(organization=partner, role="member").user)
        assert MANAGED in client.get(url("page", partner, setting)).content.decode()
        assert client.post(url("archive", partner, setting, item.pk)).status_code == 403
        assert setting.model.objects.filter(pk=item.pk).exists()

        client.force_login(MembershipFactory(organization=channel_manager, role="admin").user)
        content = client.get(url("page", channel_manager, setting)).content.decode()
        assert "Managed by" not in content
        response = client.post(
            url("add", channel_manager, setting), data.LIST_CASES[setting.key].valid
        )
        assert response.status_code == 302


@pytest.mark.parametrize("setting", LOCKABLE_FORMS, ids=data.key_id)
def test_strict_locks_singletons(client, strict, partner, partner_admin, setting):
    response = client.get(url("page", partner, setting))
    assert response.status_code == 200
    content = response.content.decode()
    assert f"{MANAGED}." in content
    assert f"Save {setting.label.lower()}" not in content
    for name in setting.form_class._meta.fields:
        assert f'name="{name}"' not in content

    row = data.singleton(setting.key, partner)
    before = (row.synced_values(), row.updated_at)
    response = client.post(url("page", partner, setting), data.FORM_CASES[setting.key].valid)
    assert response.status_code == 403
    assert client.post(url("archive", partner, setting, row.pk)).status_code == 403
    assert setting.model.objects.filter(organization=partner).count() == 1
    row = data.singleton(setting.key, partner)
    assert (row.synced_values(), row.updated_at) == before


def add_edit_and_delete(client, organization, setting) -> None:
    """Add, edit and delete one item through the pages, checking each step landed."""
    case = data.LIST_CASES[setting.key]
    assert client.post(url("add", organization, setting), case.valid).status_code == 302
    item = setting.model.objects.get(organization=organization)
    assert client.post(url("edit", organization, setting, item.pk), case.edit).status_code == 302
    item.refresh_from_db()
    assert data.values_of(item, case.edited) == case.edited
    assert client.post(url("archive", organization, setting, item.pk)).status_code == 302
    assert not setting.model.objects.filter(pk=item.pk).exists()


@pytest.mark.parametrize("setting", EDITABLE_UNDER_STRICT, ids=data.key_id)
def test_invite_only_and_never_synced_pages_stay_editable_under_strict(
    client, strict, partner, partner_admin, setting
):
    content = client.get(url("page", partner, setting)).content.decode()
    assert "Managed by" not in content
    assert f"Add {setting.item_label}" in content
    add_edit_and_delete(client, partner, setting)


@pytest.mark.parametrize("setting", LOCKABLE_PAGES, ids=data.key_id)
def test_other_modes_edit_freely(client, channel_manager, partner, partner_admin, setting):
    """Flexible and non-exclusive: the changes a strict partner is refused succeed."""
    partnership = downstream_of(channel_manager, partner, "flexible")
    for mode in ("flexible", "non_exclusive"):
        services.update_flags(partnership, by=None, **{**NO_FLAGS, **data.MODES[mode]})
        partnership.refresh_from_db()
        assert partnership.mode == mode
        content = client.get(url("page", partner, setting)).content.decode()
        assert "Managed by" not in content, mode
        if setting.is_list:
            assert f"Add {setting.item_label}" in content
            add_edit_and_delete(client, partner, setting)
        else:
            case = data.FORM_CASES[setting.key]
            assert f"Save {setting.label.lower()}" in content
            setting.model.objects.filter(organization=partner).update(
                **{name: setting.model._meta.get_field(name).get_default() for name in case.saved}
            )
            assert client.post(url("page", partner, setting), case.valid).status_code == 302
            assert data.values_of(data.singleton(setting.key, partner), case.saved) == case.saved


def test_synced_copies_in_flexible_mode_are_editable_and_say_so(
    client, channel_manager, partner, partner_admin
):
    partnership = downstream_of(channel_manager, partner, "flexible")
    category = registry.get("adders")
    source = data.make_item("adders", channel_manager)
    copy = category.model.objects.create(
        organization=partner, synced_partnership=partnership, **data.copy_values(category, source)
    )
    content = client.get(url("page", partner, category)).content.decode()
    row = data.row_of(content, str(copy))
    assert f"Synced from {data.UPSTREAM_NAME}" in row
    assert url("edit", partner, category, copy.pk) in row
    form = client.get(url("edit", partner, category, copy.pk)).content.decode()
    assert f"Copied from {data.UPSTREAM_NAME}" in form
