"""The plugin's settings page of an event."""
from pretix.base.models import Event
from pretix.control.views.event import (
    EventSettingsFormView, EventSettingsViewMixin,
)

from pretix_secrets_import.control.forms import SecretsImportSettingsForm
from pretix_secrets_import.links import event_url
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.sales.generator import uses_pool


class SecretsImportSettings(EventSettingsViewMixin, EventSettingsFormView):
    model = Event
    form_class = SecretsImportSettingsForm
    template_name = "pretix_secrets_import/settings.html"
    permission = "event.settings.general:write"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        ctx["unused_count"] = pool.count(event, used=False)
        ctx["generator_active"] = uses_pool(event)
        ctx["ticket_settings_url"] = event_url(event, "control:event.settings.tickets")
        return ctx

    def get_success_url(self) -> str:
        return event_url(self.request.event, "settings")
