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
    if getattr(partnership, "link_run", None) is not None:
        return  # started in its own transaction (``on_partnership_starting``)
    start_following(partnership, invitation=invitation, by=by)


def on_invitation_accepted(sender, partnership, invitation, by, **kwargs) -> None:
    from .tasks import schedule

    if partnership.data_sync_enabled:
        schedule(partnership, policy.INVITE, by=by, trigger="Invitation accepted")


def on_partnership_starting(
    sender, partnership, by, partnership_request=None, admins=None, **kwargs
) -> None:
    """A partnership is being created (inside its transaction, its organizations locked).
    When its commit would apply the link run at once in this process anyway
    (``tasks.applies_now``), the run is recorded and applied now, in that transaction, and
    the receivers of ``partnership_created`` leave it be (docs/design.md §10); otherwise
    they record and enqueue it at the commit, as always."""
    from . import overrides
    from .tasks import applies_now, apply_link_now

    if not partnership.data_sync_enabled or not applies_now():
        return
    start_with_named_profile(sender, partnership, by, partnership_request=partnership_request)
    if partnership_request is None:
        # Created directly: no offer could name a profile, so it has no overrides yet.
        overrides.remember(partnership, None)
    partnership.link_run = apply_link_now(partnership, by=by, trigger=LINK_TRIGGER, admins=admins)


#: What a new partnership's link run says started it.
LINK_TRIGGER = "Partnership started"


def on_partnership_created(sender, partnership, by, **kwargs) -> None:
    from .tasks import schedule

    if partnership.data_sync_enabled and getattr(partnership, "link_run", None) is None:
        schedule(partnership, policy.LINK, by=by, trigger=LINK_TRIGGER)


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
