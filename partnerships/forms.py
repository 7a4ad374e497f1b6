"""Forms with the three partnership flags, and the invitation acceptance sign-up."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.db.models import Q

from organizations.models import Organization, organization_name_key
from organizations.search import can_match
from organizations.validators import validate_name

from . import modes
from .models import REQUEST_MESSAGE_MAX_LENGTH


class FlagsFormMixin:
    """The three flags, with *Allow Downstream to Edit* offered only while it can be on.

    The form is re-rendered by the server whenever Exclusive or Data Sync changes (htmx, or a
    plain submit without JavaScript); while either is off the third control is not shown
    and its value is cleared. A submitted combination the rules forbid is refused.
    """

    flag_fields = modes.FLAG_NAMES

    def add_flag_fields(self) -> None:
        self.fields["is_exclusive"] = forms.BooleanField(
            label=modes.FLAG_LABELS["is_exclusive"],
            required=False,
            help_text="The partner works with this channel manager only.",
        )
        self.fields["data_sync_enabled"] = forms.BooleanField(
            label=modes.FLAG_LABELS["data_sync_enabled"],
            required=False,
            help_text="Copy the channel manager's settings into the partner.",
        )
        self.fields["allow_downstream_edit"] = forms.BooleanField(
            label=modes.FLAG_LABELS["allow_downstream_edit"],
            required=False,
            help_text="Without it, synced settings are read-only for the partner (Strict mode).",
        )

    def _flag_value(self, name: str) -> bool:
        field = self.fields[name]
        if self.is_bound:
            return bool(
                field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
            )
        return bool(self.get_initial_for_field(field, name))

    @property
    def show_allow_edit(self) -> bool:
        return self._flag_value("is_exclusive") and self._flag_value("data_sync_enabled")

    def shown_flags(self) -> dict[str, bool]:
        """The flags as the form shows them now (Allow Edit cleared while it is hidden)."""
        flags = {name: self._flag_value(name) for name in modes.FLAG_NAMES}
        flags["allow_downstream_edit"] = flags["allow_downstream_edit"] and self.show_allow_edit
        return flags

    @property
    def current_mode(self) -> str:
        return modes.mode_for(**self.shown_flags())

    def clean_flags(self, cleaned_data: dict) -> None:
        flags = {name: cleaned_data.get(name, False) for name in modes.FLAG_NAMES}
        try:
            modes.validate_flags(**flags)
        except ValidationError as error:
            # Shown at the top of the form: the control itself may be hidden.
            raise ValidationError(error.messages, code="flags") from error

    def flags(self) -> dict[str, bool]:
        return {name: self.cleaned_data[name] for name in modes.FLAG_NAMES}


def refreshed_flags(data) -> dict[str, bool]:
    """Flags a form is redrawn with after Exclusive or Data Sync changed (nothing saved)."""
    flags = {
        name: name in data and data.get(name) not in ("", "false", "off")
        for name in modes.FLAG_NAMES
    }
    if not (flags["is_exclusive"] and flags["data_sync_enabled"]):
        flags["allow_downstream_edit"] = False
    return flags


class PartnershipFlagsForm(FlagsFormMixin, forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    #: the flags that were on when the form was opened, to tell what someone else changed
    #: meanwhile if the save is refused as stale (rule D10)
    opened = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_flag_fields()
        self.order_fields([*modes.FLAG_NAMES, "version", "opened"])

    @staticmethod
    def initial_for(partnership) -> dict:
        """A form opened on the partnership as it is now."""
        flags = partnership.flags
        return {
            **flags,
            "version": partnership.version,
            "opened": " ".join(name for name, on in flags.items() if on),
        }

    def opened_flags(self) -> dict[str, bool]:
        if self.is_bound:
            value = self.data.get(self.add_prefix("opened"), "")
        else:
            value = self.initial.get("opened", "")
        names = set(str(value).split())
        return {name: name in names for name in modes.FLAG_NAMES}

    def clean(self) -> dict:
        cleaned_data = super().clean()
        self.clean_flags(cleaned_data)
        return cleaned_data


class FlagsForm(FlagsFormMixin, forms.Form):
    """A form with the three flags and their rule (its own fields come first)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_flag_fields()

    def clean(self) -> dict:
        cleaned_data = super().clean()
        self.clean_flags(cleaned_data)
        return cleaned_data


class InvitationForm(FlagsForm):
    organization_name = forms.CharField(
        label="Organization name",
        max_length=200,
        validators=[validate_name],
        help_text="The new partner's company name.",
    )
    email = forms.EmailField(
        label="Admin's email", help_text="The invitation link is sent to this address."
    )


class PartnershipRequestForm(FlagsFormMixin, forms.Form):
    organization = forms.CharField(
        label="Organization",
        max_length=200,
        help_text="Type the organization's name; pick it from the suggestions.",
        widget=forms.TextInput(attrs={"list": "organization-suggestions", "autocomplete": "off"}),
    )
    message = forms.CharField(
        label="Message (optional)",
        required=False,
        max_length=REQUEST_MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, upstream: Organization, **kwargs) -> None:
        self.upstream = upstream
        super().__init__(*args, **kwargs)
        self.add_flag_fields()
        self.order_fields(["organization", *modes.FLAG_NAMES, "message"])

    def clean_organization(self) -> Organization:
        value = self.cleaned_data["organization"].strip()
        matches = organizations_named(value, exclude=self.upstream)
        if not matches:
            if value.lower() in (self.upstream.name.lower(), self.upstream.slug):
                raise ValidationError("An organization cannot partner with itself.")
            raise ValidationError(
                f"No organization is called “{value}”. To add a company that is not on the "
                "platform yet, invite it instead."
            )
        if len(matches) > 1:
            raise ValidationError(
                f"Several organizations are called “{value}”; type the one you mean by its "
                f"identifier ({', '.join(match.slug for match in matches)})."
            )
        return matches[0]

    def clean(self) -> dict:
        cleaned_data = super().clean()
        self.clean_flags(cleaned_data)
        return cleaned_data


def organizations_named(value: str | None, *, exclude: Organization) -> list[Organization]:
    """Up to two organizations (other than ``exclude``) whose slug or name is ``value`` (the
    name compared as names are kept unique)."""
    value = (value or "").strip()
    if not value or not can_match(value):  # the preview asks with whatever was typed
        return []
    return list(
        Organization.objects.filter(Q(slug=value) | Q(name_key=organization_name_key(value)))
        .exclude(pk=exclude.pk)
        .order_by("pk")[:2]
    )


class InvitationSignupForm(UserCreationForm):
    """Create the account that will be the invited organization's admin."""

    class Meta(UserCreationForm.Meta):
        fields = ["username", "first_name", "last_name", "email"]
