"""What saving new flags and overrides would do: for one partner (the Partnership Details
form) and for many (a profile's fleet preview), computed by the engine without writing
(docs/design.md §12.2, §12.3)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from partnerships.models import Partnership

from . import engine, overrides, policy
from .engine.plan import WRITING_ACTIONS, Plan

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
) -> Plan | None:
    """The runs saving ``edited`` (new flags, ``pending_overrides``) would raise, as one plan:
    the flags' event for every category, and each category whose override raises its own
    (rule O4). None when nothing would run."""
    event = policy.event_for_mode_change(stored_mode, edited.mode)
    plans = []
    if event is not None:
        plans.append(engine.preview(edited, event, mode_before=stored_mode, reads=reads))
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
    number of queries per ``FLEET_BATCH`` partners, whatever their number of items."""
    result = FleetPreview(partners=len(partnerships))
    for start in range(0, len(partnerships), FLEET_BATCH):
        batch = partnerships[start : start + FLEET_BATCH]
        overrides.prefetch(batch)
        edited = [profiled(partnership, profile) for partnership in batch]
        reads = engine.reads_for(edited)
        for partnership, copy in zip(batch, edited, strict=True):
            stored = overrides.overrides_of(partnership)
            plan = change_plan(
                copy, stored_mode=partnership.mode, stored_overrides=stored, reads=reads
            )
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
            result.totals.update(totals)
            result.overwritten += overwritten
            result.effects.append(
                PartnerEffect(partnership, partnership.mode, copy.mode, dict(totals), overwritten)
            )
    return result
