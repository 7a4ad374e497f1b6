"""Partnership workflows: invite, request, accept, create, change flags, end.

Every function enforces the domain's invariants (docs/design.md §1.5) under row locks and raises
``ValidationError`` with a message a channel manager understands. *Who* may call them is
decided by the views and the admin. Domain events are announced on commit
(:mod:`partnerships.signals`).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from organizations.access import ADMINS, admins_by_organization
from organizations.models import Membership, Organization, organization_name_key
from organizations.prepared import Prepared, fetched_together, insert_rows

from . import modes, signals, tasks
from .models import Invitation, Partnership, PartnershipRequest, hash_token

INVITATION_LIFETIME = timedelta(days=14)


#: Key of the PostgreSQL advisory lock held while a partnership is added to the network.
PARTNERSHIP_NETWORK_LOCK = 7_146_003_201


def _lock_organizations(*organizations: Organization) -> None:
    """Serialise partnership changes touching these organizations (row locks, pk order)."""
    _LOCKED.rows(sorted({organization.pk for organization in organizations}))


#: The reads of the partnership rules change only in their ids: compiled once per process
#: (docs/design.md §10, "Linking one partner").
_LOCKED = Prepared(
    lambda ids: (
        Organization.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk")
    )
)
#: A partner's other active partnerships counted for every rule at once: with this channel
#: manager, exclusive ones, all of them (no row: none at all).
_OTHERS = Prepared(
    lambda downstream, upstream, excluded: (
        Partnership.objects.active()
        .filter(downstream_id__in=downstream)
        .exclude(pk__in=excluded)
        .values("downstream_id")
        .annotate(
            same=Count("pk", filter=Q(upstream_id__in=upstream)),
            exclusive=Count("pk", filter=Q(is_exclusive=True)),
            any=Count("pk"),
        )
        .values_list("same", "exclusive", "any")
    )
)
#: The organizations one level below some others through active partnerships.
_BELOW = Prepared(
    lambda ids: (
        Partnership.objects.active().filter(upstream_id__in=ids).values_list("downstream_id")
    )
)


def _network_lock() -> list[tuple[str, list]]:
    """The statement that serialises additions to the partnership network until the
    transaction ends (none on SQLite).

    A cycle can close through organizations that neither new partnership touches: with
    A → B and C → D, adding B → C and D → A at the same moment locks disjoint rows, and each
    cycle check reads the network without the other's uncommitted link. One lock for the
    whole network makes the second check see the first link. SQLite needs none: its
    transactions start by taking the database's write lock (``transaction_mode`` IMMEDIATE).
    """
    if connection.vendor == "postgresql":
        return [("SELECT pg_advisory_xact_lock(%s)", [PARTNERSHIP_NETWORK_LOCK])]
    return []


def _rule_reads(
    upstream: Organization, downstream: Organization, exclude_pk: int | None
) -> list[tuple[str, list | None]]:
    """What the rules read: the partner's other active partnerships counted for every rule
    at once (with this channel manager, exclusive ones, all of them), and the organizations
    one level below the partner (the first step of the cycle check)."""
    excluded = [] if exclude_pk is None else [exclude_pk]
    return [
        _OTHERS.statement([downstream.pk], [upstream.pk], excluded),
        _BELOW.statement([downstream.pk]),
    ]


def check_partnership_rules(
    upstream: Organization,
    downstream: Organization,
    *,
    is_exclusive: bool,
    exclude_pk: int | None = None,
    read: list[list[tuple]] | None = None,
) -> None:
    """The rules a new or changed active partnership must keep (docs/design.md §1.5).

    No self-partnership; one active partnership per pair; an exclusive partner has no other
    active channel manager; no cycle of any length (upstream must not be downstream of
    ``downstream``). Called under the organizations' locks by the services, and by the admin
    form for a friendly message. ``read``: the rows of ``_rule_reads``, read by a caller in
    the round trip of its locks.
    """
    if upstream.pk == downstream.pk:
        raise ValidationError("An organization cannot partner with itself.", code="self")
    counted, below = read or fetched_together(_rule_reads(upstream, downstream, exclude_pk))
    (same, exclusive, others) = (counted or [(0,) * 3])[0]
    if same:
        raise ValidationError(
            f"{upstream} and {downstream} already have an active partnership.", code="duplicate"
        )
    # Said without naming the other channel managers: the organization asking may be a
    # stranger to the partner, and another's partnerships are not its business.
    if exclusive:
        raise ValidationError(
            f"{downstream} has an exclusive partnership with another channel manager; it "
            "cannot have another channel manager while that partnership is active.",
            code="exclusive_taken",
        )
    if is_exclusive and others:
        raise ValidationError(
            f"{downstream} already works with another channel manager; a partnership can only "
            "be exclusive when it is the partner's only active channel manager.",
            code="exclusive_not_alone",
        )
    if _reaches(downstream, upstream, {pk for (pk,) in below}):
        raise ValidationError(
            f"{upstream} is already downstream of {downstream}; partnering this way round "
            "would make a cycle.",
            code="cycle",
        )


def _reaches(start: Organization, target: Organization, below: set[int]) -> bool:
    """Whether ``target`` is downstream of ``start`` through active partnerships, given the
    organizations just ``below`` it.

    One query per further level of the partner network; each organization is visited once.
    """
    seen = {start.pk}
    frontier = below - seen
    while frontier:
        if target.pk in frontier:
            return True
        seen |= frontier
        frontier = {pk for (pk,) in _BELOW.rows(sorted(frontier))} - seen
    return False


def _validated_flags(flags: dict[str, Any]) -> dict[str, bool]:
    values = modes.normalise_flags(flags)
    modes.validate_flags(**values)
    return values


def _create(
    upstream: Organization, downstream: Organization, *, by, flags: dict[str, bool]
) -> tuple[Partnership, dict[int, list[int]]]:
    """The partnership, created under the locks of both organizations and of the network,
    after the rules, and the admins of both organizations (organization id → user ids), to
    whom its creation is announced: the locks and these reads are one round trip on
    PostgreSQL (docs/design.md §10, "Linking one partner")."""
    pks = sorted({upstream.pk, downstream.pk})
    locked, *_network, counted, below, admins = fetched_together(
        [
            _LOCKED.statement(pks),  # the organizations first (pk order), as every service
            *_network_lock(),
            *_rule_reads(upstream, downstream, None),
            ADMINS.statement(pks),
        ]
    )
    check_partnership_rules(
        upstream, downstream, is_exclusive=flags["is_exclusive"], read=[counted, below]
    )
    partnership = Partnership(
        upstream=upstream, downstream=downstream, created_by=by, updated_by=by, **flags
    )
    # The flags and the rules behind the constraints were just checked, under the network's
    # lock and with their own messages; the database still holds every constraint.
    # Both organizations were just found and locked, so cannot go away before the commit:
    # checking again that they exist would be two more queries.
    partnership.full_clean(
        exclude=["upstream", "downstream"] if len(locked) == len(pks) else None,
        validate_constraints=False,
    )
    # The ORM's insert, built once (docs/design.md §10).
    return insert_rows([partnership])[0], admins_by_organization(admins, pks)


@transaction.atomic
def create_partnership(
    upstream: Organization, downstream: Organization, *, by, **flags: bool
) -> Partnership:
    """Create an active partnership directly (staff path; the downstream's consent assumed)."""
    values = _validated_flags(flags)
    partnership, admins = _create(upstream, downstream, by=by, flags=values)
    _started(partnership, by=by, partnership_request=None, admins=admins)
    return partnership


def _started(partnership: Partnership, *, by, partnership_request, admins) -> None:
    """The last step of creating a partnership: ``partnership_starting`` is sent now, in the
    transaction and under the organizations' locks (the sync may apply the link run there),
    and ``partnership_created`` is announced for once it has committed."""
    event = {"partnership": partnership, "by": by, "partnership_request": partnership_request}
    signals.partnership_starting.send(sender=Partnership, admins=admins, **event)
    signals.announce(signals.partnership_created, admins=admins, **event)


@transaction.atomic
def update_flags(
    partnership: Partnership, *, by, expected_version: int | None = None, **flags: bool
) -> Partnership:
    """Save new flags. ``expected_version`` refuses an edit of a partnership changed meanwhile."""
    values = _validated_flags(flags)
    _lock_organizations(partnership.downstream)
    current = Partnership.objects.select_related("upstream", "downstream", "updated_by").get(
        pk=partnership.pk
    )
    if expected_version is not None and current.version != expected_version:
        editor = current.updated_by
        who = (editor.get_full_name() or editor.username) if editor else "someone"
        raise ValidationError(
            f"This partnership was changed meanwhile (by {who}, "
            f"{timezone.localtime(current.updated_at):%b %-d, %H:%M}). Nothing was saved: "
            "review the current flags and try again.",
            code="stale",
        )
    if not current.is_active:
        raise ValidationError("This partnership has ended; its flags can no longer change.")
    if values == current.flags:
        return current
    if values["is_exclusive"] and not current.is_exclusive:
        check_partnership_rules(
            current.upstream, current.downstream, is_exclusive=True, exclude_pk=current.pk
        )
    old_mode = current.mode
    for name, value in values.items():
        setattr(current, name, value)
    current.version += 1
    current.updated_by = by
    current.updated_at = timezone.now()
    current.full_clean()
    current.save()
    # What else this save changes (how categories sync) joins the same announcement.
    current.announced_flags_change = signals.announce(
        signals.flags_changed,
        partnership=current,
        old_mode=old_mode,
        new_mode=current.mode,
        by=by,
        category_changes={},
    )
    return current


@transaction.atomic
def end_partnership(partnership: Partnership, *, by) -> Partnership:
    """End an active partnership (it is kept, with its history)."""
    _lock_organizations(partnership.downstream)
    current = Partnership.objects.select_related("upstream", "downstream").get(pk=partnership.pk)
    if not current.is_active:
        raise ValidationError("This partnership has already ended.", code="ended")
    old_mode = current.mode
    now = timezone.now()
    current.status = Partnership.Status.ENDED
    current.ended_at = now
    current.ended_by = by
    current.updated_at = now
    current.updated_by = by
    current.version += 1
    current.save()
    signals.announce(signals.partnership_ended, partnership=current, old_mode=old_mode, by=by)
    return current


# Invitations ---------------------------------------------------------------------------


class InvitedAlready(ValidationError):
    """The channel manager has invited this organization already (rule D11): the pending
    invitation, to send again or withdraw, or the accepted one and its organization."""

    def __init__(self, field: str, message: str, *, invitation: Invitation) -> None:
        super().__init__({field: [ValidationError(message, code="invited_already")]})
        self.invitation = invitation


def _same_email(email: str):
    return Invitation.objects.filter(email__iexact=email)


def _check_not_invited_already(upstream: Organization, *, name: str, email: str) -> None:
    """One organization, one invitation: refuse a second pending invitation of this channel
    manager to the same email or organization name, and an email that accepted one of its
    invitations already (docs/design.md §1.5, rule D11)."""
    pending = Invitation.objects.filter(
        upstream=upstream, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
    )
    same_email = list(pending.filter(pk__in=_same_email(email).values("pk")))
    same_name = [
        i
        for i in pending
        if organization_name_key(i.organization_name) == organization_name_key(name)
    ]
    if same_email or same_name:
        invitation = (same_email or same_name)[0]
        raise InvitedAlready(
            "email" if same_email else "organization_name",
            f"You invited {invitation.organization_name} ({invitation.email}) on "
            f"{timezone.localtime(invitation.created_at):%B %-d, %Y}, and that invitation is "
            "still waiting to be accepted. Send it again or withdraw it instead of inviting "
            "twice.",
            invitation=invitation,
        )
    accepted = (
        _same_email(email)
        .filter(upstream=upstream, status=Invitation.Status.ACCEPTED)
        .select_related("partnership__downstream")
        .first()
    )
    if accepted is not None:
        raise InvitedAlready(
            "email",
            f"{accepted.email} accepted your invitation on "
            f"{timezone.localtime(accepted.accepted_at):%B %-d, %Y}: their organization is "
            f"{_created_by(accepted)}. Request a partnership with it instead.",
            invitation=accepted,
        )


def _created_by(invitation: Invitation) -> str:
    """The organization an accepted invitation created, as it is shown to others."""
    if invitation.partnership is not None:
        return invitation.partnership.downstream.name_with_slug
    return invitation.organization_name


@transaction.atomic
def invite_organization(
    upstream: Organization, *, name: str, email: str, invited_by, **flags: bool
) -> Invitation:
    """Invite a new organization; its admin gets a single-use link by email (in the
    background, once this commits: see :mod:`partnerships.tasks`)."""
    values = _validated_flags(flags)
    name = (name or "").strip()
    email = (email or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["organization_name"] = ["Enter the name of the organization to invite."]
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid email address for the organization's admin."]
    if errors:
        raise ValidationError(errors)
    _lock_organizations(upstream)  # one channel manager's invitations, one at a time
    _check_not_invited_already(upstream, name=name, email=email)
    invitation = Invitation(
        upstream=upstream,
        organization_name=name,
        email=email,
        # Nobody holds this token: each email sent carries a token of its own.
        token_hash=hash_token(secrets.token_urlsafe(32)),
        expires_at=timezone.now() + INVITATION_LIFETIME,
        invited_by=invited_by,
        **values,
    )
    invitation.full_clean()
    invitation.save()
    tasks.send_on_commit(invitation)
    return invitation


def _check_usable(invitation: Invitation) -> None:
    if invitation.status == Invitation.Status.ACCEPTED:
        raise ValidationError(
            f"This invitation has already been used: {invitation.organization_name} was "
            "created with it.",
            code="used",
        )
    if invitation.status == Invitation.Status.REVOKED:
        raise ValidationError(
            f"{invitation.upstream} withdrew this invitation. Ask them for a new one.",
            code="revoked",
        )
    if invitation.is_expired():
        raise ValidationError(
            f"This invitation expired on {timezone.localtime(invitation.expires_at):%B %-d, %Y}. "
            f"Ask {invitation.upstream} to invite you again.",
            code="expired",
        )
    # Told to whoever holds the link, who reads that email address: the earlier invitation
    # went there too.
    earlier = (
        _same_email(invitation.email)
        .filter(status=Invitation.Status.ACCEPTED)
        .exclude(pk=invitation.pk)
        .select_related("partnership__downstream")
        .order_by("accepted_at")
        .first()
    )
    if earlier is not None:
        raise ValidationError(
            f"{invitation.email} accepted an invitation already: its organization "
            f"{_created_by(earlier)} joined Channel Data Sync on "
            f"{timezone.localtime(earlier.accepted_at):%B %-d, %Y}. Ask {invitation.upstream} "
            "to request a partnership with that organization instead of creating another.",
            code="email_used",
        )


def find_invitation(token: str) -> Invitation:
    """The invitation a link points at, or a ValidationError saying why it cannot be used."""
    invitation = (
        Invitation.objects.select_related("upstream").filter(token_hash=hash_token(token)).first()
    )
    if invitation is None:
        raise ValidationError(
            "This invitation link is not valid. Check that you copied the whole link from "
            "the email, or ask the channel manager to invite you again.",
            code="unknown",
        )
    _check_usable(invitation)
    return invitation


@transaction.atomic
def accept_invitation(invitation: Invitation, user) -> Partnership:
    """Create the invited organization with ``user`` as its admin, and the partnership."""
    # The invitations to one email are accepted one at a time (rule D11).
    list(_same_email(invitation.email).select_for_update().order_by("pk").values_list("pk"))
    locked = Invitation.objects.select_for_update().select_related("upstream").get(pk=invitation.pk)
    _check_usable(locked)
    name_taken = ValidationError(
        f"An organization called “{locked.organization_name}” joined Channel Data Sync after "
        f"this invitation was sent, and names are unique. Ask {locked.upstream} to invite "
        "you again under another name.",
        code="name_taken",
    )
    if Organization.name_taken(locked.organization_name):
        raise name_taken
    try:
        with transaction.atomic():
            organization = Organization.objects.create(name=locked.organization_name)
    except IntegrityError:
        if Organization.name_taken(locked.organization_name):  # taken meanwhile
            raise name_taken from None
        raise
    Membership.objects.create(user=user, organization=organization, role=Membership.Role.ADMIN)
    partnership, admins = _create(
        locked.upstream, organization, by=locked.invited_by, flags=locked.flags
    )
    locked.status = Invitation.Status.ACCEPTED
    locked.accepted_by = user
    locked.accepted_at = timezone.now()
    locked.partnership = partnership
    locked.save()
    signals.announce(
        signals.invitation_accepted,
        partnership=partnership,
        invitation=locked,
        by=user,
        admins=admins,
    )
    return partnership


@transaction.atomic
def revoke_invitation(invitation: Invitation, *, by) -> Invitation:
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.status != Invitation.Status.PENDING:
        raise ValidationError("Only a pending invitation can be withdrawn.")
    locked.status = Invitation.Status.REVOKED
    locked.save(update_fields=["status"])
    return locked


@transaction.atomic
def resend_invitation(invitation: Invitation, *, by) -> Invitation:
    """Send the invitation's email again, with a new link (any earlier link stops working)."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.state == "expired":
        raise ValidationError(
            f"This invitation expired on {timezone.localtime(locked.expires_at):%B %-d, %Y}; "
            f"invite {locked.organization_name} again instead.",
            code="expired",
        )
    if locked.status != Invitation.Status.PENDING:
        raise ValidationError("Only a pending invitation can be sent again.", code="decided")
    if locked.email_status == Invitation.EmailStatus.SENDING:
        raise ValidationError("This invitation's email is being sent already.", code="sending")
    locked.email_status = Invitation.EmailStatus.SENDING
    locked.email_attempts = 0
    locked.email_error = ""
    locked.save(update_fields=["email_status", "email_attempts", "email_error"])
    tasks.send_on_commit(locked)
    return locked


# Partnership requests ------------------------------------------------------------------


@transaction.atomic
def request_partnership(
    upstream: Organization,
    downstream: Organization,
    *,
    by,
    message: str = "",
    **flags: bool,
) -> PartnershipRequest:
    """Ask an existing organization to partner. Nothing changes there until it accepts."""
    values = _validated_flags(flags)
    check_partnership_rules(upstream, downstream, is_exclusive=values["is_exclusive"])
    if PartnershipRequest.objects.filter(
        upstream=upstream, downstream=downstream, status=PartnershipRequest.Status.PENDING
    ).exists():
        raise ValidationError(
            f"A partnership request to {downstream} is already waiting for an answer.",
            code="pending",
        )
    partnership_request = PartnershipRequest(
        upstream=upstream, downstream=downstream, requested_by=by, message=message, **values
    )
    partnership_request.full_clean()
    partnership_request.save()
    return partnership_request


def _decide(partnership_request: PartnershipRequest, status: str, *, by) -> PartnershipRequest:
    locked = (
        PartnershipRequest.objects.select_for_update()
        .select_related("upstream", "downstream")
        .get(pk=partnership_request.pk)
    )
    if locked.status != PartnershipRequest.Status.PENDING:
        raise ValidationError(
            f"This request was already {locked.get_status_display().lower()}.", code="decided"
        )
    locked.status = status
    locked.decided_by = by
    locked.decided_at = timezone.now()
    return locked


@transaction.atomic
def accept_request(partnership_request: PartnershipRequest, *, by) -> Partnership:
    """The downstream admin accepts: the partnership starts with the requested flags."""
    locked = _decide(partnership_request, PartnershipRequest.Status.ACCEPTED, by=by)
    partnership, admins = _create(locked.upstream, locked.downstream, by=by, flags=locked.flags)
    locked.partnership = partnership
    locked.save()
    _started(partnership, by=by, partnership_request=locked, admins=admins)
    return partnership


@transaction.atomic
def decline_request(partnership_request: PartnershipRequest, *, by) -> PartnershipRequest:
    locked = _decide(partnership_request, PartnershipRequest.Status.DECLINED, by=by)
    locked.save()
    signals.announce(signals.request_declined, partnership_request=locked, by=by)
    return locked


@transaction.atomic
def withdraw_request(partnership_request: PartnershipRequest, *, by) -> PartnershipRequest:
    locked = _decide(partnership_request, PartnershipRequest.Status.WITHDRAWN, by=by)
    locked.save()
    return locked


__all__ = [
    "InvitedAlready",
    "accept_invitation",
    "accept_request",
    "check_partnership_rules",
    "create_partnership",
    "decline_request",
    "end_partnership",
    "find_invitation",
    "invite_organization",
    "request_partnership",
    "resend_invitation",
    "revoke_invitation",
    "update_flags",
    "withdraw_request",
]
