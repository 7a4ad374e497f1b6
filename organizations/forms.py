"""Forms of the Organization tab."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .models import License, Organization

LOGO_ACCEPT = "image/png,image/jpeg,image/webp"


class OrganizationOwnedForm(forms.ModelForm):
    """A ModelForm for an item that belongs to one organization.

    The organization is not a form field (it comes from the URL), yet the per-organization
    uniqueness constraints must still be checked before saving, so that a duplicate is
    refused beside the form instead of failing in the database.
    """

    #: the field beside which a duplicate ("already exists") error is shown
    duplicate_error_field: str | None = None

    def __init__(self, *args, organization, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.organization = organization

    def validate_constraints(self) -> None:
        # Django skips every constraint that mentions a field the form does not show; here
        # those fields (organization, archive state) are set by the code, not typed, so only
        # the fields whose input was invalid are left out of the check.
        invalid = {name for name in self._errors if name != forms.forms.NON_FIELD_ERRORS}
        try:
            self.instance.validate_constraints(exclude=invalid)
        except ValidationError as error:
            self._update_errors(self._beside_field(error))

    def _beside_field(self, error: ValidationError) -> ValidationError:
        """Move "already exists" errors from the top of the form to the natural key's field."""
        if self.duplicate_error_field is None:
            return error
        by_field: dict[str, list[ValidationError]] = {}
        for field, errors in error.error_dict.items():
            for item in errors:
                target = self.duplicate_error_field if item.code == "duplicate" else field
                by_field.setdefault(target, []).append(item)
        return ValidationError(by_field)


class OrganizationProfileForm(forms.ModelForm):
    """Name and logo. The current logo is shown as an image by the page; the form offers a
    file to replace it and, while there is one, a box to remove it (Django's clearable file
    input would show the stored file's name instead)."""

    logo = forms.FileField(
        label="Logo",
        required=False,
        widget=forms.FileInput(attrs={"accept": LOGO_ACCEPT}),
        help_text="PNG, JPEG or WebP, at most 2 MB.",
    )
    remove_logo = forms.BooleanField(label="Remove the logo", required=False)

    class Meta:
        model = Organization
        fields = ["name", "logo"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.logo:
            self.fields["logo"].label = "Replace the logo"
        else:
            del self.fields["remove_logo"]

    def clean(self) -> dict:
        cleaned_data = super().clean()
        if cleaned_data.get("remove_logo"):
            if "logo" in self.changed_data:  # a file was chosen too
                raise ValidationError(
                    "Choose a new logo or remove the logo, not both.", code="logo_twice"
                )
            cleaned_data["logo"] = False  # what a cleared file input gives: no file
        return cleaned_data

    def save(self, commit: bool = True) -> Organization:
        if "logo" in self.changed_data or self.cleaned_data.get("remove_logo"):
            self.instance.logo_copied_from = None  # another logo, or none: no longer a copy
        return super().save(commit)


class LicenseForm(OrganizationOwnedForm):
    duplicate_error_field = "number"

    class Meta:
        model = License
        fields = ["license_type", "number", "jurisdiction", "expires_on"]
        widgets = {"expires_on": forms.DateInput(attrs={"type": "date"})}
