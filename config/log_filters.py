"""Logging filters of the project (used by ``LOGGING`` in the settings)."""

from __future__ import annotations

import logging


class ClientErrorsOnOneLine(logging.Filter):
    """A refused request (403 and other 4xx) is logged as one line, with its reason.

    Django logs a ``PermissionDenied`` with its traceback, so every refused click in the
    demo printed a page of stack frames that says nothing more than the reason does. Server
    errors (5xx) keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status_code = getattr(record, "status_code", None)
        if status_code is not None and status_code < 500 and record.exc_info:
            reason = record.exc_info[1]
            if reason is not None and str(reason):
                record.msg = f"{record.msg} (%s)"
                record.args = (*(record.args or ()), str(reason))
            record.exc_info = None
            record.exc_text = None
        return True
