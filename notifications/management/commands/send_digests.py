"""Send today's notification digests (run it daily from cron; running it again the same day
sends nothing more)."""

from django.core.management.base import BaseCommand

from notifications.tasks import send_digests


class Command(BaseCommand):
    help = "Send each person who chose a daily digest today's email (once a day)."

    def handle(self, *args, **options) -> None:
        result = send_digests()
        self.stdout.write(
            f"{result['sent']} digest{'s' if result['sent'] != 1 else ''} sent, "
            f"{result['failed']} failed (tried again at the next run)."
        )
        if result["failed"]:
            raise SystemExit(1)
