"""Marks a transaction leaves for itself among its on-commit callbacks (docs/design.md §7.3
and §10): "this change's runs are recorded", "these drift counts are marked". Django drops the
callbacks of a savepoint that is rolled back, and all of them when the transaction ends, so a
mark lives exactly as long as the writes it stands for. A mark does nothing when called.
"""

from __future__ import annotations

from django.db import transaction


class Mark:
    """A callback that only marks; subclasses carry what they stand for."""

    def __call__(self) -> None:
        pass


def leave(mark: Mark) -> None:
    """Leave ``mark`` in the current transaction (outside one it is gone at once)."""
    transaction.on_commit(mark)


def pending(*kinds: type[Mark]) -> list:
    """The current transaction's marks of these kinds, oldest first."""
    return [
        callback
        for _savepoints, callback, _robust in transaction.get_connection().run_on_commit
        if isinstance(callback, kinds)
    ]
