"""Enqueue again the sync runs whose worker died (killed, machine lost)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from settings_sync.tasks import requeue_stalled


class Command(BaseCommand):
    help = (
        "Enqueue again every sync run still queued or running after --minutes (default 15): "
        "its worker died before finishing. A run applies all or nothing, so running it again "
        "is safe. Run it from cron next to the workers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--minutes", type=float, default=15)

    def handle(self, *args, minutes: float, **options) -> None:
        stalled = requeue_stalled(timedelta(minutes=minutes))
        self.stdout.write(f"Requeued {len(stalled)} stalled sync run(s).")
