"""Fields for setting values: lists (what the forms parse and how the models store), JSON
whose numbers are ordinary numbers, and texts of a bounded length."""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.functional import cached_property

from .validators import parse_email_list

#: The most digits a number typed as JSON may have: no setting needs more, and Python refuses
#: to read an integer of more than 4,300 digits (with a ValueError no form would catch).
JSON_MAX_DIGITS = 15


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


def _refuse_number(text: str):
    # A decoding error, so that Django's JSON form field reports invalid input (beside the
    # field) both when it cleans the value and when it shows the form again.
    raise json.JSONDecodeError(f"{text[:20]} is not a number that can be stored", text, 0)


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_MAX_DIGITS:
        _refuse_number(text)
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) >= 10**JSON_MAX_DIGITS:
        _refuse_number(text)
    return value


class OrdinaryNumbersJSONDecoder(json.JSONDecoder):
    """Reads JSON whose numbers are finite and have at most ``JSON_MAX_DIGITS`` digits before
    the decimal point; NaN, Infinity, 1e999 and a 5,000-digit integer are invalid JSON here."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("parse_int", _parse_int)
        kwargs.setdefault("parse_float", _parse_float)
        kwargs.setdefault("parse_constant", _refuse_number)
        super().__init__(*args, **kwargs)


class OrdinaryNumbersJSONFormField(forms.JSONField):
    default_error_messages = {
        "invalid": (
            "Enter valid JSON whose numbers are ordinary numbers: not NaN or Infinity, and at "
            f"most {JSON_MAX_DIGITS} digits before the decimal point."
        ),
    }

    def __init__(self, **kwargs) -> None:
        kwargs["decoder"] = OrdinaryNumbersJSONDecoder
        super().__init__(**kwargs)


class MonthlyProfileJSONField(models.JSONField):
    """A JSON list of monthly shares, stored in canonical form whatever path saved it.

    Its form field (the admin's) reads ordinary numbers only; what the database already holds
    is read as it is.
    """

    def get_prep_value(self, value):
        return super().get_prep_value(canonical_shares(value))

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": OrdinaryNumbersJSONFormField, **kwargs})


class BoundedTextField(models.TextField):
    """A TextField whose ``max_length`` the model enforces too (Django leaves a TextField's
    ``max_length`` to the form); pair it with :func:`text_length_constraint` in the database."""

    def __init__(self, *args, max_length: int, **kwargs) -> None:
        super().__init__(*args, max_length=max_length, **kwargs)

    @cached_property
    def validators(self):
        return [*super().validators, MaxLengthValidator(self.max_length)]


def text_length_constraint(model_name: str, field_name: str, max_length: int):
    """The database's half of a text's maximum length (characters, as Python counts them)."""
    return models.CheckConstraint(
        condition=LessThanOrEqual(Length(field_name), max_length),
        name=f"{model_name}_{field_name}_length",
        violation_error_message=f"Keep this to at most {max_length:,} characters.",
    )


class EmailListField(forms.CharField):
    """Several addresses separated by commas, stored normalised as "a@x.com, b@y.com"."""

    def clean(self, value):
        value = super().clean(value)
        return ", ".join(parse_email_list(value or ""))


def cut_overlong_texts(app_label: str, texts: list[tuple[str, str, int]]):
    """A data migration's step for ``texts`` (model, field, maximum length) of one app: cut the
    texts stored before the maximum existed at that maximum, so the database can then hold it
    as a constraint."""

    def cut(apps, schema_editor) -> None:
        for model_name, field_name, max_length in texts:
            model = apps.get_model(app_label, model_name)
            overlong = model._base_manager.annotate(text_length=Length(field_name)).filter(
                text_length__gt=max_length
            )
            for pk, text in overlong.values_list("pk", field_name):
                model._base_manager.filter(pk=pk).update(**{field_name: text[:max_length]})

    return cut
