"""Settings the sync never reads or writes, whatever the partnership flags: financing
products and integrations. They exist so that "untouched" is visible and tested."""

from __future__ import annotations

from django.db import models

from organizations.models import Organization
from organizations.validators import validate_name
from settings_sync.validators import between, non_negative


class FinancingProduct(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="financing_products"
    )
    name = models.CharField(max_length=120, validators=[validate_name])
    lender = models.CharField(max_length=120, validators=[validate_name])
    apr_percent = models.DecimalField(
        "APR (%)", max_digits=5, decimal_places=2, validators=between(0, 40, "an APR")
    )
    term_months = models.PositiveSmallIntegerField(
        "term (months)", validators=between(1, 360, "a term")
    )
    dealer_fee_percent = models.DecimalField(
        "dealer fee (%)", max_digits=5, decimal_places=2, default=0, validators=[non_negative]
    )
    is_active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["lender", "name"]
        constraints = [
            models.UniqueConstraint(
                "organization",
                "lender",
                "name",
                name="financing_product_unique",
                violation_error_code="duplicate",
                violation_error_message="This lender already has a product with this name here.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.lender} {self.name}"


class Integration(models.Model):
    class Provider(models.TextChoices):
        SALESFORCE = "salesforce", "Salesforce"
        HUBSPOT = "hubspot", "HubSpot"
        ENPHASE = "enphase", "Enphase Enlighten"
        DOCUSIGN = "docusign", "DocuSign"
        QUICKBOOKS = "quickbooks", "QuickBooks"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="integrations"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    account = models.CharField("account or workspace", max_length=120, validators=[validate_name])
    is_enabled = models.BooleanField("enabled", default=True)
    sync_leads = models.BooleanField("send new leads", default=False)

    class Meta:
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(
                "organization",
                "provider",
                name="integration_one_per_provider",
                violation_error_code="duplicate",
                violation_error_message="This organization already has this integration.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.account})"
