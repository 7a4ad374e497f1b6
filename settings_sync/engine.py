"""The sync engine: plan what a partnership's event does to its partner, then apply it.

``preview(partnership, event)`` builds a :class:`Plan` without writing anything;
``run(partnership, event)`` builds the same plan under a lock on the partner organization
and applies it in one transaction, recording a :class:`~settings_sync.models.SyncRun` and its
:class:`~settings_sync.models.SyncChange` rows. What happens to each category comes from
:func:`settings_sync.policy.outcome`; how each item is treated follows SPEC 4.1.

Every category is read with two queries (the channel manager's items, all of the partner's
items) and written in bulk, so a run costs a constant number of queries per category
whatever the number of items.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import ContentFile
from django.db import InterfaceError, OperationalError, connection, models, transaction
from django.db.models import F, Value
from django.db.models.functions import Cast, Concat, JSONObject, Trim
from django.utils import timezone

from organizations.models import Organization
from partnerships.models import Partnership

from . import policy, registry
from .items import baseline_name, normalise_key_part
from .models import SyncChange, SyncRun

logger = logging.getLogger(__name__)

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


@dataclass
class CategoryPlan:
    category: registry.Category
    outcome: str
    changes: list[Change] = field(default_factory=list)
    to_create: list[models.Model] = field(default_factory=list)
    to_archive: list[models.Model] = field(default_factory=list)  # written first: frees keys
    to_update: list[models.Model] = field(default_factory=list)
    update_fields: tuple[str, ...] = ()
    files: list[tuple[Any, str, Any]] = field(default_factory=list)  # (obj, field, source file)
    #: into a partner with nothing in this category: every upstream item is copied by one
    #: INSERT … SELECT (and its history by another), without loading the items
    bulk_copies: int = 0

    def add(self, action: str, label: str, **kwargs) -> Change:
        change = Change(self.category.key, action, label, **kwargs)
        self.changes.append(change)
        return change

    def counts(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes)
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

    def summary(self) -> dict[str, dict[str, int]]:
        """Category key → {action: count}, for every category the event concerns."""
        return {plan.category.key: plan.counts() for plan in self.categories}

    def outcomes(self) -> dict[str, str]:
        return {plan.category.key: plan.outcome for plan in self.categories}

    @property
    def changes(self) -> list[Change]:
        return [change for plan in self.categories for change in plan.changes]

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
            partner = self.partnership.downstream
            if own_archived:
                sentences.append(f"{own_archived} of {partner}'s own {label} will be archived.")
            if copies_archived:
                sentences.append(f"{copies_archived} synced {label} will be archived.")
            if overwritten:
                sentences.append(
                    f"{overwritten} of {partner}'s {label} edited locally will be overwritten."
                    if category_plan.category.is_collection
                    else f"{partner}'s {label} will be overwritten."
                )
        return sentences

    @property
    def writes_anything(self) -> bool:
        return any(
            action in WRITING_ACTIONS
            for counts in self.summary().values()
            for action, count in counts.items()
            if count
        )


# Planning ------------------------------------------------------------------------------


def _values(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def _json_values(obj, fields) -> dict:
    """Values as recorded in history (files by name)."""
    values = {}
    for name in fields:
        value = getattr(obj, name)
        values[name] = value.name if hasattr(value, "name") and hasattr(value, "storage") else value
    return values


def _key(obj, natural_key) -> tuple[str, ...]:
    return tuple(normalise_key_part(getattr(obj, name)) for name in natural_key)


def _label(obj) -> str:
    return str(obj)[:300]


class _Reads:
    """What planning reads, read once for every partner planned together.

    One run reads each category with two queries (the channel manager's items, the partner's
    items); a batch of runs from one fan-out reads the same two queries for all its partners.
    """

    def __init__(self, partnerships: list[Partnership]) -> None:
        self.downstream_ids = sorted(
            {p.downstream_id for p in partnerships if p.downstream_id is not None}
        )
        self._upstream: dict[tuple[type, int], list] = {}
        self._downstream: dict[type, dict[int, list]] = {}
        self._singletons: dict[type, dict[int, Any]] = {}
        self._upstream_names: dict[int, dict[int, str]] | None = None
        self.now = timezone.now()  # one clock for the batch: its copies share their values

    def upstream_items(self, model, upstream_id: int) -> list:
        """The channel manager's live items, oldest first (shared, never written)."""
        key = (model, upstream_id)
        if key not in self._upstream:
            self._upstream[key] = list(
                model.objects.filter(organization_id=upstream_id).order_by("pk")
            )
        return self._upstream[key]

    def upstream_count(self, model, upstream_id: int) -> int:
        if (model, upstream_id) in self._upstream:
            return len(self._upstream[model, upstream_id])
        return model.objects.filter(organization_id=upstream_id).count()

    def downstream_items(self, model, downstream_id: int) -> list:
        """Every item of the partner, archived ones included, as loaded (see ``_remember``)."""
        if model not in self._downstream:
            by_organization: dict[int, list] = {pk: [] for pk in self.downstream_ids}
            for item in model.all_objects.filter(organization_id__in=self.downstream_ids):
                by_organization[item.organization_id].append(_remember(item))
            self._downstream[model] = by_organization
        return self._downstream[model].get(downstream_id, [])

    def singleton(self, model, organization_id: int):
        """The organization's row of a singleton category (None if it has none yet)."""
        if model not in self._singletons:
            self._singletons[model] = {
                row.organization_id: row
                for row in model.objects.filter(organization_id__in=self.downstream_ids)
            }
        rows = self._singletons[model]
        if organization_id not in rows and organization_id not in self.downstream_ids:
            rows[organization_id] = model.objects.filter(organization_id=organization_id).first()
        return rows.get(organization_id)

    def upstream_name(self, downstream_id: int, partnership_id: int) -> str:
        """The channel manager behind another partnership of the partner (conflict notes)."""
        if self._upstream_names is None:
            self._upstream_names = {}
            for downstream, pk, name in Partnership.objects.filter(
                downstream_id__in=self.downstream_ids
            ).values_list("downstream_id", "pk", "upstream__name"):
                self._upstream_names.setdefault(downstream, {})[pk] = name
        names = self._upstream_names.get(downstream_id, {})
        return names.get(partnership_id, "another channel manager")


