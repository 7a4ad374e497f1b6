"""Pages of the Partnerships tab, a partnership's details and flags, and invitations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q, Value
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from organizations.access import organization_view
from organizations.models import Organization
from organizations.prepared import Prepared
from organizations.search import can_match

from . import hooks, modes, services
from .forms import (
    InvitationForm,
    InvitationSignupForm,
    PartnershipFlagsForm,
    PartnershipRequestForm,
    refreshed_flags,
)
from .models import Invitation, Partnership, PartnershipRequest
from .network import NetworkRows
from .permissions import can_edit_flags, can_end, can_manage_partnerships

PAGE_SIZE = 25


def _require_manager(request: HttpRequest) -> None:
    if not can_manage_partnerships(request.membership):
        raise PermissionDenied("Only an admin of this organization can manage partnerships.")


def _is_refresh(request: HttpRequest) -> bool:
    """A redraw asked for because Exclusive or Data Sync changed: validate nothing, save nothing."""
    return request.method == "POST" and "_refresh" in request.POST


def _refresh_initial(request: HttpRequest) -> dict:
    return {**request.POST.dict(), **refreshed_flags(request.POST)}


def _partnerships(organization: Organization):
    return Partnership.objects.involving(organization)


# The Partnerships tab ------------------------------------------------------------------


class _CountedPaginator(Paginator):
    """A paginator given its count, read beforehand with other figures in one query."""

    def __init__(self, object_list, per_page: int, count: int):
        super().__init__(object_list, per_page)
        self.count = count


@organization_view
@require_GET
def partnership_list(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "active")
    if status not in ("active", "ended", "all"):
        status = "active"
    ids = [organization.pk]
    # The partners and the channel managers listed, and whether Resync all partners is
    # offered (at least one partner has Data Sync on): one query (docs/design.md §10).
    [(partners, channel_managers, syncing)] = _read(_FIGURES, "rows", ids, status, query)

    def listing(partner_field: str, page_param: str, count: int):
        """The page asked for; its partnerships are read only when there are some."""
        page = _CountedPaginator([], PAGE_SIZE, count).get_page(request.GET.get(page_param))
        if count:
            offset = (page.number - 1) * PAGE_SIZE
            page.object_list = _read(
                _LISTED[partner_field],
                "objects",
                ids,
                status,
                query,
                offset=offset,
                limit=PAGE_SIZE,
            )
        return page

    is_admin = can_manage_partnerships(request.membership)
    downstream_page = listing("downstream", "page", partners)
    sync_cell = hooks.decorate_list(request, downstream_page.object_list)
    received, sent = _pending_requests(organization)
    context = {
        "sync_cell": sync_cell,
        "has_syncing_partners": is_admin and syncing > 0,
        "tab": "partnerships",
        "query": query,
        "status": status,
        "is_admin": is_admin,
        "downstream_page": downstream_page,
        "upstream_page": listing("upstream", "upstream_page", channel_managers),
        "requests_received": received,
        "requests_sent": sent,
        "invitations_sent": _INVITATIONS_SENT.objects([organization.pk]),
    }
    return render(request, "partnerships/list.html", context)


def _shown(partner_field: str, status: str, query: str) -> Q:
    """The condition on the partnerships listed: their status and the search."""
    condition = Q() if status == "all" else Q(status=status)
    if query:
        if not can_match(query):
            return Q(pk__in=[])
        condition &= Q(**{f"{partner_field}__name__icontains": query})
    return condition


def _figures(ids: list[int], *, status: str, query: str = ""):
    """One row: the partners listed, the channel managers listed, and the partners with
    Data Sync on, of the organization in ``ids``."""
    return (
        Partnership.objects.filter(Q(upstream_id__in=ids) | Q(downstream_id__in=ids))
        .order_by()
        .annotate(whole=Value(1))  # constant: no GROUP BY, one row
        .values("whole")
        .annotate(
            partners=Count(
                "pk", filter=Q(upstream_id__in=ids) & _shown("downstream", status, query)
            ),
            channel_managers=Count(
                "pk", filter=Q(downstream_id__in=ids) & _shown("upstream", status, query)
            ),
            syncing=Count(
                "pk",
                filter=Q(
                    upstream_id__in=ids, status=Partnership.Status.ACTIVE, data_sync_enabled=True
                ),
            ),
        )
        .values_list("partners", "channel_managers", "syncing")
    )


def _listed(partner_field: str):
    """The builder of a page of partnerships listed with their partners (``downstream``) or
    their channel managers (``upstream``), by name."""
    own = "upstream" if partner_field == "downstream" else "downstream"

    def build(ids: list[int], *, status: str, query: str = "", offset: int, limit: int):
        return (
            Partnership.objects.filter(**{f"{own}_id__in": ids})
            .filter(_shown(partner_field, status, query))
            .select_related(partner_field)
            .order_by(f"{partner_field}__name", "-created_at", "pk")[offset : offset + limit]
        )

    return build


def _read(prepared: Prepared, how: str, ids: list[int], status: str, query: str, **options):
    """``prepared``'s rows or objects; with a search (free text, not a shape) the same query
    is built and compiled by the ORM."""
    if query:
        return list(prepared.build(ids, status=status, query=query, **options))
    return getattr(prepared, how)(ids, status=status, **options)


def _pending_requests(organization: Organization) -> tuple[list, list]:
    """The pending partnership requests the organization received and those it sent, newest
    first, read with one query."""
    pending = _PENDING_REQUESTS.objects([organization.pk], [organization.pk])
    received = [req for req in pending if req.downstream_id == organization.pk]
    sent = [req for req in pending if req.upstream_id == organization.pk]
    return received, sent


# The tab's reads that change only in the organization's id, compiled once per process
# (docs/design.md §10).
_PENDING_REQUESTS = Prepared(
    lambda downstream_ids, upstream_ids: PartnershipRequest.objects.filter(
        Q(downstream_id__in=downstream_ids) | Q(upstream_id__in=upstream_ids),
        status=PartnershipRequest.Status.PENDING,
    ).select_related("upstream", "downstream", "requested_by")
)
_FIGURES = Prepared(_figures)
_LISTED = {side: Prepared(_listed(side)) for side in ("downstream", "upstream")}
_INVITATIONS_SENT = Prepared(
    lambda organization_ids: Invitation.objects.filter(
        upstream_id__in=organization_ids, status=Invitation.Status.PENDING
    )
)


@organization_view
@require_GET
def network(request: HttpRequest) -> HttpResponse:
    """The Partnerships tab's *Whole network*: every organization below this one, with its
    depth and the partnership it hangs from (docs/design.md §14.5)."""
    query = request.GET.get("q", "").strip()
    rows = NetworkRows(request.organization, query=query) if can_match(query) or not query else []
    network_page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    network_page.object_list = list(network_page.object_list)
    context = {
        "tab": "partnerships",
        "query": query,
        "network_page": network_page,
        "sync_cell": hooks.decorate_list(request, network_page.object_list),
    }
    return render(request, "partnerships/network.html", context)


# One partnership -----------------------------------------------------------------------


def _detail_context(request: HttpRequest, partnership: Partnership, **extra) -> dict:
    membership = request.membership
    return {
        "tab": "partnerships",
        "partnership": partnership,
        "partner": partnership.partner_of(request.organization),
        "we_are_upstream": partnership.upstream_id == request.organization.pk,
        "can_edit_flags": can_edit_flags(membership, partnership),
        "can_end": can_end(membership, partnership),
        "details_parts": hooks.details_parts(request, partnership),
        **extra,
    }


def _edited(partnership: Partnership, form) -> Partnership:
    """An unsaved copy of the partnership carrying the flags shown in the form."""
    edited = Partnership.objects.select_related("upstream", "downstream").get(pk=partnership.pk)
    for name, value in form.shown_flags().items():
        setattr(edited, name, value)
    return edited


@organization_view
@require_GET
def partnership_detail(request: HttpRequest, pk: int) -> HttpResponse:
    partnership = get_object_or_404(
        _partnerships(request.organization).select_related(
            "upstream", "downstream", "created_by", "updated_by", "ended_by"
        ),
        pk=pk,
    )
    template = "partnerships/detail.html"
    if request.htmx:
        template += "#details"
    return render(
        request,
        template,
        _detail_context(request, partnership, sections=hooks.detail_sections(request, partnership)),
    )


@organization_view
@require_http_methods(["GET", "POST"])
def partnership_edit(request: HttpRequest, pk: int) -> HttpResponse:
    partnership = get_object_or_404(
        _partnerships(request.organization).select_related("upstream", "downstream"), pk=pk
    )
    if not can_edit_flags(request.membership, partnership):
        raise PermissionDenied(
            "Only an admin of the channel manager can change an active partnership's flags."
        )
    status = 200
    conflict = None
    parts = []
    if _is_refresh(request):
        form = PartnershipFlagsForm(initial=_refresh_initial(request))
        parts = hooks.flag_form_parts(
            request, partnership, request.POST, form.shown_flags(), validate=False
        )
    elif request.method == "POST":
        form = PartnershipFlagsForm(request.POST)
        parts = hooks.flag_form_parts(
            request, partnership, request.POST, form.shown_flags(), validate=True
        )
        if form.is_valid() and not any(part.errors for part in parts):
            try:
                with transaction.atomic():
                    mode_before = partnership.mode
                    partnership = services.update_flags(
                        partnership,
                        by=request.user,
                        expected_version=form.cleaned_data["version"],
                        **form.flags(),
                    )
                    for part in parts:
                        part.save(partnership, by=request.user, mode_before=mode_before)
            except ValidationError as error:
                if getattr(error, "code", None) == "stale":
                    # Start again from the flags as they are now (and their version), or
                    # every later save would be refused too; say what changed (rule D10).
                    opened = form.opened_flags()
                    partnership.refresh_from_db()
                    form = PartnershipFlagsForm(
                        initial=PartnershipFlagsForm.initial_for(partnership)
                    )
                    parts = []
                    conflict = {
                        "message": " ".join(error.messages),
                        "changes": _flag_changes(opened, partnership),
                    }
                else:
                    form.add_error(None, ValidationError(error.messages))
            else:
                if request.htmx:
                    return render(
                        request,
                        "partnerships/detail.html#details",
                        _detail_context(
                            request,
                            partnership,
                            saved=True,
                            # the save may have started a sync: refresh that section too
                            sections=hooks.detail_sections(request, partnership, oob=True),
                        ),
                    )
                messages.success(request, f"Partnership with {partnership.downstream} saved.")
                return redirect(partnership.url_for(request.organization))
        status = 200 if request.htmx else 400
    else:
        form = PartnershipFlagsForm(initial=PartnershipFlagsForm.initial_for(partnership))
    if not parts:
        parts = hooks.flag_form_parts(
            request, partnership, None, form.shown_flags(), validate=False
        )
    template = "partnerships/detail.html"
    if request.htmx:
        template += "#flags-form"
    edited = _edited(partnership, form)
    for part in parts:
        part.apply(edited)
    preview = hooks.flag_preview(request, edited, partnership.mode)
    return render(
        request,
        template,
        _detail_context(
            request,
            partnership,
            form=form,
            editing=True,
            preview=preview,
            conflict=conflict,
            form_parts=parts,
        ),
        status=status,
    )


def _flag_changes(opened: dict[str, bool], current: Partnership) -> list[str]:
    """What changed between the flags a form was opened with and the partnership now."""
    changes = [
        f"{modes.FLAG_LABELS[name]}: {'on' if opened[name] else 'off'} → "
        f"{'on' if current.flags[name] else 'off'}"
        for name in modes.FLAG_NAMES
        if opened[name] != current.flags[name]
    ]
    opened_mode = modes.mode_for(**opened)
    if opened_mode != current.mode:
        changes.append(f"Mode: {modes.MODE_LABELS[opened_mode]} → {current.mode_label}")
    return changes


@organization_view
@require_http_methods(["GET", "POST"])
def partnership_end(request: HttpRequest, pk: int) -> HttpResponse:
    partnership = get_object_or_404(
        _partnerships(request.organization).select_related("upstream", "downstream"), pk=pk
    )
    if not can_end(request.membership, partnership):
        raise PermissionDenied(
            "Only an admin of either organization can end an active partnership."
        )
    if request.method == "POST":
        try:
            services.end_partnership(partnership, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"The partnership between {partnership.upstream} and {partnership.downstream} "
                "has ended.",
            )
        return redirect(partnership.url_for(request.organization))
    return render(request, "partnerships/end.html", _detail_context(request, partnership))


# Invitations and requests sent by a channel manager --------------------------------------


@organization_view
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    status = 200
    invited_already = None
    parts, named_flags = _offer_parts(request)
    if _is_refresh(request):
        form = InvitationForm(initial={**_refresh_initial(request), **(named_flags or {})})
    elif request.method == "POST":
        form = InvitationForm(request.POST)
        if form.is_valid() and not any(part.errors for part in parts):
            try:
                with transaction.atomic():
                    invitation = services.invite_organization(
                        request.organization,
                        name=form.cleaned_data["organization_name"],
                        email=form.cleaned_data["email"],
                        invited_by=request.user,
                        **(named_flags or form.flags()),
                    )
                    for part in parts:
                        part.save(invitation)
            except ValidationError as error:
                form.add_error(None, error)
                invited_already = getattr(error, "invitation", None)
            else:
                _say_how_the_email_went(request, invitation)
                return redirect("partnerships:list", org=request.organization.slug)
        status = 200 if request.htmx else 400
    else:
        form = InvitationForm(initial={"data_sync_enabled": True})
    template = "partnerships/invite.html"
    if request.htmx:
        template += "#form"
    preview = hooks.offer_preview(
        request,
        upstream=request.organization,
        downstream=None,
        flags=named_flags or form.shown_flags(),
        name=form["organization_name"].value() or "",
        invited=True,
        overrides=_named_overrides(parts),
    )
    return render(
        request,
        template,
        {
            "tab": "partnerships",
            "form": form,
            "preview": preview,
            "invited_already": invited_already,
            "offer_parts": parts,
        },
        status=status,
    )


def _offer_parts(request: HttpRequest) -> tuple[list, dict | None]:
    """The parts other apps add to an invitation or request (a sync profile to name), and
    the flags a named profile sets instead of the form's."""
    posted = request.method == "POST"
    parts = hooks.offer_form_parts(
        request, request.POST if posted else None, validate=posted and not _is_refresh(request)
    )
    return parts, next((part.flags for part in parts if part.flags), None)


