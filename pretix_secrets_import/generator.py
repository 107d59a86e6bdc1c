"""
The ticket secret generator that hands out secrets from the event's pool.

pretix calls ``generate_secret`` inside the transaction that creates or changes an order position, so a secret
marked as used here is handed back if that transaction rolls back, and is never handed out again once it commits.
"""
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext, gettext_lazy as _
from django_scopes import scopes_disabled
from rest_framework.exceptions import APIException

from pretix.base.models import OrderPosition, Quota
from pretix.base.secrets import (
    BaseTicketSecretGenerator, RandomTicketSecretGenerator,
)
from pretix.base.services.orders import OrderError as PretixOrderError
from pretix.helpers import OF_SELF

from .models import ImportedSecret

WHEN_EMPTY_REFUSE = "refuse"
WHEN_EMPTY_RANDOM = "random"
GENERATOR_IDENTIFIER = "imported_secrets"
# Counting more unused secrets than this for a quota without a size would only cost time.
QUOTA_COUNT_LIMIT = 10000


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


def refuses_when_empty(event) -> bool:
    return (
        event.settings.ticket_secret_generator == GENERATOR_IDENTIFIER
        and event.settings.secrets_import_when_empty != WHEN_EMPTY_RANDOM
    )


@scopes_disabled()
def cap_quota_availability(event, quota, result):
    """
    Limit a quota's availability to the unused secrets that fit its products and date, so that the shop shows
    products as sold out before a customer fills a cart. Only for quotas whose products all draw from the pool; a
    secret restricted to one variation counts for the whole quota, so this is an upper bound and the generator
    stays the authoritative check.
    """
    if not refuses_when_empty(event):
        return result
    products = event.settings.secrets_import_products
    draws = Q(pk__in=products) if products else Q(admission=True)
    if not quota.items.exists() or quota.items.exclude(draws).exists():
        return result
    state, available = result
    limit = QUOTA_COUNT_LIMIT if available is None else available + 1
    left = (
        ImportedSecret.objects
        .filter(event=event, used=False)
        .filter(Q(item__isnull=True) | Q(item__in=quota.items.all()))
        .filter(Q(subevent__isnull=True) | Q(subevent_id=quota.subevent_id))
        .values("pk")[:limit]
        .count()
    )
    if left == 0:
        return Quota.AVAILABILITY_GONE, 0
    if available is None:
        return result if left >= QUOTA_COUNT_LIMIT else (state, left)
    return state, min(available, left)


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
    identifier = GENERATOR_IDENTIFIER
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
