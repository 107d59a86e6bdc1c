"""What every pool page shares: the plugin must be enabled for the event, the permissions, the pool's address."""
import logging
import re

from django.http import Http404
from django.templatetags.static import static
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from pretix.control.permissions import EventPermissionRequiredMixin

from pretix_secrets_import.links import event_url
from pretix_secrets_import.plugin import enabled_for
from pretix_secrets_import.pool.rules import DB_ID_MAX

logger = logging.getLogger(__name__)


def id_param(value):
    """A database ID from a query or form parameter, or ``None`` for anything else."""
    if value and re.fullmatch(r"[0-9]{1,19}", value) and int(value) <= DB_ID_MAX:
        return int(value)
    return None


class PoolMixin(EventPermissionRequiredMixin):
    """Pool pages exist only while the plugin is enabled for the event (pretix does not check that itself)."""
    permission = "event.orders:read"

    def dispatch(self, request, *args, **kwargs):
        if not enabled_for(request.event):
            raise Http404(_("The Secrets Import plugin is not enabled for this event."))
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def pool_url(self):
        return event_url(self.request.event, "pool")


def stylesheet_url():
    """
    The URL of the pool page's stylesheet, ``None`` while it is not collected: after an upgrade without
    ``python -m pretix rebuild``, pretix' manifest of static files does not know it, and the page is better shown
    without it than not at all.
    """
    try:
        return static("pretix_secrets_import/pool.css")
    except ValueError:
        logger.warning("pretix_secrets_import/pool.css is missing from the static files: run python -m pretix rebuild")
        return None


class PoolWriteMixin(PoolMixin):
    permission = "event.orders:write"
