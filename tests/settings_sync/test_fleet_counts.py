"""The fleet preview counts collection items in SQL (docs/design.md §12.3): its totals are
the sum of what the engine plans for each partner, whatever the partners' items, flags and
overrides, and its queries do not grow with partners or items."""

from __future__ import annotations

import datetime
import itertools
from collections import Counter
from dataclasses import dataclass

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from organizations.natural_keys import normalise_key
from partnerships.models import Partnership
from settings_sync import overrides, previews, profiles
from settings_sync.engine import WRITING_ACTIONS
from settings_sync.items import baseline_name
from settings_sync.models import CategoryOverride
from settings_sync.project.models import Adder, Equipment
from tests.factories import AdderFactory, OrganizationFactory, make_partnership
from tests.hypothesis_profiles import examples
from tests.settings_sync.catalogue_data import MODES

pytestmark = pytest.mark.django_db

#: Names that are one natural key once case-folded and normalised, and others.
NAMES = ["Trenching", "trenching", "TRENCHING ", "Straße", "STRASSE", "ﬁle", "File", "Tile roof"]
FLAGS = MODES  # mode → the partnership flags that give it
OVERRIDES = ["follow", "off", "flexible", "strict"]
#: What a partner holds for one upstream item.
STATES = [
    "none",
    "copy",  # in sync
    "edited",  # edited locally
    "renamed",  # the upstream item was renamed since (the copy keeps the old name)
    "renamed_edited",  # renamed since, and the copy edited locally
    "two_live",  # two live copies of it (the second under another name)
    "stale",  # the upstream item changed since: the copy's baseline is older
    "archived_by_sync",
    "archived_by_partner",
    "two_archived",  # archived twice, at different times
    "archived_and_copy",  # archived by the sync once, and copied again since
]
counter = itertools.count()


@dataclass
class Fleet:
    upstream: list[tuple[str, int, str]]  # (name, amount, state: live, archived, deleted)
    partners: list[dict]
    profile_mode: str
    profile_overrides: dict[str, str]


@st.composite
def fleets(draw) -> Fleet:
    upstream = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMES),
                st.integers(0, 2),
                st.sampled_from(["live", "live", "archived", "deleted"]),
            ),
            max_size=5,
        )
    )
    partners = []
    for _ in range(draw(st.integers(1, 3))):
        partners.append(
            {
                "mode": draw(st.sampled_from(list(FLAGS))),
                "overrides": {
                    key: draw(st.sampled_from(OVERRIDES)) for key in ("adders", "equipment")
                },
                "states": [
                    (
                        draw(st.sampled_from(STATES)),
                        draw(st.sampled_from(NAMES)),  # the old name of a renamed copy
                        draw(st.booleans()),  # locked by the channel manager
                        draw(st.booleans()),  # its origin recorded
                    )
                    for _ in upstream
                ],
                "own": draw(st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 2)))),
                "elsewhere": draw(
                    st.lists(
                        st.tuples(st.sampled_from(NAMES), st.sampled_from(["live", "declined"])),
                        max_size=2,
                    )
                ),
                "equipment": draw(st.sampled_from(["none", "copy", "edited", "own"])),
            }
        )
    profile_mode = draw(st.sampled_from(list(FLAGS)))
    exclusive = profile_mode in ("flexible", "strict")
    choices = OVERRIDES if exclusive else ["follow", "off"]
    profile_overrides = {
        key: draw(st.sampled_from(choices)) for key in ("adders", "equipment", "personas")
    }
    return Fleet(upstream, partners, profile_mode, profile_overrides)


def _copy(model, organization, source, partnership, values, baseline, *, locked, origin, **extra):
    item = model(
        organization=organization,
        synced_partnership=partnership,
        synced_from_id=source.pk,
        synced_at=timezone.now(),
        managed_by_id=partnership.upstream_id if locked else None,
        synced_origin_id=partnership.upstream_id if origin else None,
        **values,
        **{baseline_name(name): value for name, value in baseline.items()},
        **extra,
    )
    item.save()
    return item


