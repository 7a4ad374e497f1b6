"""Sync history: every run of the engine into one partner, and every change it made."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from organizations.wording import possessive
from partnerships.models import Partnership
from partnerships.modes import MODE_LABELS, MODES

from . import policy


class SyncBatch(models.Model):
    """Runs started together (Resync all partners), followed on one progress page."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "sync batches"

    def __str__(self) -> str:
        return (
            f"Resync of {possessive(self.organization)} partners ({self.created_at:%Y-%m-%d %H:%M})"
        )


class SyncRunQuerySet(models.QuerySet):
    def for_list(self) -> SyncRunQuerySet:
        return self.select_related(
            "partnership__upstream", "partnership__downstream", "started_by"
        ).order_by("-created_at", "-pk")


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    #: Not finished yet: waiting for a worker, or being applied.
    PENDING = (Status.QUEUED, Status.RUNNING)

    partnership = models.ForeignKey(Partnership, on_delete=models.PROTECT, related_name="sync_runs")
    event = models.CharField(
        max_length=10, choices=[(e, policy.EVENT_LABELS[e]) for e in policy.EVENTS]
    )
    mode = models.CharField(max_length=20, choices=[(m, MODE_LABELS[m]) for m in MODES])
    categories = models.JSONField(
        null=True, blank=True, help_text="The categories this run covered (empty: all)."
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=200, blank=True, help_text="What started the run.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        "last sign of its worker",
        null=True,
        blank=True,
        help_text="When a worker last showed it was still on this run (while it waits for the "
        "partner, at least once a minute).",
    )
    requeued_at = models.DateTimeField(
        "requeued at",
        null=True,
        blank=True,
        help_text="When the run was last queued again because its worker had stopped.",
    )
    counts = models.JSONField(default=dict, blank=True, help_text="category → action → count")
    error = models.TextField(blank=True)
    note = models.CharField(max_length=300, blank=True)
    batch = models.ForeignKey(
        SyncBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    caused_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="caused",
        help_text="The run into this partnership's channel manager that started this run.",
    )

    objects = SyncRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["partnership", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_event_display()} · {self.partnership} ({self.get_status_display()})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def total_changes(self) -> int:
        return sum(sum(actions.values()) for actions in self.counts.values())


class SyncChange(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        ADOPTED = "adopted", "Adopted"
        RESTORED = "restored", "Restored"
        KEPT_LOCAL = "kept_local", "Kept local"
        ARCHIVED = "archived", "Archived"
        DETACHED = "detached", "Detached"
        CONFLICT = "conflict", "Conflict"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="changes")
    category = models.CharField(max_length=40)
    action = models.CharField(max_length=12, choices=Action.choices)
    item_id = models.BigIntegerField(null=True, blank=True, help_text="The partner's item.")
    upstream_item_id = models.BigIntegerField(null=True, blank=True)
    label = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["run", "category"])]

    def __str__(self) -> str:
        from . import registry

        category = registry.find(self.category)
        category_name = category.label if category else self.category
        return f"{self.get_action_display()} · {category_name}: {self.label}"


class Import(models.Model):
    """A file uploaded into a collection category: kept between its dry run and its apply, so
    that confirming applies exactly the plan the dry run showed (docs/design.md §11)."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Dry run"
        APPLIED = "applied", "Applied"

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    category = models.CharField(max_length=40)
    file_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=4)
    content = models.BinaryField(help_text="The uploaded file, emptied once it is applied.")
    archive_missing = models.BooleanField("archive items missing from the file", default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    counts = models.JSONField(default=dict, blank=True, help_text="action → number of rows")
    plan_digest = models.CharField(
        max_length=64, help_text="What the dry run planned; the apply must plan the same."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        from . import registry

        category = registry.find(self.category)
        into = category.label if category else self.category
        return f"{self.file_name} into {into} ({self.created_at:%Y-%m-%d %H:%M})"
