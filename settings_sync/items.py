"""The shapes every synced setting shares: collection items with provenance, and singletons.

A collection item copied from a channel manager remembers where it came from
(``synced_partnership``, ``synced_from``) and a **baseline**: the values last copied, one
``baseline_<field>`` column per synced field. Its sync state is then read from its content,
whatever changed it (a form, the admin, the shell, a queryset update): ``own`` (not a copy),
``synced`` (equal to the baseline) or ``diverged`` (edited since). Because the baseline is
made of real columns, the same state is computed in SQL for counts (:meth:`with_sync_state`).
"""

from __future__ import annotations

import enum

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from organizations.archiving import ArchivableModel, LiveManager
from organizations.models import Organization
from organizations.natural_keys import NaturalKeyModel, NaturalKeyQuerySet, unique_natural_key

OWN = "own"
SYNCED = "synced"
DIVERGED = "diverged"

BASELINE_PREFIX = "baseline_"


class Fresh(enum.Enum):
    """Values a fresh copy takes from the run that makes it."""

    PARTNERSHIP = "the partnership copying the item"
    SOURCE = "the channel manager's item"
    KEY = "the natural key of the channel manager's item"
    NOW = "the time of the run"
    MANAGER = "the organization whose lock travels with the copy (docs/design.md §14.3)"
    ORIGIN = "the organization at the top of the copy's chain (docs/design.md §14.2)"


#: Every column the sync keeps beside a copy's own values (the ``baseline_<field>`` columns
#: aside), with what a fresh copy holds in it. The one list of them: the rules, the bulk
#: writer, the ``INSERT … SELECT`` copy and the admin all read it, so adding a bookkeeping
#: column is a change here plus a migration (docs/design.md §8).
FRESH_COPY: dict[str, object] = {
    "synced_partnership": Fresh.PARTNERSHIP,
    "synced_from": Fresh.SOURCE,
    "normalised_key": Fresh.KEY,
    "synced_at": Fresh.NOW,
    "managed_by": Fresh.MANAGER,
    "synced_origin": Fresh.ORIGIN,
    "archived_at": None,
    "archived_by": None,
    "archive_reason": "",
    "archived_by_sync": False,
    "updated_at": Fresh.NOW,
    "created_change_id": None,
}


def baseline_name(field_name: str) -> str:
    return f"{BASELINE_PREFIX}{field_name}"


def track_baseline(model: type[models.Model]) -> type[models.Model]:
    """Class decorator: add a ``baseline_<field>`` column for each of ``model.SYNCED_FIELDS``.

    The columns are clones of the fields themselves (same type, so they compare in SQL),
    nullable and not editable: only the sync writes them.
    """
    for name in model.SYNCED_FIELDS:
        original = model._meta.get_field(name)
        _, _, args, kwargs = original.deconstruct()
        for option in ("default", "db_default", "help_text", "db_comment"):
            kwargs.pop(option, None)
        kwargs.update(
            null=True,
            blank=True,
            editable=False,
            db_index=False,
            unique=False,
            validators=[],
            verbose_name=f"baseline {original.verbose_name}",
        )
        model.add_to_class(baseline_name(name), original.__class__(*args, **kwargs))
    return model


def natural_key_constraint(model_name: str, *, message: str) -> models.UniqueConstraint:
    """Live items of one organization are unique by natural key (docs/design.md §3.3)."""
    return unique_natural_key(f"{model_name}_unique_natural_key", message=message)


class SyncedItemQuerySet(NaturalKeyQuerySet):
    def same_content_q(self) -> Q:
        """Every synced field equals its baseline (NULL equal to NULL)."""
        condition = Q()
        for name in self.model.SYNCED_FIELDS:
            base = baseline_name(name)
            condition &= Q(**{name: F(base)}) | Q(
                **{f"{name}__isnull": True, f"{base}__isnull": True}
            )
        return condition

    def with_sync_state(self) -> SyncedItemQuerySet:
        return self.annotate(
            sync_state_value=Case(
                When(synced_partnership__isnull=True, then=Value(OWN)),
                When(self.same_content_q(), then=Value(SYNCED)),
                default=Value(DIVERGED),
                output_field=models.CharField(),
            )
        )

    def copies(self) -> SyncedItemQuerySet:
        return self.filter(synced_partnership__isnull=False)

    def diverged(self) -> SyncedItemQuerySet:
        return self.with_sync_state().filter(sync_state_value=DIVERGED)

    def for_list(self) -> SyncedItemQuerySet:
        return self.select_related("synced_partnership__upstream", "managed_by", "synced_origin")


