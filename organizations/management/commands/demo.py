"""Set up and run the demo in one go: migrate, load demo data, print accounts, serve."""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands.runserver import naiveip_re
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from config.mail import CONSOLE_BACKEND, READABLE_CONSOLE_BACKEND
from organizations.demo import DEMO_PASSWORD, DemoLoad


class Command(BaseCommand):
    help = (
        "Migrate the database, load the demo data (once: running it again changes nothing), "
        "print the sign-in accounts and serve the app on 127.0.0.1:8000."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--addrport", default="127.0.0.1:8000", help="Where to serve (default 127.0.0.1:8000)."
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="Load the demo data and exit without serving."
        )

    def handle(self, *args, addrport: str, no_serve: bool, **options) -> None:
        # Links in emails (the invitation printed below, and any sent while serving) point
        # at the address the demo serves, whatever SITE_URL says.
        settings.SITE_URL = site_url_for(addrport)
        if getattr(settings, "MAILERS", {}).get("default", {}).get("BACKEND") == CONSOLE_BACKEND:
            # The invitation below and any sent while serving, printed so a person can read
            # them and follow the link (Django's console prints quoted-printable MIME).
            settings.MAILERS = {
                **settings.MAILERS,
                "default": {**settings.MAILERS["default"], "BACKEND": READABLE_CONSOLE_BACKEND},
            }
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(self.style.SUCCESS("Database migrated."))
        demo = DemoLoad(out=self.stdout)
        with transaction.atomic():
            # Each app that has demo data keeps it in its own `demo.py` with a `load(demo)`.
            for config in apps.get_app_configs():
                if module_has_submodule(config.module, "demo"):
                    import_module(f"{config.name}.demo").load(demo)
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write("")
        self.stdout.write(f"Sign in with any of these accounts (password: {DEMO_PASSWORD}):")
        width = max(len(username) for username, _ in demo.accounts)
        for username, description in demo.accounts:
            self.stdout.write(f"  {username.ljust(width)}  {description}")
        self.stdout.write("")
        if no_serve:
            return
        # Answer errors as production does: the product's own 404, 403 and 500 pages, never
        # Django's debug pages (runserver --insecure still serves the static files).
        settings.DEBUG = False
        host = urlsplit(settings.SITE_URL).hostname
        if host not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, host]
        self.stdout.write(self.style.SUCCESS(f"Open {settings.SITE_URL}/ — stop with Ctrl+C."))
        call_command("runserver", addrport, use_reloader=False, insecure_serving=True)


def site_url_for(addrport: str) -> str:
    """The address a browser reaches ``runserver addrport`` at ("8101" → 127.0.0.1:8101)."""
    match = naiveip_re.match(addrport)
    if match is None:
        raise CommandError(f"“{addrport}” is not a port or an address:port pair.")
    host = match["addr"] or "127.0.0.1"
    return f"http://{host}:{match['port']}"
