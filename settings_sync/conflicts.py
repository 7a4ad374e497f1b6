"""The partner's side of a local edit: an update waiting from the channel manager, and the
partner's answer to it, *take theirs* or *keep mine* (docs/design.md §13).

A copy the partner edited (``diverged``) is kept as edited by merge (rule M3). When the channel
manager then changes the item, an **update is available**: the upstream item's values differ
from the copy's baseline. The baseline is the channel manager's version the partner last
settled with: the values the sync last copied, or the version the partner last took or
declined. So:

* **Take theirs** writes the channel manager's values into the copy and moves the baseline to
  them: the copy is ``synced`` again.
* **Keep mine** leaves the partner's values and moves only the baseline to the channel
  manager's current values: the copy stays ``diverged``, and no update is offered until the
  channel manager changes the item again.

Both are recorded in the sync history as a run of their own (event ``decision``) with one
change. Neither is possible on a locked category or a locked copy (the sync keeps it equal to
its source, docs/design.md §14.3) or on a copy with no update waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import BooleanField, Case, CharField, Count, F, Q, Value, When
from django.utils import timezone

from organizations.models import Organization
from organizations.prepared import Prepared
from organizations.wording import possessive
from partnerships.models import Partnership

from . import drift_counts, registry
from .engine.reads import label_of
from .items import SyncedItemQuerySet, baseline_name
from .locks import is_item_locked, is_locked, locked_keys
from .models import DECISION, SyncChange, SyncRun

NOTE_MAX_LENGTH = SyncChange._meta.get_field("note").max_length


def category_of(item: models.Model) -> registry.Category:
    for category in registry.all():
        if category.is_collection and category.model is type(item):
            return category
    raise LookupError(f"{type(item).__name__} is not a synced collection.")


def _upstream_equals_baseline(model) -> Q:
    condition = Q()
    for name in model.SYNCED_FIELDS:
        base = baseline_name(name)
        condition &= Q(**{f"synced_from__{name}": F(base)}) | Q(
            **{f"synced_from__{name}__isnull": True, f"{base}__isnull": True}
        )
    return condition


def update_available_expression(model) -> Case:
    """In SQL, per row: a live, edited copy whose channel manager's item has moved away from
    the version the partner last settled with. ``When`` clauses, not negated ``Q``s, so that a
    NULL in any column reads as "no" rather than as unknown."""
    same_content = SyncedItemQuerySet(model).same_content_q()
    return Case(
        When(synced_partnership__isnull=True, then=Value(False)),
        When(archived_at__isnull=False, then=Value(False)),
        # a locked copy holds its source's values: nothing to take or keep (§14.3)
        When(managed_by__isnull=False, then=Value(False)),
        # organization is never NULL on a real row: NULL here means the upstream row is gone
        When(synced_from__organization__isnull=True, then=Value(False)),
        When(synced_from__archived_at__isnull=False, then=Value(False)),
        When(same_content, then=Value(False)),
        When(_upstream_equals_baseline(model), then=Value(False)),
        default=Value(True),
        output_field=BooleanField(),
    )


def with_update_available(queryset):
    """``queryset`` with ``update_available`` on each row, in the same query."""
    return queryset.annotate(update_available=update_available_expression(queryset.model))


def waiting(queryset):
    """The rows of ``queryset`` with an update waiting."""
    return queryset.alias(update_waiting=update_available_expression(queryset.model)).filter(
        update_waiting=True
    )


def update_available(item) -> bool:
    """Whether the channel manager changed ``item`` since the partner last took or declined
    its version (never for a locked item: the sync overwrites it anyway)."""
    category = category_of(item)
    if item.pk is None or item.synced_partnership_id is None:
        return False
    if is_item_locked(item) or is_locked(item.organization, category.key):
        return False
    return waiting(category.model.objects.filter(pk=item.pk)).exists()


def counts_by_group(organization: Organization) -> dict[str, int]:
    """Settings tab (group) → how many items there wait for the partner's answer, for the tab
    bar of every settings page: one query for every collection category, compiled once
    (docs/design.md §10); the locked categories are read only when something waits (a locked
    category never counts: its copies are the channel manager's, nothing to answer).

    An organization that was never a partner holds no copies, so a channel manager's pages
    pay one small query instead (partnerships are never deleted)."""
    if not _EVER_A_PARTNER.rows([organization.pk]):
        return {}
    waiting_by_key = dict(_WAITING.rows([organization.pk]))
    if not any(waiting_by_key.values()):
        return {}
    locked = locked_keys(organization)
    counts: dict[str, int] = {}
    for category in registry.all():
        count = waiting_by_key.get(category.key, 0)
        if count and category.key not in locked:
            counts[category.group] = counts.get(category.group, 0) + count
    return counts


def _waiting_counts(organization_ids: list[int]):
    """Rows of (category key, items waiting), one ``UNION ALL`` part per collection category
    (no row for a category where nothing waits)."""
    parts = [
        # The first three conditions of the expression as plain filters: the planner can then
        # skip a channel manager's own items before it joins their sources.
        waiting(
            category.model.objects.filter(
                organization_id__in=organization_ids,
                synced_partnership__isnull=False,
                archived_at__isnull=True,
                managed_by__isnull=True,
            )
        )
        .order_by()
        .values("organization_id")
        .annotate(key=Value(category.key, output_field=CharField()), number=Count("pk"))
        .values_list("key", "number")
        for category in registry.all()
        if category.is_collection
    ]
    first, *rest = parts
    return first.union(*rest, all=True).order_by()


_WAITING = Prepared(_waiting_counts)
#: Whether an organization was ever anyone's partner (one row or none), compiled once too.
_EVER_A_PARTNER = Prepared(
    lambda ids: Partnership.objects.filter(downstream_id__in=ids).order_by().values_list("pk")[:1]
)


def comparison(item) -> list[dict]:
    """Field by field: its label, the channel manager's value, the partner's, and the value
    the partner last settled with (``differs``: theirs and yours are not the same)."""
    upstream = item.synced_from
    rows = []
    for name in category_of(item).synced_fields:
        field = item._meta.get_field(name)
        theirs = getattr(upstream, name) if upstream is not None else None
        yours = getattr(item, name)
        rows.append(
            {
                "name": name,
                "field": field,
                "theirs": theirs,
                "yours": yours,
                "last_synced": getattr(item, baseline_name(name)),
                "differs": theirs != yours,
            }
        )
    return rows


def take_upstream(item, *, by) -> SyncRun:
    """The copy takes the channel manager's values and is ``synced`` again."""
    return _decide(item, by=by, take=True, note="")


take_upstream.alters_data = True


def keep_local(item, *, by, note: str = "") -> SyncRun:
    """The partner keeps its values; no update is offered again until the channel manager
    changes the item again."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError(
            {"note": f"Keep the note to {NOTE_MAX_LENGTH} characters (it has {len(note)})."},
            code="max_length",
        )
    return _decide(item, by=by, take=False, note=note)


keep_local.alters_data = True


@transaction.atomic
def _decide(item, *, by, take: bool, note: str) -> SyncRun:
    category = category_of(item)
    model = category.model
    # The partner's lock first, as a run takes it (docs/design.md §7.3, R5): a decision never
    # interleaves with a sync into the same partner, and is judged on the values it will change.
    Organization.objects.select_for_update().get(pk=item.organization_id)
    current = (
        with_update_available(model.objects.filter(pk=item.pk))
        .select_related("synced_from", "synced_partnership__upstream", "managed_by")
        .first()
    )
    if current is not None and (
        is_item_locked(current) or is_locked(current.organization, category.key)
    ):
        manager = current.managed_by or current.synced_partnership.upstream
        raise PermissionDenied(
            f"This item is managed by {manager}; it holds their values, so there is nothing "
            "to take or keep."
        )
    if current is None or not current.update_available:
        raise ValidationError(
            "There is no update waiting for this item any more: nothing was changed.",
            code="no_update",
        )
    upstream = current.synced_from
    partnership = current.synced_partnership
    fields = category.synced_fields
    yours = current.synced_values()
    theirs = {name: getattr(upstream, name) for name in fields}
    now = timezone.now()
    for name in fields:
        setattr(current, baseline_name(name), theirs[name])
    current.synced_at = now
    if take:
        for name, value in theirs.items():
            setattr(current, name, value)
        try:
            current.full_clean()
        except ValidationError as error:
            raise ValidationError(
                f"{possessive_name(partnership)} version cannot be taken: "
                + " ".join(error.messages)
            ) from error
        # A save like any edit of the partner's: its own partners hear of it (a change run).
        current.save()
        action = SyncChange.Action.TOOK_THEIRS
        trigger = f"Took {possessive_name(partnership)} version"
    else:
        # Only the bookkeeping moves: the partner's data is unchanged, so no signal is due.
        model.all_objects.filter(pk=current.pk).update(
            synced_at=now, **{baseline_name(name): theirs[name] for name in fields}
        )
        # No signal, so the drift counts are marked here (docs/design.md §10).
        drift_counts.mark([(current.organization_id, category.key)])
        action = SyncChange.Action.KEPT_MINE
        trigger = "Kept its own version"
    sync_run = SyncRun.objects.create(
        partnership=partnership,
        event=DECISION,
        mode=partnership.mode,
        categories=[category.key],
        started_by=by,
        trigger=trigger,
        status=SyncRun.Status.SUCCEEDED,
        created_at=now,
        started_at=now,
        finished_at=now,
        counts={category.key: {action: 1}},
    )
    SyncChange.objects.create(
        run=sync_run,
        category=category.key,
        action=action,
        item_id=current.pk,
        upstream_item_id=upstream.pk,
        label=label_of(current),
        before=yours,
        after=theirs,
        note=note,
    )
    return sync_run


def possessive_name(partnership) -> str:
    return possessive(partnership.upstream)


def notes_for(partnership, category_key: str, item_ids) -> dict[int, str]:
    """Item id → the note of the partner's latest *keep mine* for it (one query)."""
    notes: dict[int, str] = {}
    rows = (
        SyncChange.objects.filter(
            run__partnership=partnership,
            category=category_key,
            action=SyncChange.Action.KEPT_MINE,
            item_id__in=list(item_ids),
        )
        .order_by("pk")
        .values_list("item_id", "note")
    )
    for item_id, note in rows:
        notes[item_id] = note
    return notes


# The channel manager's view ---------------------------------------------------------------

#: Filters of the drift list: which diverged items to show.
ALL = ""
WAITING = "waiting"
QUIET = "quiet"
STATE_FILTERS = {
    ALL: "Every item edited locally",
    WAITING: "An update is waiting for the partner",
    QUIET: "No update waiting (not changed since, or the partner kept its version)",
}


@dataclass
class DriftRow:
    category: registry.Category
    item: models.Model
    update_waiting: bool
    note: str
    #: (label, field, partner's value, channel manager's value) for the fields that differ
    differences: list[tuple]


def drift(partnership, *, category_key: str = "", state: str = ALL) -> list[DriftRow]:
    """The partner's locally edited copies, with the partner's latest *keep mine* note and
    whether an update waits for it: two queries per collection category shown."""
    rows: list[DriftRow] = []
    for category in registry.all():
        if not category.is_collection or category_key not in ("", category.key):
            continue
        model = category.model
        items = with_update_available(
            model.objects.filter(synced_partnership=partnership).diverged()
        ).select_related("synced_from")
        if state == WAITING:
            items = items.filter(update_available=True)
        elif state == QUIET:
            items = items.filter(update_available=False)
        items = list(items.order_by("normalised_key", "pk"))
        notes = notes_for(partnership, category.key, [item.pk for item in items]) if items else {}
        for item in items:
            upstream = item.synced_from
            differences = [
                (
                    item._meta.get_field(name).verbose_name,
                    item._meta.get_field(name),
                    getattr(item, name),
                    getattr(upstream, name) if upstream is not None else None,
                )
                for name in category.synced_fields
                if upstream is None or getattr(item, name) != getattr(upstream, name)
            ]
            rows.append(
                DriftRow(category, item, item.update_available, notes.get(item.pk, ""), differences)
            )
    return rows
