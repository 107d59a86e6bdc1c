"""The plugin's settings page of an event."""
from django.contrib import messages
from django.utils.translation import gettext_lazy as _

from pretix.base.models import Event
from pretix.control.views.event import (
    EventSettingsFormView, EventSettingsViewMixin,
)

from pretix_secrets_import import event_settings
from pretix_secrets_import.control.forms import SecretsImportSettingsForm
from pretix_secrets_import.links import event_url
from pretix_secrets_import.pool import format_change, store as pool
from pretix_secrets_import.sales.generator import uses_pool


class SecretsImportSettings(EventSettingsViewMixin, EventSettingsFormView):
    model = Event
    form_class = SecretsImportSettingsForm
    template_name = "pretix_secrets_import/settings.html"
    permission = "event.settings.general:write"
    wanted = {}  # a code format to fill in again (``?format=``, signed), after its misfits were deleted

    def get(self, request, *args, **kwargs):
        self.wanted = format_change.wanted_settings(request.event, request.GET.get("format"))
        if self.wanted:
            messages.info(request, _("The code format you wanted is filled in again. Save to change the settings."))
        return super().get(request, *args, **kwargs)

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.initial.update(event_settings.show_blanks(self.wanted))
        return form

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        ctx["unused_count"] = pool.count(event, used=False)
        ctx["generator_active"] = uses_pool(event)
        ctx["ticket_settings_url"] = event_url(event, "control:event.settings.tickets")
        return ctx

    def get_success_url(self) -> str:
        return event_url(self.request.event, "settings")
