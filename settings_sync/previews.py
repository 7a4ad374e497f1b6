"""What saving new flags and overrides would do: for one partner (the Partnership Details
form) and for many (a profile's fleet preview), computed by the engine without writing
(docs/design.md §12.2, §12.3)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Count

from partnerships.models import Partnership

from . import engine, fleet_counts, overrides, policy
from .engine.plan import DETACHED, WRITING_ACTIONS, CategoryPlan, Plan

#: Partners previewed together, reading each category once for all of them.
FLEET_BATCH = 200
#: Actions a fleet preview adds up (kept-local and conflicts only report).
FLEET_ACTIONS = ("created", "updated", "adopted", "restored", "archived", "detached")


def change_plan(
    edited: Partnership,
    *,
    stored_mode: str,
    stored_overrides: Mapping[str, str],
    reads=None,
    collections: bool = True,
) -> Plan | None:
    """The runs saving ``edited`` (new flags, ``pending_overrides``) would raise, as one plan:
    the flags' event for every category, and each category whose override raises its own
    (rule O4). None when nothing would run. Without ``collections``, collection categories
    carry their outcome only (see ``fleet_preview``)."""
    event = policy.event_for_mode_change(stored_mode, edited.mode)
    plans = []
    if event is not None:
        plans.append(
            engine.preview(
                edited, event, mode_before=stored_mode, reads=reads, collections=collections
            )
        )
    category_events = overrides.events_for_change(
        mode_before=stored_mode,
        mode_after=edited.mode,
        before=stored_overrides,
        after=overrides.overrides_of(edited),
    )
    for category_event in (policy.LINK, policy.UNLINK):
        raised = [(key, mode) for key, e, mode in category_events if e == category_event]
        if raised:
            plans.append(
                engine.preview(
                    edited,
                    category_event,
                    mode_before=raised[0][1],
                    categories=[key for key, _ in raised],
                    reads=reads,
                    collections=collections,
                )
            )
    return Plan.combined(plans) if plans else None


@dataclass
class PartnerEffect:
    partnership: Partnership
    mode_before: str
    mode_after: str
    totals: dict[str, int]
    overwritten: int

    @property
    def writes(self) -> int:
        return sum(self.totals.values())


@dataclass
class FleetPreview:
    """A profile's effect on many partners, added up (nothing written)."""

    partners: int = 0
    changing_mode: int = 0
    totals: Counter = field(default_factory=Counter)
    overwritten: int = 0
    effects: list[PartnerEffect] = field(default_factory=list)
    #: (partner, category) pairs the SQL counts left to the engine's item rules
    planned_item_by_item: int = 0

    @property
    def most_affected(self) -> list[PartnerEffect]:
        """The 10 partners whose settings the profile changes most."""
        changed = [effect for effect in self.effects if effect.writes or effect.overwritten]
        return sorted(changed, key=lambda e: (-e.writes, e.partnership.downstream.name))[:10]

    @property
    def rows(self) -> list[tuple[str, int]]:
        return [(action, self.totals.get(action, 0)) for action in FLEET_ACTIONS]


def profiled(partnership: Partnership, profile) -> Partnership:
    """An unsaved copy of ``partnership`` carrying the profile's flags and overrides."""
    edited = Partnership(
        pk=partnership.pk,
        upstream=partnership.upstream,
        downstream=partnership.downstream,
        status=partnership.status,
        **profile.flags,
    )
    edited.pending_overrides = {**_all_follow(), **profile.overrides}
    return edited


def _all_follow() -> dict[str, str]:
    from . import registry

    return {category.key: overrides.FOLLOW for category in registry.all()}


