"""Random networks of depth ≤ 4 in every combination of modes, linked in any order, then
edited anywhere editing is allowed, through the real triggers (on commit, immediate task
backend): once the queue has drained, every organization's synced items are what its
upstream holds under each partnership's mode, and running every partnership again changes
nothing (docs/design.md §14)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from organizations.models import Organization
from organizations.natural_keys import normalise_part
from partnerships import services
from partnerships.models import Partnership
from settings_sync import engine
from settings_sync.engine import WRITING_ACTIONS
from settings_sync.locks import is_item_locked, is_locked
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder
from settings_sync.proposal.models import ProposalExpiration
from tests.hypothesis_profiles import examples
from tests.settings_sync.catalogue_data import MODES

#: Names that meet each other across organizations (two paths, adoption, clashes).
SHARED_NAMES = ["Trenching", "Tile roof", "Critter guard"]
counter = itertools.count()


@dataclass
class Network:
    levels: list[int]  # the level of each organization
    edges: list[tuple[int, int, str]]  # (upstream, downstream, mode), in the order linked
    items: list[list[tuple[str, int]]]  # each organization's own adders (name, amount)
    edits: list[tuple[int, str, int, int]]  # (organization, action, pick, value)


@st.composite
def networks(draw) -> Network:
    depth = draw(st.integers(min_value=1, max_value=4))
    levels: list[int] = []
    edges: list[tuple[int, int, str]] = []
    for level in range(depth + 1):
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            org = len(levels)
            levels.append(level)
            if level == 0:
                continue
            above = [n for n, at in enumerate(levels) if at == level - 1]
            earlier = [n for n, at in enumerate(levels) if at < level]
            if draw(st.booleans()):  # one exclusive upstream, and no other
                mode = draw(st.sampled_from(["flexible", "strict"]))
                edges.append((draw(st.sampled_from(above)), org, mode))
            else:  # one or two non-exclusive upstreams (two paths to one organization)
                ups = {draw(st.sampled_from(above))}
                if draw(st.booleans()):
                    ups.add(draw(st.sampled_from(earlier)))
                for up in sorted(ups):
                    edges.append((up, org, draw(st.sampled_from(["non_exclusive", "off"]))))
    edges = draw(st.permutations(edges))
    names = st.one_of(st.sampled_from(SHARED_NAMES), st.just("Own"))
    items = [
        draw(st.lists(st.tuples(names, st.integers(0, 9)), max_size=2, unique_by=lambda i: i[0]))
        for _ in levels
    ]
    edits = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(levels) - 1),
                st.sampled_from(["amount", "create", "archive", "days"]),
                st.integers(0, 5),
                st.integers(1, 99),
            ),
            max_size=4,
        )
    )
    return Network(levels, edges, items, edits)


def key(name: str) -> str:
    return normalise_part(name)


def build(network: Network) -> tuple[list[Organization], list[Partnership]]:
    n = next(counter)
    organizations = [
        Organization.objects.create(name=f"Org {n}.{i}", slug=f"org-{n}-{i}")
        for i in range(len(network.levels))
    ]
    for organization, items in zip(organizations, network.items, strict=True):
        for name, amount in items:
            # "Own" is the organization's own name: it never meets another organization's.
            name = f"{name} {organization.pk}" if name == "Own" else name
            Adder.objects.create(organization=organization, name=name, amount=amount)
    partnerships = [
        services.create_partnership(organizations[up], organizations[down], by=None, **MODES[mode])
        for up, down, mode in network.edges
    ]
    return organizations, partnerships


def edit(organization: Organization, action: str, pick: int, value: int) -> None:
    """What the organization's admin may do: only where its settings, and the item, are not
    locked (the pages refuse the rest with 403)."""
    if is_locked(organization, "adders"):
        return
    items = [
        item
        for item in Adder.objects.filter(organization=organization).order_by("pk")
        if not is_item_locked(item)
    ]
    item = items[pick % len(items)] if items else None
    if action == "amount" and item:
        item.amount = value
        item.save()
    elif action == "archive" and item:
        item.archive(reason="not for us")
    elif action == "create":
        name = SHARED_NAMES[pick % len(SHARED_NAMES)]
        if organization.upstream_partnerships.exists():
            # A partner naming an item like its channel manager's is adopted by that channel
            # manager's next run (a single partnership's rule, docs/design.md §5.3), which
            # nothing in the partner starts: names of its own keep this about the network.
            name = f"Own {organization.pk}.{pick}"
        if not Adder.objects.filter(organization=organization, normalised_key=key(name)).exists():
            Adder.objects.create(organization=organization, name=name, amount=value)
    elif action == "days":
        row = ProposalExpiration.objects.get(organization=organization)
        row.days_valid = value
        row.save()


def values(item) -> tuple:
    return (item.name, item.pricing, Decimal(item.amount), item.applied_by_default)


def assert_follows(partnership: Partnership) -> None:
    """The partner holds what its channel manager holds, under the partnership's mode."""
    up, down = partnership.upstream, partnership.downstream
    upstream = {item.pk: item for item in Adder.objects.filter(organization=up)}
    partner_items = list(Adder.objects.filter(organization=down))
    copies = [item for item in partner_items if item.synced_partnership_id == partnership.pk]
    copied = {}
    for copy in copies:
        assert copy.synced_from_id in upstream, f"{copy} in {down} outlived its source"
        assert copy.synced_from_id not in copied, f"two live copies of {copy} in {down}"
        copied[copy.synced_from_id] = copy
        source = upstream[copy.synced_from_id]
        if partnership.mode == "strict" or copy.sync_state == "synced":
            assert values(copy) == values(source), f"{copy} in {down} is not {source} in {up}"
    names = {item.normalised_key for item in partner_items}
    declined = set(  # copies the partner archived: merge does not bring them back
        Adder.all_objects.filter(
            synced_partnership=partnership, archived_at__isnull=False, archived_by_sync=False
        ).values_list("synced_from_id", flat=True)
    )
    # …and copies of the same item, received through another path, that the partner archived.
    declined_elsewhere = set(
        Adder.all_objects.filter(
            organization=down, archived_at__isnull=False, archived_by_sync=False
        ).values_list("normalised_key", "synced_origin_id")
    )
    for pk, source in upstream.items():
        origin = source.synced_origin_id or source.organization_id
        if partnership.mode != "strict" and (
            pk in declined or (source.normalised_key, origin) in declined_elsewhere
        ):
            continue
        if pk not in copied:
            # Merge leaves a name the partner already uses (a clash, a second path) alone.
            assert partnership.mode != "strict", f"{source} of {up} is missing in {down}"
            assert source.normalised_key in names, f"{source} of {up} is missing in {down}"
            assert SyncChange.objects.filter(
                run__partnership=partnership, action="conflict", upstream_item_id=pk
            ).exists(), f"{source} of {up} neither reached {down} nor was reported"
    if partnership.mode == "strict":
        assert len(partner_items) == len(upstream)
        days = ProposalExpiration.objects.filter(organization__in=[up, down])
        assert len({row.days_valid for row in days}) == 1


@pytest.mark.django_db(transaction=True)
@given(network=networks())
@settings(max_examples=examples(15))  # networks of up to five levels (HYPOTHESIS_PROFILE=deep: 500)
def test_every_organization_follows_its_upstreams_once_the_queue_drains(network):
    organizations, partnerships = build(network)
    for org, action, pick, value in network.edits:
        edit(organizations[org], action, pick, value)

    runs = SyncRun.objects.filter(partnership__in=partnerships)
    assert not runs.exclude(status__in=["succeeded", "skipped"]).exists()
    syncing = [p for p in partnerships if p.data_sync_enabled]
    for partnership in syncing:
        assert_follows(partnership)

    # Nothing is left to do: each partnership's run again, top down, writes nothing.
    before = runs.count()
    for partnership in sorted(
        syncing, key=lambda p: network.levels[organizations.index(p.upstream)]
    ):
        again = engine.run(partnership, "change")
        assert again.status == "succeeded"
        written = {
            action
            for counts in again.counts.values()
            for action, count in counts.items()
            if count and action in WRITING_ACTIONS
        }
        assert not written, f"{partnership}: {again.counts}"
    assert runs.count() == before + len(syncing)  # and starts nothing below
