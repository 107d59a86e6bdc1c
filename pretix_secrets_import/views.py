from django.urls import reverse
from django_scopes import scopes_disabled

from pretix.base.models import Event
from pretix.control.views.event import (
    EventSettingsFormView, EventSettingsViewMixin,
)

from .forms import SecretsImportSettingsForm
from .generator import uses_pool
from .models import ImportedSecret


class SecretsImportSettings(EventSettingsViewMixin, EventSettingsFormView):
    model = Event
    form_class = SecretsImportSettingsForm
    template_name = "pretix_secrets_import/settings.html"
    permission = "event.settings.general:write"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        with scopes_disabled():
            ctx["unused_count"] = ImportedSecret.objects.filter(event=event, used=False).count()
        ctx["generator_active"] = uses_pool(event)
        ctx["ticket_settings_url"] = reverse("control:event.settings.tickets", kwargs={
            "organizer": event.organizer.slug, "event": event.slug,
        })
        return ctx

    def get_success_url(self) -> str:
        return reverse("plugins:pretix_secrets_import:settings", kwargs={
            "organizer": self.request.event.organizer.slug,
            "event": self.request.event.slug,
        })
