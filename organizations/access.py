"""Who may see and change what, decided once per request.

Every organization page lives under ``/o/<org>/``. :func:`organization_view` resolves that
slug through the signed-in user's memberships, so another organization's pages (and every
object fetched through ``request.organization``) answer 404 to outsiders. The small
``can_*`` hooks say what a member may do; views check them before touching any data.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from .models import Membership
from .prepared import Prepared

CURRENT_ORGANIZATION_SESSION_KEY = "current_organization"


def organization_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve ``org`` from the URL into ``request.organization`` and ``request.membership``."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, org: str, *args, **kwargs) -> HttpResponse:
        # All of the user's memberships in one query: the header's organization switcher
        # lists them on every page, and this one is among them (docs/design.md §10).
        request.memberships = _MEMBERSHIPS.objects([request.user.pk])
        membership = next((m for m in request.memberships if m.organization.slug == org), None)
        if membership is None:
            raise Http404("No such organization among yours.")
        request.membership = membership
        request.organization = membership.organization
        if request.session.get(CURRENT_ORGANIZATION_SESSION_KEY) != org:
            request.session[CURRENT_ORGANIZATION_SESSION_KEY] = org
        return view(request, *args, **kwargs)

    return wrapper


#: Compiled once per process: every organization page reads it (docs/design.md §10).
_MEMBERSHIPS = Prepared(Membership.objects.for_users)


def can_edit_organization_settings(membership: Membership) -> bool:
    return membership.is_admin


def require_admin(request: HttpRequest) -> None:
    """Refuse a change by a member who may only read (403, nothing changes)."""
    if not can_edit_organization_settings(request.membership):
        raise PermissionDenied("Only an admin of this organization can change its settings.")


#: The admins of some organizations, as (user id, organization id) by membership: read to
#: tell them of an event, compiled once per number of organizations (docs/design.md §10).
ADMINS = Prepared(
    lambda organization_ids: (
        Membership.objects.filter(organization_id__in=organization_ids, role=Membership.Role.ADMIN)
        .order_by("pk")
        .values_list("user_id", "organization_id")
    )
)


def admins_by_organization(rows, organization_ids) -> dict[int, list[int]]:
    """``ADMINS``' rows as organization id → its admins' user ids (every organization asked
    for is there, those without an admin with none)."""
    admins: dict[int, list[int]] = {pk: [] for pk in organization_ids}
    for user_id, organization_id in rows:
        admins[organization_id].append(user_id)
    return admins
