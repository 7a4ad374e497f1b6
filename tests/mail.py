"""A mail server for tests that refuses messages, as a real one does when it is down."""

from __future__ import annotations

import smtplib

from django.core.mail.backends import locmem


class FlakyServer(locmem.EmailBackend):
    """Refuses the next ``FlakyServer.refusals`` messages (across connections, as one server
    would), then delivers to ``django.core.mail.outbox`` like the usual test backend."""

    refusals = 0

    def send_messages(self, email_messages):
        if FlakyServer.refusals > 0:
            FlakyServer.refusals -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(email_messages)
