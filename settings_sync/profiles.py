"""Sync profiles: a channel manager's named flags and per-category overrides, applied to many
partners at once (docs/design.md §12.3).

Applying a profile goes through the same services as the Partnership Details form
(``partnerships.services.update_flags`` and ``overrides.set_overrides``), partner by partner
in primary-key order, so every rule holds and two applies overlapping on some partners
serialise on each partner's row; the runs they raise are gathered into one batch, followed
on one progress bar.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from organizations.models import Organization
from partnerships import modes
from partnerships import services as partnership_services
from partnerships.models import Partnership

from . import overrides, registry, tasks
from .models import ProfileAssignment, ProfileOffer, SyncBatch, SyncProfile

#: Partners whose flags and overrides are saved in one transaction.
APPLY_CHUNK = 50


def _clean_values(flags: Mapping[str, bool], values: Mapping[str, str]) -> dict[str, str]:
    """The overrides a profile keeps (``follow`` is the default, not stored), refusing those
    its own flags do not allow."""
    errors = overrides.errors_for(values, flags=flags, stored={})
    if errors:
        raise ValidationError(
            [message for found in errors.values() for error in found for message in error.messages]
        )
    return {key: value for key, value in values.items() if value != overrides.FOLLOW}


@transaction.atomic
def save_profile(
    organization: Organization,
    *,
    name: str,
    flags: Mapping[str, bool],
    values: Mapping[str, str],
    by=None,
    profile: SyncProfile | None = None,
) -> SyncProfile:
    """Create a profile, or change ``profile`` (partners following it keep their settings
    until it is applied again)."""
    flags = modes.normalise_flags(dict(flags))
    modes.validate_flags(**flags)
    kept = _clean_values(flags, values)
    if profile is None:
        profile = SyncProfile(organization=organization, created_by=by)
    elif profile.organization_id != organization.pk or profile.is_archived:
        raise ValidationError("This profile cannot be changed.", code="archived")
    profile.name = (name or "").strip()
    for flag, value in flags.items():
        setattr(profile, flag, value)
    profile.overrides = kept
    profile.updated_at = timezone.now()
    profile.full_clean()
    profile.save()
    return profile


@transaction.atomic
def archive_profile(profile: SyncProfile, *, by=None) -> SyncProfile:
    """Archive a profile: it is no longer offered; partners keep their settings and history."""
    profile.archived_at = timezone.now()
    profile.save(update_fields=["archived_at"])
    return profile


def applicable(profile: SyncProfile):
    """The partnerships ``profile`` may be applied to: its channel manager's active ones."""
    return Partnership.objects.active().filter(upstream_id=profile.organization_id)


def apply_profile(
    profile: SyncProfile, partnership_ids: list[int], *, by=None
) -> tuple[SyncBatch, list[tuple[Partnership, str]]]:
    """Give each partnership the profile's flags and overrides; returns the batch that
    follows their runs and the partners that could not take it, with the reason (a partner
    that cannot be exclusive, say). Ids outside ``applicable(profile)`` are refused whole."""
    if profile.is_archived:
        raise ValidationError("An archived profile cannot be applied.", code="archived")
    ids = sorted(set(partnership_ids))
    found = list(applicable(profile).filter(pk__in=ids).select_related("upstream", "downstream"))
    if len(found) != len(ids):
        raise ValidationError(
            "Some of these partners are not your active partners (any more).", code="not_yours"
        )
    batch = SyncBatch.objects.create(
        organization=profile.organization, created_by=by, profile=profile, partners=len(found)
    )
    values = {category.key: overrides.FOLLOW for category in registry.all()}
    values.update(profile.overrides)
    refused: list[tuple[Partnership, str]] = []
    with tasks.gathered(batch):
        for start in range(0, len(found), APPLY_CHUNK):
            with transaction.atomic():
                for partnership in found[start : start + APPLY_CHUNK]:
                    try:
                        with transaction.atomic():
                            _apply_one(profile, partnership, values, by=by, batch=batch)
                    except ValidationError as error:
                        refused.append((partnership, " ".join(error.messages)))
    return batch, refused


def _apply_one(
    profile: SyncProfile, partnership: Partnership, values: dict[str, str], *, by, batch
) -> None:
    mode_before = Partnership.objects.get(pk=partnership.pk).mode
    updated = partnership_services.update_flags(partnership, by=by, **profile.flags)
    overrides.set_overrides(updated, values, by=by, mode_before=mode_before)
    ProfileAssignment.objects.update_or_create(
        partnership=partnership,
        defaults={
            "profile": profile,
            "applied_by": by,
            "applied_at": timezone.now(),
            "batch": batch,
        },
    )


@transaction.atomic
def start_following(partnership: Partnership, *, invitation=None, by=None) -> None:
    """A new partnership created by an invitation or request that named a profile: it takes
    the profile's overrides its flags allow, without runs of their own (its first run, queued
    next, reads them), and follows the profile."""
    offers = ProfileOffer.objects.select_related("profile")
    offer = (
        offers.filter(invitation=invitation).first()
        if invitation is not None
        else offers.filter(partnership_request__partnership=partnership).first()
    )
    if offer is None:
        return
    profile = offer.profile
    allowed = {
        key: value
        for key, value in profile.overrides.items()
        if value in overrides.choices_for(registry.get(key), partnership.flags)
    }
    overrides.set_overrides(partnership, allowed, by=by, quiet=True)
    ProfileAssignment.objects.update_or_create(
        partnership=partnership, defaults={"profile": profile, "applied_by": by}
    )


def differences(
    profile: SyncProfile, partnership: Partnership, values: Mapping[str, str]
) -> list[str]:
    """Where a partnership following ``profile`` is set otherwise than the profile says, one
    phrase each (flags first, then categories in display order): edited by hand since, or a
    choice its flags did not allow, or a profile changed and not applied again."""
    found = []
    for name, wanted in profile.flags.items():
        had = getattr(partnership, name)
        if had != wanted:
            label = Partnership._meta.get_field(name).verbose_name
            state = {True: "on", False: "off"}
            found.append(f"{label}: {state[had]} here, {state[wanted]} in the profile")
    for category in registry.all():
        had = values.get(category.key, overrides.FOLLOW)
        wanted = profile.overrides.get(category.key, overrides.FOLLOW)
        if had != wanted:
            found.append(
                f"{category.label}: {overrides.VALUE_LABELS[had]} here, "
                f"{overrides.VALUE_LABELS[wanted]} in the profile"
            )
    return found


def profile_of(partnership: Partnership) -> SyncProfile | None:
    assignment = (
        ProfileAssignment.objects.filter(partnership=partnership).select_related("profile").first()
    )
    return assignment.profile if assignment else None