class _Planner:
    def __init__(
        self, partnership: Partnership, event: str, mode: str, *, by=None, reads=None
    ) -> None:
        self.partnership = partnership
        self.upstream = partnership.upstream
        self.downstream = partnership.downstream
        self.event = event
        self.mode = mode
        self.by = by
        self.reads = reads or _Reads([partnership])
        self.now = self.reads.now
        # An unsaved partnership (a preview of one not created yet) has no copies.
        self.partnership_pk = partnership.pk

    @property
    def downstream_exists(self) -> bool:
        return self.downstream is not None and self.downstream.pk is not None

    def plan(self, categories: list[registry.Category]) -> list[CategoryPlan]:
        plans = []
        for category in categories:
            outcome = policy.outcome(self.mode, self.event, category.kind)
            plan = CategoryPlan(category, outcome)
            if outcome != policy.NONE:
                handler = {
                    registry.COLLECTION: self._collection,
                    registry.SINGLETON: self._singleton,
                    registry.INVITE_ONLY: self._invite_only,
                }[category.kind]
                handler(plan)
            plans.append(plan)
        return plans

    # Collections --------------------------------------------------------------------

    def _downstream_items(self, model) -> list:
        if not self.downstream_exists:
            return []
        return self.reads.downstream_items(model, self.downstream.pk)

    def _upstream_name(self, partnership_id: int) -> str:
        return self.reads.upstream_name(self.downstream.pk, partnership_id)

    def _is_ours(self, item) -> bool:
        return self.partnership_pk is not None and item.synced_partnership_id == self.partnership_pk

    def _collection(self, plan: CategoryPlan) -> None:
        category = plan.category
        model = category.model
        fields = category.synced_fields
        baselines = tuple(baseline_name(name) for name in fields)
        plan.update_fields = (
            *fields,
            *baselines,
            "synced_partnership",
            "synced_from",
            "synced_at",
            "archived_at",
            "archived_by",
            "archive_reason",
            "archived_by_sync",
            "updated_at",
        )
        downstream = self._downstream_items(model)
        if plan.outcome != policy.DETACH and not downstream:
            plan.bulk_copies = self.reads.upstream_count(model, self.upstream.pk)
            return
        if plan.outcome == policy.DETACH:
            for item in downstream:
                if self._is_ours(item):
                    if not item.is_archived:
                        plan.add(
                            DETACHED,
                            _label(item),
                            item=item,
                            note=f"Now {self.downstream}'s own item.",
                        )
                    self._detach(item)
                    plan.to_update.append(item)
            return

        upstream_items = self.reads.upstream_items(model, self.upstream.pk)
        upstream_by_pk = {item.pk: item for item in upstream_items}
        natural_key = category.natural_key
        match = plan.outcome == policy.MATCH

        live_copies: dict[int, Any] = {}  # upstream pk → the partner's live copy
        archived_copies: dict[int, Any] = {}  # upstream pk → the latest archived copy
        orphans = []  # live copies whose upstream item is gone (deleted or archived)
        others = []  # the partner's other live items (its own, or synced from elsewhere)
        for item in downstream:
            if self._is_ours(item) and item.synced_from_id in upstream_by_pk:
                if item.is_archived:
                    latest = archived_copies.get(item.synced_from_id)
                    if latest is None or latest.archived_at < item.archived_at:
                        archived_copies[item.synced_from_id] = item
                elif item.synced_from_id in live_copies:
                    orphans.append(item)  # a second live copy: only one may stay
                else:
                    live_copies[item.synced_from_id] = item
            elif self._is_ours(item):
                if not item.is_archived:
                    orphans.append(item)
            elif not item.is_archived:
                others.append(item)

        # Copies of deleted items: archived if untouched, detached if edited (merge).
        for orphan in orphans:
            if orphan.sync_state == "diverged" and not match:
                self._detach(orphan)
                plan.to_update.append(orphan)
                plan.add(
                    DETACHED,
                    _label(orphan),
                    item=orphan,
                    note=f"{self.upstream} deleted it; the edited copy is now "
                    f"{self.downstream}'s own.",
                )
                others.append(orphan)
            else:
                self._archive(plan, orphan, f"Archived by sync: {self.upstream} deleted it.")

        # Match: every live item that will not mirror an upstream item is archived.
        if match:
            wanted = {
                _key(source, natural_key)
                for source in upstream_items
                if source.pk not in live_copies
            }
            kept = []
            for item in others:
                if item.synced_partnership_id is None and _key(item, natural_key) in wanted:
                    kept.append(item)
                else:
                    self._archive(
                        plan, item, f"Archived by sync: not among {self.upstream}'s settings."
                    )
            others = kept
        others_by_key = {_key(item, natural_key): item for item in others}
        blocked = self._names_taken(plan, upstream_by_pk, live_copies, others, match=match)

        for source in upstream_items:
            key = _key(source, natural_key)
            holder = others_by_key.get(key)
            copy = live_copies.get(source.pk)
            blocker = blocked.get(source.pk)
            if blocker is not None and (copy is not None or holder is None):
                plan.add(
                    CONFLICT,
                    _label(source),
                    item=blocker,
                    upstream=source,
                    note=f"{self.downstream} already has another item “{blocker}” with this "
                    "name; "
                    + ("the copy was not renamed." if copy is not None else "nothing was added."),
                )
                continue
            if copy is not None:
                self._refresh_copy(plan, source, copy, match=match)
            elif holder is not None:
                if holder.synced_partnership_id is None:
                    self._adopt(plan, source, holder, match=match)
                else:
                    plan.add(
                        CONFLICT,
                        _label(source),
                        item=holder,
                        upstream=source,
                        note=f"“{holder}” is already synced from "
                        f"{self._upstream_name(holder.synced_partnership_id)}; left as it is.",
                    )
            elif source.pk in archived_copies:
                self._restore_or_keep(plan, source, archived_copies[source.pk], match=match)
            else:
                created = model(
                    organization=self.downstream,
                    synced_partnership=self.partnership if self.partnership_pk else None,
                    synced_from=source,
                    synced_at=self.now,
                    **_values(source, category.synced_fields),
                    **{
                        baseline_name(name): getattr(source, name)
                        for name in category.synced_fields
                    },
                )
                plan.to_create.append(created)
                plan.add(
                    CREATED,
                    _label(source),
                    item=created,
                    upstream=source,
                    after=_values(source, category.synced_fields),
                )

    def _names_taken(
        self, plan: CategoryPlan, upstream_by_pk: dict, live_copies: dict, others: list, *, match
    ) -> dict:
        """Upstream items whose name the partner cannot give them: upstream pk → the live item
        that keeps that name.

        The partner's own items keep their names, and so do copies edited locally (merge keeps
        their values). A copy that cannot be renamed keeps its old name in turn, which may stop
        another copy, or a new one, from taking it: followed until nothing more changes.
        """
        natural_key = plan.category.natural_key
        fields = plan.category.synced_fields
        staying = {_key(item, natural_key): item for item in others}
        moving = {}
        for pk, copy in live_copies.items():
            source = upstream_by_pk[pk]
            edited_here = copy.sync_state == "diverged" and not match
            if edited_here and _values(copy, fields) != _values(source, fields):
                staying[_key(copy, natural_key)] = copy
            elif _key(copy, natural_key) != _key(source, natural_key):
                moving[pk] = copy
        blocked = {}
        changed = True
        while changed:
            changed = False
            for pk, copy in list(moving.items()):
                holder = staying.get(_key(upstream_by_pk[pk], natural_key))
                if holder is not None:
                    blocked[pk] = holder
                    staying[_key(copy, natural_key)] = copy
                    del moving[pk]
                    changed = True
        for pk, source in upstream_by_pk.items():
            holder = staying.get(_key(source, natural_key))
            if pk not in live_copies and holder is not None and holder.synced_from_id != pk:
                blocked[pk] = holder  # a new copy, or a restored one, would clash
        return blocked

    def _link(self, item, source, fields) -> None:
        for name in fields:
            setattr(item, name, getattr(source, name))
        self._set_baseline(item, source, fields)

    def _set_baseline(self, item, source, fields) -> None:
        for name in fields:
            setattr(item, baseline_name(name), getattr(source, name))
        item.synced_partnership = self.partnership
        item.synced_from = source
        item.synced_at = self.now

    def _unarchive(self, item) -> None:
        item.archived_at = None
        item.archived_by = None
        item.archive_reason = ""
        item.archived_by_sync = False

    def _restore_or_keep(self, plan: CategoryPlan, source, copy, *, match: bool) -> None:
        """Rule 7: a copy the partner deleted stays deleted in merge; one the sync archived
        (its upstream item was archived) comes back when the upstream item does."""
        fields = plan.category.synced_fields
        if not (copy.archived_by_sync or match):
            plan.add(
                KEPT_LOCAL,
                _label(copy),
                item=copy,
                upstream=source,
                note=f"{self.downstream} deleted its copy; merge does not bring it back.",
            )
            return
        old = _values(copy, fields)
        self._unarchive(copy)
        self._link(copy, source, fields)
        plan.to_update.append(copy)
        plan.add(
            RESTORED,
            _label(source),
            item=copy,
            upstream=source,
            before=old,
            after=_values(copy, fields),
        )

    def _refresh_copy(self, plan: CategoryPlan, source, copy, *, match: bool) -> None:
        fields = plan.category.synced_fields
        new = _values(source, fields)
        old = _values(copy, fields)
        if old == new:
            baseline = {name: getattr(copy, baseline_name(name)) for name in fields}
            if baseline != new:  # edited to what the channel manager now has: in sync again
                self._set_baseline(copy, source, fields)
                plan.to_update.append(copy)
            return
        if copy.sync_state == "diverged" and not match:
            plan.add(
                KEPT_LOCAL,
                _label(copy),
                item=copy,
                upstream=source,
                before=old,
                after=new,
                note=f"Edited in {self.downstream}; {self.upstream}'s change is not applied.",
            )
            return
        diverged = copy.sync_state == "diverged"
        self._link(copy, source, fields)
        plan.to_update.append(copy)
        plan.add(
            UPDATED,
            _label(source),
            item=copy,
            upstream=source,
            before=old,
            after=new,
            overwrites_local=diverged,
        )

    def _adopt(self, plan: CategoryPlan, source, item, *, match: bool) -> None:
        fields = plan.category.synced_fields
        old = _values(item, fields)
        new = _values(source, fields)
        if match:
            self._link(item, source, fields)
        else:
            self._set_baseline(item, source, fields)  # content kept: it may now be "diverged"
        plan.to_update.append(item)
        plan.add(
            ADOPTED,
            _label(item),
            item=item,
            upstream=source,
            before=old,
            after=_values(item, fields),
            note="Linked to the channel manager's item of the same name"
            + ("; its values were overwritten." if match and old != new else "."),
            affects_own=True,
            overwrites_local=match and old != new,
        )

    def _archive(self, plan: CategoryPlan, item, reason: str) -> None:
        item.archived_at = self.now
        item.archived_by = self.by
        item.archive_reason = reason[:200]
        item.archived_by_sync = True
        plan.to_archive.append(item)
        plan.add(
            ARCHIVED,
            _label(item),
            item=item,
            before=_values(item, plan.category.synced_fields),
            note=reason,
            affects_own=item.synced_partnership_id is None,
        )

    def _detach(self, item) -> None:
        item.synced_partnership = None
        item.synced_from = None
        item.synced_at = None
        for name in item.SYNCED_FIELDS:
            setattr(item, baseline_name(name), None)

    # Singletons ---------------------------------------------------------------------

    def _singleton(self, plan: CategoryPlan) -> None:
        model = plan.category.model
        fields = plan.category.synced_fields
        plan.update_fields = (*fields, "synced_partnership", "synced_at", "updated_at")
        row = self.reads.singleton(model, self.downstream.pk) if self.downstream_exists else None
        if row is None:
            row = model(organization=self.downstream)  # defaults: what a new organization gets
        if plan.outcome == policy.DETACH:
            if self._is_ours(row) and row.pk:
                row.synced_partnership = None
                plan.to_update.append(row)
            return
        source = self.reads.singleton(model, self.upstream.pk) or model(organization=self.upstream)
        old, new = _values(row, fields), _values(source, fields)
        for name in fields:
            setattr(row, name, getattr(source, name))
        row.synced_partnership = self.partnership if self.partnership_pk else None
        row.synced_at = self.now
        if row.pk:
            plan.to_update.append(row)
        else:
            plan.to_create.append(row)
        if old != new:
            plan.add(
                UPDATED,
                plan.category.label,
                item=row,
                before=old,
                after=new,
                overwrites_local=True,
            )

    # Invite-only data ---------------------------------------------------------------

    def _invite_only(self, plan: CategoryPlan) -> None:
        if plan.outcome == policy.DETACH:
            return  # copied once; it already belongs to the partner
        if plan.category.model is Organization:
            self._organization_fields(plan)
        else:
            self._own_copies(plan)

    def _organization_fields(self, plan: CategoryPlan) -> None:
        """Fields of the organization itself (the logo): copied as files of their own."""
        for name in plan.category.synced_fields:
            source = getattr(self.upstream, name)
            current = getattr(self.downstream, name) if self.downstream is not None else None
            if not source:
                continue
            before = current.name if current else None
            plan.add(
                UPDATED if current else CREATED,
                f"{plan.category.label} of {self.upstream}",
                item=self.downstream,
                before={name: before},
                after={name: source.name},
            )
            if self.downstream_exists:
                plan.files.append((self.downstream, name, source))

    def _own_copies(self, plan: CategoryPlan) -> None:
        """Items copied once as the partner's own (licenses): no provenance afterwards."""
        category = plan.category
        model = category.model
        fields = category.synced_fields
        plan.update_fields = (*fields, "archived_at", "archived_by", "archive_reason")
        existing = {}
        if self.downstream_exists:
            existing = {
                _key(item, category.natural_key): item
                for item in model.objects.filter(organization=self.downstream)
            }
        for source in model.objects.filter(organization=self.upstream).order_by("pk"):
            item = existing.pop(_key(source, category.natural_key), None)
            if item is None:
                plan.to_create.append(
                    model(organization=self.downstream, **_values(source, fields))
                )
                plan.add(CREATED, _label(source), upstream=source, after=_values(source, fields))
            elif _values(item, fields) != _values(source, fields):
                old = _values(item, fields)
                for name in fields:
                    setattr(item, name, getattr(source, name))
                plan.to_update.append(item)
                plan.add(UPDATED, _label(item), item=item, before=old, after=_values(item, fields))
        for item in existing.values():
            item.archived_at = self.now
            item.archived_by = self.by
            item.archive_reason = f"Archived by sync: not among {self.upstream}'s settings."
            plan.to_archive.append(item)
            plan.add(ARCHIVED, _label(item), item=item, before=_values(item, fields))


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


