"""The pages of sync profiles (docs/design.md §12.3): create, edit (then re-apply), archive,
and apply to ticked partners or to all matching a search, with a fleet preview first."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from partnerships.models import Partnership
from settings_sync import overrides, profiles
from settings_sync.models import ProfileAssignment, SyncBatch, SyncProfile, SyncRun
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership

pytestmark = pytest.mark.django_db

STRICT = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": False}


def url(name: str, organization, *args) -> str:
    return reverse(f"settings_sync:{name}", args=[organization.slug, *args])


@pytest.fixture
def manager_client(client, channel_manager):
    client.force_login(MembershipFactory(organization=channel_manager, role="admin").user)
    return client


@pytest.fixture
def profile(channel_manager):
    return profiles.save_profile(
        channel_manager, name="Strict but adders", flags=STRICT, values={"adders": "flexible"}
    )


@pytest.fixture
def partners(channel_manager):
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    return [
        make_partnership(
            channel_manager, OrganizationFactory(name=f"{town} Solar"), data_sync_enabled=True
        )
        for town in ("Austin", "Boise", "Austell")
    ]


class TestProfilePages:
    def test_create_with_rows_and_list(self, manager_client, channel_manager):
        response = manager_client.post(
            url("profile-new", channel_manager),
            {
                "name": "Solar only",
                "is_exclusive": "on",
                "data_sync_enabled": "on",
                "override-equipment": "strict",
                "override-adders": "off",
            },
        )
        assert response.status_code == 302
        saved = SyncProfile.objects.get()
        assert (saved.name, saved.mode, saved.overrides) == (
            "Solar only",
            "strict",
            {"equipment": "strict", "adders": "off"},
        )
        page = manager_client.get(url("profiles", channel_manager)).content.decode()
        assert "Solar only" in page
        assert "Equipment: Strict; Adders: Off" in page

    def test_a_forged_row_is_refused_beside_it(self, manager_client, channel_manager):
        response = manager_client.post(
            url("profile-new", channel_manager),
            {"name": "Loose", "data_sync_enabled": "on", "override-adders": "strict"},
        )
        assert response.status_code == 400
        assert re.search(
            r'id="id_override-adders_error">Adders: Flexible and Strict can only',
            response.content.decode(),
        )
        assert not SyncProfile.objects.exists()

    def test_members_may_not_manage_profiles(self, client, channel_manager, profile):
        client.force_login(MembershipFactory(organization=channel_manager, role="member").user)
        assert client.get(url("profiles", channel_manager)).status_code == 403
        assert client.post(url("profile-archive", channel_manager, profile.pk)).status_code == 403
        profile.refresh_from_db()
        assert not profile.is_archived

    def test_editing_a_followed_profile_offers_to_apply_it_again(
        self, manager_client, channel_manager, profile, partners
    ):
        profiles.apply_profile(profile, [partners[0].pk])
        response = manager_client.post(
            url("profile-edit", channel_manager, profile.pk),
            {"name": profile.name, "is_exclusive": "on", "data_sync_enabled": "on"},
        )
        apply = url("profile-apply", channel_manager, profile.pk)
        assert response.status_code == 302
        assert response["Location"] == f"{apply}?following=1"
        page = manager_client.get(response["Location"]).content.decode()
        assert "keep their settings until you apply it again" in page
        table = re.search(r'data-testid="apply-partners".*?</table>', page, re.S).group(0)
        assert table.count('type="checkbox"') == 1
        assert partners[0].downstream.name in table

    def test_archived_profiles_are_not_offered(self, manager_client, channel_manager, profile):
        manager_client.post(url("profile-archive", channel_manager, profile.pk))
        page = manager_client.get(url("profiles", channel_manager)).content.decode()
        assert 'data-testid="profiles"' not in page
        assert "No sync profiles yet." in page
        assert (
            manager_client.get(url("profile-apply", channel_manager, profile.pk)).status_code == 404
        )


class TestApplying:
    def test_preview_then_apply_to_the_ticked_partners(
        self, manager_client, channel_manager, profile, partners, django_capture_on_commit_callbacks
    ):
        apply = url("profile-apply", channel_manager, profile.pk)
        chosen = {"partnership": [partners[0].pk, partners[1].pk]}
        preview = manager_client.post(apply, {"action": "preview", **chosen})
        content = preview.content.decode()
        assert "Preview for 2 partners" in content
        assert "2 of them change how they sync" in content
        assert re.search(r'data-action="created">.*?<td>2</td>', content, re.S)
        assert SyncBatch.objects.count() == 0  # a preview writes nothing
        assert not ProfileAssignment.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            response = manager_client.post(apply, {"action": "apply", **chosen})
        batch = SyncBatch.objects.get()
        assert response["Location"] == url("batch", channel_manager, batch.pk)
        page = manager_client.get(response["Location"]).content.decode()
        assert "Sync profile “Strict but adders” applied to 2 partners" in page
        assert 'data-testid="progress-bar"' in page
        assert set(batch.runs.values_list("status", flat=True)) == {"succeeded"}
        modes = dict(Partnership.objects.values_list("pk", "allow_downstream_edit"))
        assert Partnership.objects.get(pk=partners[0].pk).mode == "strict"
        assert Partnership.objects.get(pk=partners[2].pk).mode == "non_exclusive"
        assert len(modes) == 3

    def test_all_partners_matching_the_search(
        self, manager_client, channel_manager, profile, partners
    ):
        apply = url("profile-apply", channel_manager, profile.pk)
        page = manager_client.get(apply, {"q": "aus"}).content.decode()
        assert "Preview for all 2 partners matching “aus”" in page
        preview = manager_client.post(apply, {"scope": "all", "q": "aus"}).content.decode()
        assert "Preview for 2 partners" in preview
        manager_client.post(apply, {"action": "apply", "scope": "all", "q": "aus"})
        strict = Partnership.objects.filter(is_exclusive=True)
        assert sorted(p.downstream.name for p in strict) == ["Austell Solar", "Austin Solar"]

    def test_a_forged_partner_id_is_not_found_and_nothing_changes(
        self, manager_client, channel_manager, profile, partners
    ):
        theirs = make_partnership(
            OrganizationFactory(), OrganizationFactory(), data_sync_enabled=True
        )
        apply = url("profile-apply", channel_manager, profile.pk)
        for action in ("preview", "apply"):
            response = manager_client.post(
                apply, {"action": action, "partnership": [partners[0].pk, theirs.pk]}
            )
            assert response.status_code == 404
        assert (
            manager_client.post(apply, {"action": "apply", "partnership": "x"}).status_code == 404
        )
        assert not SyncBatch.objects.exists()
        assert not Partnership.objects.filter(is_exclusive=True).exists()
        assert SyncRun.objects.filter(partnership=theirs).count() == 0

    def test_the_partnership_shows_the_profile_it_follows(
        self, manager_client, channel_manager, profile, partners
    ):
        profiles.apply_profile(profile, [partners[0].pk])
        page = manager_client.get(partners[0].url_for(channel_manager)).content.decode()
        assert "Follows the sync profile" in page
        assert "Strict but adders" in page
        assert "differs" not in page
        assert (
            overrides.effective_mode(Partnership.objects.get(pk=partners[0].pk), "adders")
            == "flexible"
        )

    def test_a_partnership_edited_by_hand_says_where_it_differs_from_its_profile(
        self, manager_client, channel_manager, profile, partners
    ):
        from partnerships import services

        profiles.apply_profile(profile, [partners[0].pk])
        partnership = Partnership.objects.get(pk=partners[0].pk)
        partnership = services.update_flags(
            partnership,
            by=None,
            is_exclusive=True,
            data_sync_enabled=True,
            allow_downstream_edit=True,
        )
        overrides.set_override(partnership, "adders", "off")
        page = manager_client.get(partners[0].url_for(channel_manager)).content.decode()
        assert "Follows the sync profile <a" in page
        assert (
            "“Strict but adders”</a>, but differs from it: Allow Downstream to Edit Synced "
            "Settings: on here, off in the profile; Adders: Off here, Flexible in the profile. "
            "Applying the profile again would set these as the profile says." in page
        )


class TestOffersNameAProfile:
    def test_an_invitation_names_a_profile_and_the_new_partner_starts_with_it(
        self, manager_client, channel_manager, profile, django_capture_on_commit_callbacks
    ):
        from partnerships import services
        from partnerships.models import Invitation
        from settings_sync.project.models import Adder

        AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
        strict_only = profiles.save_profile(
            channel_manager, name="No adders", flags=STRICT, values={"adders": "off"}
        )
        invite = reverse("partnerships:invite", args=[channel_manager.slug])
        page = manager_client.get(invite).content.decode()
        assert "Sync profile (optional)" in page
        preview = manager_client.post(
            invite,
            {"_refresh": "1", "data_sync_enabled": "on", "sync_profile": strict_only.pk},
            HTTP_HX_REQUEST="true",
        ).content.decode()
        assert 'id="id_is_exclusive" checked' in preview  # the profile's flags
        assert re.search(r'data-category="adders".*?data-outcome="none"', preview, re.S)
        with django_capture_on_commit_callbacks(execute=True):
            sent = manager_client.post(
                invite,
                {
                    "organization_name": "Nova Roofing",
                    "email": "owner@nova.example",
                    "data_sync_enabled": "on",
                    "sync_profile": strict_only.pk,
                },
            )
        assert sent.status_code == 302
        invitation = Invitation.objects.get()
        assert invitation.flags == STRICT
        with django_capture_on_commit_callbacks(execute=True):
            partnership = services.accept_invitation(
                invitation, MembershipFactory(organization=channel_manager).user
            )
        partnership = Partnership.objects.get(pk=partnership.pk)
        assert overrides.effective_mode(partnership, "adders") == "off"
        assert profiles.profile_of(partnership) == strict_only
        run = SyncRun.objects.get(partnership=partnership)
        assert (run.event, run.status) == ("invite", "succeeded")
        assert "adders" not in run.counts
        assert not Adder.objects.filter(organization=partnership.downstream).exists()

    def test_a_request_names_a_profile(
        self, manager_client, channel_manager, profile, django_capture_on_commit_callbacks
    ):
        from partnerships import services
        from partnerships.models import PartnershipRequest

        nova = OrganizationFactory(name="Nova Roofing")
        sent = manager_client.post(
            reverse("partnerships:request", args=[channel_manager.slug]),
            {"organization": nova.slug, "data_sync_enabled": "on", "sync_profile": profile.pk},
        )
        assert sent.status_code == 302
        asked = PartnershipRequest.objects.get()
        assert asked.flags == STRICT
        with django_capture_on_commit_callbacks(execute=True):
            partnership = services.accept_request(asked, by=None)
        assert overrides.effective_mode(partnership, "adders") == "flexible"
        assert profiles.profile_of(partnership) == profile
        assert SyncRun.objects.filter(partnership=partnership).count() == 1  # the link only

    def test_another_organizations_profile_cannot_be_named(self, manager_client, channel_manager):
        from partnerships.models import Invitation

        theirs = profiles.save_profile(
            OrganizationFactory(), name="Theirs", flags=STRICT, values={}
        )
        profiles.save_profile(channel_manager, name="Ours", flags=STRICT, values={})
        response = manager_client.post(
            reverse("partnerships:invite", args=[channel_manager.slug]),
            {
                "organization_name": "Nova Roofing",
                "email": "owner@nova.example",
                "data_sync_enabled": "on",
                "sync_profile": theirs.pk,
            },
        )
        assert response.status_code == 400
        assert "Choose one of your sync profiles, or none." in response.content.decode()
        assert not Invitation.objects.exists()


def test_staff_see_profiles_with_their_partnerships(client, channel_manager, profile, partners):
    from tests.factories import UserFactory

    profiles.apply_profile(profile, [partners[0].pk])
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:settings_sync_syncprofile_changelist")).content.decode()
    assert "Strict but adders" in listing
    page = client.get(
        reverse("admin:settings_sync_syncprofile_change", args=[profile.pk])
    ).content.decode()
    assert "Adders: Flexible: synced, editable by the partner" in page
    assert str(Partnership.objects.get(pk=partners[0].pk)) in page


def test_the_fleet_preview_page_costs_the_same_queries_for_3_and_30_partners(
    manager_client, channel_manager, profile
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    apply = url("profile-apply", channel_manager, profile.pk)

    def queries(count: int) -> int:
        Partnership.objects.filter(upstream=channel_manager).delete()
        for _ in range(count):
            make_partnership(channel_manager, OrganizationFactory(), data_sync_enabled=True)
        with CaptureQueriesContext(connection) as captured:
            page = manager_client.post(apply, {"scope": "all"}).content.decode()
        assert f"Preview for {count} partners" in page
        return len(captured.captured_queries)

    queries(2)  # the first request of the session reads what later ones have cached
    assert queries(3) == queries(30)


def test_the_partnerships_tabs_search_leads_to_the_partners_it_matches(
    manager_client, channel_manager, profile, partners
):
    tab = manager_client.get(
        reverse("partnerships:list", args=[channel_manager.slug]), {"q": "aus"}
    ).content.decode()
    profiles_url = f"{url('profiles', channel_manager)}?q=aus"
    assert f'href="{profiles_url}"' in tab
    listing = manager_client.get(profiles_url).content.decode()
    apply = f"{url('profile-apply', channel_manager, profile.pk)}?q=aus"
    assert f'href="{apply}"' in listing
    page = manager_client.get(apply).content.decode()
    assert "Preview for all 2 partners matching “aus”" in page
