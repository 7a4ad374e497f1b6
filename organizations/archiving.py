"""Archive instead of delete: the shared shape of every item an organization can "delete".

Archived rows stay in the database with who archived them, when and why, disappear from the
default manager (and so from lists, forms and the sync), and can be restored. ``all_objects``
sees everything, for the admin and for history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class LiveManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(archived_at__isnull=True)


class ArchivableModel(models.Model):
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    archive_reason = models.CharField(max_length=200, blank=True, editable=False)

    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012 (ruff takes a second manager for a field)

    class Meta:
        abstract = True
        base_manager_name = "all_objects"
        # Only archived rows are indexed by when they were archived (the admin's filter and
        # order): live rows, nearly all of them, cost no entry to write, and a plan made for
        # any organization never reads every live row of a table through it instead of the
        # organization's index (docs/design.md §10).
        indexes = [
            models.Index(
                fields=["archived_at"],
                name="%(class)s_archived",
                condition=models.Q(archived_at__isnull=False),
            )
        ]

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def archive(self, *, by=None, reason: str = "") -> None:
        self._mark_archived(timezone.now(), by, reason)
        self.save(update_fields=self.archive_fields())

    archive.alters_data = True

    def restore(self) -> None:
        """Bring an archived item back; refused if a live item now holds its identity."""
        self._mark_archived(None, None, "")
        self.validate_constraints()
        self.save(update_fields=self.archive_fields())

    restore.alters_data = True

    def _mark_archived(self, at, by, reason: str) -> None:
        self.archived_at = at
        self.archived_by = by
        self.archive_reason = reason

    @classmethod
    def archive_fields(cls) -> list[str]:
        """The columns that ``archive()`` and ``restore()`` write."""
        return ["archived_at", "archived_by", "archive_reason"]