def fleet_preview(profile, partnerships: list[Partnership]) -> FleetPreview:
    """What applying ``profile`` to these partnerships would do, batch by batch: a constant
    number of queries per ``FLEET_BATCH`` partners, whatever their number of items.

    Each partner's runs are built by the engine as the Partnership Details form builds them
    (``change_plan``), except that collection categories are not planned item by item: their
    items are counted in SQL for the whole batch (docs/design.md §12.3).
    """
    result = FleetPreview(partners=len(partnerships))
    for start in range(0, len(partnerships), FLEET_BATCH):
        batch = partnerships[start : start + FLEET_BATCH]
        overrides.prefetch(batch)
        edited = [profiled(partnership, profile) for partnership in batch]
        reads = engine.reads_for(edited)
        plans = [
            change_plan(
                copy,
                stored_mode=partnership.mode,
                stored_overrides=overrides.overrides_of(partnership),
                reads=reads,
                collections=False,
            )
            for partnership, copy in zip(batch, edited, strict=True)
        ]
        counted = _collection_counts(edited, plans, reads, result)
        for partnership, copy, plan in zip(batch, edited, plans, strict=True):
            before = overrides.effective_modes(partnership)
            after = overrides.effective_modes(copy)
            if partnership.mode != copy.mode or before != after:
                result.changing_mode += 1
            totals: Counter = Counter()
            overwritten = 0
            if plan is not None and not plan.skipped:
                for counts in plan.summary().values():
                    totals.update({a: n for a, n in counts.items() if a in WRITING_ACTIONS and n})
                overwritten = sum(1 for change in plan.changes if change.overwrites_local)
                found = counted.get(partnership.pk, Counter())
                overwritten += found.pop("overwritten", 0)
                totals.update({a: n for a, n in found.items() if n})
            result.totals.update(totals)
            result.overwritten += overwritten
            result.effects.append(
                PartnerEffect(partnership, partnership.mode, copy.mode, dict(totals), overwritten)
            )
    return result


def _collection_counts(
    edited: list[Partnership], plans: list, reads, result: FleetPreview
) -> dict[int, Counter]:
    """Partnership pk → action (and ``overwritten``) → count, over the collection categories
    the plans left unplanned: per category, one query for every partner merged or matched and
    one for every partner detached; a partner the query cannot count is planned by the engine
    with the batch's reads (docs/design.md §12.3)."""
    from . import locks, registry

    merged: dict[str, list] = {}  # the partners merged or matched, per category
    detached: dict[str, list[int]] = {}
    pending: dict[tuple[int, str], tuple] = {}
    for copy, plan in zip(edited, plans, strict=True):
        if plan is None or plan.skipped:
            continue
        for category_plan in plan.categories:
            category = category_plan.category
            if not category.is_collection or category_plan.outcome == policy.NONE:
                continue
            if category_plan.outcome == policy.DETACH:
                detached.setdefault(category.key, []).append(copy.pk)
                continue
            keeps_lock, locked = locks.lock_through(copy, category.key)
            merged.setdefault(category.key, []).append(
                fleet_counts.Planned(
                    copy.pk,
                    copy.downstream_id,
                    copy.upstream_id,
                    category_plan.outcome == policy.MATCH,
                    keeps_lock,
                    locked,
                )
            )
            pending[copy.pk, category.key] = (copy, plan, category_plan)
    found_by_pk: dict[int, Counter] = {}
    for key, planned in merged.items():
        category = registry.get(key)
        for pk, found in fleet_counts.counts(category, planned).items():
            if found.pop("fallback", 0):
                copy, plan, category_plan = pending[pk, key]
                found = _planned_by_engine(copy, plan, category_plan, reads)
                result.planned_item_by_item += 1
            found_by_pk.setdefault(pk, Counter()).update(found)
    for key, pks in detached.items():
        model = registry.get(key).model
        for pk, n in (
            model.objects.filter(synced_partnership_id__in=pks)
            .order_by()
            .values("synced_partnership_id")
            .annotate(n=Count("pk"))
            .values_list("synced_partnership_id", "n")
        ):
            found_by_pk.setdefault(pk, Counter())[DETACHED] += n
    return found_by_pk


def _planned_by_engine(copy, plan, category_plan, reads) -> Counter:
    """One partner's collection category planned item by item, as a run would."""
    from .engine.item_rules import CollectionRules

    planned = CategoryPlan(category_plan.category, category_plan.outcome)
    CollectionRules(copy, plan.event, plan.mode, reads=reads).plan(planned)
    found = Counter({a: n for a, n in planned.counts().items() if a in WRITING_ACTIONS})
    found["overwritten"] = sum(1 for change in planned.changes if change.overwrites_local)
    return found
