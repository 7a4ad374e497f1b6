"""Partnerships between a channel manager (upstream) and its partners (downstream)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.urls import reverse
from django.utils import timezone

from organizations.models import Organization
from organizations.validators import validate_name

from . import modes


class FlagsModel(models.Model):
    """The three flags, their database rule, and the mode they give."""

    is_exclusive = models.BooleanField("Exclusive", default=False)
    data_sync_enabled = models.BooleanField("Data Sync", default=False)
    allow_downstream_edit = models.BooleanField(
        "Allow Downstream to Edit Synced Settings", default=False
    )

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(allow_downstream_edit=False)
                | Q(is_exclusive=True, data_sync_enabled=True),
                name="%(app_label)s_%(class)s_allow_edit_needs_exclusive_and_sync",
                violation_error_message=modes.ALLOW_EDIT_NEEDS_BOTH,
            ),
        ]

    @property
    def mode(self) -> str:
        return modes.mode_for(**self.flags)

    @property
    def mode_label(self) -> str:
        return modes.MODE_LABELS[self.mode]

    @property
    def flags(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in modes.FLAG_NAMES}

    def clean(self) -> None:
        modes.validate_flags(**self.flags)


def mode_expression() -> Case:
    """The mode computed in SQL, for filtering, ordering and counting by mode."""
    return Case(
        When(data_sync_enabled=False, then=Value(modes.OFF)),
        When(is_exclusive=False, then=Value(modes.NON_EXCLUSIVE)),
        When(allow_downstream_edit=True, then=Value(modes.FLEXIBLE)),
        default=Value(modes.STRICT),
        output_field=models.CharField(),
    )


class PartnershipQuerySet(models.QuerySet):
    def active(self) -> PartnershipQuerySet:
        return self.filter(status=Partnership.Status.ACTIVE)

    def with_mode(self) -> PartnershipQuerySet:
        return self.annotate(mode_value=mode_expression())

    def involving(self, organization: Organization) -> PartnershipQuerySet:
        return self.filter(Q(upstream=organization) | Q(downstream=organization))

    def for_list(self) -> PartnershipQuerySet:
        return self.select_related("upstream", "downstream").order_by(
            "status", "downstream__name", "upstream__name", "pk"
        )


class Partnership(FlagsModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    upstream = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="downstream_partnerships",
        help_text="The channel manager.",
    )
    downstream = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="upstream_partnerships",
        help_text="The partner organization.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Raised on every change, to refuse stale edits."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PartnershipQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            *FlagsModel.Meta.constraints,
            models.CheckConstraint(
                condition=~Q(upstream=F("downstream")),
                name="partnership_not_with_itself",
                violation_error_message="An organization cannot partner with itself.",
            ),
            models.UniqueConstraint(
                fields=["upstream", "downstream"],
                condition=Q(status="active"),
                name="partnership_one_active_per_pair",
                violation_error_message="These organizations already have an active partnership.",
            ),
            models.UniqueConstraint(
                fields=["downstream"],
                condition=Q(status="active", is_exclusive=True),
                name="partnership_one_active_exclusive_per_downstream",
                violation_error_message=(
                    "This partner already has an exclusive partnership with a channel manager."
                ),
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "ended"]), name="partnership_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["downstream", "status"])]

    def __str__(self) -> str:
        return f"{self.upstream} → {self.downstream}"

    def get_absolute_url(self) -> str:
        return self.url_for(self.upstream)

    def url_for(self, organization: Organization) -> str:
        """The partnership's page as seen from one of its two organizations."""
        return reverse("partnerships:detail", kwargs={"org": organization.slug, "pk": self.pk})

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def partner_of(self, organization: Organization) -> Organization:
        return self.downstream if organization.pk == self.upstream_id else self.upstream


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(FlagsModel):
    """An invitation to a new organization, accepted through a single-use emailed link."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"

    class EmailStatus(models.TextChoices):
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Not sent"

    upstream = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations_sent"
    )
    organization_name = models.CharField("organization name", max_length=200)
    email = models.EmailField("admin's email")
    # Only a hash is stored: the token itself exists in the email alone (see issue_token).
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    email_status = models.CharField(
        "email",
        max_length=10,
        choices=EmailStatus.choices,
        default=EmailStatus.SENDING,
        editable=False,
    )
    email_attempts = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Attempts at sending the latest email."
    )
    email_error = models.CharField(
        max_length=300, blank=True, editable=False, help_text="Why its last attempt failed."
    )
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    partnership = models.OneToOneField(
        Partnership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitation",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            *FlagsModel.Meta.constraints,
            models.CheckConstraint(
                condition=Q(email_status__in=["sending", "sent", "failed"]),
                name="invitation_email_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.upstream} invites {self.organization_name} ({self.email})"

    def issue_token(self) -> str:
        """A new token for the invitation's link; the link of any earlier one stops working.

        Only its hash is kept, so the token is returned once, for the email that carries it:
        each email sent gets a link of its own.
        """
        token = secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.save(update_fields=["token_hash"])
        return token

    issue_token.alters_data = True

    def clean(self) -> None:
        super().clean()
        # Checked here rather than as a field validator (which would need a migration of this
        # app): the name becomes an organization's name and goes into the email's subject.
        try:
            validate_name(self.organization_name)
        except ValidationError as error:
            raise ValidationError({"organization_name": error}) from error
        if self.status == self.Status.PENDING and Organization.name_taken(self.organization_name):
            raise ValidationError(
                {
                    "organization_name": ValidationError(
                        "An organization with this name is already on Channel Data Sync. "
                        "Request a partnership with it instead, or invite a new organization "
                        "under a name of its own.",
                        code="name_taken",
                    )
                }
            )

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    @property
    def state(self) -> str:
        """Pending, accepted, revoked, or expired (a pending invitation past its expiry)."""
        if self.status == self.Status.PENDING and self.is_expired():
            return "expired"
        return self.status


REQUEST_MESSAGE_MAX_LENGTH = 2000


class PartnershipRequest(FlagsModel):
    """A channel manager asks an existing organization to become its partner."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"

    upstream = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="partnership_requests_sent"
    )
    downstream = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="partnership_requests_received"
    )
    message = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    partnership = models.OneToOneField(
        Partnership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="request",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            *FlagsModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["upstream", "downstream"],
                condition=Q(status="pending"),
                name="partnership_request_one_pending_per_pair",
                violation_error_message="A request to this organization is already pending.",
            ),
            models.CheckConstraint(
                condition=~Q(upstream=F("downstream")),
                name="partnership_request_not_to_itself",
                violation_error_message="An organization cannot partner with itself.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.upstream} asks {self.downstream} ({self.get_status_display()})"

    def clean(self) -> None:
        super().clean()
        # A limit for the model (services call full_clean), not only the form. Not yet a
        # field option or database constraint: that needs a migration of this app.
        if len(self.message or "") > REQUEST_MESSAGE_MAX_LENGTH:
            raise ValidationError(
                {
                    "message": ValidationError(
                        "Keep the message to at most %(limit)s characters.",
                        code="max_length",
                        params={"limit": f"{REQUEST_MESSAGE_MAX_LENGTH:,}"},
                    )
                }
            )
