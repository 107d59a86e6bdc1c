"""
Warnings on pretix' own plugin and ticket settings pages: disabling the plugin, or choosing another ticket code
generator, silently gives new tickets random secrets, which gates that only accept the imported codes reject.

pretix offers no hook on those pages nor on the disabling itself that knows the request, so the warnings come through
``html_page_start``, which pretix sends for every backend page and to every installed plugin, enabled for the event
or not. They describe the event's state, so they also show right after the change, on the page pretix redirects to.
"""
from django.template.loader import render_to_string

from pretix_secrets_import.links import event_url
from pretix_secrets_import.plugin import NAME, enabled_for
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.sales.generator import GENERATOR_IDENTIFIER

PLUGINS_PAGE = "control:event.settings.plugins"
TICKETS_PAGE = "control:event.settings.tickets"
# The event's dashboard: pretix asks only enabled plugins for dashboard widgets, so a disabled plugin speaks here.
DASHBOARD = "control:event.index"


def page_warning(request) -> str:
    match = getattr(request, "resolver_match", None)
    event = getattr(request, "event", None)
    if match is None or event is None or match.view_name not in (PLUGINS_PAGE, TICKETS_PAGE, DASHBOARD):
        return ""
    state = _state(event, match.view_name)
    # The settings pages need the permission to change the event's settings (pretix' refusal page is not a backend
    # page); the dashboard does not, and only those who may enable the plugin again are told how to.
    if state is None or (match.view_name == DASHBOARD and not request.user.has_event_permission(
            event.organizer, event, "event.settings.general:write", request=request)):
        return ""
    unused = pool.count(event, used=False)
    if state == "not_used" and not unused:
        return ""
    return render_to_string("pretix_secrets_import/switch_warning.html", {
        "state": state,
        "unused": unused,
        "generator": event.ticket_secret_generator.verbose_name,
        "plugins_url": event_url(event, PLUGINS_PAGE),
        "plugin_field": f"plugin:{NAME}",  # pretix' plugins page enables a plugin by this form field
        "tickets_url": event_url(event, TICKETS_PAGE),
    }, request=request)


def _state(event, view_name):
    """Which warning ``view_name`` shows for ``event``, if any."""
    enabled = enabled_for(event)
    ours = event.settings.ticket_secret_generator == GENERATOR_IDENTIFIER
    if enabled and ours:
        return "in_use" if view_name == PLUGINS_PAGE else None
    if ours:
        return "disabled"  # pretix keeps the setting but falls back to random secrets
    if enabled and view_name == TICKETS_PAGE:
        return "not_used"
    return None
