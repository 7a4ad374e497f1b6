"""Sync history: every run of the engine into one partner, and every change it made."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from organizations.wording import possessive
from partnerships.models import FlagsModel, Partnership
from partnerships.modes import MODE_LABELS, MODES

from . import policy, registry

#: The keys the database accepts for an override (the registry's, written into the migration).
SYNCED_CATEGORY_KEYS = [category.key for category in registry.all()]
INVITE_ONLY_KEYS = [c.key for c in registry.all() if c.kind == registry.INVITE_ONLY]


class SyncBatch(models.Model):
    """Runs started together (Resync all partners, a profile applied to many partners),
    followed on one progress page."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    profile = models.ForeignKey(
        "SyncProfile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="batches",
        help_text="The profile this batch applied (empty: a resync).",
    )
    partners = models.PositiveIntegerField(
        default=0, help_text="How many partners a profile was applied to."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "sync batches"

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}"
        if self.profile_id:
            return f"Profile “{self.profile}” applied to {self.partners} partners ({when})"
        return f"Resync of {possessive(self.organization)} partners ({when})"


#: The event of a run that records a partner's answer to an update (take theirs, keep mine:
#: docs/design.md §13). Not a policy event: no plan is made for it, it is recorded finished.
DECISION = "decision"
DECISION_LABEL = "Partner's answer to an update"


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
        max_length=10,
        choices=[
            *((e, policy.EVENT_LABELS[e]) for e in policy.EVENTS),
            (DECISION, DECISION_LABEL),
        ],
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
    overwritten = models.PositiveIntegerField(
        "local edits overwritten",
        default=0,
        help_text="Values the partner had changed that this run replaced with the channel "
        "manager's (they are in the run's history).",
    )
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
        TOOK_THEIRS = "took_theirs", "Took the channel manager's version"
        KEPT_MINE = "kept_mine", "Kept own version"

    # Checked by triggers, not by a foreign-key constraint; looked up through the (run,
    # category) index: docs/design.md §7.4.
    run = models.ForeignKey(
        SyncRun,
        on_delete=models.CASCADE,
        related_name="changes",
        db_constraint=False,
        db_index=False,
    )
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


class CategoryOverride(models.Model):
    """A channel manager's choice for one category of one partnership, instead of the mode the
    flags give (docs/design.md §12). No row, or ``follow``, means the partnership's mode.

    ``flexible`` and ``strict`` need an exclusive partnership with Data Sync on when they are
    chosen; one kept while the partnership is not exclusive has no effect (the service checks
    the flags, the database what it can see in this row)."""

    class Value(models.TextChoices):
        FOLLOW = "follow", "Follow the partnership"
        OFF = "off", "Off"
        FLEXIBLE = "flexible", "Flexible"
        STRICT = "strict", "Strict"

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="category_overrides"
    )
    category = models.CharField(max_length=40)
    value = models.CharField(max_length=10, choices=Value.choices, default=Value.FOLLOW)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["partnership", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["partnership", "category"],
                name="category_override_one_per_category",
                violation_error_message="This category already has an override.",
            ),
            models.CheckConstraint(
                condition=models.Q(value__in=["follow", "off", "flexible", "strict"]),
                name="category_override_value_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(category__in=SYNCED_CATEGORY_KEYS),
                name="category_override_category_known",
                violation_error_message="This is not a synced category.",
            ),
            # Invite-only data is copied once, on the invitation: it is synced or not, never
            # editable or read-only.
            models.CheckConstraint(
                condition=~models.Q(category__in=INVITE_ONLY_KEYS)
                | models.Q(value__in=["follow", "off"]),
                name="category_override_invite_only_follow_or_off",
                violation_error_message="Logo and licenses can only follow the partnership "
                "or be off.",
            ),
        ]

    def __str__(self) -> str:
        category = registry.find(self.category)
        return f"{category.label if category else self.category}: {self.get_value_display()}"


class SyncProfileQuerySet(models.QuerySet):
    def live(self) -> SyncProfileQuerySet:
        return self.filter(archived_at__isnull=True)


class SyncProfile(FlagsModel):
    """A channel manager's named choice of flags and per-category overrides, applied to many
    partners at once (docs/design.md §12.3)."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="sync_profiles"
    )
    name = models.CharField(max_length=100)
    overrides = models.JSONField(
        default=dict, blank=True, help_text="Category → override (categories not named follow)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = SyncProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            *FlagsModel.Meta.constraints,
            models.UniqueConstraint(
                "organization",
                Lower("name"),
                condition=models.Q(archived_at__isnull=True),
                name="sync_profile_unique_live_name",
                violation_error_message="You already have a sync profile with this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def override_items(self) -> list[tuple[str, str]]:
        """(category key, override) in display order (the JSON column keeps no order)."""
        return [(c.key, self.overrides[c.key]) for c in registry.all() if c.key in self.overrides]


class ProfileAssignment(models.Model):
    """The profile a partnership follows: the last one applied to it (docs/design.md §12.3)."""

    partnership = models.OneToOneField(
        Partnership, on_delete=models.CASCADE, related_name="profile_assignment"
    )
    profile = models.ForeignKey(SyncProfile, on_delete=models.PROTECT, related_name="assignments")
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    applied_at = models.DateTimeField(default=timezone.now)
    batch = models.ForeignKey(
        SyncBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.partnership} follows {self.profile}"


class ProfileOffer(models.Model):
    """A sync profile named by an invitation or a partnership request: the partnership it
    creates starts with the profile's overrides and follows it (docs/design.md §12.3)."""

    profile = models.ForeignKey(SyncProfile, on_delete=models.PROTECT, related_name="offers")
    invitation = models.OneToOneField(
        "partnerships.Invitation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="profile_offer",
    )
    partnership_request = models.OneToOneField(
        "partnerships.PartnershipRequest",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="profile_offer",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(invitation__isnull=False, partnership_request__isnull=True)
                | models.Q(invitation__isnull=True, partnership_request__isnull=False),
                name="profile_offer_one_offer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invitation or self.partnership_request} names {self.profile}"


class DriftCount(models.Model):
    """The drift of one collection category of one partnership, kept for the Partnerships tab
    so that a page of partners is one indexed read, not a recount (docs/design.md §10).

    Every write of a category's items marks the rows of the partnerships on either side of
    the organization written (``fresh`` off, ``generation`` up by one) in its own transaction;
    a reader recounts the rows it finds stale or missing and stores the counts only if the
    row's generation is still the one it read. The counts are the partner's items as they are,
    whatever the partnership's flags: a category's override is applied when they are read.
    """

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    category = models.CharField(max_length=40)
    #: Raised by every writer; a reader's counts are stored only against the generation read.
    generation = models.BigIntegerField(default=0)
    #: The counts below are what a recount gives now.
    fresh = models.BooleanField(default=False)
    diverged = models.IntegerField(default=0)
    #: Upstream live items without a live copy, whatever the category's override.
    missing = models.IntegerField(default=0)
    out_of_date = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partnership", "category"], name="drift_count_one_per_category"
            )
        ]

    def __str__(self) -> str:
        return f"{self.category} of partnership {self.partnership_id}"
