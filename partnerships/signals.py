"""Domain events of partnerships, announced once the change is committed (one, inside it).

Listeners (the sync engine) connect to these in their own ``AppConfig.ready()``; this app
never calls them directly. All but ``partnership_starting`` are sent once the change
commits. Every signal is sent with ``sender=Partnership`` and keyword arguments:

* ``invitation_accepted``: ``partnership``, ``invitation``, ``by`` — a new organization was
  created from an invitation.
* ``partnership_created``: ``partnership``, ``by``, ``partnership_request`` — created directly
  (staff; no request) or by an accepted partnership request, for an organization that
  already existed.
* These two and ``partnership_starting`` also carry ``admins``: the admins of both
  organizations (organization id → user ids), read with the organizations' locks in the
  transaction that created the partnership, so that whoever tells them need not ask again.
* ``partnership_starting``: the same arguments, sent *inside* the transaction that creates
  the partnership (not on commit), as the service's last step, with both organizations
  locked: what a listener writes commits with the partnership or not at all (the sync
  applies the partnership's link run there when the commit would only have started it in
  the same process, docs/design.md §10).
* ``flags_changed``: ``partnership``, ``old_mode``, ``new_mode``, ``by`` — flags were saved
  (``old_mode == new_mode`` when only nothing mode-relevant changed); and
  ``category_changes`` (category key → (old value, new value), empty when none) when the
  same save changed how some categories sync (the sync completes the announcement:
  ``Partnership.announced_flags_change``), so that one save is one event.
* ``partnership_ended``: ``partnership``, ``old_mode``, ``by``.
* ``request_declined``: ``partnership_request``, ``by`` — the organization asked declined.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

invitation_accepted = Signal()
partnership_created = Signal()
partnership_starting = Signal()
flags_changed = Signal()
partnership_ended = Signal()
request_declined = Signal()


class Announcement:
    """A signal to send once the current transaction commits, with its keyword arguments."""

    def __init__(self, signal: Signal, kwargs: dict) -> None:
        self.signal, self.kwargs, self.sent = signal, kwargs, False

    def __call__(self) -> None:
        from .models import Partnership

        self.sent = True
        self.signal.send(sender=Partnership, **self.kwargs)

    @property
    def pending(self) -> bool:
        """Still to be sent by the transaction under way (not sent, not rolled back): what
        else it does may still add to ``kwargs``. Django keeps the transaction's on-commit
        callbacks in ``run_on_commit``, and drops those of a rolled-back one."""
        connection = transaction.get_connection()
        return not self.sent and any(
            callback is self for _ids, callback, _robust in connection.run_on_commit
        )


def announce(signal: Signal, **kwargs) -> Announcement:
    """Send ``signal`` after the current transaction commits (never for a rolled-back one)."""
    announcement = Announcement(signal, kwargs)
    transaction.on_commit(announcement, robust=False)
    return announcement