def _build(
    partnership: Partnership,
    event: str,
    *,
    mode_before: str | None,
    categories: list[str] | None,
    by=None,
    reads: _Reads | None = None,
) -> Plan:
    if event not in policy.EVENTS:
        raise ValueError(f"Unknown event {event!r}")
    mode = (
        (mode_before or _stored_mode(partnership)) if event == policy.UNLINK else partnership.mode
    )
    plan = Plan(partnership=partnership, event=event, mode=mode)
    plan.skipped = _skip_reason(partnership, event)
    if not plan.skipped:
        planner = _Planner(partnership, event, mode, by=by, reads=reads)
        plan.categories = planner.plan(_categories(categories))
    return plan


def preview(
    partnership: Partnership,
    event: str,
    *,
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> Plan:
    """What ``event`` would do to the partner now, category by category. Writes nothing.

    ``partnership`` may be unsaved or carry flags being edited; its ``downstream`` may be an
    organization that does not exist yet (an invitation: everything would be created).
    For ``unlink``, ``mode_before`` is the mode sync had (default: the stored one).
    """
    return _build(partnership, event, mode_before=mode_before, categories=categories)


# Applying ------------------------------------------------------------------------------


def _apply(runs: list[tuple[Plan, SyncRun]]) -> None:
    """Write the plans of one or several runs (into different partners), category by
    category: one bulk statement per category and kind of write, whatever the number of runs."""
    now = timezone.now()
    by_category: dict[str, list[tuple[CategoryPlan, Plan, SyncRun]]] = {}
    for plan, sync_run in runs:
        for category_plan in plan.categories:
            by_category.setdefault(category_plan.category.key, []).append(
                (category_plan, plan, sync_run)
            )
    for entries in by_category.values():
        category = entries[0][0].category
        model = category.model
        manager = getattr(model, "all_objects", model._default_manager)
        # Partners may have different outcomes for one category (a fan-out into strict and
        # merge partners): write every field any of their plans writes.
        update_fields = tuple(
            dict.fromkeys(name for entry in entries for name in entry[0].update_fields)
        )
        # Archive first, so the keys they free can be taken by the updates and creations.
        for batch in ("to_archive", "to_update"):
            unique = list(
                {id(obj): obj for entry in entries for obj in getattr(entry[0], batch)}.values()
            )
            if not unique or model is Organization:
                continue
            for obj in unique:
                if hasattr(obj, "updated_at"):
                    obj.updated_at = now
            fields = _changed_fields(unique, update_fields)
            if batch == "to_update" and (placeholder := _free_keys(manager, category, unique)):
                fields = list(dict.fromkeys([*fields, placeholder]))  # written back in any case
            _bulk_write(manager, unique, fields)
        to_create = [obj for entry in entries for obj in entry[0].to_create]
        if to_create:
            model.objects.bulk_create(to_create, batch_size=None)
        for category_plan, plan, sync_run in entries:
            if category_plan.bulk_copies:
                _copy_in_sql(category, plan.partnership, sync_run, now)
            for obj, name, source in category_plan.files:
                with source.open("rb") as handle:
                    content = handle.read()
                getattr(obj, name).save(
                    source.name.rsplit("/", 1)[-1], ContentFile(content), save=False
                )
                obj.save(update_fields=[name])
    # The history of all the runs is one insert, so the count stays constant.
    history = [
        SyncChange(
            run=sync_run,
            category=change.category,
            action=change.action,
            item_id=getattr(change.item, "pk", None),
            upstream_item_id=getattr(change.upstream, "pk", None),
            label=change.label,
            before=change.before,
            after=change.after,
            note=change.note[:300],
        )
        for plan, sync_run in runs
        for change in plan.changes
    ]
    if history:
        SyncChange.objects.bulk_create(history, batch_size=None)


def _remember(obj):
    """Keep the values an object was loaded with, to write back only what the plan changed."""
    obj._sync_loaded = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    return obj


def _changed_fields(objects: list, fields: tuple[str, ...]) -> list[str]:
    """The fields (of ``fields``) that differ from what any of ``objects`` was loaded with."""
    changed = []
    for name in fields:
        attname = objects[0]._meta.get_field(name).attname
        for obj in objects:
            loaded = getattr(obj, "_sync_loaded", None)
            if loaded is None or loaded.get(attname) != getattr(obj, attname):
                changed.append(name)
                break
    return changed or list(fields[:1])


#: Marks the names items hold for a moment while a run renames several of them at once.
PLACEHOLDER = "⧗ renaming "


def _free_keys(manager, category, objects: list) -> str | None:
    """Before one statement renames several items (upstream renames, a swap of two names,
    copies restored under names others leave), move them to placeholder names: a unique
    index is checked row by row, so the order of the rows must not matter. Returns the field
    that now holds placeholders (the caller writes it back), or None."""
    if not category.natural_key:
        return None
    loaded_key = [objects[0]._meta.get_field(name).attname for name in category.natural_key]

    def moves(obj) -> bool:
        loaded = getattr(obj, "_sync_loaded", None)
        if loaded is None:
            return False
        before = tuple(normalise_key_part(loaded[a]) for a in loaded_key)
        restored = loaded.get("archived_at") is not None and obj.archived_at is None
        return restored or before != _key(obj, category.natural_key)

    moving = [obj.pk for obj in objects if moves(obj)]
    if len(moving) < 2:
        return None  # one item alone cannot meet itself; others' names the planner checked
    longest = max(
        category.natural_key,
        key=lambda name: manager.model._meta.get_field(name).max_length or 10**9,
    )
    manager.filter(pk__in=moving).update(
        **{longest: Concat(Value(PLACEHOLDER), Cast("pk", models.CharField()))}
    )
    return longest


def _bulk_write(manager, objects: list, fields: list[str]) -> None:
    """Write ``fields`` of ``objects`` in one statement.

    When every object gets the same values (one upstream change fanned out to many partners)
    that is a plain ``UPDATE … WHERE id IN (…)``; otherwise a ``bulk_update``, whose
    ``CASE WHEN`` per object and field costs far more to build.
    """
    model = objects[0]._meta.model
    attnames = [model._meta.get_field(name).attname for name in fields]

    def values(obj) -> str:
        return json.dumps([getattr(obj, a) for a in attnames], default=str, sort_keys=True)

    if not fields:
        raise ValueError("Nothing to write.")
    first = values(objects[0])
    if all(values(obj) == first for obj in objects[1:]):
        manager.filter(pk__in=[obj.pk for obj in objects]).update(
            **{attname: getattr(objects[0], attname) for attname in attnames}
        )
    else:
        manager.bulk_update(objects, fields, batch_size=None)


def _insert_select(model, columns: list[str], queryset) -> None:
    """INSERT INTO model (columns) SELECT … — the SELECT compiled from an ORM queryset."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} "
            f"({', '.join(connection.ops.quote_name(c) for c in columns)}) {sql}",
            params,
        )


def _copy_in_sql(category, partnership: Partnership, sync_run: SyncRun, now) -> None:
    """Copy every upstream item into a partner that has none, and record it, in two
    statements: the rows never pass through Python (the physical limit of a copy)."""
    model = category.model
    fields = category.synced_fields
    expressions = {
        "organization_id": Value(partnership.downstream_id, output_field=models.BigIntegerField()),
        "synced_partnership_id": Value(partnership.pk, output_field=models.BigIntegerField()),
        "synced_from_id": F("pk"),
        "synced_at": Value(now, output_field=models.DateTimeField()),
        "updated_at": Value(now, output_field=models.DateTimeField()),
        "archived_by_sync": Value(False, output_field=models.BooleanField()),
        "archive_reason": Value("", output_field=models.CharField()),
        **{model._meta.get_field(name).column: F(name) for name in fields},
        **{model._meta.get_field(baseline_name(name)).column: F(name) for name in fields},
    }
    aliases = {f"copy_{n}": expression for n, expression in enumerate(expressions.values())}
    source = (
        model.objects.filter(organization_id=partnership.upstream_id)
        .order_by()
        .annotate(**aliases)
        .values_list(*aliases)
    )
    _insert_select(model, list(expressions), source)

    label_parts = []
    for name in category.label_fields:
        label_parts += [Cast(name, models.CharField()), Value(" ")]
    history = {
        "run_id": Value(sync_run.pk, output_field=models.BigIntegerField()),
        "category": Value(category.key, output_field=models.CharField()),
        "action": Value(CREATED, output_field=models.CharField()),
        "item_id": F("pk"),
        "upstream_item_id": F("synced_from_id"),
        "label": Trim(Concat(*label_parts, output_field=models.CharField()))
        if len(label_parts) > 2
        else Cast(category.label_fields[0], models.CharField()),
        "after": JSONObject(**{name: name for name in fields}),
        "note": Value("", output_field=models.CharField()),
    }
    aliases = {f"change_{n}": expression for n, expression in enumerate(history.values())}
    created = (
        model.all_objects.filter(
            organization_id=partnership.downstream_id, synced_partnership_id=partnership.pk
        )
        .order_by()
        .annotate(**aliases)
        .values_list(*aliases)
    )
    _insert_select(SyncChange, list(history), created)


def schedule_record(
    partnership: Partnership,
    event: str,
    *,
    by=None,
    trigger: str = "",
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> SyncRun:
    """The record of a run about to be queued (status "queued")."""
    return SyncRun.objects.create(
        partnership=partnership,
        event=event,
        mode=mode_before if event == policy.UNLINK and mode_before else partnership.mode,
        categories=categories,
        started_by=by,
        trigger=trigger[:200],
    )


#: What finishing a run writes to its record.
FINISHED_FIELDS = ["status", "note", "mode", "started_at", "counts", "finished_at"]


def _lock_partners(partnership_ids: list[int]) -> None:
    """Two runs into one partner never interleave: the partner's row is the lock (taken in
    primary-key order, so runs locking several partners cannot deadlock each other)."""
    list(
        Organization.objects.select_for_update(of=("self",))
        .filter(upstream_partnerships__pk__in=partnership_ids)
        .order_by("pk")
    )


def _plan_run(sync_run: SyncRun, partnership: Partnership, reads: _Reads | None = None) -> Plan:
    return _build(
        partnership,
        sync_run.event,
        mode_before=sync_run.mode if sync_run.event == policy.UNLINK else None,
        categories=sync_run.categories,
        by=sync_run.started_by,
        reads=reads,
    )


def _settle(runs: list[tuple[Plan, SyncRun]]) -> None:
    """Apply the plans that still apply and fill in each run's outcome (not yet saved)."""
    _apply([(plan, sync_run) for plan, sync_run in runs if not plan.skipped])
    finished = timezone.now()
    for plan, sync_run in runs:
        if plan.skipped:
            sync_run.status = SyncRun.Status.SKIPPED
        else:
            sync_run.status = SyncRun.Status.SUCCEEDED
            sync_run.mode = plan.mode
        sync_run.note = plan.skipped
        sync_run.counts = {key: counts for key, counts in plan.summary().items() if counts}
        sync_run.finished_at = finished


