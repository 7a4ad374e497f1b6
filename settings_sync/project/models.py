"""Project settings: equipment, price adders, default costs, installation dates."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from organizations.validators import validate_name
from settings_sync import registry
from settings_sync.items import (
    SingletonSetting,
    SyncedItem,
    natural_key_constraint,
    track_baseline,
)
from settings_sync.validators import between, non_negative

MONEY = {"max_digits": 12, "decimal_places": 2}
RATE = {"max_digits": 10, "decimal_places": 4}


@track_baseline
class Equipment(SyncedItem):
    class Kind(models.TextChoices):
        MODULE = "module", "Module"
        INVERTER = "inverter", "Inverter"
        BATTERY = "battery", "Battery"
        OPTIMIZER = "optimizer", "Optimizer"
        RACKING = "racking", "Racking"
        ENERGY_EFFICIENCY = "energy_efficiency", "Energy efficiency"

    SYNCED_FIELDS = registry.get("equipment").synced_fields
    NATURAL_KEY = registry.get("equipment").natural_key

    kind = models.CharField(max_length=20, choices=Kind.choices)
    manufacturer = models.CharField(max_length=100, validators=[validate_name])
    model = models.CharField(max_length=120, validators=[validate_name])
    rating = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[non_negative],
        help_text="Watts for modules and inverters, kWh for batteries.",
    )
    unit_cost = models.DecimalField("unit cost ($)", **MONEY, validators=[non_negative])
    is_active = models.BooleanField("active", default=True)

    class Meta(SyncedItem.Meta):
        verbose_name = "equipment item"
        verbose_name_plural = "equipment"
        ordering = ["kind", "manufacturer", "model"]
        constraints = [
            natural_key_constraint(
                "equipment",
                message="This organization already has this kind, manufacturer and model.",
            ),
            models.CheckConstraint(
                condition=Q(unit_cost__gte=0) & (Q(rating__isnull=True) | Q(rating__gte=0)),
                name="equipment_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model}"


@track_baseline
class Adder(SyncedItem):
    class Pricing(models.TextChoices):
        FIXED = "fixed", "Fixed ($)"
        PER_WATT = "per_watt", "Per watt ($/W)"
        PER_MODULE = "per_module", "Per module ($)"
        PERCENT = "percent", "Percent of system price (%)"

    SYNCED_FIELDS = registry.get("adders").synced_fields
    NATURAL_KEY = registry.get("adders").natural_key

    name = models.CharField(max_length=120, validators=[validate_name])
    pricing = models.CharField(max_length=20, choices=Pricing.choices, default=Pricing.FIXED)
    amount = models.DecimalField(**RATE, validators=[non_negative])
    applied_by_default = models.BooleanField(default=False)

    class Meta(SyncedItem.Meta):
        ordering = ["name"]
        constraints = [
            natural_key_constraint(
                "adder", message="This organization already has an adder with this name."
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0) & (~Q(pricing="percent") | Q(amount__lte=100)),
                name="adder_amount_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.pricing == self.Pricing.PERCENT and self.amount is not None and self.amount > 100:
            raise ValidationError({"amount": "A percentage adder cannot be more than 100%."})


class DefaultCosts(SingletonSetting):
    SYNCED_FIELDS = registry.get("default_costs").synced_fields

    module_cost_per_watt = models.DecimalField(
        "module cost ($/W)", **RATE, default=Decimal("0.45"), validators=[non_negative]
    )
    inverter_cost_per_watt = models.DecimalField(
        "inverter cost ($/W)", **RATE, default=Decimal("0.20"), validators=[non_negative]
    )
    battery_cost_per_kwh = models.DecimalField(
        "battery cost ($/kWh)", **MONEY, default=Decimal("650"), validators=[non_negative]
    )
    energy_efficiency_cost = models.DecimalField(
        "energy efficiency cost ($)", **MONEY, default=Decimal("0"), validators=[non_negative]
    )
    project_cost_per_watt = models.DecimalField(
        "project cost ($/W)", **RATE, default=Decimal("2.80"), validators=[non_negative]
    )

    class Meta:
        verbose_name = "default costs"
        verbose_name_plural = "default costs"
        constraints = [
            models.CheckConstraint(
                condition=Q(module_cost_per_watt__gte=0)
                & Q(inverter_cost_per_watt__gte=0)
                & Q(battery_cost_per_kwh__gte=0)
                & Q(energy_efficiency_cost__gte=0)
                & Q(project_cost_per_watt__gte=0),
                name="default_costs_not_negative",
            )
        ]

    def __str__(self) -> str:
        return f"Default costs of {self.organization}"


class InstallationDates(SingletonSetting):
    SYNCED_FIELDS = registry.get("installation_dates").synced_fields

    contract_to_install_days = models.PositiveSmallIntegerField(
        "contract to install (days)", default=30, validators=between(0, 365, "a number of days")
    )
    install_to_pto_days = models.PositiveSmallIntegerField(
        "install to PTO (days)",
        default=21,
        validators=between(0, 365, "a number of days"),
        help_text="Permission to operate, after installation.",
    )

    class Meta:
        verbose_name = "installation dates"
        verbose_name_plural = "installation dates"
        constraints = [
            models.CheckConstraint(
                condition=Q(contract_to_install_days__lte=365) & Q(install_to_pto_days__lte=365),
                name="installation_dates_in_range",
            )
        ]

    def __str__(self) -> str:
        return f"Installation dates of {self.organization}"
