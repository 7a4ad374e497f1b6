"""Per-category overrides: a partnership's mode, changed for one category (docs/design.md §12).

An override is ``follow`` (the default: the partnership's mode), ``off``, ``flexible`` or
``strict``. The **effective mode** of a category is what the policy, the locks, the engine,
drift, the preview and the predictor use:

* Data Sync off (mode ``off``): every category is off; overrides are kept for later;
* ``off``: the category is not synced for this partner;
* ``flexible`` / ``strict``: that mode, while the partnership is exclusive with Data Sync on;
  a kept one on a non-exclusive partnership has no effect (the category follows
  ``non_exclusive``);
* ``follow``: the partnership's mode.

``set_override`` / ``set_overrides`` enforce the prerequisites (docs/design.md §12.1: flexible
and strict need an exclusive partnership with Data Sync on; invite-only categories offer follow
and off)
and raise the event of the category's change of effective mode for that category alone, by the
same task path as a change of flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, StringAgg, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone

from organizations.prepared import Prepared
from partnerships import modes
from partnerships.models import Partnership

from . import policy, registry, signals
from .models import CategoryOverride, SyncRun

FOLLOW = CategoryOverride.Value.FOLLOW.value
OFF = CategoryOverride.Value.OFF.value
FLEXIBLE = CategoryOverride.Value.FLEXIBLE.value
STRICT = CategoryOverride.Value.STRICT.value
VALUES = (FOLLOW, OFF, FLEXIBLE, STRICT)
VALUE_LABELS = dict(CategoryOverride.Value.choices)
#: Values that need an exclusive partnership with Data Sync on (like Allow Downstream to Edit).
EXCLUSIVE_ONLY = (FLEXIBLE, STRICT)

NEEDS_EXCLUSIVE = (
    "{category}: Flexible and Strict can only be chosen when the partnership is Exclusive and "
    "has Data Sync on. Choose Follow the partnership or Off."
)
INVITE_ONLY_FOLLOW_OR_OFF = (
    "{category} is copied once, when an invited organization joins: it can only follow the "
    "partnership or be off."
)


def resolve(mode: str, value: str) -> str:
    """The effective mode of a category whose partnership is in ``mode`` and whose override
    is ``value`` (a pure rule: the table of docs/design.md §12.1)."""
    if mode == modes.OFF or value == OFF:
        return modes.OFF
    if value in EXCLUSIVE_ONLY and mode in (modes.FLEXIBLE, modes.STRICT):
        return value
    return mode


def choices_for(category: registry.Category, flags: Mapping[str, bool]) -> tuple[str, ...]:
    """The values a channel manager may choose for ``category`` under these flags."""
    if category.kind == registry.INVITE_ONLY:
        return (FOLLOW, OFF)
    if flags.get("is_exclusive") and flags.get("data_sync_enabled"):
        return VALUES
    return (FOLLOW, OFF)


def overrides_of(partnership: Partnership) -> dict[str, str]:
    """Category key → override value (``follow`` ones may be missing).

    An unsaved copy carrying ``pending_overrides`` (a form being edited) gives those; a saved
    partnership is read once and remembered on the instance (see ``prefetch``).
    """
    pending = getattr(partnership, "pending_overrides", None)
    if pending is not None:
        return dict(pending)
    if partnership.pk is None:
        return {}
    if getattr(partnership, "_override_values", None) is None:
        prefetch([partnership])
    return partnership._override_values


def prefetch(partnerships: Iterable[Partnership]) -> None:
    """Read the overrides of many partnerships with one query (lists, batches of runs)."""
    saved = [p for p in partnerships if p.pk is not None]
    values: dict[int, dict[str, str]] = {p.pk: {} for p in saved}
    if saved:
        for pk, key, value in _OVERRIDES.rows(list(values)):
            values[pk][key] = value
    for partnership in saved:
        partnership._override_values = values[partnership.pk]


#: The overrides of many partnerships, compiled once per number of partnerships (read by
#: every page of the Partnerships tab, docs/design.md §10).
_OVERRIDES = Prepared(
    lambda pks: (
        CategoryOverride.objects.filter(partnership_id__in=pks)
        .order_by()
        .values_list("partnership_id", "category", "value")
    )
)


#: Between a category key and its value, and between two overrides, in ``listed``.
_PAIR, _LIST = "=", ","


def listed():
    """A subquery for a query whose rows have a ``partnership``: its overrides as one string
    (``key=value,…``, NULL for none), so that a run reads them with its record
    (``remember`` keeps them on the partnership)."""
    return Subquery(
        CategoryOverride.objects.filter(partnership=OuterRef("partnership"))
        .order_by()  # the model's order (by partnership) would join the partnerships
        .values("partnership")
        .annotate(listed=StringAgg(Concat("category", Value(_PAIR), "value"), Value(_LIST)))
        .values("listed")
    )


def remember(partnership: Partnership, listed: str | None) -> None:
    """Keep on ``partnership`` the overrides ``listed`` read, as ``prefetch`` would."""
    partnership._override_values = dict(
        pair.split(_PAIR, 1) for pair in (listed or "").split(_LIST) if pair
    )


def effective_mode(partnership: Partnership, key: str) -> str:
    """The mode in which category ``key`` syncs for this partnership."""
    registry.get(key)  # an unknown key is a programming error
    return resolve(partnership.mode, overrides_of(partnership).get(key, FOLLOW))


def effective_modes(partnership: Partnership) -> dict[str, str]:
    """Category key → effective mode, for every category (one query at most)."""
    values = overrides_of(partnership)
    mode = partnership.mode
    return {c.key: resolve(mode, values.get(c.key, FOLLOW)) for c in registry.all()}


def effective_modes_many(partnerships: list[Partnership]) -> dict[int, dict[str, str]]:
    """Partnership pk → category key → effective mode, read now with one query for all."""
    prefetch(partnerships)
    return {p.pk: effective_modes(p) for p in partnerships}


def errors_for(
    values: Mapping[str, str], *, flags: Mapping[str, bool], stored: Mapping[str, str]
) -> dict[str, list[ValidationError]]:
    """Category key (``__all__`` for an unknown one) → why its value is refused under these
    flags. Unchanged values are kept whatever the flags are now (a strict override outlives
    a non-exclusive spell), so they are never refused."""
    errors: dict[str, list[ValidationError]] = {}
    for key, value in values.items():
        category = registry.find(key)
        if category is None:
            errors.setdefault("__all__", []).append(
                ValidationError(
                    "“%(key)s” is not a synced category.", code="category", params={"key": key}
                )
            )
        elif value not in VALUES:
            errors.setdefault(key, []).append(
                ValidationError(
                    f"{category.label}: choose Follow the partnership, Off, Flexible or Strict.",
                    code="value",
                )
            )
        elif value != stored.get(key, FOLLOW) and value not in choices_for(category, flags):
            message = (
                INVITE_ONLY_FOLLOW_OR_OFF
                if category.kind == registry.INVITE_ONLY
                else NEEDS_EXCLUSIVE
            )
            errors.setdefault(key, []).append(
                ValidationError(message.format(category=category.label), code="not_allowed")
            )
    return errors


def validate(partnership: Partnership, values: Mapping[str, str]) -> None:
    """Refuse values the flags (or the category) do not allow, naming each category."""
    errors = errors_for(values, flags=partnership.flags, stored=overrides_of(partnership))
    if errors:
        raise ValidationError(errors)


def events_for_change(
    *,
    mode_before: str,
    mode_after: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
) -> list[tuple[str, str, str]]:
    """(category key, event, its mode before) for each category whose override change needs a
    run of its own, in display order (docs/design.md §12.2, rule O4).

    When the flags changed the mode in the same save, their own run covers every category it
    reaches: a ``link`` every category that still syncs, an ``unlink`` every category whose
    override is not off. Only the others get a run here.
    """
    flags_changed_mode = mode_before != mode_after
    events = []
    for category in registry.all():
        key = category.key
        old_value, new_value = before.get(key, FOLLOW), after.get(key, before.get(key, FOLLOW))
        if old_value == new_value:
            continue
        old_mode, new_mode = resolve(mode_before, old_value), resolve(mode_after, new_value)
        event = policy.event_for_mode_change(old_mode, new_mode)
        if event is None:
            continue
        if flags_changed_mode and (new_mode != modes.OFF or new_value != OFF):
            continue
        events.append((key, event, old_mode))
    return events


def saved_overrides(partnership_pk: int | None) -> dict[str, str]:
    """The overrides stored for a partnership (ignoring values being edited)."""
    if partnership_pk is None:
        return {}
    return dict(
        CategoryOverride.objects.filter(partnership_id=partnership_pk).values_list(
            "category", "value"
        )
    )


@transaction.atomic
def set_override(partnership: Partnership, key: str, value: str, *, by=None) -> list[SyncRun]:
    """Set one category's override; returns the runs it queued (none when the effective mode
    does not change)."""
    return set_overrides(partnership, {key: value}, by=by)


@transaction.atomic
def set_overrides(
    partnership: Partnership,
    values: Mapping[str, str],
    *,
    by=None,
    mode_before: str | None = None,
    quiet: bool = False,
) -> list[SyncRun]:
    """Save several overrides of one partnership and queue the runs their changes raise
    (none with ``quiet``: a new partnership whose first run is still to come).

    ``mode_before`` is the partnership's mode before the flags saved in the same transaction
    (the Partnership Details form saves both): when the flags changed the mode, their own run
    covers every category that still syncs, and only a category turned off by its override
    needs a run of its own (docs/design.md §12.2).
    """
    from .tasks import schedule

    current = Partnership.objects.select_for_update().get(pk=partnership.pk)
    if not current.is_active:
        raise ValidationError(
            "This partnership has ended; its categories can no longer change.", code="ended"
        )
    validate(current, values)
    stored = overrides_of(current)
    changed = {k: v for k, v in values.items() if v != stored.get(k, FOLLOW)}
    if not changed:
        return []
    mode_before = mode_before or current.mode
    now = timezone.now()
    existing = {o.category: o for o in CategoryOverride.objects.filter(partnership=current)}
    for key, value in changed.items():
        row = existing.get(key) or CategoryOverride(partnership=current, category=key)
        row.value, row.updated_by, row.updated_at = value, by, now
        row.full_clean(validate_unique=False)
        row.save()
    changes = {key: (stored.get(key, FOLLOW), value) for key, value in changed.items()}
    runs = [
        schedule(
            current,
            event,
            by=by,
            mode_before=old_mode,
            categories=[key],
            trigger=describe_changes({key: changes[key]}),
        )
        for key, event, old_mode in events_for_change(
            mode_before=mode_before, mode_after=current.mode, before=stored, after=values
        )
        if not quiet
    ]
    Partnership.objects.filter(pk=current.pk).update(
        version=F("version") + 1, updated_by=by, updated_at=now
    )
    partnership._override_values = None  # read again when next asked
    if not quiet:
        # Flags saved by the same save (the form, a profile): one announcement for both.
        flags_change = getattr(partnership, "announced_flags_change", None)
        if flags_change is not None and flags_change.pending:
            flags_change.kwargs["category_changes"].update(changes)
        else:
            signals.announce_overrides_changed(current, changes, by)
    return runs


def describe_changes(changes: Mapping[str, tuple[str, str]]) -> str:
    """ "Adders: Follow the partnership → Strict; …" for category key → (old value, new
    value), in display order."""
    return "; ".join(
        f"{category.label}: {VALUE_LABELS[changes[category.key][0]]} → "
        f"{VALUE_LABELS[changes[category.key][1]]}"
        for category in registry.all()
        if category.key in changes
    )


__all__ = [
    "EXCLUSIVE_ONLY",
    "FOLLOW",
    "VALUES",
    "VALUE_LABELS",
    "choices_for",
    "describe_changes",
    "effective_mode",
    "effective_modes",
    "effective_modes_many",
    "errors_for",
    "events_for_change",
    "overrides_of",
    "prefetch",
    "resolve",
    "saved_overrides",
    "set_override",
    "set_overrides",
    "validate",
]
