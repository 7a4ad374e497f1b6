"""Validators shared by the setting categories."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email

non_negative = MinValueValidator(Decimal("0"), message="Enter zero or a positive amount.")


def between(low, high, what: str = "a value"):
    """Validators of a range, with one message for it whichever end is crossed."""
    message = f"Enter {what} from {low:,} to {high:,}."
    return [MinValueValidator(low, message=message), MaxValueValidator(high, message=message)]


def range_messages(form_class):
    """Class decorator for a ModelForm: a number outside its model field's range (``between``)
    gets the range's one message, below zero too, where the form field Django makes for a
    positive integer would answer in words of its own ("greater than or equal to 0")."""
    model = form_class._meta.model
    for name, field in form_class.base_fields.items():
        try:
            validators = model._meta.get_field(name).validators
        except FieldDoesNotExist:
            continue
        field.error_messages.update(
            {
                validator.code: validator.message
                for validator in validators
                if isinstance(validator, (MinValueValidator, MaxValueValidator))
            }
        )
    return form_class


def parse_email_list(value: str) -> list[str]:
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


def validate_email_list(value: str) -> None:
    bad = []
    for address in parse_email_list(value or ""):
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(
            "These are not valid email addresses: %(bad)s.", params={"bad": ", ".join(bad)}
        )


def validate_monthly_profile(value) -> None:
    """Twelve non-negative monthly shares (percent) that add up to 100."""
    if value in (None, "", []):
        return
    if not isinstance(value, list) or len(value) != 12:
        raise ValidationError("Enter exactly 12 monthly shares, January to December.")
    try:
        shares = [Decimal(str(share)) for share in value]
    except (InvalidOperation, ValueError) as error:
        raise ValidationError("Each monthly share must be a number.") from error
    if not all(share.is_finite() for share in shares):
        raise ValidationError("Each monthly share must be a number.")
    if any(share < 0 for share in shares):
        raise ValidationError("Monthly shares cannot be negative.")
    total = sum(shares)
    if abs(total - 100) > Decimal("0.01"):
        raise ValidationError(
            "The 12 monthly shares must add up to 100 (they add up to %(total)s).",
            params={"total": f"{total.normalize():f}"},
        )
