"""The sync policy of docs/design.md §4.2, as data: what each event does to each kind of data
in each mode.

The engine, the help page and the tests read this table; nothing else decides outcomes.
Its only import is the names of the modes, whose home is the partnership's flags.
"""

from __future__ import annotations

from partnerships.modes import FLEXIBLE, MODES, NON_EXCLUSIVE, OFF, STRICT

# Events
INVITE = "invite"
LINK = "link"
RESYNC = "resync"
CHANGE = "change"
UNLINK = "unlink"
EVENTS = (INVITE, LINK, RESYNC, CHANGE, UNLINK)
EVENT_LABELS = {
    INVITE: "Invitation accepted",
    LINK: "Partnership linked or mode changed",
    RESYNC: "Resync",
    CHANGE: "Channel manager changed a setting",
    UNLINK: "Sync turned off or partnership ended",
}
EVENT_DESCRIPTIONS = {
    INVITE: "A new organization is created from an invitation with Data Sync on.",
    LINK: "An existing organization starts syncing: a partnership with Data Sync is created "
    "or accepted, Data Sync is turned on, or the mode changes.",
    RESYNC: "The channel manager (or staff) re-applies the current mode, exactly like a link.",
    CHANGE: "After the partnership exists, the channel manager adds, changes or deletes a setting.",
    UNLINK: "Data Sync is turned off or the partnership ends.",
}

# Kinds of data (each category of the registry is one of them)
COLLECTION = "collection"
SINGLETON = "singleton"
INVITE_ONLY = "invite_only"
KINDS = (COLLECTION, SINGLETON, INVITE_ONLY)

# Modes (the partnership's, see partnerships.modes)
SYNCING_MODES = (NON_EXCLUSIVE, FLEXIBLE, STRICT)

# Outcomes
MATCH = "match"
MERGE = "merge"
NONE = "none"
DETACH = "detach"
OUTCOMES = (MATCH, MERGE, NONE, DETACH)
OUTCOME_LABELS = {MATCH: "Match", MERGE: "Merge", NONE: "Untouched", DETACH: "Detach"}
OUTCOME_DESCRIPTIONS = {
    MATCH: "The partner's data becomes identical to the channel manager's: copies are "
    "updated, missing ones created, everything else archived.",
    MERGE: "The channel manager's items are added and kept up to date; the partner keeps its "
    "own items and its local edits.",
    NONE: "Nothing changes.",
    DETACH: "Copies become the partner's own items; nothing is deleted and locks are lifted.",
}

#: (kind, event) → outcome in non_exclusive, flexible, strict. Mode "off": always none.
TABLE: dict[tuple[str, str], tuple[str, str, str]] = {
    (COLLECTION, INVITE): (MATCH, MATCH, MATCH),
    (SINGLETON, INVITE): (MATCH, MATCH, MATCH),
    (INVITE_ONLY, INVITE): (MATCH, MATCH, MATCH),
    (COLLECTION, LINK): (MERGE, MERGE, MATCH),
    (SINGLETON, LINK): (NONE, NONE, MATCH),
    (INVITE_ONLY, LINK): (NONE, NONE, NONE),
    (COLLECTION, RESYNC): (MERGE, MERGE, MATCH),
    (SINGLETON, RESYNC): (NONE, NONE, MATCH),
    (INVITE_ONLY, RESYNC): (NONE, NONE, NONE),
    (COLLECTION, CHANGE): (MERGE, MERGE, MATCH),
    (SINGLETON, CHANGE): (NONE, NONE, MATCH),
    (INVITE_ONLY, CHANGE): (NONE, NONE, NONE),
    (COLLECTION, UNLINK): (DETACH, DETACH, DETACH),
    (SINGLETON, UNLINK): (DETACH, DETACH, DETACH),
    (INVITE_ONLY, UNLINK): (DETACH, DETACH, DETACH),
}


def outcome(mode: str, event: str, kind: str) -> str:
    """What ``event`` does to data of ``kind`` in a partnership of ``mode``.

    For ``unlink``, ``mode`` is the mode the partnership had before sync stopped.
    """
    if mode not in MODES or event not in EVENTS or kind not in KINDS:
        raise ValueError(f"Unknown mode, event or kind: {mode!r}, {event!r}, {kind!r}")
    if mode == OFF:
        return NONE
    return TABLE[(kind, event)][SYNCING_MODES.index(mode)]


def event_for_mode_change(old_mode: str, new_mode: str) -> str | None:
    """The event a change of flags raises (docs/design.md §4.3)."""
    if old_mode == new_mode:
        return None
    if new_mode == OFF:
        return UNLINK
    return LINK
