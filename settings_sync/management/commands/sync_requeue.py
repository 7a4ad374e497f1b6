"""Enqueue again the sync runs whose worker died (killed, machine lost): docs/design.md §7.3,
rule R10."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from settings_sync.tasks import requeue_stalled


class Command(BaseCommand):
    help = (
        "Enqueue again every sync run still queued or running --minutes (default 15) after it "
        "was recorded, with no sign of a worker for that long: its worker died before "
        "finishing. A worker waiting for its partner shows it is alive every minute, so "
        "keep --minutes well above that. A run is requeued at most once per --minutes and "
        "never once it has finished. A run applies all or nothing and a run delivered twice "
        "is applied once, so running it again is safe. Run it from cron next to the workers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--minutes", type=float, default=15)

    def handle(self, *args, minutes: float, **options) -> None:
        stalled = requeue_stalled(timedelta(minutes=minutes))
        self.stdout.write(f"Requeued {len(stalled)} stalled sync run(s).")