def execute(sync_run: SyncRun) -> SyncRun:
    """Apply a recorded run: atomically, serialised per partner, from the current state.

    The run is "running" from the moment a worker takes it; it starts (``started_at``) once it
    holds its partner, so the history never shows two runs into one partner overlapping. A run
    delivered twice (a requeued run whose first worker was only slow) is applied once: the
    second delivery finds it finished, before or after waiting for the partner.
    """
    if not _claim([sync_run]):
        return _refreshed(sync_run)
    try:
        with transaction.atomic():
            _lock_partners([sync_run.partnership_id])
            if _finished([sync_run]):
                return _refreshed(sync_run)
            sync_run.started_at = timezone.now()
            partnership = Partnership.objects.select_related("upstream", "downstream").get(
                pk=sync_run.partnership_id
            )
            _settle([(_plan_run(sync_run, partnership), sync_run)])
            sync_run.save(update_fields=FINISHED_FIELDS)
    except Exception as error:
        logger.exception("Sync run %s failed", sync_run.pk)
        sync_run.status = SyncRun.Status.FAILED
        sync_run.error = "".join(traceback.format_exception_only(error)).strip()[:2000]
        sync_run.counts = {}
        sync_run.finished_at = timezone.now()
        _save_failure(sync_run)
    return sync_run


