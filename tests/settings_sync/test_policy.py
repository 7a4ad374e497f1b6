"""The policy table (docs/design.md §4.2) cell by cell, written out independently of the code."""

from __future__ import annotations

import itertools

import pytest

from settings_sync import policy, registry

# kind, event → (non_exclusive, flexible, strict), copied from docs/design.md §4.2.
POLICY_TABLE = {
    ("collection", "invite"): ("match", "match", "match"),
    ("singleton", "invite"): ("match", "match", "match"),
    ("invite_only", "invite"): ("match", "match", "match"),
    ("collection", "link"): ("merge", "merge", "match"),
    ("collection", "resync"): ("merge", "merge", "match"),
    ("singleton", "link"): ("none", "none", "match"),
    ("singleton", "resync"): ("none", "none", "match"),
    ("invite_only", "link"): ("none", "none", "none"),
    ("invite_only", "resync"): ("none", "none", "none"),
    ("invite_only", "change"): ("none", "none", "none"),
    ("collection", "change"): ("merge", "merge", "match"),
    ("singleton", "change"): ("none", "none", "match"),
    ("collection", "unlink"): ("detach", "detach", "detach"),
    ("singleton", "unlink"): ("detach", "detach", "detach"),
    ("invite_only", "unlink"): ("detach", "detach", "detach"),
}
MODES = ("non_exclusive", "flexible", "strict")


@pytest.mark.parametrize(("kind", "event"), POLICY_TABLE)
def test_every_cell(kind, event):
    expected = POLICY_TABLE[(kind, event)]
    assert tuple(policy.outcome(mode, event, kind) for mode in MODES) == expected


@pytest.mark.parametrize(("event", "kind"), list(itertools.product(policy.EVENTS, policy.KINDS)))
def test_off_is_always_none(event, kind):
    assert policy.outcome("off", event, kind) == "none"


def test_every_combination_is_covered():
    assert set(POLICY_TABLE) == set(itertools.product(policy.KINDS, policy.EVENTS))


def test_unknown_values_are_refused():
    with pytest.raises(ValueError, match="Unknown"):
        policy.outcome("strict", "delete", "collection")


@pytest.mark.parametrize(
    ("old", "new", "event"),
    [
        ("off", "non_exclusive", "link"),
        ("off", "strict", "link"),
        ("flexible", "strict", "link"),
        ("strict", "flexible", "link"),
        ("non_exclusive", "off", "unlink"),
        ("strict", "off", "unlink"),
        ("strict", "strict", None),
        ("off", "off", None),
    ],
)
def test_event_raised_by_a_mode_change(old, new, event):
    assert policy.event_for_mode_change(old, new) == event


def test_registry_kinds_are_policy_kinds():
    assert {category.kind for category in registry.all()} == set(policy.KINDS)
    for category in registry.all():
        if category.kind != "invite_only":
            model_fields = {field.name for field in category.model._meta.fields}
            assert set(category.synced_fields) <= model_fields, category.key
            assert set(category.natural_key) <= model_fields, category.key
