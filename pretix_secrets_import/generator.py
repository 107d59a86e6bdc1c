"""
The ticket secret generator that hands out secrets from the event's pool.

pretix calls ``generate_secret`` inside the transaction that creates or changes an order position, so a secret
marked as used here is handed back if that transaction rolls back, and is never handed out again once it commits.
"""
from django.utils.timezone import now
from django.utils.translation import gettext, gettext_lazy as _
from django_scopes import scopes_disabled
from rest_framework.exceptions import APIException

from pretix.base.models import OrderPosition
from pretix.base.secrets import (
    BaseTicketSecretGenerator, RandomTicketSecretGenerator,
)
from pretix.base.services.orders import OrderError as PretixOrderError
from pretix.helpers import OF_SELF

from .models import ImportedSecret

WHEN_EMPTY_REFUSE = "refuse"
WHEN_EMPTY_RANDOM = "random"


class OrderError(PretixOrderError, APIException):
    """
    The pool has no secret left for a ticket.

    pretix' checkout and backend show the message of known errors by the exception's class *name*
    ("OrderError"), and the REST API turns an ``APIException`` into a 400 with ``detail`` instead of a 500.
    """
    status_code = 400
    default_code = "no_secret_left"


def draws_from_pool(event, item) -> bool:
    """Whether tickets of ``item`` get pool secrets: the chosen products, or by default all admission products."""
    products = event.settings.secrets_import_products
    if products:
        return item.pk in products
    return item.admission


def secret_fits(row: ImportedSecret, item, variation, subevent) -> bool:
    return (
        row.item_id in (None, item.pk)
        and row.variation_id in (None, getattr(variation, "pk", None))
        and row.subevent_id in (None, getattr(subevent, "pk", None))
    )


def restriction_tiers(item, variation, subevent):
    """The restrictions a ticket accepts, most specific first: variation, product, none; each dated, then undated."""
    products = ([(item.pk, variation.pk)] if variation else []) + [(item.pk, None), (None, None)]
    dates = ([subevent.pk] if subevent else []) + [None]
    for item_id, variation_id in products:
        for subevent_id in dates:
            yield {"item_id": item_id, "variation_id": variation_id, "subevent_id": subevent_id}


@scopes_disabled()  # every query is filtered by event or organizer explicitly
def allocate_secret(event, item, variation=None, subevent=None):
    """
    Take the best-fitting unused secret of ``event``'s pool for a ticket, mark it used and return it; ``None`` if
    nothing fits. Must run inside the transaction that stores the ticket.
    """
    for tier in restriction_tiers(item, variation, subevent):
        while True:
            # Lock only the row we take; rows that concurrent orders have locked are skipped, not waited for.
            row = (
                ImportedSecret.objects.filter(event=event, used=False, **tier)
                .order_by("id")
                .select_for_update(skip_locked=True, of=OF_SELF)
                .only("pk", "secret")
                .first()
            )
            if row is None:
                break
            # The condition makes this safe on databases without row locks (SQLite): only one writer wins.
            if not ImportedSecret.objects.filter(pk=row.pk, used=False).update(used=True, used_at=now()):
                continue
            if OrderPosition.all.filter(organizer_id=event.organizer_id, secret=row.secret).exists():
                continue  # already some ticket's secret (given explicitly): it stays burnt, try the next one
            return row.secret
    return None


class ImportedSecretGenerator(BaseTicketSecretGenerator):
    identifier = "imported_secrets"
    verbose_name = _("Imported secrets (Secrets Import plugin)")
    use_revocation_list = False  # a cancellation must not take a fresh secret from the pool

    def generate_secret(self, item, variation=None, subevent=None, attendee_name=None, valid_from=None,
                        valid_until=None, current_secret=None, force_invalidate=False):
        if not draws_from_pool(self.event, item):
            return RandomTicketSecretGenerator(self.event).generate_secret(
                item, variation, subevent, current_secret=current_secret, force_invalidate=force_invalidate,
            )
        if current_secret and not force_invalidate:
            with scopes_disabled():
                row = ImportedSecret.objects.filter(event=self.event, secret=current_secret).first()
            # A secret from elsewhere (random, or set explicitly) is kept; a pool secret while it still fits.
            if row is None or secret_fits(row, item, variation, subevent):
                return current_secret

        secret = allocate_secret(self.event, item, variation, subevent)
        if secret is not None:
            return secret
        if self.event.settings.secrets_import_when_empty == WHEN_EMPTY_RANDOM:
            return RandomTicketSecretGenerator(self.event).generate_secret(
                item, variation, subevent, current_secret=current_secret, force_invalidate=True,
            )
        name = f"{item.name} – {variation.value}" if variation else str(item.name)
        raise OrderError(gettext(
            'There is no ticket code left for "{product}". Please contact the organizer of this event.'
        ).format(product=name))
