"""Form fields for setting values that are lists."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError

from .validators import parse_email_list


class MonthlyProfileField(forms.CharField):
    """Twelve monthly shares typed as "8, 7.5, 8, …"; stored as a list of numbers."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"placeholder": "e.g. 7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7"}),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(f"{Decimal(str(share)).normalize():f}" for share in value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            shares = [Decimal(part.strip()) for part in value.replace(";", ",").split(",")]
        except InvalidOperation as error:
            raise ValidationError("Type 12 numbers separated by commas.") from error
        return [float(share) for share in shares]


class EmailListField(forms.CharField):
    """Several addresses separated by commas, stored normalised as "a@x.com, b@y.com"."""

    def clean(self, value):
        value = super().clean(value)
        return ", ".join(parse_email_list(value or ""))