def build(fleet: Fleet):
    """The fleet in the database: a channel manager, its items, and its partners' items."""
    n = next(counter)
    manager = OrganizationFactory(name=f"Channel manager {n}")
    other = OrganizationFactory(name=f"Other channel manager {n}")
    taken: set[str] = set()
    sources = []
    for name, amount, state in fleet.upstream:
        key = normalise_key([name])
        if key in taken:
            continue
        taken.add(key)
        sources.append((AdderFactory(organization=manager, name=name, amount=amount), state))
    equipment = Equipment.objects.create(
        organization=manager, kind="module", manufacturer="REC", model="Alpha", unit_cost=1
    )
    when = timezone.now() - datetime.timedelta(days=1)
    made = []
    for index, spec in enumerate(fleet.partners):
        partner = OrganizationFactory(name=f"Partner {n}-{index}")
        partnership = make_partnership(manager, partner, **FLAGS[spec["mode"]])
        # not through the service: it refuses a second channel manager beside an exclusive one
        elsewhere = Partnership.objects.create(upstream=other, downstream=partner)
        for key, value in spec["overrides"].items():
            if value != "follow":
                CategoryOverride.objects.create(partnership=partnership, category=key, value=value)
        live: set[str] = set()

        def free(name, live=live):
            key = normalise_key([name])
            if key in live:
                return False
            live.add(key)
            return True

        for (source, _), (state, old_name, locked, origin) in zip(
            sources, spec["states"], strict=False
        ):
            values = {name: getattr(source, name) for name in Adder.SYNCED_FIELDS}
            flags = {"locked": locked, "origin": origin}
            if state in ("copy", "edited", "stale") and free(source.name):
                edited = {**values, "amount": values["amount"] + 5}
                _copy(
                    Adder,
                    partner,
                    source,
                    partnership,
                    edited if state == "edited" else values,
                    {**values, "amount": values["amount"] + 7} if state == "stale" else values,
                    **flags,
                )
            elif state in ("renamed", "renamed_edited") and free(old_name):
                old = {**values, "name": old_name}
                edited = {**old, "amount": old["amount"] + 5} if state == "renamed_edited" else old
                _copy(Adder, partner, source, partnership, edited, old, **flags)
            elif state == "two_live":
                for named in (values, {**values, "name": old_name}):
                    if free(named["name"]):
                        _copy(Adder, partner, source, partnership, named, named, **flags)
            elif state == "archived_and_copy":
                _copy(Adder, partner, source, partnership, values, values, archived_at=when,
                      archived_by_sync=True, **flags)  # fmt: skip
                when += datetime.timedelta(minutes=1)
                if free(source.name):
                    _copy(Adder, partner, source, partnership, values, values, **flags)
            elif state.startswith("archived") or state == "two_archived":
                times = [when, when + datetime.timedelta(hours=1)]
                for at in times[: 2 if state == "two_archived" else 1]:
                    _copy(
                        Adder,
                        partner,
                        source,
                        partnership,
                        values,
                        values,
                        archived_at=at,
                        archived_by_sync=state == "archived_by_sync" or at == times[1],
                        **flags,
                    )
                    when += datetime.timedelta(minutes=1)
        for name, amount in spec["own"]:
            if free(name):
                AdderFactory(organization=partner, name=name, amount=amount)
        for name, state in spec["elsewhere"]:
            source = AdderFactory(organization=other, name=f"{name} {next(counter)}")
            if state == "live" and not free(name):
                continue
            _copy(
                Adder,
                partner,
                source,
                elsewhere,
                {"name": name, "pricing": "fixed", "amount": 1, "applied_by_default": False},
                {"name": name, "pricing": "fixed", "amount": 1, "applied_by_default": False},
                locked=False,
                origin=True,
                archived_at=when if state == "declined" else None,
            )
        kind = spec["equipment"]
        values = {name: getattr(equipment, name) for name in Equipment.SYNCED_FIELDS}
        if kind in ("copy", "edited"):
            changed = {**values, "rating": 400} if kind == "edited" else values
            _copy(
                Equipment,
                partner,
                equipment,
                partnership,
                changed,
                values,
                locked=False,
                origin=True,
            )
        elif kind == "own":
            Equipment.objects.create(organization=partner, **{**values, "unit_cost": 2})
        made.append(partnership)
    # Upstream items archived or deleted after their copies were made.
    for source, state in sources:
        if state == "archived":
            source.archived_at = timezone.now()
            source.save()
        elif state == "deleted":
            Adder.all_objects.filter(pk=source.pk).delete()
    profile = profiles.save_profile(
        manager,
        name=f"Profile {n}",
        flags=FLAGS[fleet.profile_mode],
        values=fleet.profile_overrides,
    )
    return profile, made


def planned_by_engine(profile, partnerships) -> tuple[Counter, int]:
    """The totals and overwrites of the engine's plans, partner by partner."""
    totals: Counter = Counter()
    overwritten = 0
    for partnership in partnerships:
        copy = previews.profiled(partnership, profile)
        plan = previews.change_plan(
            copy,
            stored_mode=partnership.mode,
            stored_overrides=overrides.overrides_of(partnership),
        )
        if plan is None or plan.skipped:
            continue
        for counts in plan.summary().values():
            totals.update({a: n for a, n in counts.items() if a in WRITING_ACTIONS and n})
        overwritten += sum(1 for change in plan.changes if change.overwrites_local)
    return totals, overwritten


def previewed(profile, made):
    """The fleet preview of the partnerships ``made``, and the totals and overwrites of the
    engine's plans for them."""
    listed = list(
        Partnership.objects.filter(pk__in=[p.pk for p in made])
        .select_related("upstream", "downstream")
        .order_by("pk")
    )
    return previews.fleet_preview(profile, listed), *planned_by_engine(profile, listed)


