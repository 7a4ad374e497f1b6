"""Domain events of partnerships, announced once the change is committed.

Listeners (the sync engine) connect to these in their own ``AppConfig.ready()``; this app
never calls them directly. Every signal is sent with ``sender=Partnership`` and keyword
arguments:

* ``invitation_accepted``: ``partnership``, ``invitation``, ``by`` — a new organization was
  created from an invitation.
* ``partnership_created``: ``partnership``, ``by``, ``partnership_request`` — created directly
  (staff; no request) or by an accepted partnership request, for an organization that
  already existed.
* ``flags_changed``: ``partnership``, ``old_mode``, ``new_mode``, ``by`` — flags were saved
  (``old_mode == new_mode`` when only nothing mode-relevant changed).
* ``partnership_ended``: ``partnership``, ``old_mode``, ``by``.
* ``request_declined``: ``partnership_request``, ``by`` — the organization asked declined.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

invitation_accepted = Signal()
partnership_created = Signal()
flags_changed = Signal()
partnership_ended = Signal()
request_declined = Signal()


def announce(signal: Signal, **kwargs) -> None:
    """Send ``signal`` after the current transaction commits (never for a rolled-back one)."""
    from .models import Partnership

    transaction.on_commit(lambda: signal.send(sender=Partnership, **kwargs), robust=False)
