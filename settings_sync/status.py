"""Sync status of partnerships, read in bulk: drift (diverged and missing copies) and the
last run, for a page of partners with a constant number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.lookups import IsNull

from partnerships.modes import OFF

from . import overrides, registry
from .items import baseline_name
from .models import SyncRun


@dataclass
class PartnerStatus:
    diverged: int = 0
    missing: int = 0
    stale: int = 0
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    last_run: SyncRun | None = None

    @property
    def drift(self) -> int:
        return self.diverged + self.missing + self.stale


def statuses(partnerships: list) -> dict[int, PartnerStatus]:
    """Partnership pk → status, for partnerships that may have different channel managers.

    Per collection category: one query counting diverged copies per partnership, one counting
    live copies of live upstream items per partnership, one counting copies that are out of
    date, one counting each channel manager's live items. Plus one query for the last runs.

    Drift compares a copy with its own baseline (diverged), the channel manager's items with
    the partner's copies (missing), and a copy's baseline with its upstream item as it is now
    (out of date: a change no run has applied yet, such as a lost or pending fan-out).
    """
    result = {partnership.pk: PartnerStatus() for partnership in partnerships}
    if not partnerships:
        return result
    pks = list(result)
    upstream_of = {partnership.pk: partnership.upstream_id for partnership in partnerships}
    # A category that is off for a partner (its override) misses nothing (docs/design.md §12).
    effective = overrides.effective_modes_many(partnerships)
    for category in registry.all():
        if not category.is_collection:
            continue
        model = category.model
        copies = model.objects.filter(synced_partnership_id__in=pks)
        diverged = dict(
            copies.diverged().values_list("synced_partnership_id").annotate(n=Count("pk"))
        )
        mirrored = dict(
            copies.filter(synced_from__archived_at__isnull=True, synced_from__isnull=False)
            .values_list("synced_partnership_id")
            .annotate(n=Count("pk"))
        )
        stale = dict(
            copies.exclude(_up_to_date(model))
            .values_list("synced_partnership_id")
            .annotate(n=Count("pk"))
        )
        upstream_counts = dict(
            model.objects.filter(organization_id__in=set(upstream_of.values()))
            .values_list("organization_id")
            .annotate(n=Count("pk"))
        )
        for pk, status in result.items():
            missing = max(0, upstream_counts.get(upstream_of[pk], 0) - mirrored.get(pk, 0))
            if effective[pk][category.key] == OFF:
                missing = 0
            status.by_category[category.key] = {
                "diverged": diverged.get(pk, 0),
                "missing": missing,
                "stale": stale.get(pk, 0),
            }
            status.diverged += diverged.get(pk, 0)
            status.missing += missing
            status.stale += stale.get(pk, 0)
    last_ids = (
        SyncRun.objects.filter(partnership_id=OuterRef("partnership_id"))
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    for run in SyncRun.objects.filter(partnership_id__in=pks, pk=Subquery(last_ids)):
        result[run.partnership_id].last_run = run
    return result


def _up_to_date(model) -> Exists:
    """The copy's upstream item is live and its values are the copy's baseline: every change
    the channel manager made has reached the copy (whether the partner kept it or not)."""
    same = Q()
    for name in model.SYNCED_FIELDS:
        base = OuterRef(baseline_name(name))
        same &= Q(**{name: base}) | Q(Q(**{f"{name}__isnull": True}), IsNull(base, True))
    return Exists(model.objects.filter(same, pk=OuterRef("synced_from_id")))


def diverged_items(partnership) -> list[tuple[registry.Category, list[tuple]]]:
    """The partner's locally edited copies with their local and channel manager's values."""
    sections = []
    for category in registry.all():
        if not category.is_collection:
            continue
        model = category.model
        items = (
            model.objects.filter(synced_partnership=partnership)
            .diverged()
            .select_related("synced_from")
        )
        rows = []
        for item in items:
            differences = [
                (
                    model._meta.get_field(name).verbose_name,
                    getattr(item, name),
                    getattr(item.synced_from, name) if item.synced_from else None,
                )
                for name in category.synced_fields
                if getattr(item, name) != getattr(item, baseline_name(name))
            ]
            rows.append((item, differences))
        if rows:
            sections.append((category, rows))
    return sections
