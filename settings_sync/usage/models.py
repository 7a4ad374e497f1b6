"""Usage settings: household personas and utility rate escalations."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from organizations.validators import validate_name
from settings_sync import registry
from settings_sync.fields import (
    BoundedTextField,
    MonthlyProfileJSONField,
    text_length_constraint,
)
from settings_sync.items import SyncedItem, natural_key_constraint, track_baseline
from settings_sync.validators import between, validate_monthly_profile

DESCRIPTION_MAX_LENGTH = 2000


@track_baseline
class Persona(SyncedItem):
    SYNCED_FIELDS = registry.get("personas").synced_fields
    NATURAL_KEY = registry.get("personas").natural_key

    name = models.CharField(max_length=120, validators=[validate_name])
    annual_kwh = models.PositiveIntegerField(
        "annual usage (kWh)", validators=between(1, 1_000_000, "an annual usage")
    )
    monthly_profile = MonthlyProfileJSONField(
        "monthly profile (%)",
        null=True,
        blank=True,
        validators=[validate_monthly_profile],
        help_text="Twelve monthly shares of the annual usage, January to December, adding up "
        "to 100. Leave empty for a flat profile.",
    )
    description = BoundedTextField(blank=True, max_length=DESCRIPTION_MAX_LENGTH)

    class Meta(SyncedItem.Meta):
        ordering = ["name"]
        constraints = [
            natural_key_constraint(
                "persona", message="This organization already has a persona with this name."
            ),
            models.CheckConstraint(condition=Q(annual_kwh__gt=0), name="persona_usage_positive"),
            text_length_constraint("persona", "description", DESCRIPTION_MAX_LENGTH),
        ]

    def __str__(self) -> str:
        return self.name


@track_baseline
class RateEscalation(SyncedItem):
    SYNCED_FIELDS = registry.get("rate_escalations").synced_fields
    NATURAL_KEY = registry.get("rate_escalations").natural_key

    utility_name = models.CharField(max_length=150, validators=[validate_name])
    annual_escalation_percent = models.DecimalField(
        "annual escalation (%)",
        max_digits=5,
        decimal_places=2,
        validators=between(Decimal("-10"), Decimal("25"), "an escalation"),
    )

    class Meta(SyncedItem.Meta):
        ordering = ["utility_name"]
        constraints = [
            natural_key_constraint(
                "rate_escalation",
                message="This organization already has an escalation rate for this utility.",
            ),
            models.CheckConstraint(
                condition=Q(annual_escalation_percent__gte=-10)
                & Q(annual_escalation_percent__lte=25),
                name="rate_escalation_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.utility_name
