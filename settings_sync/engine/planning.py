"""Building a plan: which categories an event concerns, with which outcome, and whether the
run still applies to the partnership as it is now (docs/design.md §4, §7)."""

from __future__ import annotations

from partnerships.models import Partnership

from .. import policy, registry
from .item_rules import CollectionRules
from .plan import CategoryPlan, Plan
from .reads import Reads
from .value_rules import ValueRules


def build(
    partnership: Partnership,
    event: str,
    *,
    mode_before: str | None,
    categories: list[str] | None,
    by=None,
    reads: Reads | None = None,
) -> Plan:
    """The plan of ``event`` for ``partnership`` (saved or not), from the data as it is now."""
    if event not in policy.EVENTS:
        raise ValueError(f"Unknown event {event!r}")
    mode = (
        (mode_before or _stored_mode(partnership)) if event == policy.UNLINK else partnership.mode
    )
    plan = Plan(partnership=partnership, event=event, mode=mode)
    plan.skipped = _skip_reason(partnership, event)
    if plan.skipped:
        return plan
    collection_rules = CollectionRules(partnership, event, mode, by=by, reads=reads)
    value_rules = ValueRules(partnership, event, mode, by=by, reads=collection_rules.reads)
    for category in _categories(categories):
        category_plan = CategoryPlan(category, policy.outcome(mode, event, category.kind))
        if category_plan.outcome != policy.NONE:
            rules = collection_rules if category.is_collection else value_rules
            rules.plan(category_plan)
        plan.categories.append(category_plan)
    return plan


def _categories(keys: list[str] | None) -> list[registry.Category]:
    categories = registry.all()
    if keys:
        categories = [category for category in categories if category.key in keys]
    return categories


def _skip_reason(partnership: Partnership, event: str) -> str:
    """Why a queued run no longer applies: it works from the partnership as it is now."""
    syncing = partnership.is_active and partnership.data_sync_enabled
    if event == policy.UNLINK:
        return "Sync is on again; nothing was detached." if syncing else ""
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
