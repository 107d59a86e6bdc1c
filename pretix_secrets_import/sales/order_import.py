"""A column for pretix' order import: what to do with lines the pool cannot serve, checked before anything is saved."""
import logging

from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy as _
from django_scopes import scopes_disabled

from pretix.base.modelimport import ImportColumn
from pretix.base.secrets import RandomTicketSecretGenerator

from pretix_secrets_import.importing import numbers
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool.store import Group
from pretix_secrets_import.sales.alerts import group_label
from pretix_secrets_import.sales.generator import (
    WHEN_EMPTY_RANDOM, WHEN_EMPTY_REFUSE,
)
from pretix_secrets_import.sales.sellable import (
    draws_from_pool, take, unused_by_group,
)

logger = logging.getLogger(__name__)


class PoolCheckColumn(ImportColumn):
    """
    pretix validates every line of an import before it saves anything, but only shows the messages of its own
    validation errors: a generator refusing during the save would end in a generic error. So while the lines are
    validated, this column hands out the pool in the generator's order, on paper, and either names the first line that
    would not get a secret or gives such lines a random secret, as the user chose for this import.

    pretix offers every column the file's columns as well; they may name an option per line (``refuse``, ``random``).
    A ticket code given in the file is checked by the rule of the plugin's own import for numbers from spreadsheets.
    """
    identifier = "secrets_import_pool_check"
    verbose_name = _("If the imported pool runs out")
    help_text = _("Tickets of products that draw from the pool of imported secrets get one of them. Before anything is "
                  "imported, every line is checked against the pool. Choose what happens if the pool has no fitting "
                  "secret left for a line: import nothing and name that line, or give such tickets a random ticket "
                  "code, which access control that only knows the imported codes will reject.")

    def __init__(self, event):
        super().__init__(event)
        self._left = None

    @property
    def default_label(self):
        # The first option, preselected for the first import: whatever the event does when a sale finds the pool empty.
        if self.event.settings.secrets_import_when_empty == WHEN_EMPTY_RANDOM:
            return gettext("As set for the event: give those tickets a random ticket code")
        return gettext("As set for the event: import nothing")

    def static_choices(self):
        return [
            (WHEN_EMPTY_REFUSE, _("Import nothing")),
            (WHEN_EMPTY_RANDOM, _("Give those tickets a random ticket code")),
        ]

    def _unused_secrets_by_restriction(self):
        if self._left is None:
            self._left = unused_by_group(self.event)
        return self._left

    def clean(self, value, previous_values):
        """``WHEN_EMPTY_RANDOM`` for a line that gets a random secret because the pool has none left for it."""
        if value is None:
            value = self.event.settings.secrets_import_when_empty
        if value not in (WHEN_EMPTY_REFUSE, WHEN_EMPTY_RANDOM):
            raise ValidationError(gettext(
                'A column of your file chosen here must say "refuse" or "random" in every line.'
            ))
        item = previous_values.get("item")
        explicit = previous_values.get("secret")
        if explicit:
            refusal = numbers.refusal(explicit)
            if refusal:  # pretix takes any text as a ticket code, also a number that a spreadsheet shortened
                raise ValidationError(refusal)
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
        variation, subevent = previous_values.get("variation"), previous_values.get("subevent")
        target = Group(item.pk, getattr(variation, "pk", None), getattr(subevent, "pk", None))
        if take(target, self._unused_secrets_by_restriction()):
            return None
        if value == WHEN_EMPTY_RANDOM:
            return WHEN_EMPTY_RANDOM
        raise ValidationError(gettext(
            'The pool of imported secrets has no fitting secret left for "{product}". Import more secrets, or choose '
            '"Give those tickets a random ticket code" in this column.'
        ).format(product=group_label(item.name, variation and variation.value)))

    def assign(self, value, order, position, invoice_address, **kwargs):
        # Otherwise the generator hands out the secret when pretix saves the ticket; given here, it is not asked, and
        # so does not refuse the line whatever the event's own setting says.
        if value == WHEN_EMPTY_RANDOM:
            logger.warning("Order import: no imported secret left for %s/%s product %s variation %s date %s: the "
                           "ticket gets a random secret", self.event.organizer.slug, self.event.slug, position.item_id,
                           position.variation_id, position.subevent_id)
            position.secret = RandomTicketSecretGenerator(self.event).generate_secret(
                position.item, position.variation, position.subevent,
            )