def execute_many(sync_runs: list[SyncRun]) -> list[SyncRun]:
    """Apply several recorded runs into different partners (one upstream change fanned out)
    in one transaction, reading each category once for all of them and writing it in bulk.

    Each run is as atomic as on its own (all of them are). If anything fails, or the runs
    cannot share their reads, each run is applied on its own instead, so one partner's
    failure is recorded against that partner's run only.
    """
    if len(sync_runs) < 2:
        return [execute(sync_run) for sync_run in sync_runs]
    _claim(sync_runs)
    try:
        with transaction.atomic():
            _lock_partners([sync_run.partnership_id for sync_run in sync_runs])
            if _finished(sync_runs):  # some were applied by another delivery: leave those alone
                raise _Sequential
            started = timezone.now()
            for sync_run in sync_runs:
                sync_run.started_at = started
            partnerships = Partnership.objects.select_related("upstream", "downstream").in_bulk(
                [sync_run.partnership_id for sync_run in sync_runs]
            )
            downstream = [p.downstream_id for p in partnerships.values()]
            upstream = {p.upstream_id for p in partnerships.values()}
            if len(set(downstream)) < len(sync_runs) or upstream.intersection(downstream):
                # Runs into one partner, or a partner that is another run's channel manager:
                # their reads depend on each other's writes.
                raise _Sequential
            reads = _Reads(list(partnerships.values()))
            _settle(
                [
                    (_plan_run(sync_run, partnerships[sync_run.partnership_id], reads), sync_run)
                    for sync_run in sync_runs
                ]
            )
            _bulk_write(SyncRun.objects, sync_runs, FINISHED_FIELDS)
    except Exception as error:
        if not isinstance(error, _Sequential):
            logger.warning("Sync runs applied one by one after: %s", error, exc_info=True)
        return [execute(sync_run) for sync_run in sync_runs]
    return sync_runs


