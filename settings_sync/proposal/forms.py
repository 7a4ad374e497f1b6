from __future__ import annotations

from django import forms

from organizations.forms import OrganizationOwnedForm
from settings_sync.fields import EmailListField
from settings_sync.validators import range_messages

from .models import ComparableValue, ProposalEmail, ProposalExpiration, ProposalTemplate


@range_messages
class ProposalExpirationForm(forms.ModelForm):
    class Meta:
        model = ProposalExpiration
        fields = ["days_valid"]


class ComparableValueForm(OrganizationOwnedForm):
    duplicate_error_field = "label"

    class Meta:
        model = ComparableValue
        fields = ["label", "unit", "factor_per_mwh"]


class ProposalEmailForm(forms.ModelForm):
    cc = EmailListField(
        label="Cc",
        required=False,
        max_length=500,
        help_text=ProposalEmail._meta.get_field("cc").help_text,
    )

    class Meta:
        model = ProposalEmail
        fields = ["subject", "body", "reply_to", "cc"]
        widgets = {"body": forms.Textarea(attrs={"rows": 6})}


@range_messages
class ProposalTemplateForm(OrganizationOwnedForm):
    duplicate_error_field = "name"

    class Meta:
        model = ProposalTemplate
        fields = ["name", "description", "page_count"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
