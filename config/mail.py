"""An email backend for the demo's console: each message as a person reads it.

Django's console backend prints the raw MIME message, whose body is quoted-printable: long
lines broken with ``=`` and the link of an invitation cut in two. This one prints the
sender, the recipients, the subject and the text as written.
"""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend

CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
READABLE_CONSOLE_BACKEND = "config.mail.ReadableConsoleBackend"


class ReadableConsoleBackend(EmailBackend):
    def write_message(self, message) -> None:
        self.stream.write(f"Email from {message.from_email} to {', '.join(message.to)}\n")
        self.stream.write(f"Subject: {message.subject}\n\n")
        self.stream.write(message.body.rstrip("\n") + "\n")
        self.stream.write("-" * 79 + "\n")
