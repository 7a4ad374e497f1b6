from __future__ import annotations

from django import forms

from organizations.forms import OrganizationOwnedForm
from settings_sync.validators import range_messages

from .models import Adder, DefaultCosts, Equipment, InstallationDates


class EquipmentForm(OrganizationOwnedForm):
    duplicate_error_field = "model"

    class Meta:
        model = Equipment
        fields = ["kind", "manufacturer", "model", "rating", "unit_cost", "is_active"]


class AdderForm(OrganizationOwnedForm):
    duplicate_error_field = "name"

    class Meta:
        model = Adder
        fields = ["name", "pricing", "amount", "applied_by_default"]


class DefaultCostsForm(forms.ModelForm):
    class Meta:
        model = DefaultCosts
        fields = list(DefaultCosts.SYNCED_FIELDS)


@range_messages
class InstallationDatesForm(forms.ModelForm):
    class Meta:
        model = InstallationDates
        fields = list(InstallationDates.SYNCED_FIELDS)
