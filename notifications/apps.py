from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # This app listens to the others' domain events; none of them imports it.
        from partnerships import signals as partnership_events
        from settings_sync import signals as sync_events

        from . import events

        for signal, receiver in [
            (partnership_events.invitation_accepted, events.on_invitation_accepted),
            (partnership_events.partnership_created, events.on_partnership_created),
            (partnership_events.flags_changed, events.on_flags_changed),
            (partnership_events.partnership_ended, events.on_partnership_ended),
            (partnership_events.request_declined, events.on_request_declined),
            (sync_events.runs_finished, events.on_runs_finished),
            (sync_events.overrides_changed, events.on_overrides_changed),
        ]:
            signal.connect(receiver, dispatch_uid=f"notifications.{receiver.__name__}")
