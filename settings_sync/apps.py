from django.apps import AppConfig


class SettingsSyncConfig(AppConfig):
    name = "settings_sync"
    verbose_name = "Settings sync"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from organizations import tabs
        from organizations.models import Organization

        from . import receivers
        from .pages import GROUPS

        icons = {
            "project": "tools",
            "usage": "lightning-charge",
            "proposal": "file-earmark-text",
            "financing": "bank",
            "integrations": "plug",
        }
        for order, group in enumerate(
            ["project", "usage", "proposal", "financing", "integrations"]
        ):
            tabs.register(
                tabs.Tab(group, GROUPS[group], f"settings_sync:{group}", 30 + order, icons[group])
            )
        from . import conflicts

        tabs.register_badges(conflicts.counts_by_group)
        tabs.register(
            tabs.Tab("history", "Sync history", "settings_sync:history", 90, "clock-history")
        )

        from partnerships import hooks

        from . import override_forms, profile_views, sync_views

        hooks.register_list_decorator(sync_views.decorate_partner_list)
        hooks.register_detail_section(sync_views.partnership_section)
        hooks.register_flag_preview(sync_views.flag_preview)
        hooks.register_offer_preview(sync_views.offer_preview)
        hooks.register_flag_form_part(override_forms.flag_form_part)
        hooks.register_details_part(override_forms.effective_modes_section)
        hooks.register_offer_form_part(profile_views.offer_form_part)

        post_save.connect(
            receivers.create_singletons,
            sender=Organization,
            dispatch_uid="settings_sync.create_singletons",
        )

        # Domain events of partnerships start runs (this app listens; partnerships never
        # imports it).
        from partnerships import signals as partnership_events

        # First: a sync profile named by the offer sets the overrides the first run reads.
        for signal, receiver in [
            (partnership_events.invitation_accepted, receivers.start_with_named_profile),
            (partnership_events.partnership_created, receivers.start_with_named_profile),
            (partnership_events.invitation_accepted, receivers.on_invitation_accepted),
            (partnership_events.partnership_created, receivers.on_partnership_created),
            # In the transaction that creates a partnership: its link run applied there when
            # the commit would apply it at once anyway (docs/design.md §10).
            (partnership_events.partnership_starting, receivers.on_partnership_starting),
            (partnership_events.flags_changed, receivers.on_flags_changed),
            (partnership_events.partnership_ended, receivers.on_partnership_ended),
        ]:
            signal.connect(receiver, dispatch_uid=f"settings_sync.{receiver.__name__}")

        # A channel manager's change to a synced setting reaches its partners.
        from . import registry

        for category in registry.all():
            if category.kind == registry.INVITE_ONLY:
                continue  # copied once, at the invitation
            for model_signal in (post_save, post_delete):
                model_signal.connect(
                    receivers.on_setting_saved,
                    sender=category.model,
                    dispatch_uid=f"settings_sync.{category.key}.{id(model_signal)}",
                )
