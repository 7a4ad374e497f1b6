"""Events of the sync that other apps may listen to (this app never calls them directly).

* ``runs_finished``: ``runs`` — sync runs a task has just finished (succeeded, skipped or
  failed), committed; and ``admins`` (organization id → user ids, or None) when the runs
  were applied in a transaction that read the admins of their organizations already (a
  partnership's link run applied as it is created).
* ``overrides_changed``: ``partnership``, ``changes`` (category key → (old value, new value)),
  ``by`` — a channel manager changed how categories sync for one partner; sent once the change
  is committed.

Both are sent with ``send_robust``: a listener that fails never fails the sync or the edit.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

runs_finished = Signal()
overrides_changed = Signal()


def announce_finished(runs: list, admins: dict[int, list[int]] | None = None) -> None:
    if not runs:
        return
    from .models import SyncRun

    _send(runs_finished, sender=SyncRun, runs=runs, admins=admins)


def announce_overrides_changed(partnership, changes: dict[str, tuple[str, str]], by) -> None:
    from .models import CategoryOverride

    transaction.on_commit(
        lambda: _send(
            overrides_changed,
            sender=CategoryOverride,
            partnership=partnership,
            changes=changes,
            by=by,
        )
    )


def _send(signal: Signal, **kwargs) -> None:
    for _receiver, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error("A listener of %r failed: %r", signal, result, exc_info=result)
