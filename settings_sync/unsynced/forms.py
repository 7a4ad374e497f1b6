from __future__ import annotations

from organizations.forms import OrganizationOwnedForm
from settings_sync.validators import range_messages

from .models import FinancingProduct, Integration


@range_messages
class FinancingProductForm(OrganizationOwnedForm):
    duplicate_error_field = "name"

    class Meta:
        model = FinancingProduct
        fields = ["name", "lender", "apr_percent", "term_months", "dealer_fee_percent", "is_active"]


class IntegrationForm(OrganizationOwnedForm):
    duplicate_error_field = "provider"

    class Meta:
        model = Integration
        fields = ["provider", "account", "is_enabled", "sync_leads"]
