"""A check column for pretix' order import, so that an import the pool cannot serve fails before anything is saved."""
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy as _
from django_scopes import scopes_disabled

from pretix.base.modelimport import ImportColumn

from .generator import (
    WHEN_EMPTY_RANDOM, draws_from_pool, no_secret_left_message,
    restriction_tiers,
)
from .models import ImportedSecret
from .pool import summary


class PoolCheckColumn(ImportColumn):
    """
    pretix validates every line of an import before it saves anything, but only shows the messages of its own
    validation errors: a generator refusing during the save would end in a generic error. This column has nothing
    to read; while the lines are validated it hands out the pool in the generator's order, on paper, and reports
    the first line that would not get a secret.
    """
    identifier = "secrets_import_pool_check"
    verbose_name = _("Ticket code from the imported pool")
    default_label = _("Checked automatically")
    help_text = _("Nothing to choose here: the import stops at the first line for which the pool of imported secrets "
                  "has no fitting secret left, before anything is imported.")

    def __init__(self, event):
        super().__init__(event)
        self._left = None

    def _unused_secrets_by_restriction(self):
        if self._left is None:
            self._left = {counted.group: counted.unused for counted in summary(self.event)}
        return self._left

    def clean(self, value, previous_values):
        item = previous_values.get("item")
        explicit = previous_values.get("secret")
        if explicit:
            with scopes_disabled():
                in_pool = ImportedSecret.objects.filter(
                    organizer_id=self.event.organizer_id, secret=explicit, used=False,
                ).exists()
            if in_pool:
                # Another line could draw this secret from the pool before this line is saved.
                raise ValidationError(gettext(
                    "This ticket code is an unused secret of the imported pool. Leave the ticket code empty to take "
                    "a secret from the pool, or delete this secret from the pool first."
                ))
            return None
        if item is None or not draws_from_pool(self.event, item):
            return None
        left = self._unused_secrets_by_restriction()
        variation, subevent = previous_values.get("variation"), previous_values.get("subevent")
        for group in restriction_tiers(item, variation, subevent):
            if left.get(group, 0) > 0:
                left[group] -= 1
                return None
        if self.event.settings.secrets_import_when_empty == WHEN_EMPTY_RANDOM:
            return None
        raise ValidationError(no_secret_left_message(item, variation))

    def assign(self, value, order, position, invoice_address, **kwargs):
        pass  # nothing to set: the generator hands out the secret when pretix saves the ticket
