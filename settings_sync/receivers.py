"""Reactions to other apps' events: domain events become sync runs, on commit."""

from __future__ import annotations

from . import policy, registry


def create_singletons(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """Every organization has exactly one row of each singleton from the start
    (docs/design.md §3.1)."""
    if not created or raw:
        return
    # One insert each, and no signal: the organization was created by this very save, so
    # no row of it exists yet and no partner can follow its changes yet.
    for category in registry.all():
        if category.is_singleton:
            category.model.objects.bulk_create([category.model(organization=instance)])


def start_with_named_profile(
    sender, partnership, by, invitation=None, partnership_request=None, **kwargs
) -> None:
    """An accepted invitation or request that named a sync profile: the new partnership
    starts with the profile's overrides (before its first run reads them) and follows it.
    A partnership created directly (no invitation, no request) was offered no profile."""
    from .profiles import start_following

    if invitation is None and partnership_request is None:
        return
    start_following(partnership, invitation=invitation, by=by)


def on_invitation_accepted(sender, partnership, invitation, by, **kwargs) -> None:
    from .tasks import schedule

    if partnership.data_sync_enabled:
        schedule(partnership, policy.INVITE, by=by, trigger="Invitation accepted")


def on_partnership_created(sender, partnership, by, **kwargs) -> None:
    from .tasks import schedule

    if partnership.data_sync_enabled:
        schedule(partnership, policy.LINK, by=by, trigger="Partnership started")


def on_flags_changed(sender, partnership, old_mode, new_mode, by, **kwargs) -> None:
    from partnerships.modes import MODE_LABELS

    from .tasks import schedule

    event = policy.event_for_mode_change(old_mode, new_mode)
    if event is not None:
        schedule(
            partnership,
            event,
            by=by,
            mode_before=old_mode,
            trigger=f"Flags changed: {MODE_LABELS[old_mode]} → {MODE_LABELS[new_mode]}",
        )


def on_partnership_ended(sender, partnership, old_mode, by, **kwargs) -> None:
    from .tasks import schedule

    if old_mode != policy.OFF:
        schedule(
            partnership, policy.UNLINK, by=by, mode_before=old_mode, trigger="Partnership ended"
        )


def on_setting_saved(sender, instance, raw: bool = False, **kwargs) -> None:
    """A synced setting was created, changed, archived or deleted (by anyone)."""
    if raw:
        return
    from .tasks import schedule_upstream_change

    category = _category_of(sender)
    schedule_upstream_change(instance.organization_id, category.key, category.label)


def _category_of(model) -> registry.Category:
    for category in registry.all():
        if category.model is model:
            return category
    raise LookupError(model)
