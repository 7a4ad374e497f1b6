from __future__ import annotations

from django import forms

from organizations.forms import OrganizationOwnedForm
from settings_sync.fields import MonthlyProfileField
from settings_sync.validators import range_messages

from .models import Persona, RateEscalation


@range_messages
class PersonaForm(OrganizationOwnedForm):
    duplicate_error_field = "name"
    monthly_profile = MonthlyProfileField(
        label="Monthly profile (%)",
        help_text=Persona._meta.get_field("monthly_profile").help_text,
    )

    class Meta:
        model = Persona
        fields = ["name", "annual_kwh", "monthly_profile", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class RateEscalationForm(OrganizationOwnedForm):
    duplicate_error_field = "utility_name"

    class Meta:
        model = RateEscalation
        fields = ["utility_name", "annual_escalation_percent"]