def _named_overrides(parts: list) -> dict | None:
    return next((part.overrides for part in parts if part.overrides is not None), None)


def _say_how_the_email_went(request: HttpRequest, invitation: Invitation) -> None:
    """The email is sent in the background: it may have gone, failed, or still be on its way."""
    invitation.refresh_from_db(fields=["email_status"])
    name = invitation.organization_name
    if invitation.email_status == Invitation.EmailStatus.FAILED:
        messages.warning(
            request,
            f"The invitation to {name} is saved, but its email to {invitation.email} could not "
            "be sent. Press Resend beside it below to try again.",
        )
        return
    sent = "was sent" if invitation.email_status == Invitation.EmailStatus.SENT else "is on its way"
    messages.success(
        request,
        f"Your invitation to {invitation.email} {sent}. {name} appears among your partners "
        "once they accept.",
    )


@organization_view
@require_http_methods(["GET", "POST"])
def request_partnership(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    status = 200
    upstream = request.organization
    parts, named_flags = _offer_parts(request)
    if _is_refresh(request):
        form = PartnershipRequestForm(
            initial={**_refresh_initial(request), **(named_flags or {})}, upstream=upstream
        )
    elif request.method == "POST":
        form = PartnershipRequestForm(request.POST, upstream=upstream)
        if form.is_valid() and not any(part.errors for part in parts):
            try:
                with transaction.atomic():
                    sent = services.request_partnership(
                        upstream,
                        form.cleaned_data["organization"],
                        by=request.user,
                        message=form.cleaned_data["message"],
                        **(named_flags or form.flags()),
                    )
                    for part in parts:
                        part.save(sent)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    f"Request sent to {sent.downstream.name_with_slug}. Nothing changes there "
                    "until one of its admins accepts.",
                )
                return redirect("partnerships:list", org=upstream.slug)
        status = 200 if request.htmx else 400
    else:
        form = PartnershipRequestForm(initial={"data_sync_enabled": True}, upstream=upstream)
    template = "partnerships/request.html"
    if request.htmx:
        template += "#form"
    # The organization named in the form has not agreed to anything: the preview is made
    # without it (what this organization sends), never from what it holds.
    preview = hooks.offer_preview(
        request,
        upstream=upstream,
        downstream=None,
        flags=named_flags or form.shown_flags(),
        name="",
        invited=False,
        overrides=_named_overrides(parts),
    )
    return render(
        request,
        template,
        {"tab": "partnerships", "form": form, "preview": preview, "offer_parts": parts},
        status=status,
    )


