"""What browser tests wait for between interactions with htmx-driven forms."""

from __future__ import annotations

from playwright.sync_api import expect


def settled(page) -> None:
    """Wait until htmx has no request in flight and has settled what it swapped in.

    A form whose fields post on change replaces an earlier request still in flight
    (`hx-sync="…:replace"`); htmx reports the abort on the console. A test that means
    one request per interaction waits for each before the next.
    """
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)
