"""Addresses reversed once per process: pages that link many rows to the same view (a tab bar
on every settings page, a notification per partner of a fan-out) ask Django's ``reverse``
for the same pattern with only a slug or an id changing, and reversing cost more than the rest
of the work (docs/design.md §10).
"""

from __future__ import annotations

from functools import lru_cache

from django.urls import get_script_prefix, get_urlconf, reverse


def address(url_name: str, *args: str | int) -> str:
    """``reverse(url_name, args=args)`` for slugs and integer ids: the pattern is reversed
    once per process (and script prefix and URL configuration) with markers in their places,
    and each call puts its own values where the markers were. Slugs and integers need no
    quoting, so the result is the one ``reverse`` gives."""
    kinds = tuple(int if isinstance(arg, int) else str for arg in args)
    pieces = _around(url_name, kinds, get_script_prefix(), get_urlconf())
    parts = [pieces[0]]
    for arg, piece in zip(args, pieces[1:], strict=True):
        parts += [str(arg), piece]
    return "".join(parts)


def _marker(n: int, kind: type) -> str | int:
    return 987654321987654000 + n if kind is int else f"cds-address-marker-{n}"


@lru_cache(maxsize=256)
def _around(url_name: str, kinds: tuple[type, ...], _script_prefix: str, _urlconf) -> list[str]:
    """The reversed address cut where each marker stands (in order)."""
    markers = [_marker(n, kind) for n, kind in enumerate(kinds)]
    rest = reverse(url_name, args=markers)
    pieces = []
    for marker in markers:
        before, _, rest = rest.partition(str(marker))
        pieces.append(before)
    return [*pieces, rest]
