"""The three partnership flags and the four modes they give (docs/design.md §2).

Pure functions, shared by the models, the forms, the services and (later) the sync policy.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

OFF = "off"
NON_EXCLUSIVE = "non_exclusive"
FLEXIBLE = "flexible"
STRICT = "strict"
MODES = (OFF, NON_EXCLUSIVE, FLEXIBLE, STRICT)
MODE_LABELS = {
    OFF: "Off",
    NON_EXCLUSIVE: "Non-exclusive",
    FLEXIBLE: "Flexible",
    STRICT: "Strict",
}
MODE_DESCRIPTIONS = {
    OFF: "Nothing is synced.",
    NON_EXCLUSIVE: "Settings are synced; the partner may edit them.",
    FLEXIBLE: "Exclusive; settings are synced and the partner may edit them.",
    STRICT: "Exclusive; synced settings are read-only for the partner.",
}
FLAG_NAMES = ("is_exclusive", "data_sync_enabled", "allow_downstream_edit")
FLAG_LABELS = {
    "is_exclusive": "Exclusive",
    "data_sync_enabled": "Data Sync",
    "allow_downstream_edit": "Allow Downstream to Edit Synced Settings",
}

ALLOW_EDIT_NEEDS_BOTH = (
    "Allow Downstream to Edit Synced Settings can only be on when the partnership is both "
    "Exclusive and has Data Sync on."
)


def mode_for(*, is_exclusive: bool, data_sync_enabled: bool, allow_downstream_edit: bool) -> str:
    if not data_sync_enabled:
        return OFF
    if not is_exclusive:
        return NON_EXCLUSIVE
    return FLEXIBLE if allow_downstream_edit else STRICT


def validate_flags(
    *, is_exclusive: bool, data_sync_enabled: bool, allow_downstream_edit: bool
) -> None:
    if allow_downstream_edit and not (is_exclusive and data_sync_enabled):
        raise ValidationError({"allow_downstream_edit": ALLOW_EDIT_NEEDS_BOTH}, code="flags")


def normalise_flags(flags: dict) -> dict[str, bool]:
    """The three flags from keyword arguments, refusing unknown names."""
    unknown = set(flags) - set(FLAG_NAMES)
    if unknown:
        raise TypeError(f"Unknown partnership flags: {', '.join(sorted(unknown))}")
    return {name: bool(flags.get(name, False)) for name in FLAG_NAMES}
