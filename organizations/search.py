"""Search boxes: which typed text can match anything at all."""

from __future__ import annotations

#: The longest column a search box looks in (organization names); longer text is in none.
MAX_SEARCH_LENGTH = 200


def can_match(text: str) -> bool:
    """Whether searching for ``text`` can find anything.

    No stored name is longer than ``MAX_SEARCH_LENGTH`` or holds a NUL byte (the forms refuse
    both), so such a search finds nothing, and must not reach the database: SQLite refuses a
    very long LIKE pattern and PostgreSQL a NUL byte, with a server error.
    """
    return len(text) <= MAX_SEARCH_LENGTH and "\x00" not in text
