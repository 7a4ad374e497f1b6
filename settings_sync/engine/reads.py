"""What planning reads, read once for every partner planned together.

One run reads each category with two queries (the channel manager's items, the partner's
items); a batch of runs from one fan-out reads the same two queries for all its partners
(docs/design.md §10).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from organizations.natural_keys import normalise_key
from partnerships.models import Partnership

from ..models import SyncChange


def values_of(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def key_of(obj, natural_key) -> str:
    """The item's natural key, normalised exactly as its unique index stores it."""
    return normalise_key(getattr(obj, name) for name in natural_key)


def label_of(obj) -> str:
    return str(obj)[:300]


def remember(obj):
    """Keep the values an object was loaded with, to write back only what the plan changed."""
    obj._sync_loaded = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    return obj


class Reads:
    """The rows the runs of one batch plan against, each category read once for all of them."""

    def __init__(self, partnerships: list[Partnership]) -> None:
        self.downstream_ids = sorted(
            {p.downstream_id for p in partnerships if p.downstream_id is not None}
        )
        self._partnerships = partnerships
        self._upstream: dict[tuple[type, int], list] = {}
        self._upstream_counts: dict[tuple[type, int], int] = {}
        self._downstream: dict[type, dict[int, list]] = {}
        self._singletons: dict[type, dict[int, Any]] = {}
        self._upstream_names: dict[int, dict[int, str]] | None = None
        self.partnership_ids = sorted({p.pk for p in partnerships if p.pk is not None})
        self._conflicts: dict[str, dict[tuple[int, int], tuple]] = {}
        self.now = timezone.now()  # one clock for the batch: its copies share their values

    def override_values(self, partnership: Partnership) -> dict[str, str]:
        """The partnership's category overrides, read once for the whole batch."""
        from .. import overrides

        if getattr(partnership, "_override_values", None) is None and partnership.pk:
            overrides.prefetch(
                [p for p in self._partnerships if getattr(p, "_override_values", None) is None]
                + [partnership]
            )
        return overrides.overrides_of(partnership)

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
        if (model, upstream_id) not in self._upstream_counts:  # once for the batch
            self._upstream_counts[model, upstream_id] = model.objects.filter(
                organization_id=upstream_id
            ).count()
        return self._upstream_counts[model, upstream_id]

    def downstream_items(self, model, downstream_id: int) -> list:
        """Every item of the partner, archived ones included, as loaded (see ``remember``)."""
        if model not in self._downstream:
            by_organization: dict[int, list] = {pk: [] for pk in self.downstream_ids}
            for item in model.all_objects.filter(organization_id__in=self.downstream_ids):
                by_organization[item.organization_id].append(remember(item))
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

    def reported_conflict(self, key: str, partnership_id: int, upstream_item_id: int):
        """(before, after) of the latest conflict recorded for this upstream item in this
        partnership, or None; one query per category for the whole batch, when asked."""
        if key not in self._conflicts:
            latest = {}
            for partnership, item, before, after in (
                SyncChange.objects.filter(
                    run__partnership_id__in=self.partnership_ids,
                    category=key,
                    action=SyncChange.Action.CONFLICT,
                )
                .order_by("pk")
                .values_list("run__partnership_id", "upstream_item_id", "before", "after")
            ):
                latest[partnership, item] = (before, after)
            self._conflicts[key] = latest
        return self._conflicts[key].get((partnership_id, upstream_item_id))

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


class RunContext:
    """One partnership's event as the rules see it: who copies into whom, in which mode."""

    def __init__(
        self, partnership: Partnership, event: str, mode: str, *, by=None, reads=None
    ) -> None:
        self.partnership = partnership
        self.upstream = partnership.upstream
        self.downstream = partnership.downstream
        self.event = event
        self.mode = mode
        self.by = by
        self.reads = reads or Reads([partnership])
        self.now = self.reads.now
        # An unsaved partnership (a preview of one not created yet) has no copies.
        self.partnership_pk = partnership.pk

    @property
    def downstream_exists(self) -> bool:
        return self.downstream is not None and self.downstream.pk is not None

    def is_ours(self, item) -> bool:
        """The item was copied (or last overwritten) through this partnership."""
        return self.partnership_pk is not None and item.synced_partnership_id == self.partnership_pk