class SyncedLiveManager(LiveManager.from_queryset(SyncedItemQuerySet)):
    pass


class SyncedItem(NaturalKeyModel, ArchivableModel):
    """A collection item of one organization, possibly a copy of a channel manager's item."""

    SYNCED_FIELDS: tuple[str, ...] = ()

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=True
    )
    synced_partnership = models.ForeignKey(
        "partnerships.Partnership",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The partnership this item was copied through (empty for own items).",
    )
    # SET_NULL: a copy whose upstream item was hard-deleted keeps its partnership, so the
    # next sync can archive or detach it (docs/design.md, rule M4). No database constraint: every
    # commit of a sync would otherwise lock each upstream row its copies point at (FOR KEY
    # SHARE), which dominated a fan-out; a dangling id is harmless, since the engine treats
    # any copy whose upstream item it cannot find as deleted upstream.
    synced_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="copies",
        db_constraint=False,
    )
    synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Written by the sync with every copy, so a list knows which rows are locked without
    # walking chains (docs/design.md §14.3). No constraint, like ``synced_from``: a run's
    # commit must not lock the managing organization's row.
    managed_by = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        help_text="The channel manager that locks this item (empty: the partner may edit it).",
    )
    synced_origin = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        verbose_name="originally from",
        help_text="The organization at the top of this copy's chain (empty for own items).",
    )
    archived_by_sync = models.BooleanField(default=False, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    # The history row that recorded this copy's creation without its values, which it reads
    # from this copy's baseline until the baseline first changes: then the database writes
    # them into the row and empties this column (docs/design.md §7.5). Set only by one
    # partnership's first copy on PostgreSQL; no constraint, like ``synced_from``.
    created_change_id = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = SyncedLiveManager()
    all_objects = models.Manager.from_queryset(SyncedItemQuerySet)()

    class Meta(ArchivableModel.Meta):
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    def _mark_archived(self, at, by, reason: str) -> None:
        # A person archiving or restoring makes the decision theirs: the sync archives in bulk
        # and sets the flag itself, so an item archived here is never brought back by a merge.
        super()._mark_archived(at, by, reason)
        self.archived_by_sync = False

    @classmethod
    def archive_fields(cls) -> list[str]:
        return [*super().archive_fields(), "archived_by_sync"]

    @classmethod
    def bookkeeping_fields(cls) -> tuple[str, ...]:
        """The columns only the sync writes: provenance, archive state, baselines."""
        return (*FRESH_COPY, *(baseline_name(name) for name in cls.SYNCED_FIELDS))

    @property
    def sync_state(self) -> str:
        if self.synced_partnership_id is None:
            return OWN
        same = all(
            getattr(self, name) == getattr(self, baseline_name(name)) for name in self.SYNCED_FIELDS
        )
        return SYNCED if same else DIVERGED

    def synced_values(self) -> dict:
        return {name: getattr(self, name) for name in self.SYNCED_FIELDS}


class SingletonSetting(models.Model):
    """One row of defaults per organization, created with the organization."""

    SYNCED_FIELDS: tuple[str, ...] = ()

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    synced_partnership = models.ForeignKey(
        "partnerships.Partnership",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The partnership that last overwrote these values.",
    )
    synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.updated_at = timezone.now()
        super().save(*args, **kwargs)

    @classmethod
    def bookkeeping_fields(cls) -> tuple[str, ...]:
        """The columns only the sync writes."""
        return ("synced_partnership", "synced_at", "updated_at")

    def synced_values(self) -> dict:
        return {name: getattr(self, name) for name in self.SYNCED_FIELDS}

    @classmethod
    def for_organization(cls, organization: Organization):
        """The organization's row (created with defaults if it is somehow missing)."""
        row, _ = cls.objects.select_related("synced_partnership__upstream").get_or_create(
            organization=organization
        )
        return row
