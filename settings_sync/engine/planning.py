"""Building a plan: which categories an event concerns, with which outcome, and whether the
run still applies to the partnership as it is now (docs/design.md §4, §7). Each category's
outcome comes from its effective mode (its override, docs/design.md §12)."""

from __future__ import annotations

from partnerships.models import Partnership

from .. import locks, overrides, policy, registry
from .item_rules import CollectionRules
from .plan import CategoryPlan, Plan
from .reads import Reads, in_sync
from .value_rules import ValueRules


def build(
    partnership: Partnership,
    event: str,
    *,
    mode_before: str | None,
    categories: list[str] | None,
    by=None,
    reads: Reads | None = None,
    skip_in_sync: bool = False,
    collections: bool = True,
) -> Plan:
    """The plan of ``event`` for ``partnership`` (saved or not), from the data as it is now.

    With ``skip_in_sync`` (a run of one partnership), the collections already in sync, and
    those the partner has nothing of, are found by one statement (``reads.in_sync``) and not
    read or planned item by item: their plans are what the rules would have made, empty or
    one ``INSERT … SELECT``; in the others, the plain copies are not read (``Reads``).

    Without ``collections``, collection categories carry their outcome but no changes: the
    fleet preview counts their items in SQL (docs/design.md §12.3).
    """
    if event not in policy.EVENTS:
        raise ValueError(f"Unknown event {event!r}")
    mode = (
        (mode_before or _stored_mode(partnership)) if event == policy.UNLINK else partnership.mode
    )
    reads = reads or Reads([partnership], skip_plain=skip_in_sync)
    values = reads.override_values(partnership)
    category_modes = _category_modes(partnership, event, mode, values, limited=bool(categories))
    if categories and len(categories) == 1 and categories[0] in category_modes:
        mode = category_modes[categories[0]]  # a run of one category records its mode
    plan = Plan(partnership=partnership, event=event, mode=mode)
    plan.skipped = _skip_reason(partnership, event, values, categories)
    if plan.skipped:
        return plan
    plan.categories = [
        CategoryPlan(category, policy.outcome(category_modes[category.key], event, category.kind))
        for category in _categories(categories)
    ]
    quiet, empty = _in_sync(partnership, plan.categories) if skip_in_sync else (set(), {})
    rules: dict[bool, CollectionRules | ValueRules] = {}
    for category_plan in plan.categories:
        category = category_plan.category
        if category_plan.outcome == policy.NONE or category.key in quiet:
            continue
        if category.is_collection and not collections:
            continue
        if category.key in empty:  # what the rules plan for a partner with nothing in it
            category_plan.update_fields = (
                *category.synced_fields,
                *category.model.bookkeeping_fields(),
            )
            category_plan.bulk_copies = empty[category.key]
            continue
        if category.is_collection not in rules:  # built for the first category with work
            kind = CollectionRules if category.is_collection else ValueRules
            rules[category.is_collection] = kind(partnership, event, mode, by=by, reads=reads)
        rules[category.is_collection].plan(category_plan)
    return plan


def _in_sync(
    partnership: Partnership, category_plans: list[CategoryPlan]
) -> tuple[set[str], dict[str, int]]:
    """The categories already in sync, and the collections the partner has nothing of
    (``reads.in_sync``)."""
    if partnership.pk is None or partnership.downstream_id is None:
        return set(), {}
    checks = []
    for category_plan in category_plans:
        category = category_plan.category
        if category.is_singleton and category_plan.outcome not in (policy.NONE, policy.DETACH):
            checks.append((category, False, False, False))
        elif category.is_collection and category_plan.outcome in (policy.MERGE, policy.MATCH):
            keeps, locks_itself = locks.lock_through(partnership, category_plan.category.key)
            checks.append(
                (
                    category_plan.category,
                    keeps,
                    locks_itself,
                    category_plan.outcome == policy.MATCH,
                )
            )
    return in_sync(partnership, checks)


def _categories(keys: list[str] | None) -> list[registry.Category]:
    categories = registry.all()
    if keys:
        categories = [category for category in categories if category.key in keys]
    return categories


def _category_modes(
    partnership: Partnership, event: str, mode: str, values: dict, *, limited: bool
) -> dict[str, str]:
    """Category key → the mode its outcome is read in.

    For ``unlink``, ``mode`` is the mode before: a run of the whole partnership detaches the
    categories that were synced (their override applied to it); a run limited to categories
    was raised for them (an override turned off) and recorded their mode before.
    """
    if event == policy.UNLINK and limited:
        return {category.key: mode for category in registry.all()}
    return {
        category.key: overrides.resolve(mode, values.get(category.key, overrides.FOLLOW))
        for category in registry.all()
    }


def _skip_reason(
    partnership: Partnership, event: str, values: dict, categories: list[str] | None
) -> str:
    """Why a queued run no longer applies: it works from the partnership as it is now."""
    syncing = partnership.is_active and partnership.data_sync_enabled
    if event == policy.UNLINK:
        # An override's unlink still applies while its categories stay off.
        turned_off = categories and all(
            overrides.resolve(partnership.mode, values.get(key, overrides.FOLLOW)) == policy.OFF
            for key in categories
        )
        return "Sync is on again; nothing was detached." if syncing and not turned_off else ""
    if not partnership.is_active:
        return "The partnership has ended."
    if not partnership.data_sync_enabled:
        return "Data Sync is off for this partnership."
    return ""


def _stored_mode(partnership: Partnership) -> str:
    if partnership.pk is None:
        return partnership.mode
    stored = Partnership.objects.filter(pk=partnership.pk).first()
    return stored.mode if stored else partnership.mode
