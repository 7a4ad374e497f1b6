"""Validators shared by the setting categories."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email

non_negative = MinValueValidator(Decimal("0"), message="Enter zero or a positive amount.")


def between(low, high, what: str = "a value"):
    return [
        MinValueValidator(low, message=f"Enter {what} of at least {low}."),
        MaxValueValidator(high, message=f"Enter {what} of at most {high}."),
    ]


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
