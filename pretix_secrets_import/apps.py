from django.utils.translation import gettext_lazy as _

from pretix.base.plugins import PluginConfig

from pretix_secrets_import import __version__, plugin


class PluginApp(PluginConfig):
    default = True
    name = plugin.NAME
    verbose_name = "Secrets Import"

    class PretixPluginMeta:
        name = _("Secrets Import")
        # pretix shows "by <author>": a phrase that reads as one in every language
        author = _("the pretix-secrets-import contributors")
        description = _(
            "Upload your own list of ticket secrets (QR or barcode contents) and let pretix hand them out "
            "to tickets instead of random ones, for example to work with third-party access control gates. "
            "Before you disable it for an event whose tickets get imported secrets, choose another ticket code "
            "generator: once it is disabled, new tickets get random secrets, which such gates reject."
        )
        visible = True
        version = __version__
        category = "FEATURE"
        compatibility = "pretix>=2026.8,<2026.9"
        settings_links = [
            (_("Secrets Import"), "plugins:pretix_secrets_import:settings", {}),
        ]

    def uninstalled(self, event):
        from pretix_secrets_import.sales.generator import plugin_disabled
        plugin_disabled(event)

    def ready(self):
        from pretix_secrets_import import (  # noqa: F401 (registers the receivers)
            signals,
        )
        from pretix_secrets_import.gate import feed
        from pretix_secrets_import.sales import availability, safeguards
        from pretix_secrets_import.tickets import barcodes

        safeguards.install()
        availability.install()
        barcodes.install()
        feed.allow_for_scanners()
