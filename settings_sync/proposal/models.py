"""Proposal settings: expiration, comparable values, the proposal email, shared templates."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from organizations.models import Organization
from organizations.validators import validate_name
from settings_sync import registry
from settings_sync.fields import BoundedTextField, text_length_constraint
from settings_sync.items import (
    SingletonSetting,
    SyncedItem,
    natural_key_constraint,
    track_baseline,
)
from settings_sync.validators import between, non_negative, validate_email_list

#: A proposal email is a few paragraphs; the body is copied into every partner it syncs to.
BODY_MAX_LENGTH = 10_000
DESCRIPTION_MAX_LENGTH = 2000


class ProposalExpiration(SingletonSetting):
    SYNCED_FIELDS = registry.get("proposal_expiration").synced_fields

    days_valid = models.PositiveSmallIntegerField(
        "proposals are valid for (days)",
        default=30,
        validators=between(1, 365, "a number of days"),
    )

    class Meta:
        verbose_name = "proposal expiration"
        verbose_name_plural = "proposal expiration"
        constraints = [
            models.CheckConstraint(
                condition=Q(days_valid__gte=1) & Q(days_valid__lte=365),
                name="proposal_expiration_in_range",
            )
        ]

    def __str__(self) -> str:
        return f"Proposal expiration of {self.organization}"


@track_baseline
class ComparableValue(SyncedItem):
    SYNCED_FIELDS = registry.get("comparable_values").synced_fields
    NATURAL_KEY = registry.get("comparable_values").natural_key

    label = models.CharField(
        max_length=120, validators=[validate_name], help_text="e.g. Trees planted"
    )
    unit = models.CharField(max_length=40, validators=[validate_name], help_text="e.g. trees")
    factor_per_mwh = models.DecimalField(
        "per MWh produced", max_digits=12, decimal_places=4, validators=[non_negative]
    )

    class Meta(SyncedItem.Meta):
        ordering = ["label"]
        constraints = [
            natural_key_constraint(
                "comparable_value",
                message="This organization already has a comparable value with this label.",
            ),
            models.CheckConstraint(
                condition=Q(factor_per_mwh__gte=0), name="comparable_value_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.label


class ProposalEmail(SingletonSetting):
    SYNCED_FIELDS = registry.get("proposal_email").synced_fields

    subject = models.CharField(
        max_length=200, default="Your solar proposal", validators=[validate_name]
    )
    body = BoundedTextField(
        max_length=BODY_MAX_LENGTH,
        default="Hello {customer_name},\n\nAttached is your solar proposal. It is valid for "
        "{days_valid} days.\n\nBest regards,\n{sender_name}",
    )
    reply_to = models.EmailField("reply-to", blank=True)
    cc = models.CharField(
        "cc",
        max_length=500,
        blank=True,
        validators=[validate_email_list],
        help_text="Addresses copied on every proposal email, separated by commas.",
    )

    class Meta:
        verbose_name = "proposal email"
        verbose_name_plural = "proposal email"
        constraints = [text_length_constraint("proposal_email", "body", BODY_MAX_LENGTH)]

    def __str__(self) -> str:
        return f"Proposal email of {self.organization}"


class ProposalTemplate(models.Model):
    """A proposal layout. Never synced: a channel manager shares its templates read-only."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="proposal_templates"
    )
    name = models.CharField(max_length=120, validators=[validate_name])
    description = BoundedTextField(blank=True, max_length=DESCRIPTION_MAX_LENGTH)
    page_count = models.PositiveSmallIntegerField(
        default=8, validators=between(1, 100, "a number of pages")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "organization",
                "name",
                name="proposal_template_unique_name",
                violation_error_code="duplicate",
                violation_error_message="This organization already has a template with this name.",
            ),
            text_length_constraint("proposal_template", "description", DESCRIPTION_MAX_LENGTH),
        ]

    def __str__(self) -> str:
        return self.name
