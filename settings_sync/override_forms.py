"""The per-category rows of the Partnership Details form and of the predictor
(docs/design.md §12.1, rule O3).

A row per synced category, shown while Data Sync is ticked; ``flexible`` and ``strict`` are
offered while Exclusive is ticked too. Unlike Allow Downstream to Edit, hiding a row or a
choice does not clear it: a hidden row is carried as a hidden input, and a kept flexible or
strict value stays selected (it has no effect until the partnership is exclusive again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string

from partnerships import modes
from partnerships.models import Partnership

from . import overrides, registry

PREFIX = "override-"

#: How each value reads in a row (a kept one says it has no effect for now).
CHOICE_LABELS = {
    overrides.FOLLOW: "Follow the partnership",
    overrides.OFF: "Off: not synced",
    overrides.FLEXIBLE: "Flexible: synced, editable by the partner",
    overrides.STRICT: "Strict: synced, read-only for the partner",
}
KEPT_LABEL = "{label} (kept; no effect until the partnership is Exclusive)"


@dataclass
class OverrideRow:
    category: registry.Category
    value: str
    choices: list[tuple[str, str]]
    effective: str
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.category.key}"

    @property
    def overridden(self) -> bool:
        return self.value != overrides.FOLLOW


class OverrideRows:
    """The rows for these flags, from submitted ``data`` or the ``stored`` overrides."""

    def __init__(
        self,
        *,
        flags: Mapping[str, bool],
        data: Mapping[str, str] | None = None,
        stored: Mapping[str, str] | None = None,
        check: bool = False,
    ) -> None:
        self.flags = dict(flags)
        self.stored = dict(stored or {})
        self.values = {}
        for category in registry.all():
            stored_value = self.stored.get(category.key, overrides.FOLLOW)
            submitted = data.get(PREFIX + category.key) if data is not None else None
            self.values[category.key] = submitted if submitted is not None else stored_value
        self.errors = (
            overrides.errors_for(self.values, flags=self.flags, stored=self.stored) if check else {}
        )

    @property
    def shown(self) -> bool:
        return bool(self.flags.get("data_sync_enabled"))

    @property
    def mode(self) -> str:
        return modes.mode_for(**self.flags)

    def changed(self) -> dict[str, str]:
        return {
            key: value
            for key, value in self.values.items()
            if value != self.stored.get(key, overrides.FOLLOW)
        }

    def rows(self) -> list[OverrideRow]:
        rows = []
        for category in registry.all():
            value = self.values[category.key]
            offered = overrides.choices_for(category, self.flags)
            choices = [(choice, CHOICE_LABELS[choice]) for choice in offered]
            if value not in offered and value in overrides.VALUES:
                label = CHOICE_LABELS[value].split(":")[0]
                choices.append((value, KEPT_LABEL.format(label=label)))
            rows.append(
                OverrideRow(
                    category=category,
                    value=value,
                    choices=choices,
                    effective=overrides.resolve(self.mode, value)
                    if value in overrides.VALUES
                    else self.mode,
                    errors=[
                        message
                        for error in self.errors.get(category.key, [])
                        for message in error.messages
                    ],
                )
            )
        return rows

    def error_messages(self) -> list[str]:
        return [m for errors in self.errors.values() for e in errors for m in e.messages]


class PartnershipOverridesPart:
    """The override rows as a part of the Partnership Details form (``partnerships.hooks``):
    shown under the flags, applied to the preview, validated and saved with them."""

    def __init__(
        self,
        request: HttpRequest,
        partnership: Partnership,
        data,
        flags: dict[str, bool],
        *,
        validate: bool,
    ) -> None:
        self.request = request
        self.partnership = partnership
        self.rows = OverrideRows(
            flags=flags, data=data, stored=overrides.overrides_of(partnership), check=validate
        )

    @property
    def errors(self) -> list[str]:
        return self.rows.error_messages()

    @property
    def html(self) -> str:
        return render_to_string(
            "settings_sync/includes/override_rows.html",
            {"override_rows": self.rows, "refresh_target": "partnership-details"},
            request=self.request,
        )

    def apply(self, edited: Partnership) -> None:
        """Show the rows' values in the preview of ``edited`` (nothing saved)."""
        edited.pending_overrides = dict(self.rows.values)

    @transaction.atomic
    def save(self, partnership: Partnership, *, by, mode_before: str) -> None:
        changed = self.rows.changed()
        if changed:
            overrides.set_overrides(partnership, changed, by=by, mode_before=mode_before)


def flag_form_part(
    request: HttpRequest, partnership: Partnership, data, flags: dict[str, bool], *, validate: bool
) -> PartnershipOverridesPart:
    return PartnershipOverridesPart(request, partnership, data, flags, validate=validate)


def effective_modes_section(request: HttpRequest, partnership: Partnership) -> str:
    """Partnership Details, read-only: the effective mode of each category (both sides)."""
    if not partnership.data_sync_enabled:
        return ""
    values = overrides.overrides_of(partnership)
    effective = overrides.effective_modes(partnership)
    rows = [
        (category, values.get(category.key, overrides.FOLLOW), effective[category.key])
        for category in registry.all()
    ]
    from .profiles import differences, profile_of

    # a channel manager's own name for its profile, not the partner's business
    upstream = request.organization.pk == partnership.upstream_id
    profile = profile_of(partnership) if upstream else None
    return render_to_string(
        "settings_sync/includes/effective_modes.html",
        {
            "partnership": partnership,
            "rows": rows,
            "labels": CHOICE_LABELS,
            "profile": profile,
            "differences": differences(profile, partnership, values) if profile else [],
        },
        request=request,
    )


__all__ = [
    "OverrideRows",
    "PartnershipOverridesPart",
    "effective_modes_section",
    "flag_form_part",
]
