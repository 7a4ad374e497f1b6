"""Set up and run the demo in one go: migrate, load demo data, print accounts, serve."""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import module_has_submodule

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
        self.stdout.write(self.style.SUCCESS(f"Open http://{addrport}/ — stop with Ctrl+C."))
        call_command("runserver", addrport, use_reloader=False, insecure_serving=True)
