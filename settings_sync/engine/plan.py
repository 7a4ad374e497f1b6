"""What a run will do: the plan of one event for one partner, category by category.

A :class:`Plan` is what ``preview`` shows and what ``run`` applies: the same object, built by
the same code (docs/design.md §7). Nothing here reads or writes the database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from organizations.wording import possessive
from partnerships.models import Partnership

from .. import policy, registry
from ..models import SyncChange

CREATED = SyncChange.Action.CREATED
UPDATED = SyncChange.Action.UPDATED
ADOPTED = SyncChange.Action.ADOPTED
RESTORED = SyncChange.Action.RESTORED
KEPT_LOCAL = SyncChange.Action.KEPT_LOCAL
ARCHIVED = SyncChange.Action.ARCHIVED
DETACHED = SyncChange.Action.DETACHED
CONFLICT = SyncChange.Action.CONFLICT

#: Actions that write to the partner's data (the others only report).
WRITING_ACTIONS = {CREATED, UPDATED, ADOPTED, RESTORED, ARCHIVED, DETACHED}


@dataclass
class Change:
    category: str
    action: str
    label: str
    item: Any = None  # the partner's item (unsaved for "created")
    upstream: Any = None  # the channel manager's item
    before: dict | None = None
    after: dict | None = None
    note: str = ""
    #: the partner's own item (not a copy) is archived or overwritten
    affects_own: bool = False
    #: a value the partner edited is replaced by the channel manager's
    overwrites_local: bool = False
    #: a conflict already reported, and nothing changed on either side since: planned (the
    #: item is still left alone) but neither counted nor recorded again (docs/design.md §14.4)
    repeated: bool = False


@dataclass
class CategoryPlan:
    category: registry.Category
    outcome: str
    changes: list[Change] = field(default_factory=list)
    to_create: list[models.Model] = field(default_factory=list)
    to_archive: list[models.Model] = field(default_factory=list)  # written first: frees keys
    to_update: list[models.Model] = field(default_factory=list)
    update_fields: tuple[str, ...] = ()
    #: (obj, field, source file, other columns written with it)
    files: list[tuple[Any, str, Any, dict]] = field(default_factory=list)
    #: into a partner with nothing in this category: every upstream item is copied by one
    #: INSERT … SELECT (and its history by another), without loading the items
    bulk_copies: int = 0

    def add(self, action: str, label: str, **kwargs) -> Change:
        change = Change(self.category.key, action, label, **kwargs)
        self.changes.append(change)
        return change

    def counts(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes if not change.repeated)
        if self.bulk_copies:
            counts[CREATED] += self.bulk_copies
        return dict(counts)


@dataclass
class Plan:
    partnership: Partnership
    event: str
    mode: str
    categories: list[CategoryPlan] = field(default_factory=list)
    skipped: str = ""

    @classmethod
    def combined(cls, plans: list[Plan]) -> Plan:
        """Several plans of one save shown as one (the flags' event and the runs of the
        categories whose override changed): per category, the plan that does something."""
        first = plans[0]
        by_key: dict[str, CategoryPlan] = {}
        for plan in plans:
            for category_plan in plan.categories:
                known = by_key.get(category_plan.category.key)
                if known is None or category_plan.outcome != policy.NONE:
                    by_key[category_plan.category.key] = category_plan
        ordered = [by_key[c.key] for c in registry.all() if c.key in by_key]
        skipped = first.skipped if all(plan.skipped for plan in plans) else ""
        return cls(first.partnership, first.event, first.mode, ordered, skipped)

    def summary(self) -> dict[str, dict[str, int]]:
        """Category key → {action: count}, for every category the event concerns."""
        return {plan.category.key: plan.counts() for plan in self.categories}

    def outcomes(self) -> dict[str, str]:
        return {plan.category.key: plan.outcome for plan in self.categories}

    @property
    def changes(self) -> list[Change]:
        return [change for plan in self.categories for change in plan.changes]

    def overwritten(self) -> int:
        """How many values the partner had changed this plan replaces (docs/design.md §13.4)."""
        return sum(1 for change in self.changes if change.overwrites_local and not change.repeated)

    def count(self, action: str) -> int:
        return sum(counts.get(action, 0) for counts in self.summary().values())

    def callouts(self) -> list[str]:
        """Plain sentences for what a channel manager must not miss: archives, overwrites."""
        sentences = []
        for category_plan in self.categories:
            label = category_plan.category.label.lower()
            own_archived = sum(
                1 for c in category_plan.changes if c.action == ARCHIVED and c.affects_own
            )
            copies_archived = sum(
                1 for c in category_plan.changes if c.action == ARCHIVED and not c.affects_own
            )
            overwritten = sum(1 for c in category_plan.changes if c.overwrites_local)
            whose = possessive(self.partnership.downstream)  # "Sunrise Solar's"
            if own_archived:
                sentences.append(f"{own_archived} of {whose} own {label} will be archived.")
            if copies_archived:
                sentences.append(f"{copies_archived} synced {label} will be archived.")
            if overwritten:
                sentences.append(
                    f"{overwritten} of {whose} {label} edited locally will be overwritten."
                    if category_plan.category.is_collection
                    else f"{whose} {label} will be overwritten."
                )
        return sentences

    @property
    def leaves_everything(self) -> bool:
        """Nothing to write but the run's own record: no change recorded or counted (a
        repeated conflict is neither), and no row to create, update, archive or copy."""
        return self.skipped != "" or all(
            not any(not change.repeated for change in plan.changes)
            and not (plan.to_create or plan.to_update or plan.to_archive or plan.files)
            and not plan.bulk_copies
            for plan in self.categories
        )

    @property
    def writes_anything(self) -> bool:
        return any(
            action in WRITING_ACTIONS
            for counts in self.summary().values()
            for action, count in counts.items()
            if count
        )