@organization_view
@require_GET
def organization_search(request: HttpRequest) -> HttpResponse:
    """Suggestions for the request form: up to 10 other organizations matching the name."""
    _require_manager(request)
    query = request.GET.get("organization", "").strip()
    organizations = []
    if len(query) >= 2 and can_match(query):
        organizations = (
            Organization.objects.filter(Q(name__icontains=query) | Q(slug__icontains=query))
            .exclude(pk=request.organization.pk)
            .order_by("name")[:10]
        )
    return render(
        request, "partnerships/request.html#suggestions", {"organizations": organizations}
    )


@organization_view
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A request received: what accepting would change here, with Accept and Decline."""
    _require_manager(request)
    partnership_request = get_object_or_404(
        PartnershipRequest.objects.select_related("upstream", "requested_by", "decided_by"),
        pk=pk,
        downstream=request.organization,
    )
    preview = ""
    if partnership_request.status == PartnershipRequest.Status.PENDING:
        # The organization's own admins are looking: the preview reads its settings.
        preview = hooks.offer_preview(
            request,
            upstream=partnership_request.upstream,
            downstream=request.organization,
            flags=partnership_request.flags,
            name="",
            invited=False,
            named_by=partnership_request,
        )
    return render(
        request,
        "partnerships/request_detail.html",
        {"tab": "partnerships", "partnership_request": partnership_request, "preview": preview},
    )


@organization_view
@require_POST
def request_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """The partner's admin accepts or declines; the channel manager's admin withdraws."""
    _require_manager(request)
    organization = request.organization
    if decision == "withdraw":
        partnership_request = get_object_or_404(
            PartnershipRequest.objects.select_related("upstream", "downstream"),
            pk=pk,
            upstream=organization,
        )
    else:
        partnership_request = get_object_or_404(
            PartnershipRequest.objects.select_related("upstream", "downstream"),
            pk=pk,
            downstream=organization,
        )
    try:
        if decision == "accept":
            partnership = services.accept_request(partnership_request, by=request.user)
            messages.success(
                request, f"You are now a partner of {partnership_request.upstream.name_with_slug}."
            )
            return redirect(partnership.url_for(organization))
        if decision == "decline":
            services.decline_request(partnership_request, by=request.user)
            messages.success(
                request,
                f"You declined the request from {partnership_request.upstream.name_with_slug}.",
            )
        else:
            services.withdraw_request(partnership_request, by=request.user)
            messages.success(
                request,
                f"Your request to {partnership_request.downstream.name_with_slug} was withdrawn.",
            )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("partnerships:list", org=organization.slug)


@organization_view
@require_POST
def invitation_act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """The channel manager's admin withdraws an invitation, or sends its email again."""
    _require_manager(request)
    invitation = get_object_or_404(Invitation, pk=pk, upstream=request.organization)
    try:
        if action == "withdraw":
            services.revoke_invitation(invitation, by=request.user)
            messages.success(request, f"The invitation to {invitation.email} was withdrawn.")
        else:
            resent = services.resend_invitation(invitation, by=request.user)
            _say_how_the_email_went(request, resent)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("partnerships:list", org=request.organization.slug)


