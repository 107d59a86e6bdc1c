"""
Warnings on pretix' own plugin and ticket settings pages: disabling the plugin, or choosing another ticket code
generator, silently gives new tickets random secrets, which gates that only accept the imported codes reject.

pretix offers no hook on those pages nor on the disabling itself that knows the request, so the warnings come through
``html_page_start``, which pretix sends for every backend page and to every installed plugin, enabled for the event
or not. They describe the event's state, so they also show right after the change, on the page pretix redirects to.
"""
from urllib.parse import urlencode

from django.template.loader import render_to_string

from pretix_secrets_import.links import event_url
from pretix_secrets_import.plugin import NAME, enabled_for
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.sales.generator import GENERATOR_IDENTIFIER

PLUGINS_PAGE = "control:event.settings.plugins"
TICKETS_PAGE = "control:event.settings.tickets"


def page_warning(request) -> str:
    match = getattr(request, "resolver_match", None)
    event = getattr(request, "event", None)
    if match is None or event is None or match.view_name not in (PLUGINS_PAGE, TICKETS_PAGE):
        return ""
    # Both pages need the permission to change the event's settings; pretix' refusal page is not a backend page.
    enabled = enabled_for(event)
    ours = event.settings.ticket_secret_generator == GENERATOR_IDENTIFIER
    if enabled and ours:
        state = "in_use" if match.view_name == PLUGINS_PAGE else None
    elif ours:
        state = "disabled"  # pretix keeps the setting but falls back to random secrets
    elif enabled and match.view_name == TICKETS_PAGE:
        state = "not_used"
    else:
        state = None
    if state is None:
        return ""
    unused = pool.count(event, used=False)
    if state == "not_used" and not unused:
        return ""
    return render_to_string("pretix_secrets_import/switch_warning.html", {
        "state": state,
        "unused": unused,
        "generator": event.ticket_secret_generator.verbose_name,
        "plugins_url": event_url(event, PLUGINS_PAGE) + "?" + urlencode({"q": NAME}),
        "tickets_url": event_url(event, TICKETS_PAGE),
    })
