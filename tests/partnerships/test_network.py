"""The whole network on the Partnerships tab (docs/design.md §14.5): every organization below,
with its level, the partnership it hangs from, mode, last sync and drift; searchable and
paginated at a constant number of queries; and the flag preview counts the organizations a
save reaches below the partner. The recursive query runs on SQLite here and on PostgreSQL in
the PostgreSQL run of the suite, with the same expectations."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from partnerships import views
from partnerships.network import organizations_below
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership
from tests.settings_sync.catalogue_data import FLEXIBLE, NON_EXCLUSIVE, STRICT

pytestmark = pytest.mark.django_db


@pytest.fixture
def network(django_capture_on_commit_callbacks):
    """Top → Dealer A (strict) → Installer A1 (flexible) → Crew (non-exclusive);
    Top → Dealer B (non-exclusive) → Installer B1 (non-exclusive, Sync off) and
    Dealer A → Shared installer ← Dealer B (two non-exclusive paths); an unrelated pair."""
    names = ["Top", "Dealer A", "Dealer B", "Installer A1", "Installer B1", "Crew", "Shared"]
    orgs = {name: OrganizationFactory(name=name) for name in names}
    AdderFactory(organization=orgs["Top"], name="Trenching")
    edges = [
        ("Top", "Dealer A", STRICT),
        ("Top", "Dealer B", NON_EXCLUSIVE),
        ("Dealer A", "Installer A1", FLEXIBLE),
        ("Installer A1", "Crew", NON_EXCLUSIVE),
        ("Dealer B", "Installer B1", {}),
        ("Dealer A", "Shared", NON_EXCLUSIVE),
        ("Dealer B", "Shared", NON_EXCLUSIVE),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for up, down, flags in edges:
            make_partnership(orgs[up], orgs[down], **flags)
        make_partnership(OrganizationFactory(name="Elsewhere"), OrganizationFactory(), **STRICT)
    return orgs


def page_of(client, organization, **params) -> str:
    client.force_login(MembershipFactory(organization=organization, role="member").user)
    url = reverse("partnerships:network", args=[organization.slug])
    return client.get(url, params).content.decode()


def rows(page: str) -> list[str]:
    """Each row's text, squeezed: organization, level, channel manager, mode, last sync."""
    found = re.findall(r'<tr data-testid="network-row">(.*?)</tr>', page, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in found]


def test_every_organization_below_with_its_level_and_channel_manager(client, network):
    page = page_of(client, network["Top"])
    listed = rows(page)
    assert [row.split(" ")[0:2] for row in listed] == [
        ["Dealer", "A"],
        ["Dealer", "B"],
        ["Installer", "A1"],
        ["Installer", "B1"],
        ["Shared", "2"],
        ["Shared", "2"],
        ["Crew", "3"],
    ]
    assert "Installer A1 2 levels down Dealer A Flexible" in listed[2]
    assert "Crew 3 levels down Installer A1 Non-exclusive" in listed[6]
    assert "Dealer A Your partner Top Strict" in listed[0]
    assert "Elsewhere" not in page
    # Only the direct partnerships are this organization's to open.
    top = network["Top"]
    for partnership in top.downstream_partnerships.all():
        assert reverse("partnerships:detail", args=[top.slug, partnership.pk]) in page
    deeper = network["Dealer A"].downstream_partnerships.first()
    assert reverse("partnerships:detail", args=[top.slug, deeper.pk]) not in page
    assert "In sync" in page  # last sync and drift, from the sync


def test_a_dealer_sees_its_own_subtree(client, network):
    listed = rows(page_of(client, network["Dealer B"]))
    assert [row.split(" ")[0] for row in listed] == ["Installer", "Shared"]


def test_search_and_pages(client, network, monkeypatch):
    assert [r.split(" ")[0] for r in rows(page_of(client, network["Top"], q="installer"))] == [
        "Installer",
        "Installer",
    ]
    assert "No organization in your network matches “zzz”." in page_of(
        client, network["Top"], q="zzz"
    )
    assert rows(page_of(client, network["Top"], q="50%_")) == []  # no wildcard in a name
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    second = page_of(client, network["Top"], page=2)
    assert "Page 2 of 3" in second
    assert [r.split(" ")[0] for r in rows(second)] == ["Installer", "Shared", "Shared"]


def test_the_page_costs_the_same_queries_for_a_bigger_network(
    client, network, django_capture_on_commit_callbacks
):
    def queries() -> int:
        client.force_login(MembershipFactory(organization=network["Top"], role="admin").user)
        url = reverse("partnerships:network", args=[network["Top"].slug])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    few = queries()
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(10):
            make_partnership(network["Crew"], OrganizationFactory(name=f"Sub {n}"), **FLEXIBLE)
    assert queries() == few


def test_organizations_below_counts_each_syncing_organization_once(network):
    assert organizations_below(network["Top"]) == 5  # not Installer B1: its sync is off
    assert organizations_below(network["Dealer A"]) == 3
    assert organizations_below(network["Crew"]) == 0


def test_the_flag_preview_says_how_far_a_save_reaches(client, network):
    top = network["Top"]
    client.force_login(MembershipFactory(organization=top, role="admin").user)
    partnership = top.downstream_partnerships.get(downstream=network["Dealer A"])
    edit = reverse("partnerships:edit", args=[top.slug, partnership.pk])
    page = client.post(
        edit,
        {"_refresh": "1", "version": partnership.version, **dict.fromkeys(FLEXIBLE, "on")},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "What changes in Dealer A travels on to 3 organizations below it." in page


def test_the_switch_on_the_partnerships_tab(client, network):
    client.force_login(MembershipFactory(organization=network["Top"], role="member").user)
    page = client.get(reverse("partnerships:list", args=[network["Top"].slug])).content.decode()
    assert f'href="{reverse("partnerships:network", args=[network["Top"].slug])}"' in page
    assert "Whole network" in page