def _claim(sync_runs: list[SyncRun]) -> bool:
    """Mark the runs "running" unless they are finished already (then False, for one run)."""
    claimed = SyncRun.objects.filter(
        pk__in=[sync_run.pk for sync_run in sync_runs],
        status__in=SyncRun.PENDING,
    ).update(status=SyncRun.Status.RUNNING, started_at=None, error="")
    for sync_run in sync_runs:
        sync_run.status, sync_run.started_at, sync_run.error = SyncRun.Status.RUNNING, None, ""
    return claimed > 0


def _finished(sync_runs: list[SyncRun]) -> set[int]:
    """Which of the runs another delivery finished while this one waited for their partners."""
    return set(
        SyncRun.objects.filter(pk__in=[sync_run.pk for sync_run in sync_runs])
        .exclude(status=SyncRun.Status.RUNNING)
        .values_list("pk", flat=True)
    )


def _refreshed(sync_run: SyncRun) -> SyncRun:
    sync_run.refresh_from_db()
    return sync_run


class _Sequential(Exception):
    """These runs must be applied one after the other."""


def _save_failure(sync_run: SyncRun) -> None:
    """Record a failure, even when the failure was the database connection itself."""
    fields = ["status", "error", "started_at", "counts", "finished_at"]
    try:
        sync_run.save(update_fields=fields)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        connection.close()  # reconnect on the next query
        sync_run.save(update_fields=fields)


