"""Domain events become notifications for the admins they concern (docs/design.md §13.4).

Every receiver collects *entries* (an organization, an event, a sentence, a link) and hands
them to :func:`notify` at once: one query finds the admins of every organization concerned,
one insert stores all their notifications, and one task sends the emails once the data is
committed. A fan-out's batch of runs therefore costs the same few queries whatever the number
of partners, and each person gets at most one email for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial, wraps

from django.db import transaction
from django.urls import reverse

from organizations.access import ADMINS, admins_by_organization
from organizations.addresses import address
from partnerships.modes import MODE_LABELS
from settings_sync.overrides import describe_changes

from .models import Notification

logger = logging.getLogger(__name__)

Event = Notification.Event

#: Events told once until read: a second one while the first is unread adds nothing.
UNTIL_READ = {Event.UPDATE_AVAILABLE}


@dataclass(frozen=True)
class Entry:
    organization_id: int
    event: str
    message: str
    url: str


def notify(entries: list[Entry], *, exclude_user_ids=(), admins=None) -> list[Notification]:
    """A notification per entry for each admin of its organization (not the people who
    caused it), stored in one insert; their emails go out from a task after the commit.

    ``admins``: the admins of some of the organizations (organization id → user ids) as the
    event read them, in the transaction it commits with (a partnership's creation reads both
    organizations' with their locks); only the others are read here (docs/design.md §10)."""
    if not entries:
        return []
    organization_ids = {entry.organization_id for entry in entries}
    known = {pk: users for pk, users in (admins or {}).items() if pk in organization_ids}
    unknown = sorted(organization_ids - known.keys())
    admins = known | (admins_by_organization(ADMINS.rows(unknown), unknown) if unknown else {})
    unread = set()
    if any(entry.event in UNTIL_READ for entry in entries):
        unread = set(
            Notification.objects.filter(
                organization_id__in=organization_ids,
                event__in=UNTIL_READ,
                read_at__isnull=True,
            ).values_list("user_id", "organization_id", "event")
        )
    excluded = {pk for pk in exclude_user_ids if pk is not None}
    notifications = []
    for entry in entries:
        for user_id in admins[entry.organization_id]:
            if user_id in excluded or (user_id, entry.organization_id, entry.event) in unread:
                continue
            if entry.event in UNTIL_READ:
                unread.add((user_id, entry.organization_id, entry.event))
            notifications.append(
                Notification(
                    user_id=user_id,
                    organization_id=entry.organization_id,
                    event=entry.event,
                    message=entry.message[:500],
                    url=entry.url,
                )
            )
    created = Notification.objects.bulk_create(notifications)
    if created:
        from .tasks import send_emails

        transaction.on_commit(partial(send_emails.enqueue, [n.pk for n in created]))
    return created


def quietly(receiver):
    """A receiver whose failure is logged, never raised: telling people must not turn a
    committed change into an error page or a failed task (docs/design.md §13.5, E2)."""

    @wraps(receiver)
    def guarded(*args, **kwargs) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            logger.exception("Notifications of %s failed", receiver.__name__)

    return guarded


def _detail_url(organization, partnership) -> str:
    return address("partnerships:detail", organization.slug, int(partnership.pk))


def _list_url(organization) -> str:
    return address("partnerships:list", organization.slug)


# Partnerships ------------------------------------------------------------------------------


@quietly
def on_invitation_accepted(sender, partnership, invitation, by, admins=None, **kwargs) -> None:
    upstream, downstream = partnership.upstream, partnership.downstream
    notify(
        [
            Entry(
                upstream.pk,
                Event.PARTNER_JOINED,
                f"{downstream} accepted your invitation and is now your partner "
                f"({MODE_LABELS[partnership.mode]} mode).",
                _detail_url(upstream, partnership),
            )
        ],
        exclude_user_ids=[getattr(by, "pk", None)],
        admins=admins,
    )


@quietly
def on_partnership_created(sender, partnership, by, admins=None, **kwargs) -> None:
    upstream, downstream = partnership.upstream, partnership.downstream
    notify(
        [
            Entry(
                upstream.pk,
                Event.PARTNER_JOINED,
                f"{downstream} is now your partner ({MODE_LABELS[partnership.mode]} mode).",
                _detail_url(upstream, partnership),
            )
        ],
        exclude_user_ids=[getattr(by, "pk", None)],
        admins=admins,
    )


@quietly
def on_request_declined(sender, partnership_request, by, **kwargs) -> None:
    upstream = partnership_request.upstream
    notify(
        [
            Entry(
                upstream.pk,
                Event.PARTNER_DECLINED,
                f"{partnership_request.downstream} declined your partnership request.",
                reverse(
                    "partnerships:request-detail", args=[upstream.slug, partnership_request.pk]
                ),
            )
        ],
        exclude_user_ids=[getattr(by, "pk", None)],
    )


@quietly
def on_flags_changed(
    sender, partnership, old_mode, new_mode, by, category_changes=None, **kwargs
) -> None:
    upstream, downstream = partnership.upstream, partnership.downstream
    if old_mode == new_mode:
        message = (
            f"{upstream} saved the flags of your partnership; it stays in "
            f"{MODE_LABELS[new_mode]} mode."
        )
    else:
        message = (
            f"{upstream} changed your partnership from {MODE_LABELS[old_mode]} to "
            f"{MODE_LABELS[new_mode]} mode."
        )
    if category_changes:
        message += (
            f" It also changed how some settings sync ({describe_changes(category_changes)})."
        )
    notify(
        [Entry(downstream.pk, Event.FLAGS_CHANGED, message, _detail_url(downstream, partnership))],
        exclude_user_ids=[getattr(by, "pk", None)],
    )


@quietly
def on_overrides_changed(sender, partnership, changes, by, **kwargs) -> None:
    upstream, downstream = partnership.upstream, partnership.downstream
    described = describe_changes(changes)
    message = f"{upstream} changed how some settings sync with your partnership ({described})."
    notify(
        [Entry(downstream.pk, Event.FLAGS_CHANGED, message, _detail_url(downstream, partnership))],
        exclude_user_ids=[getattr(by, "pk", None)],
    )


@quietly
def on_partnership_ended(sender, partnership, old_mode, by, **kwargs) -> None:
    upstream, downstream = partnership.upstream, partnership.downstream
    message = f"The partnership between {upstream} and {downstream} has ended."
    notify(
        [
            Entry(upstream.pk, Event.PARTNERSHIP_ENDED, message, _list_url(upstream)),
            Entry(downstream.pk, Event.PARTNERSHIP_ENDED, message, _list_url(downstream)),
        ],
        exclude_user_ids=[getattr(by, "pk", None)],
    )


# Sync runs ---------------------------------------------------------------------------------


@quietly
def on_runs_finished(sender, runs, admins=None, **kwargs) -> None:
    from .sync_events import entries_for_runs

    notify(entries_for_runs(runs), admins=admins)
