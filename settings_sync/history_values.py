"""The values of a first copy's ``created`` history rows, which its copies hold (docs/design.md
§7.5).

On PostgreSQL one partnership's first copy writes its ``created`` rows without their values:
each copy holds them in its baseline and the id of its row (``created_change_id``) until the
baseline first changes, when the database writes them into the row. Whatever shows a row's
values reads them through ``fill``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models.functions import JSONObject

from . import registry
from .items import baseline_name
from .models import SyncChange


def _waiting(change: SyncChange) -> bool:
    """Whether the row's values are still its copy's (not yet written into the row)."""
    return (
        change.after is None
        and change.action == SyncChange.Action.CREATED
        and change.item_id is not None
    )


def kept(category: registry.Category) -> JSONObject:
    """A copy's values as its ``created`` row holds them, built by the database from the
    copy's baseline with the function that builds a row's values from the copy."""
    return JSONObject(**{name: baseline_name(name) for name in category.synced_fields})


def fill(changes: Iterable[SyncChange]) -> None:
    """Give each row among ``changes`` whose values its copy holds those values (``after``),
    as the row would hold them: one query per category among them."""
    by_category: dict[str, dict[int, SyncChange]] = defaultdict(dict)
    for change in changes:
        if _waiting(change):
            by_category[change.category][change.pk] = change
    for key, rows in by_category.items():
        category = registry.find(key)
        if category is None or not category.is_collection:
            continue
        copies = category.model.all_objects.filter(
            pk__in=[change.item_id for change in rows.values()], created_change_id__in=rows
        )
        for change_id, values in copies.annotate(kept=kept(category)).values_list(
            "created_change_id", "kept"
        ):
            rows[change_id].after = values