#: Every state at once, under each outcome (examples always run, whatever the profile).
KITCHEN_SINK_UPSTREAM = [
    ("Trenching", 1, "live"),
    ("Straße", 2, "live"),
    ("File", 0, "live"),
    ("Tile roof", 1, "live"),
    ("Critter guard", 1, "live"),
    ("Main panel", 2, "live"),
    ("Ground mount", 0, "live"),
    ("Battery", 1, "live"),
    ("Inverter upgrade", 2, "live"),
    ("Old", 1, "archived"),
    ("Gone", 1, "deleted"),
]
KITCHEN_SINK_STATES = [
    ("copy", "", True, False),
    ("edited", "", False, True),
    ("renamed", "Old file", False, True),
    ("stale", "", True, True),
    ("archived_by_sync", "", False, True),
    ("archived_by_partner", "", False, True),
    ("two_archived", "", False, True),
    ("archived_and_copy", "", True, True),
    ("none", "", False, True),
    ("edited", "", False, True),  # a copy of an item archived upstream since
    ("copy", "", False, True),  # a copy of an item deleted upstream since
]


def kitchen_sink(profile_mode: str, adders: str) -> Fleet:
    partners = [
        {
            "mode": mode,
            "overrides": {"adders": "follow", "equipment": "follow"},
            "states": KITCHEN_SINK_STATES,
            "own": [("battery ", 5), ("TRENCHING", 1), ("Own", 1), ("ﬁle", 3)],
            "elsewhere": [("Tile roof", "declined"), ("Critter guard", "live")],
            "equipment": equipment,
        }
        for mode, equipment in [
            ("non_exclusive", "edited"),
            ("flexible", "own"),
            ("strict", "copy"),
        ]
    ]
    return Fleet(KITCHEN_SINK_UPSTREAM, partners, profile_mode, {"adders": adders})


@example(fleet=kitchen_sink("strict", "follow"))
@example(fleet=kitchen_sink("strict", "flexible"))
@example(fleet=kitchen_sink("non_exclusive", "follow"))
@example(fleet=kitchen_sink("off", "follow"))
@given(fleet=fleets())
@settings(max_examples=examples(15))  # besides the examples above (HYPOTHESIS_PROFILE=deep: 500)
def test_the_fleet_counts_are_the_engines_plans_added_up(fleet):
    with transaction.atomic():
        fleet_preview, totals, overwritten = previewed(*build(fleet))
        assert +fleet_preview.totals == +totals
        assert fleet_preview.overwritten == overwritten
        transaction.set_rollback(True)


def linked_fleet(partners: int, items: int, mode: str = "flexible"):
    """A channel manager with ``items`` adders and ``partners`` partners syncing them (flexibly
    unless ``mode`` says otherwise): every copy in sync but one edited, one upstream item
    renamed since, and one adder of the partner's own."""
    n = next(counter)
    manager = OrganizationFactory(name=f"Channel manager {n}")
    sources = Adder.objects.bulk_create(
        Adder(organization=manager, name=f"Adder {i}", amount=i) for i in range(items)
    )
    made = []
    for index in range(partners):
        partner = OrganizationFactory(name=f"Partner {n}-{index}")
        partnership = make_partnership(manager, partner, **FLAGS[mode])
        copies = []
        for source in sources:
            values = {name: getattr(source, name) for name in Adder.SYNCED_FIELDS}
            copies.append(
                Adder(
                    organization=partner,
                    synced_partnership=partnership,
                    synced_from=source,
                    synced_origin=manager,
                    **values,
                    **{baseline_name(name): value for name, value in values.items()},
                )
            )
        copies[0].amount += 1  # edited locally
        copies[1].name = copies[1].baseline_name = "Renamed since"
        Adder.objects.bulk_create(copies)
        AdderFactory(organization=partner, name=f"Own {index}")
        made.append(partnership)
    return manager, made


def test_queries_are_constant_per_batch_for_partners_in_sync():
    def queries(partners: int, items: int) -> tuple[int, Counter]:
        manager, made = linked_fleet(partners, items)
        profile = profiles.save_profile(
            manager,
            name="Strict",
            flags=FLAGS["strict"],
            values={"adders": "strict", "personas": "off"},
        )
        listed = list(
            Partnership.objects.filter(pk__in=[p.pk for p in made]).select_related(
                "upstream", "downstream"
            )
        )
        with CaptureQueriesContext(connection) as captured:
            fleet = previews.fleet_preview(profile, listed)
        # Strict: every copy is locked now (the edited one overwritten, the renamed one
        # renamed), and the partner's own adder archived.
        assert fleet.totals == Counter(updated=items * partners, archived=partners)
        assert fleet.overwritten == partners
        return len(captured.captured_queries)

    assert queries(3, 10) == queries(40, 100)


def test_copies_kept_as_edited_are_counted_in_sql():
    """A merge keeps an edited copy under its upstream item's name: the query counts it as
    the one live copy of that item, leaving no partner to the engine (docs/design.md §12.3)."""
    manager, made = linked_fleet(3, 5, mode="non_exclusive")
    profile = profiles.save_profile(manager, name="Flexible", flags=FLAGS["flexible"], values={})
    fleet, totals, overwritten = previewed(profile, made)
    assert fleet.planned_item_by_item == 0
    assert +fleet.totals == +totals
    assert fleet.overwritten == overwritten == 0
