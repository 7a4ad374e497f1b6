"""Emails of notifications, sent from background tasks, never from a request or a sync.

``send_emails`` sends one email per person for the notifications of one event or one batch of
runs (those whose person chose an email for each event). A mail server that fails leaves
the notifications in the inbox and unsent; the task tries again, waiting longer each time
where the backend can wait (as the invitation email does). ``send_digests`` sends each
person who chose a daily digest one email a day with what is not emailed yet; a second call
on the same day sends nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from django.core.mail import mailers
from django.db import IntegrityError, transaction
from django.db.models import F
from django.tasks import task
from django.utils import timezone

from . import emails
from .models import DigestSent, EmailPreference, Notification

logger = logging.getLogger(__name__)

#: Attempts at one email before it is left to the inbox alone.
MAX_ATTEMPTS = 3
FIRST_RETRY_DELAY = timedelta(minutes=1)

Frequency = EmailPreference.Frequency


def _frequencies(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """(user, organization) → frequency, one query (the default when never chosen)."""
    users = {user_id for user_id, _ in pairs}
    organizations = {organization_id for _, organization_id in pairs}
    chosen = {
        (user_id, organization_id): frequency
        for user_id, organization_id, frequency in EmailPreference.objects.filter(
            user_id__in=users, organization_id__in=organizations
        ).values_list("user_id", "organization_id", "frequency")
    }
    return {pair: chosen.get(pair, EmailPreference.DEFAULT) for pair in pairs}


@task()
def send_emails(notification_ids: list[int], attempt: int = 1) -> dict[str, int]:
    pending = list(
        Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True).values_list(
            "pk", "user_id", "organization_id"
        )
    )
    frequencies = _frequencies({(user_id, org_id) for _, user_id, org_id in pending})
    wanted = [pk for pk, *pair in pending if frequencies[tuple(pair)] == Frequency.EACH]
    by_user: dict[int, list[Notification]] = defaultdict(list)
    for notification in (
        Notification.objects.filter(pk__in=wanted)
        .exclude(user__email="")
        .select_related("user", "organization")
        .order_by("pk")
    ):
        by_user[notification.user_id].append(notification)
    sent: list[int] = []
    if by_user:
        try:
            # One connection for the whole batch (a fan-out's 50 partners), one message each.
            with mailers.default as mailer:
                for notifications in by_user.values():
                    try:
                        mailer.send_messages([emails.build(notifications[0].user, notifications)])
                    except Exception as error:  # whatever the server or the network raises
                        logger.warning("Notification email (attempt %s): %r", attempt, error)
                    else:
                        sent += [n.pk for n in notifications]
        except Exception as error:  # the server could not even be reached
            logger.warning("Notification emails (attempt %s): %r", attempt, error)
    delivered = set(sent)
    failed = [n.pk for ns in by_user.values() for n in ns if n.pk not in delivered]
    now = timezone.now()
    Notification.objects.filter(pk__in=sent).update(
        emailed_at=now, email_attempts=F("email_attempts") + 1
    )
    Notification.objects.filter(pk__in=failed).update(email_attempts=F("email_attempts") + 1)
    if failed and attempt < MAX_ATTEMPTS:
        retry = send_emails
        if retry.get_backend().supports_defer:
            retry = retry.using(run_after=now + FIRST_RETRY_DELAY * 2 ** (attempt - 1))
        retry.enqueue(failed, attempt + 1)
    return {"sent": len(sent), "failed": len(failed)}


def send_digests(now=None) -> dict[str, int]:
    """Today's digest for each person who chose one and has notifications not emailed yet."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    pending = list(
        Notification.objects.filter(
            emailed_at__isnull=True,
            created_at__lte=now,
            user__email_preferences__organization=F("organization"),
            user__email_preferences__frequency=Frequency.DIGEST,
        )
        .exclude(user__email="")
        .exclude(user_id__in=DigestSent.objects.filter(day=day).values("user_id"))
        .select_related("user", "organization")
        .order_by("user_id", "created_at", "pk")
    )
    by_user: dict[int, list[Notification]] = defaultdict(list)
    for notification in pending:
        by_user[notification.user_id].append(notification)
    sent = failed = 0
    for notifications in by_user.values():
        user = notifications[0].user
        try:
            with transaction.atomic():
                # The row claims today's digest first: a second run (or a concurrent one) on
                # the same day finds it and sends nothing. A failed send rolls it back.
                DigestSent.objects.create(
                    user=user, day=day, sent_at=now, notifications=len(notifications)
                )
                Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
                    emailed_at=now
                )
                emails.build(user, notifications, digest=True).send()
        except IntegrityError:
            continue
        except Exception as error:
            logger.warning("Digest for user %s failed: %r", user.pk, error)
            failed += 1
        else:
            sent += 1
    return {"sent": sent, "failed": failed}
