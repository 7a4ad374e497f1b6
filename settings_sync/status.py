"""Sync status of partnerships, read in bulk: drift (diverged and missing copies) and the
last run, for a page of partners with a constant number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull

from organizations.prepared import Prepared
from partnerships.modes import OFF

from . import drift_counts, overrides, registry
from .items import baseline_name
from .models import DECISION, DriftCount, SyncRun


@dataclass
class PartnerStatus:
    diverged: int = 0
    missing: int = 0
    stale: int = 0
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    last_run: SyncRun | None = None
    #: (category label, its effective mode) where an override makes it differ from the
    #: partnership's mode, in display order
    otherwise: list[tuple[str, str]] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return self.diverged + self.missing + self.stale


def statuses(partnerships: list) -> dict[int, PartnerStatus]:
    """Partnership pk → status, for partnerships that may have different channel managers.

    Three queries, whatever the number of partners and categories: the drift counts kept per
    partnership and category (one indexed read), the partnerships' overrides and the last
    runs. Where a kept count is stale or missing, two more: the recount of those partnerships
    (one ``UNION ALL`` with, per collection category, the partners' copies counted by state
    and the channel managers' live items counted) and the store of their stale counts
    (docs/design.md §10).

    Drift compares a copy with its own baseline (diverged), the channel manager's items with
    the partner's copies (missing), and a copy's baseline with its upstream item as it is now
    (out of date: a change no run has applied yet, such as a lost or pending fan-out).
    """
    result = {partnership.pk: PartnerStatus() for partnership in partnerships}
    if not partnerships:
        return result
    pks = list(result)
    kept = _kept_counts(partnerships)
    # A category that is off for a partner (its override) misses nothing (docs/design.md §12).
    effective = overrides.effective_modes_many(partnerships)
    categories = registry.all()
    for partnership in partnerships:
        mode, modes_of = partnership.mode, effective[partnership.pk]
        result[partnership.pk].otherwise = [
            (category.label, modes_of[category.key])
            for category in categories
            if modes_of[category.key] != mode
        ]
    for category in categories:
        if not category.is_collection:
            continue
        for pk, status in result.items():
            diverged, missing, stale = kept[pk, category.key]
            if effective[pk][category.key] == OFF:
                missing = 0
            status.by_category[category.key] = {
                "diverged": diverged,
                "missing": missing,
                "stale": stale,
            }
            status.diverged += diverged
            status.missing += missing
            status.stale += stale
    for run in _LAST_RUNS.objects(pks):
        result[run.partnership_id].last_run = run
    return result


def _kept_counts(partnerships: list) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(partnership pk, collection key) → (diverged, missing, out of date), whatever the
    overrides: the kept counts, one indexed read; a partnership with a count stale or not yet
    kept is recounted (``recount``) and its stale counts stored (docs/design.md §10)."""
    keys = [category.key for category in registry.all() if category.is_collection]
    kept: dict[tuple[int, str], tuple[int, int, int]] = {}
    generations: dict[tuple[int, str], int] = {}
    for pk, key, generation, fresh, *counts in _KEPT.rows([p.pk for p in partnerships]):
        generations[pk, key] = generation
        if fresh:
            kept[pk, key] = tuple(counts)
    stale = [p for p in partnerships if any((p.pk, key) not in kept for key in keys)]
    if stale:
        counted = recount(stale)
        drift_counts.store(
            [
                (pk, key, generations.get((pk, key), 0), *counts)
                for (pk, key), counts in counted.items()
                if (pk, key) not in kept
            ]
        )
        kept.update(counted)
    return kept


def _kept(pks: list[int]):
    return DriftCount.objects.filter(partnership_id__in=pks).values_list(
        "partnership_id", "category", "generation", "fresh", "diverged", "missing", "out_of_date"
    )


_KEPT = Prepared(_kept)


def recount(partnerships: list) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(partnership pk, collection key) → (diverged, missing, out of date), counted from the
    items now: one query for every category (``_counts``), whatever the overrides."""
    upstream_of = {partnership.pk: partnership.upstream_id for partnership in partnerships}
    counts: dict[tuple[str, str, int], tuple[int, int, int]] = {}
    rows = _COUNTS.rows(list(upstream_of), set(upstream_of.values()))
    for side, owner, key, diverged, mirrored, stale in rows:
        counts[side, key, owner] = (diverged, mirrored, stale)
    result = {}
    for category in registry.all():
        if not category.is_collection:
            continue
        for pk, upstream_pk in upstream_of.items():
            diverged, mirrored, stale = counts.get((COPIES, category.key, pk), (0, 0, 0))
            upstream = counts.get((UPSTREAM, category.key, upstream_pk), (0, 0, 0))[0]
            result[pk, category.key] = (diverged, max(0, upstream - mirrored), stale)
    return result


def _last_runs(pks: list[int]):
    """The last run of each partnership (a partner's answer is not a sync: it hides no
    failure)."""
    last_ids = (
        SyncRun.objects.filter(partnership_id=OuterRef("partnership_id"))
        .exclude(event=DECISION)
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    return SyncRun.objects.filter(partnership_id__in=pks, pk=Subquery(last_ids))


_LAST_RUNS = Prepared(_last_runs)


COPIES = "copies"
UPSTREAM = "upstream"


def _counts(pks: list[int], upstream_pks: set[int]):
    """Rows of (side, owner pk, category key, a, b, c), one query for every category.

    ``copies`` rows: per partnership, its live copies that are diverged, that mirror a live
    upstream item, and that are out of date. ``upstream`` rows: per channel manager, its live
    items (in ``a``).
    """
    parts = []
    for category in registry.all():
        if not category.is_collection:
            continue
        model = category.model
        key = Value(category.key, output_field=CharField())
        parts.append(
            model.objects.filter(synced_partnership_id__in=pks)
            .order_by()
            .values("synced_partnership_id")
            .annotate(
                side=Value(COPIES, output_field=CharField()),
                key=key,
                a=_number_of(~model.objects.same_content_q()),
                b=_number_of(Q(synced_from__isnull=False, synced_from__archived_at__isnull=True)),
                # Only copies in sync are out of date: an edited copy is diverged, and a change
                # it kept is an update waiting for the partner (docs/design.md §13.1), not a
                # change still on its way.
                c=_number_of(model.objects.same_content_q() & ~_up_to_date(model)),
            )
            .values_list("side", "synced_partnership_id", "key", "a", "b", "c")
        )
        parts.append(
            model.objects.filter(organization_id__in=upstream_pks)
            .order_by()
            .values("organization_id")
            .annotate(
                side=Value(UPSTREAM, output_field=CharField()),
                key=key,
                a=Count("pk"),
                b=Value(0, output_field=IntegerField()),
                c=Value(0, output_field=IntegerField()),
            )
            .values_list("side", "organization_id", "key", "a", "b", "c")
        )
    first, *rest = parts
    return first.union(*rest, all=True).order_by()


_COUNTS = Prepared(_counts)


def _number_of(condition) -> Coalesce:
    """How many rows of the group meet ``condition`` (0 for none)."""
    return Coalesce(
        Sum(Case(When(condition, then=Value(1)), default=Value(0))),
        Value(0),
        output_field=IntegerField(),
    )


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
