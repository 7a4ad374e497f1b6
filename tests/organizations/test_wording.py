"""Words built from values read as a person writes them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from organizations.wording import duration, possessive


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Sunrise Solar", "Sunrise Solar's"),
        ("Helios Energy Partners", "Helios Energy Partners'"),
        ("Desert Sun Dealers", "Desert Sun Dealers'"),
        ("Blue Ridge Electric Co.", "Blue Ridge Electric Co.'s"),
    ],
)
def test_possessive(name, expected):
    assert possessive(name) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(microseconds=62167), "0.06 seconds"),
        (timedelta(microseconds=1914), "under 0.01 seconds"),
        (timedelta(seconds=1), "1 second"),
        (timedelta(seconds=1.5), "1.5 seconds"),
        (timedelta(seconds=42.4), "42 seconds"),
        (timedelta(minutes=2), "2 minutes"),
        (timedelta(hours=3), "3 hours"),
        (None, "—"),
    ],
)
def test_duration(value, expected):
    assert duration(value) == expected
