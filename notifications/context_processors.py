"""The number of unread notifications, for the header (counted only when a page shows it)."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest

from organizations.prepared import Prepared

from .models import Notification


def unread_notifications(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        rows = _UNREAD.rows([user.pk])
        return rows[0][0] if rows else 0

    return {"unread_notifications": count}


#: Compiled once: every page asks it, and the ORM took longer to build it than the database
#: to answer (docs/design.md §10). No row: none unread.
_UNREAD = Prepared(
    lambda user_ids: (
        Notification.objects.filter(user_id__in=user_ids, read_at__isnull=True)
        .order_by()
        .values("user_id")
        .annotate(unread=Count("pk"))
        .values_list("unread")
    )
)
