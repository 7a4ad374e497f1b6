"""Events of the sync that other apps may listen to (this app never calls them directly).

* ``runs_finished``: ``runs`` — sync runs a task has just finished (succeeded, skipped or
  failed), committed. Sent with ``send_robust``: a listener that fails never fails the sync.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

runs_finished = Signal()


def announce_finished(runs: list) -> None:
    if not runs:
        return
    from .models import SyncRun

    for _receiver, result in runs_finished.send_robust(sender=SyncRun, runs=runs):
        if isinstance(result, Exception):
            logger.error("A listener of finished runs failed: %r", result, exc_info=result)