# Accepting an invitation (the invitee, possibly without an account yet) -------------------


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        found = services.find_invitation(token)
    except ValidationError as error:
        return render(
            request,
            "partnerships/invitation_invalid.html",
            {"message": " ".join(error.messages)},
            status=404 if error.code == "unknown" else 410,
        )
    signup_form = None
    if not request.user.is_authenticated:
        signup_form = InvitationSignupForm(request.POST or None, initial={"email": found.email})
    if request.method == "POST":
        try:
            with transaction.atomic():
                if signup_form is not None:
                    if not signup_form.is_valid():
                        raise ValidationError("")
                    user = signup_form.save()
                else:
                    user = request.user
                partnership = services.accept_invitation(found, user)
        except ValidationError as error:
            if signup_form is None or signup_form.is_valid():
                return render(
                    request,
                    "partnerships/invitation_invalid.html",
                    {"message": " ".join(error.messages)},
                    status=410,
                )
        else:
            if signup_form is not None:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome! {partnership.downstream} is set up and partners with "
                f"{partnership.upstream}.",
            )
            return redirect(partnership.downstream)
    return render(
        request,
        "partnerships/invitation.html",
        {
            "invitation": found,
            "signup_form": signup_form,
            "login_url": f"{reverse('login')}?next={request.path}",
        },
        status=400 if request.method == "POST" else 200,
    )
