"""Every settings page of the catalogue: an admin lists, adds, edits and archives items (or
edits a singleton's form); a member reads without controls and is refused changes; an admin of
another organization finds nothing. Also: constant queries for long lists, singletons created
with every organization, and the proposal templates a channel manager shares."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from organizations.models import Organization
from partnerships import services
from partnerships.models import Partnership
from settings_sync import registry
from settings_sync.proposal.models import ProposalTemplate
from tests.factories import MembershipFactory, OrganizationFactory, make_partnership
from tests.settings_sync import catalogue_data as data
from tests.settings_sync.catalogue_data import FORM_PAGES, LIST_PAGES, url

pytestmark = pytest.mark.django_db


def test_every_page_has_test_data():
    """A page added to the catalogue must be added here too, or this suite misses it."""
    assert {setting.key for setting in LIST_PAGES} == set(data.LIST_CASES)
    assert {setting.key for setting in FORM_PAGES} == set(data.FORM_CASES)
    assert {setting.key for setting in FORM_PAGES} == {
        category.key for category in registry.all() if category.is_singleton
    }


def rows(setting, organization) -> int:
    return setting.model.objects.filter(organization=organization).count()


@pytest.mark.parametrize("setting", LIST_PAGES, ids=data.key_id)
class TestCollectionAsAdmin:
    def test_lists_adds_and_edits(self, client, organization, admin_client, setting):
        case = data.LIST_CASES[setting.key]
        empty = client.get(url("page", organization, setting))
        assert empty.status_code == 200
        assert f"No {setting.label.lower()} yet." in empty.content.decode()

        form = client.get(url("add", organization, setting))
        assert form.status_code == 200
        assert f"Save {setting.item_label}" in form.content.decode()
        response = client.post(url("add", organization, setting), case.valid)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert response["Location"] == url("page", organization, setting)
        item = setting.model.objects.get(organization=organization)
        assert data.values_of(item, case.saved) == case.saved

        listing = client.get(url("page", organization, setting)).content.decode()
        assert f"“{item}” saved." in listing
        assert len(data.item_rows(listing)) == 1
        row = data.row_of(listing, case.shown)
        assert url("edit", organization, setting, item.pk) in row
        assert url("archive", organization, setting, item.pk) in row
        assert f"Add {setting.item_label}" in listing

        form = client.get(url("edit", organization, setting, item.pk))
        assert form.status_code == 200
        assert f'value="{case.shown}"' in form.content.decode()  # filled in
        response = client.post(url("edit", organization, setting, item.pk), case.edit)
        assert response.status_code == 302, response.content.decode()[:3000]
        item.refresh_from_db()
        assert data.values_of(item, case.edited) == case.edited
        assert rows(setting, organization) == 1

    def test_archives_after_confirmation(
        self, client, organization, admin_user, admin_client, setting
    ):
        item = data.make_item(setting.key, organization)
        kept = data.make_item(setting.key, organization, 1)
        confirmation = client.get(url("archive", organization, setting, item.pk))
        assert confirmation.status_code == 200
        text = confirmation.content.decode()
        assert f"Delete {setting.item_label} “{item}”?" in text
        assert f"Delete {setting.item_label}</button>" in text
        assert rows(setting, organization) == 2  # a GET changes nothing

        response = client.post(url("archive", organization, setting, item.pk))
        assert response.status_code == 302
        assert response["Location"] == url("page", organization, setting)
        assert list(setting.model.objects.filter(organization=organization)) == [kept]
        archivable = hasattr(setting.model, "all_objects")
        if archivable:
            archived = setting.model.all_objects.get(pk=item.pk)
            assert archived.archived_at is not None
            assert archived.archived_by == admin_user
            assert archived.archive_reason
        else:  # never-synced settings have no history to keep
            assert not setting.model._default_manager.filter(pk=item.pk).exists()
        listing = client.get(url("page", organization, setting)).content.decode()
        assert f"“{item}” deleted." in listing
        remaining = data.item_rows(listing)
        assert len(remaining) == 1
        assert data.shown_text(setting.key, 1) in remaining[0]

        # An archived item is gone from the pages: no edit, no second archive.
        assert client.get(url("edit", organization, setting, item.pk)).status_code == 404
        assert client.post(url("archive", organization, setting, item.pk)).status_code == 404
        if archivable:
            assert setting.model.all_objects.get(pk=item.pk).archived_at == archived.archived_at
        assert rows(setting, organization) == 1

    def test_search(self, client, organization, admin_client, setting):
        first, second = data.item_values(setting.key, 1), data.item_values(setting.key, 2)
        name = next(name for name in setting.search_fields if first[name] != second[name])
        data.make_item(setting.key, organization, 1)
        data.make_item(setting.key, organization, 2)
        wanted = second[name][-6:].upper()  # part of it, in other letters
        content = client.get(url("page", organization, setting), {"q": wanted}).content.decode()
        assert len(data.item_rows(content)) == 1
        assert data.shown_text(setting.key, 2) in content
        nothing = client.get(
            url("page", organization, setting), {"q": "zzz-nothing"}
        ).content.decode()
        assert "Nothing matches “zzz-nothing”." in nothing


@pytest.mark.parametrize("setting", LIST_PAGES, ids=data.key_id)
def test_member_reads_without_controls_and_cannot_change(
    client, organization, member_client, setting
):
    item = data.make_item(setting.key, organization)
    response = client.get(url("page", organization, setting))
    assert response.status_code == 200
    content = response.content.decode()
    assert data.shown_text(setting.key) in content
    assert f"Add {setting.item_label}" not in content
    assert url("add", organization, setting) not in content
    assert url("edit", organization, setting, item.pk) not in content
    assert url("archive", organization, setting, item.pk) not in content

    case = data.LIST_CASES[setting.key]
    before = data.values_of(item, data.item_values(setting.key))
    assert client.get(url("add", organization, setting)).status_code == 403
    assert client.post(url("add", organization, setting), case.valid).status_code == 403
    assert client.post(url("edit", organization, setting, item.pk), case.edit).status_code == 403
    assert client.post(url("archive", organization, setting, item.pk)).status_code == 403
    assert list(setting.model.objects.filter(organization=organization)) == [item]
    item.refresh_from_db()
    assert data.values_of(item, before) == before
    if hasattr(item, "archived_at"):
        assert item.archived_at is None


@pytest.mark.parametrize("setting", LIST_PAGES, ids=data.key_id)
def test_another_organizations_admin_finds_nothing(client, setting):
    theirs = OrganizationFactory()
    their_item = data.make_item(setting.key, theirs)
    mine = MembershipFactory(role="admin")
    client.force_login(mine.user)
    case = data.LIST_CASES[setting.key]
    # Their pages
    assert client.get(url("page", theirs, setting)).status_code == 404
    assert client.post(url("add", theirs, setting), case.valid).status_code == 404
    # Their item through my own organization's URLs
    own = mine.organization
    assert client.get(url("edit", own, setting, their_item.pk)).status_code == 404
    assert client.post(url("edit", own, setting, their_item.pk), case.edit).status_code == 404
    assert client.post(url("archive", own, setting, their_item.pk)).status_code == 404
    # Nothing changed, anywhere
    assert list(setting.model.objects.filter(organization=theirs)) == [their_item]
    assert rows(setting, own) == 0
    their_item.refresh_from_db()
    assert data.values_of(their_item, data.item_values(setting.key)) == data.item_values(
        setting.key
    )


@pytest.mark.parametrize("setting", FORM_PAGES, ids=data.key_id)
class TestSingleton:
    def test_admin_edits_the_form(self, client, organization, admin_client, setting):
        case = data.FORM_CASES[setting.key]
        form = client.get(url("page", organization, setting))
        assert form.status_code == 200
        assert f"Save {setting.label.lower()}" in form.content.decode()
        response = client.post(url("page", organization, setting), case.valid)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert response["Location"] == url("page", organization, setting)
        assert rows(setting, organization) == 1
        row = data.singleton(setting.key, organization)
        assert data.values_of(row, case.saved) == case.saved
        page_after = client.get(url("page", organization, setting)).content.decode()
        assert f"{setting.label} saved." in page_after
        # A singleton has no add or edit pages of its own.
        assert client.get(url("add", organization, setting))["Location"] == url(
            "page", organization, setting
        )
        assert client.get(url("edit", organization, setting, row.pk))["Location"] == url(
            "page", organization, setting
        )
        assert rows(setting, organization) == 1

    def test_member_reads_the_values_and_cannot_change_them(
        self, client, organization, member_client, setting
    ):
        name = setting.form_class._meta.fields[0]
        value, shown = {
            "proposal_email": ("Visible subject line", "Visible subject line"),
            "default_costs": (7.77, "7.77"),
        }.get(setting.key, (47, "47"))
        setting.model.objects.filter(organization=organization).update(**{name: value})
        row = data.singleton(setting.key, organization)
        response = client.get(url("page", organization, setting))
        assert response.status_code == 200
        content = response.content.decode()
        assert shown in content
        assert f"Save {setting.label.lower()}" not in content
        for name in setting.form_class._meta.fields:
            assert f'name="{name}"' not in content
            label = str(row._meta.get_field(name).verbose_name)
            assert label[0].upper() + label[1:] in content

        before = (row.synced_values(), row.updated_at)
        response = client.post(
            url("page", organization, setting), data.FORM_CASES[setting.key].valid
        )
        assert response.status_code == 403
        assert client.post(url("archive", organization, setting, row.pk)).status_code == 403
        row = data.singleton(setting.key, organization)
        assert (row.synced_values(), row.updated_at) == before

    def test_another_organizations_admin_finds_nothing(self, client, setting):
        theirs = OrganizationFactory()
        client.force_login(MembershipFactory(role="admin").user)
        before = data.singleton(setting.key, theirs).synced_values()
        assert client.get(url("page", theirs, setting)).status_code == 404
        response = client.post(url("page", theirs, setting), data.FORM_CASES[setting.key].valid)
        assert response.status_code == 404
        assert data.singleton(setting.key, theirs).synced_values() == before

    def test_singleton_rows_cannot_be_deleted_through_the_archive_url(
        self, client, organization, admin_client, setting
    ):
        row = data.singleton(setting.key, organization)
        response = client.post(url("archive", organization, setting, row.pk))
        assert response.status_code in (302, 404, 405)
        assert rows(setting, organization) == 1


class TestLongLists:
    """A list of 1,000 items costs the same queries as one of 10, page 2 included."""

    @pytest.mark.parametrize(
        "setting",
        # synced copies with provenance, JSON values, invite-only, shared templates
        [data.page(key) for key in ("equipment", "personas", "licenses", "proposal_templates")],
        ids=data.key_id,
    )
    def test_constant_queries(self, client, organization, admin_client, setting):
        channel_manager = OrganizationFactory(name=data.UPSTREAM_NAME)
        category = registry.find(setting.key)
        partnership = None
        if category is not None and category.is_collection:
            partnership = make_partnership(channel_manager, organization, **data.NON_EXCLUSIVE)

        def add(start: int, stop: int) -> None:
            items = []
            for i in range(start, stop):
                item = setting.model(organization=organization, **data.item_values(setting.key, i))
                if partnership is not None and i % 2:
                    # every other item is a synced copy, every fourth one edited locally
                    for name in category.synced_fields:
                        setattr(item, f"baseline_{name}", getattr(item, name))
                    item.synced_partnership = partnership
                    if i % 4 == 3:
                        setattr(item, f"baseline_{category.synced_fields[0]}", "old")
                items.append(item)
            setting.model.objects.bulk_create(items)

        add(0, 10)
        client.get(
            url("page", organization, setting)
        )  # warm-up: the first visit writes the session
        with CaptureQueriesContext(connection) as ten:
            response = client.get(url("page", organization, setting))
        assert response.content.decode().count('data-testid="item-row"') == 10

        add(10, 1000)
        with CaptureQueriesContext(connection) as thousand:
            response = client.get(url("page", organization, setting))
        content = response.content.decode()
        assert content.count('data-testid="item-row"') == 50
        assert "Page 1 of 20 · 1000 in all" in content
        assert len(thousand.captured_queries) == len(ten.captured_queries), "\n".join(
            query["sql"] for query in thousand.captured_queries
        )

        with CaptureQueriesContext(connection) as second:
            response = client.get(url("page", organization, setting), {"page": 2})
        assert response.status_code == 200
        content = response.content.decode()
        assert "Page 2 of 20 · 1000 in all" in content
        assert content.count('data-testid="item-row"') == 50
        assert data.shown_text(setting.key, 50) in content
        assert data.shown_text(setting.key, 99) in content
        assert data.shown_text(setting.key, 49) not in content
        assert data.shown_text(setting.key, 100) not in content
        assert len(second.captured_queries) == len(ten.captured_queries)
        if partnership is not None:
            assert f"Synced from {data.UPSTREAM_NAME}" in content
            assert "Edited locally" in content


class TestSingletonsOfNewOrganizations:
    SINGLETONS = [category for category in registry.all() if category.is_singleton]

    def test_objects_create_gives_one_row_of_each_with_defaults(self):
        organization = Organization.objects.create(name="Brand New Solar", slug="brand-new")
        for category in self.SINGLETONS:
            rows_ = list(category.model.objects.filter(organization=organization))
            assert len(rows_) == 1, category.key
            defaults = {
                name: category.model._meta.get_field(name).get_default()
                for name in category.synced_fields
            }
            assert rows_[0].synced_values() == defaults, category.key

    def test_saving_again_adds_no_rows(self):
        organization = Organization.objects.create(name="Brand New Solar", slug="brand-new")
        organization.name = "Renamed Solar"
        organization.save()
        for category in self.SINGLETONS:
            assert category.model.objects.filter(organization=organization).count() == 1

    def test_the_database_refuses_a_second_row(self):
        organization = OrganizationFactory()
        for category in self.SINGLETONS:
            with pytest.raises(IntegrityError), transaction.atomic():
                category.model.objects.create(organization=organization)

    def test_for_organization_returns_that_row(self):
        organization = OrganizationFactory()
        for category in self.SINGLETONS:
            row = category.model.for_organization(organization)
            assert row == category.model.objects.get(organization=organization)

    def test_every_organization_has_them(self):
        organizations = [OrganizationFactory() for _ in range(3)]
        for category in self.SINGLETONS:
            assert category.model.objects.filter(organization__in=organizations).count() == 3


class TestSharedProposalTemplates:
    setting = data.page("proposal_templates")

    @pytest.fixture
    def channel_manager(self):
        helios = OrganizationFactory(name=data.UPSTREAM_NAME)
        ProposalTemplate.objects.create(
            organization=helios, name="Helios Standard", description="The house layout"
        )
        return helios

    @pytest.fixture
    def partner_admin(self, client, channel_manager):
        membership = MembershipFactory(role="admin")
        make_partnership(channel_manager, membership.organization)
        client.force_login(membership.user)
        return membership

    def test_partner_sees_them_read_only(self, client, channel_manager, partner_admin):
        partner = partner_admin.organization
        own = ProposalTemplate.objects.create(organization=partner, name="Our own layout")
        shared = ProposalTemplate.objects.get(organization=channel_manager)
        response = client.get(url("page", partner, self.setting))
        assert response.status_code == 200
        content = response.content.decode()
        assert "Shared with you" in content
        assert "Helios Standard" in content
        assert f"Shared by {data.UPSTREAM_NAME}" in content
        # Own templates can be changed; shared ones cannot.
        assert url("edit", partner, self.setting, own.pk) in content
        assert url("edit", partner, self.setting, shared.pk) not in content
        assert url("archive", partner, self.setting, shared.pk) not in content

    def test_the_page_says_once_who_sees_them(self, client, channel_manager, partner_admin):
        partner = partner_admin.organization
        page = client.get(url("page", partner, self.setting)).content.decode()
        note = re.search(r'data-testid="never-synced">(.*?)</p>', page, re.S).group(1)
        assert " ".join(note.split()).endswith(
            "Never synced or copied. Your partners see these proposal templates read-only, as "
            f"“Shared by {partner.name}”; your channel managers do not see them."
        )
        assert "cannot read" not in page
        assert page.count("Your partners see") == 1
        # The "local" badge beside the never-synced pages is explained.
        legend = re.search(r'data-testid="local-legend">(.*?)</p>', page, re.S).group(1)
        assert legend.endswith(
            "local</span> Never synced: not copied to or from other organizations."
        )

    def test_shared_whatever_the_flags(self, client, channel_manager, partner_admin):
        strict_partner = MembershipFactory(role="admin")
        make_partnership(channel_manager, strict_partner.organization, **data.STRICT)
        client.force_login(strict_partner.user)
        content = client.get(url("page", strict_partner.organization, self.setting)).content
        assert f"Shared by {data.UPSTREAM_NAME}".encode() in content
        assert b"Managed by" not in content  # templates are never locked

    def test_forged_changes_to_a_shared_template_are_not_found(
        self, client, channel_manager, partner_admin
    ):
        partner = partner_admin.organization
        shared = ProposalTemplate.objects.get(organization=channel_manager)
        forged = {"name": "Taken over", "description": "", "page_count": "3"}
        assert client.get(url("edit", partner, self.setting, shared.pk)).status_code == 404
        assert client.post(url("edit", partner, self.setting, shared.pk), forged).status_code == 404
        assert client.get(url("archive", partner, self.setting, shared.pk)).status_code == 404
        assert client.post(url("archive", partner, self.setting, shared.pk)).status_code == 404
        assert client.get(url("page", channel_manager, self.setting)).status_code == 404
        shared.refresh_from_db()
        assert (shared.name, shared.page_count) == ("Helios Standard", 8)
        assert ProposalTemplate.objects.filter(organization=partner).count() == 0

    def test_the_channel_manager_does_not_see_its_partners_templates(
        self, client, channel_manager, partner_admin
    ):
        ProposalTemplate.objects.create(
            organization=partner_admin.organization, name="Partner layout"
        )
        client.force_login(MembershipFactory(organization=channel_manager, role="admin").user)
        content = client.get(url("page", channel_manager, self.setting)).content.decode()
        assert "Shared with you" not in content
        assert "Partner layout" not in content
        assert "Helios Standard" in content

    def test_not_shared_with_outsiders_or_after_the_partnership_ends(
        self, client, channel_manager, partner_admin
    ):
        outsider = MembershipFactory(role="admin")
        client.force_login(outsider.user)
        content = client.get(url("page", outsider.organization, self.setting)).content.decode()
        assert "Helios Standard" not in content

        partner = partner_admin.organization
        partnership = Partnership.objects.get(upstream=channel_manager, downstream=partner)
        services.end_partnership(partnership, by=None)
        client.force_login(partner_admin.user)
        content = client.get(url("page", partner, self.setting)).content.decode()
        assert "Helios Standard" not in content
        assert "Shared with you" not in content


def test_group_index_redirects_to_the_first_page(client, organization, admin_client):
    for group in ("project", "usage", "proposal", "financing", "integrations"):
        response = client.get(reverse(f"settings_sync:{group}", args=[organization.slug]))
        assert response.status_code == 302
        first = next(setting for setting in data.PAGES if setting.group == group)
        assert response["Location"] == url("page", organization, first)
