from django.apps import AppConfig


class ProposalSettingsConfig(AppConfig):
    name = "settings_sync.proposal"
    label = "proposal"
    verbose_name = "Proposal settings"
