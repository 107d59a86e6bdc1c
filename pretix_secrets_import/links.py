"""The backend addresses of an event's pages, the plugin's and pretix' own, built in one place."""
from django.conf import settings
from django.urls import reverse

from pretix_secrets_import.plugin import NAME


def event_url(event, name: str, absolute=False, **kwargs) -> str:
    """
    The page ``name`` of ``event``: one of the plugin's (``"pool"``, ``"import.process"``) or pretix' own
    (``"control:event.settings.tickets"``); ``absolute`` for links that leave the request (messages, log entries).
    """
    view = name if ":" in name else f"plugins:{NAME}:{name}"
    url = reverse(view, kwargs={"organizer": event.organizer.slug, "event": event.slug, **kwargs})
    return settings.SITE_URL + url if absolute else url
