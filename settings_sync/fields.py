"""Fields for setting values that are lists: what the forms parse and how the models store."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

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
        if not all(share.is_finite() for share in shares):
            raise ValidationError("Type 12 numbers separated by commas.")
        if not all(-100 <= share <= 100 for share in shares):
            # Refused before any arithmetic: turning a share such as 1e999999999 into an integer
            # would keep the server busy for minutes (and abs() or a sum would overflow).
            raise ValidationError("Each monthly share is a percentage, between 0 and 100.")
        return canonical_shares(shares)


def canonical_shares(shares):
    """A list of numbers in one stored form: whole numbers as integers, the rest as floats.

    ``[7.0, 8]`` and ``[7, 8]`` are the same profile; storing both as ``[7, 8]`` keeps them
    equal in SQL too (SQLite compares JSON as text), so an unchanged resave stays synced.
    Anything that is not a list of finite numbers is returned as it is, for validation.
    """
    if not isinstance(shares, list):
        return shares
    canonical = []
    for share in shares:
        if isinstance(share, bool) or not isinstance(share, int | float | Decimal):
            return shares
        number = Decimal(str(share))
        if not number.is_finite():
            return shares
        canonical.append(int(number) if number == number.to_integral_value() else float(number))
    return canonical


class MonthlyProfileJSONField(models.JSONField):
    """A JSON list of monthly shares, stored in canonical form whatever path saved it."""

    def get_prep_value(self, value):
        return super().get_prep_value(canonical_shares(value))


class EmailListField(forms.CharField):
    """Several addresses separated by commas, stored normalised as "a@x.com, b@y.com"."""

    def clean(self, value):
        value = super().clean(value)
        return ", ".join(parse_email_list(value or ""))
