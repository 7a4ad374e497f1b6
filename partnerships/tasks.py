"""The invitation email, sent in the background once the invitation is saved.

A mail server that is down or refuses the message must neither turn *Send invitation* into
an error page nor lose the invitation. The email goes out from a task that tries a few
times, waiting longer after each failure where the task backend can wait (the database
queue in production; the immediate backend of development and tests tries again at once).
The invitation records the outcome, so the channel manager sees an email that could not be
sent and can send it again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.tasks import task
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Invitation

logger = logging.getLogger(__name__)

#: Attempts at one email before it counts as not sent.
MAX_ATTEMPTS = 3
#: The wait before the second attempt, doubled before each further one.
FIRST_RETRY_DELAY = timedelta(minutes=1)


def invitation_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("invitations:accept", args=[token])


def send_on_commit(invitation: Invitation) -> None:
    """Send the invitation's email once the current transaction commits."""
    transaction.on_commit(partial(send_invitation_email.enqueue, invitation.pk))


@task()
def send_invitation_email(invitation_id: int, attempt: int = 1) -> str:
    """One attempt at the invitation's email, with a new link. A failure queues the next
    attempt, or after the last one records the email as not sent."""
    invitation = (
        Invitation.objects.select_related("upstream", "invited_by")
        .filter(
            pk=invitation_id,
            status=Invitation.Status.PENDING,
            email_status=Invitation.EmailStatus.SENDING,
        )
        .first()
    )
    if invitation is None or invitation.is_expired():
        return "skipped"  # accepted, withdrawn or expired meanwhile, or already sent
    token = invitation.issue_token()
    context = {"invitation": invitation, "url": invitation_url(token)}
    subject = (
        f"{invitation.upstream.name} invites {invitation.organization_name} to Channel Data Sync"
    )
    body = render_to_string("partnerships/email/invitation.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])
    except Exception as error:  # whatever the mail server or the network raises
        logger.warning(
            "Invitation %s: email attempt %s of %s failed: %r",
            invitation.pk,
            attempt,
            MAX_ATTEMPTS,
            error,
        )
        if attempt >= MAX_ATTEMPTS:
            _record(invitation, Invitation.EmailStatus.FAILED, attempt, error)
            return "failed"
        _record(invitation, Invitation.EmailStatus.SENDING, attempt, error)
        retry = send_invitation_email
        if retry.get_backend().supports_defer:
            delay = FIRST_RETRY_DELAY * 2 ** (attempt - 1)
            retry = retry.using(run_after=timezone.now() + delay)
        retry.enqueue(invitation.pk, attempt + 1)
        return "retrying"
    _record(invitation, Invitation.EmailStatus.SENT, attempt)
    return "sent"


def _record(
    invitation: Invitation, email_status: str, attempt: int, error: Exception | None = None
) -> None:
    invitation.email_status = email_status
    invitation.email_attempts = attempt
    invitation.email_error = f"{type(error).__name__}: {error}"[:300] if error else ""
    invitation.save(update_fields=["email_status", "email_attempts", "email_error"])
