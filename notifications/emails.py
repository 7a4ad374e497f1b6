"""The emails: one per person for a batch of notifications, or a daily digest; plain text
and HTML from templates, every link absolute, and a signed one-click unsubscribe link per
organization (docs/design.md §13.5)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_token(user_id: int, organization_id: int) -> str:
    return signing.dumps([user_id, organization_id], salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> tuple[int, int]:
    """(user id, organization id); ``signing.BadSignature`` for a forged or damaged token."""
    user_id, organization_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    return int(user_id), int(organization_id)


def unsubscribe_url(user_id: int, organization_id: int) -> str:
    return absolute(
        reverse("notifications:unsubscribe", args=[unsubscribe_token(user_id, organization_id)])
    )


def build(user, notifications: list, *, digest: bool = False) -> EmailMultiAlternatives:
    organizations = {}
    for notification in notifications:
        organizations.setdefault(notification.organization_id, notification.organization)
    items = [
        {
            "message": notification.message,
            "url": absolute(notification.url),
            "organization": notification.organization,
            "event": notification.get_event_display(),
            "created_at": notification.created_at,
        }
        for notification in notifications
    ]
    unsubscribe = [
        (organization, unsubscribe_url(user.pk, organization.pk))
        for organization in organizations.values()
    ]
    context = {
        "user": user,
        "items": items,
        "digest": digest,
        "unsubscribe": unsubscribe,
        "inbox_url": absolute(reverse("notifications:inbox")),
        "preferences_url": absolute(reverse("notifications:preferences")),
    }
    if digest:
        subject = f"Your daily digest: {len(items)} notification{'s' if len(items) != 1 else ''}"
    elif len(items) == 1:
        subject = f"{items[0]['event']} · {items[0]['organization']}"
    else:
        subject = f"{len(items)} notifications from Channel Data Sync"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email/notifications.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={
            # One click from the mail program too (RFC 8058), for the first organization.
            "List-Unsubscribe": f"<{unsubscribe[0][1]}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(
        render_to_string("notifications/email/notifications.html", context), "text/html"
    )
    return message
