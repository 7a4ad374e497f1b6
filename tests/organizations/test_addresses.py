"""Addresses reversed once per process (docs/design.md §10) are the ones ``reverse`` gives."""

import pytest
from django.urls import NoReverseMatch, reverse, set_script_prefix

from organizations.addresses import address


@pytest.mark.parametrize(
    ("url_name", "args"),
    [
        ("partnerships:list", ["sunrise-solar"]),
        ("partnerships:detail", ["sunrise-solar", 7]),
        ("settings_sync:run", ["a-1", 123456]),
        ("settings_sync:run", ["other", 1]),
    ],
)
@pytest.mark.parametrize("prefix", ["/", "/portal/"])
def test_an_address_is_the_reversed_one(url_name, args, prefix):
    set_script_prefix(prefix)
    try:
        assert address(url_name, *args) == reverse(url_name, args=args)
    finally:
        set_script_prefix("/")


def test_arguments_the_pattern_refuses_are_refused_as_by_reverse():
    with pytest.raises(NoReverseMatch):
        address("partnerships:detail", "sunrise-solar", "not-a-number")