def requeue_stalled(older_than) -> list[SyncRun]:
    """Runs whose worker died (still queued or running after ``older_than``): enqueue them
    again. Their changes were never committed, so running them again is safe."""
    from .tasks import run_sync

    cutoff = timezone.now() - older_than
    stalled = list(
        SyncRun.objects.filter(status__in=SyncRun.PENDING, created_at__lt=cutoff).filter(
            models.Q(started_at__isnull=True) | models.Q(started_at__lt=cutoff)
        )
    )
    for sync_run in stalled:
        SyncRun.objects.filter(pk=sync_run.pk).update(status=SyncRun.Status.QUEUED)
        run_sync.enqueue(sync_run.pk)
    return stalled


def run(
    partnership: Partnership,
    event: str,
    *,
    by=None,
    trigger: str = "",
    mode_before: str | None = None,
    categories: list[str] | None = None,
) -> SyncRun:
    """Apply ``event`` to the partner now and return the recorded run."""
    sync_run = schedule_record(
        partnership,
        event,
        by=by,
        trigger=trigger or "Run directly",
        mode_before=mode_before,
        categories=categories,
    )
    return execute(sync_run)


def retry(sync_run: SyncRun, *, by=None) -> SyncRun:
    """Run a failed run again (a new record, linked to the failed one)."""
    again = schedule_record(
        sync_run.partnership,
        sync_run.event,
        by=by or sync_run.started_by,
        trigger=f"Retry of run #{sync_run.pk}",
        mode_before=sync_run.mode if sync_run.event == policy.UNLINK else None,
        categories=sync_run.categories,
    )
    again.retry_of = sync_run
    again.save(update_fields=["retry_of"])
    return execute(again)


__all__ = ["Plan", "execute", "execute_many", "preview", "retry", "run", "schedule_record"]
