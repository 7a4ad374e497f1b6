"""One definition of "the same item": a natural key normalised in Python, stored, and indexed.

Two items of an organization are the same when their natural keys are equal after trimming
and case-folding. Databases and Python disagree on what "lower case" means (PostgreSQL's
``LOWER`` follows the server's locale, SQLite's folds ASCII only, Python's ``casefold`` knows
"ß" and the dotted capital I), so the comparison is never left to SQL: :func:`normalise_key`
computes the key, every save stores it in ``normalised_key``, the per-organization unique index
is built on that column, and the sync compares the same strings. The forms, the index and the
engine therefore agree on every name (docs/design.md §3.3).

A change made with a queryset ``update()`` bypasses ``save()``; the sync recomputes the key of
every item it writes, so such an item is corrected the next time it is synced.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable

from django.db import models
from django.db.models import Q


def normalise_part(value) -> str:
    """A value as it is compared: compatibility forms unified (ligatures, full-width letters,
    no-break spaces), case-folded, runs of spaces made one (a page shows them as one) and
    surrounding ones dropped."""
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    return " ".join(unicodedata.normalize("NFKC", text.casefold()).split())


def normalise_key(values: Iterable) -> str:
    """The stored key of an item's natural-key values (one value: the value itself)."""
    parts = [normalise_part(value) for value in values]
    if len(parts) == 1:
        return parts[0]
    return json.dumps(parts, ensure_ascii=False)


class NaturalKeyQuerySet(models.QuerySet):
    """Bulk writes store the key too (they bypass ``save()``)."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.normalised_key = obj.compute_normalised_key()
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        if set(fields).intersection(self.model.NATURAL_KEY):
            for obj in objs:
                obj.normalised_key = obj.compute_normalised_key()
            fields = list(dict.fromkeys([*fields, "normalised_key"]))
        return super().bulk_update(objs, fields, *args, **kwargs)


class NaturalKeyModel(models.Model):
    """An item identified within its organization by ``NATURAL_KEY`` (field names)."""

    NATURAL_KEY: tuple[str, ...] = ()

    normalised_key = models.TextField(
        editable=False,
        default="",
        help_text="The natural key as it is compared: trimmed and case-folded.",
    )

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.normalised_key = self.compute_normalised_key()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "normalised_key"}
        super().save(*args, **kwargs)

    def compute_normalised_key(self) -> str:
        return normalise_key(getattr(self, name) for name in self.NATURAL_KEY)

    def validate_constraints(self, exclude=None) -> None:
        self.normalised_key = self.compute_normalised_key()
        exclude = set(exclude or ())
        if exclude.intersection(self.NATURAL_KEY):
            exclude.add("normalised_key")  # judged on values that are themselves invalid
        super().validate_constraints(exclude=exclude)


def unique_natural_key(name: str, *, message: str) -> models.UniqueConstraint:
    """Live items of one organization are unique by their normalised natural key."""
    return models.UniqueConstraint(
        fields=["organization", "normalised_key"],
        condition=Q(archived_at__isnull=True),
        name=name,
        violation_error_code="duplicate",
        violation_error_message=message,
    )


def fill_normalised_keys(model, natural_key: tuple[str, ...], *, now) -> None:
    """Store every row's key (a migration's step). Live rows of one organization that turn out
    to be the same item under the shared normalisation keep the oldest; the others are
    archived with the reason, never deleted."""
    seen: set[tuple[int, str]] = set()
    for row in model.objects.order_by("pk").iterator():
        row.normalised_key = normalise_key(getattr(row, name) for name in natural_key)
        fields = ["normalised_key"]
        if row.archived_at is None:
            if (row.organization_id, row.normalised_key) in seen:
                row.archived_at = now
                row.archive_reason = "Archived: another item has the same name."
                fields += ["archived_at", "archive_reason"]
            seen.add((row.organization_id, row.normalised_key))
        row.save(update_fields=fields)


def fill_normalised_keys_operation(app_label: str, model_name: str, natural_key: tuple[str, ...]):
    """A migration operation that runs :func:`fill_normalised_keys` on a historical model."""
    from django.db import migrations
    from django.utils import timezone

    def forwards(apps, schema_editor) -> None:
        fill_normalised_keys(apps.get_model(app_label, model_name), natural_key, now=timezone.now())

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)
