"""The partner's side of a local edit (docs/design.md §13): an update waiting from the channel
manager, shown on the row, the tab and a comparison; *take theirs* and *keep mine* through the
public functions and the pages, with and without htmx; their refusals; the run page's
side-by-side view of a kept local edit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerships import services
from settings_sync import conflicts
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership

pytestmark = pytest.mark.django_db

FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}


@pytest.fixture
def flexible(channel_manager, partner, django_capture_on_commit_callbacks):
    """``partner`` copies "Trenching" (1250) from ``channel_manager`` through a flexible
    partnership."""
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    AdderFactory(organization=channel_manager, name="Tile roof", amount=35)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(channel_manager, partner, **FLEXIBLE)
    return partnership


def copy_of(partner, name="Trenching") -> Adder:
    return Adder.objects.select_related("synced_from", "synced_partnership__upstream").get(
        organization=partner, name=name
    )


def edit(item, **values) -> None:
    for name, value in values.items():
        setattr(item, name, value)
    item.save()


@pytest.fixture
def waiting(flexible, channel_manager, partner, django_capture_on_commit_callbacks) -> Adder:
    """The partner edited its copy to 1300; the channel manager then changed theirs to 1400
    (a change run kept the partner's edit)."""
    edit(copy_of(partner), amount=1300)
    with django_capture_on_commit_callbacks(execute=True):
        edit(Adder.objects.get(organization=channel_manager, name="Trenching"), amount=1400)
    return copy_of(partner)


def page_url(partner, name="adders") -> str:
    return reverse("settings_sync:page", args=[partner.slug, "project", name])


def update_url(item) -> str:
    return reverse(
        "settings_sync:update", args=[item.organization.slug, "project", "adders", item.pk]
    )


def edited_copy(partnership, i: int, *, baseline: int) -> Adder:
    """A copy of a new channel manager's adder "Extra <i>" (amount i), edited by the partner
    to i + 1 after it last settled with amount ``baseline``."""
    source = AdderFactory(organization=partnership.upstream, name=f"Extra {i}", amount=i)
    return AdderFactory(
        organization=partnership.downstream,
        name=f"Extra {i}",
        amount=i + 1,
        synced_partnership=partnership,
        synced_from=source,
        baseline_name=f"Extra {i}",
        baseline_amount=baseline,
        baseline_pricing="fixed",
        baseline_applied_by_default=False,
    )


class TestUpdateAvailable:
    def test_a_synced_copy_has_none(self, flexible, partner):
        assert not conflicts.update_available(copy_of(partner))

    def test_an_edited_copy_has_none_until_the_channel_manager_changes_it(self, flexible, partner):
        item = copy_of(partner)
        edit(item, amount=1300)
        assert not conflicts.update_available(item)

    def test_waiting_once_the_channel_manager_changes_an_edited_copy(self, waiting):
        assert waiting.amount == 1300  # merge kept the partner's edit
        assert conflicts.update_available(waiting)

    def test_an_own_item_has_none(self, partner):
        assert not conflicts.update_available(AdderFactory(organization=partner))

    def test_none_when_the_channel_manager_archived_the_item(self, waiting, channel_manager):
        Adder.objects.filter(organization=channel_manager, name="Trenching").update(
            archived_at="2026-01-01T00:00:00Z"
        )
        assert not conflicts.update_available(waiting)

    def test_none_on_a_locked_category(self, waiting, flexible, channel_manager):
        Adder.objects.filter(pk=waiting.pk)  # the edit stays until the strict run
        services.update_flags(flexible, by=None, **{**FLEXIBLE, "allow_downstream_edit": False})
        # Whether or not the strict run has overwritten it yet, nothing is offered.
        assert not conflicts.update_available(copy_of(waiting.organization))


class TestTakeUpstream:
    def test_the_copy_gets_their_values_and_is_synced_again(self, waiting, partner_admin):
        sync_run = conflicts.take_upstream(waiting, by=partner_admin)
        item = copy_of(waiting.organization)
        assert item.amount == 1400
        assert item.sync_state == "synced"
        assert not conflicts.update_available(item)
        assert sync_run.status == "succeeded"
        assert sync_run.started_by == partner_admin
        change = sync_run.changes.get()
        assert change.action == SyncChange.Action.TOOK_THEIRS
        assert Decimal(change.before["amount"]) == 1300
        assert Decimal(change.after["amount"]) == 1400

    def test_the_next_change_updates_it_like_any_synced_copy(
        self, waiting, channel_manager, partner_admin, django_capture_on_commit_callbacks
    ):
        conflicts.take_upstream(waiting, by=partner_admin)
        with django_capture_on_commit_callbacks(execute=True):
            edit(Adder.objects.get(organization=channel_manager, name="Trenching"), amount=1500)
        assert copy_of(waiting.organization).amount == 1500

    def test_refused_without_an_update(self, flexible, partner, partner_admin):
        item = copy_of(partner)
        edit(item, amount=1300)  # diverged, but nothing new upstream
        runs = SyncRun.objects.count()
        with pytest.raises(ValidationError, match="no update waiting"):
            conflicts.take_upstream(item, by=partner_admin)
        assert copy_of(partner).amount == 1300
        assert SyncRun.objects.count() == runs

    def test_refused_on_a_synced_copy(self, flexible, partner, partner_admin):
        with pytest.raises(ValidationError):
            conflicts.take_upstream(copy_of(partner), by=partner_admin)

    def test_refused_on_a_locked_category(self, waiting, flexible, partner_admin):
        # Straight to strict without its run: the partner's edit is still there, but locked.
        type(flexible).objects.filter(pk=flexible.pk).update(allow_downstream_edit=False)
        with pytest.raises(PermissionDenied, match="managed by Helios Energy Partners"):
            conflicts.take_upstream(waiting, by=partner_admin)
        assert copy_of(waiting.organization).amount == 1300

    def test_a_name_the_partner_already_uses_is_refused_clearly(
        self, flexible, channel_manager, partner, partner_admin, django_capture_on_commit_callbacks
    ):
        edit(copy_of(partner), amount=1300)
        AdderFactory(organization=partner, name="Trench work")
        with django_capture_on_commit_callbacks(execute=True):
            edit(
                Adder.objects.get(organization=channel_manager, name="Trenching"),
                name="Trench work",
            )
        item = copy_of(partner)
        assert conflicts.update_available(item)
        with pytest.raises(ValidationError, match="cannot be taken"):
            conflicts.take_upstream(item, by=partner_admin)
        assert copy_of(partner).amount == 1300


class TestKeepLocal:
    def test_keeps_the_edit_and_stays_quiet(self, waiting, partner_admin):
        sync_run = conflicts.keep_local(waiting, by=partner_admin, note="Our crews charge more")
        item = copy_of(waiting.organization)
        assert item.amount == 1300
        assert item.sync_state == "diverged"
        assert not conflicts.update_available(item)
        change = sync_run.changes.get()
        assert change.action == SyncChange.Action.KEPT_MINE
        assert change.note == "Our crews charge more"

    def test_the_notice_comes_back_when_the_channel_manager_changes_it_again(
        self, waiting, channel_manager, partner_admin, django_capture_on_commit_callbacks
    ):
        conflicts.keep_local(waiting, by=partner_admin)
        with django_capture_on_commit_callbacks(execute=True):
            edit(Adder.objects.get(organization=channel_manager, name="Tile roof"), amount=40)
        assert not conflicts.update_available(copy_of(waiting.organization))  # another item
        with django_capture_on_commit_callbacks(execute=True):
            edit(Adder.objects.get(organization=channel_manager, name="Trenching"), amount=1600)
        item = copy_of(waiting.organization)
        assert item.amount == 1300
        assert conflicts.update_available(item)

    def test_a_note_too_long_is_refused(self, waiting, partner_admin):
        with pytest.raises(ValidationError, match="300 characters"):
            conflicts.keep_local(waiting, by=partner_admin, note="x" * 301)
        assert conflicts.update_available(copy_of(waiting.organization))
        assert not SyncChange.objects.filter(action=SyncChange.Action.KEPT_MINE).exists()


class TestPages:
    def test_the_row_and_the_tab_say_an_update_is_available(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        content = client.get(page_url(waiting.organization)).content.decode()
        assert "Update available from Helios Energy Partners" in content
        assert content.count('data-testid="update-available"') == 1
        assert 'data-testid="tab-badge">1<' in content

    def test_the_list_stays_at_constant_queries(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        client.get(page_url(waiting.organization))
        with CaptureQueriesContext(connection) as one:
            client.get(page_url(waiting.organization))
        partner = waiting.organization
        for i in range(20):
            edited_copy(waiting.synced_partnership, i, baseline=i - 1)
        with CaptureQueriesContext(connection) as many:
            content = client.get(page_url(partner)).content.decode()
        assert content.count('data-testid="update-available"') == 21
        assert 'data-testid="tab-badge">21<' in content
        assert len(many.captured_queries) == len(one.captured_queries)

    def test_the_comparison_as_a_page(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        response = client.get(update_url(waiting))
        assert response.status_code == 200
        content = response.content.decode()
        assert "Theirs (Helios Energy Partners)" in content
        assert "Last synced" in content
        assert "<th" in content
        assert "Amount" in content
        for value in ("1400", "1300", "1250"):
            assert value in content
        assert "Take theirs" in content
        assert "Keep mine" in content

    def test_the_comparison_in_place(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        response = client.get(update_url(waiting), headers={"HX-Request": "true"})
        content = response.content.decode()
        assert content.lstrip().startswith(f'<tr id="update-row-{waiting.pk}"')
        assert "<html" not in content
        assert "Take theirs" in content

    def test_take_theirs_without_javascript(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        response = client.post(update_url(waiting), {"decision": "take"}, follow=True)
        assert response.redirect_chain[-1][0] == page_url(waiting.organization)
        assert "“Trenching” now has Helios Energy Partners&#x27; version." in (
            response.content.decode()
        )
        assert copy_of(waiting.organization).amount == 1400

    def test_keep_mine_with_a_note(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        response = client.post(update_url(waiting), {"decision": "keep", "note": "Local crews"})
        assert response.status_code == 302
        assert copy_of(waiting.organization).amount == 1300
        assert SyncChange.objects.get(action="kept_mine").note == "Local crews"
        content = client.get(page_url(waiting.organization)).content.decode()
        assert 'data-testid="update-available"' not in content
        assert 'data-testid="tab-badge"' not in content

    def test_a_long_note_gets_a_message_beside_the_field(self, client, waiting, partner_admin):
        client.force_login(partner_admin)
        response = client.post(update_url(waiting), {"decision": "keep", "note": "x" * 301})
        assert response.status_code == 400
        assert "at most 300 characters" in response.content.decode()
        assert conflicts.update_available(copy_of(waiting.organization))

    def test_no_update_waiting_is_a_clear_error(self, client, flexible, partner, partner_admin):
        client.force_login(partner_admin)
        item = copy_of(partner)
        edit(item, amount=1300)
        response = client.get(update_url(item))
        assert "No update is waiting" in response.content.decode()
        assert "Take theirs" not in response.content.decode()
        response = client.post(update_url(item), {"decision": "take"})
        assert response.status_code == 400
        assert "no update waiting" in response.content.decode()
        assert copy_of(partner).amount == 1300

    def test_a_member_sees_the_comparison_but_cannot_answer(self, client, waiting):
        member = MembershipFactory(organization=waiting.organization, role="member").user
        client.force_login(member)
        response = client.get(update_url(waiting))
        assert response.status_code == 200
        assert "Take theirs" not in response.content.decode()
        assert client.post(update_url(waiting), {"decision": "take"}).status_code == 403
        assert copy_of(waiting.organization).amount == 1300

    def test_locked_is_refused(self, client, waiting, flexible, partner_admin):
        type(flexible).objects.filter(pk=flexible.pk).update(allow_downstream_edit=False)
        client.force_login(partner_admin)
        assert client.get(update_url(waiting)).status_code == 403
        response = client.post(update_url(waiting), {"decision": "take"})
        assert response.status_code == 403
        assert copy_of(waiting.organization).amount == 1300

    def test_another_organizations_item_is_not_found(self, client, waiting):
        stranger = MembershipFactory(organization=OrganizationFactory(), role="admin")
        client.force_login(stranger.user)
        forged = reverse(
            "settings_sync:update",
            args=[stranger.organization.slug, "project", "adders", waiting.pk],
        )
        assert client.get(forged).status_code == 404
        assert client.post(forged, {"decision": "take"}).status_code == 404
        assert copy_of(waiting.organization).amount == 1300


class TestRunPage:
    def test_a_kept_local_edit_shows_both_versions_never_theirs_as_after(
        self, client, waiting, partner_admin
    ):
        change = SyncChange.objects.filter(action="kept_local", item_id=waiting.pk).latest("pk")
        client.force_login(partner_admin)
        response = client.get(
            reverse("settings_sync:run", args=[waiting.organization.slug, change.run_id])
        )
        content = response.content.decode()
        assert 'data-testid="side-by-side"' in content
        assert "Sunrise Solar&#x27;s, kept" in content
        assert "Helios Energy Partners&#x27;, not applied" in content

    def test_a_decision_is_in_the_history(self, client, waiting, partner_admin):
        sync_run = conflicts.keep_local(waiting, by=partner_admin, note="Ours")
        client.force_login(partner_admin)
        content = client.get(
            reverse("settings_sync:run", args=[waiting.organization.slug, sync_run.pk])
        ).content.decode()
        assert "Partner&#x27;s answer to an update" in content
        assert "Kept own version" in content
        assert "Ours" in content


def drift_url(organization, partnership) -> str:
    return reverse("settings_sync:drift", args=[organization.slug, partnership.pk])


class TestDrift:
    @pytest.fixture
    def answered(self, waiting, flexible, channel_manager, partner, partner_admin):
        """ "Trenching" kept with a note, then "Tile roof" edited with an update waiting."""
        conflicts.keep_local(waiting, by=partner_admin, note="Our crews charge more")
        edit(copy_of(partner, "Tile roof"), amount=36)
        edit(Adder.objects.get(organization=channel_manager, name="Tile roof"), amount=40)
        return flexible

    def test_lists_edited_items_with_the_note_and_the_waiting_update(
        self, client, answered, channel_manager_admin
    ):
        client.force_login(channel_manager_admin)
        response = client.get(drift_url(answered.upstream, answered))
        content = response.content.decode()
        assert response.status_code == 200
        assert content.count('data-testid="drift-row"') == 2  # one differing field each
        assert "Our crews charge more" in content
        assert content.count('data-testid="update-waiting"') == 1

    def test_filters(self, client, answered, channel_manager_admin):
        client.force_login(channel_manager_admin)
        url = drift_url(answered.upstream, answered)
        waiting = client.get(url, {"state": "waiting"}).content.decode()
        assert "Tile roof" in waiting
        assert "Trenching" not in waiting
        quiet = client.get(url, {"state": "quiet"}).content.decode()
        assert "Trenching" in quiet
        assert "Tile roof" not in quiet
        other = client.get(url, {"category": "equipment"}).content.decode()
        assert "No item edited locally matches these filters." in other
        assert client.get(url, {"state": "nonsense"}).status_code == 400

    def test_constant_queries(self, client, answered, channel_manager_admin, partner):
        client.force_login(channel_manager_admin)
        url = drift_url(answered.upstream, answered)
        client.get(url)
        with CaptureQueriesContext(connection) as few:
            client.get(url)
        for i in range(10):
            edited_copy(answered, i, baseline=i)
        with CaptureQueriesContext(connection) as many:
            content = client.get(url).content.decode()
        assert content.count('data-testid="drift-row"') == 12
        assert len(many.captured_queries) == len(few.captured_queries)

    def test_another_organization_finds_nothing(self, client, answered):
        stranger = MembershipFactory(organization=OrganizationFactory(), role="admin")
        client.force_login(stranger.user)
        assert client.get(drift_url(stranger.organization, answered)).status_code == 404
        assert client.get(drift_url(answered.upstream, answered)).status_code == 404


def test_an_own_item_has_no_comparison(client, partner, partner_admin):
    own = AdderFactory(organization=partner, name="Tree removal")
    client.force_login(partner_admin)
    response = client.get(update_url(own), follow=True)
    assert response.redirect_chain[-1][0] == page_url(partner)
    assert "is your own: no channel manager sends updates for it" in response.content.decode()


class TestTabBadges:
    """The badge of the settings tabs is read on every settings page (docs/design.md §10)."""

    def test_a_channel_manager_that_is_nobody_s_partner_pays_one_small_query(
        self, waiting, channel_manager, django_assert_num_queries
    ):
        with django_assert_num_queries(1):
            assert conflicts.counts_by_group(channel_manager) == {}

    def test_a_partner_with_nothing_waiting_pays_two(
        self, flexible, partner, django_assert_num_queries
    ):
        with django_assert_num_queries(2):
            assert conflicts.counts_by_group(partner) == {}

    def test_every_category_is_counted_in_one_query(
        self, waiting, partner, django_assert_max_num_queries
    ):
        for i in range(3):
            edited_copy(waiting.synced_partnership, i, baseline=i - 1)
        # the partnership, the counts; then, as something waits, the locks
        with django_assert_max_num_queries(5):
            assert conflicts.counts_by_group(partner) == {"project": 4}
