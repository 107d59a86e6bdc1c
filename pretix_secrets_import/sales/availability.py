"""
What pretix shows as available while tickets draw from the pool: a quota, a product or a variation (of a date) that
no unused secret fits any more is sold out – in the shop and its widget, with pretix' "hide sold-out products", on
the event calendars, on the backend's dashboard and for the waiting list. How many secrets are left comes from
``sellable``.

pretix asks for each quota's availability through the ``quota_availability`` signal (``cap_quota_availability``),
which also backs adding to the cart and the calendars. A quota may hold several products and variations, though, and
one that also holds a product without pool secrets cannot be capped at all. A product's or a variation's own
availability comes from ``Item.check_quotas`` and ``ItemVariation.check_quotas``, for which pretix 2026.8 has no
signal: ``install`` (from ``apps.ready``) wraps both methods, and caps their answer only for events whose sales
refuse without a secret and for products that draw from the pool. Everything else gets pretix' answer unchanged.
"""
import functools
import inspect
import logging
from collections import Counter

from django.db.models import Exists, OuterRef
from django_scopes import scopes_disabled

import pretix
from pretix.base.models import Item, ItemVariation, Quota

from pretix_secrets_import.plugin import enabled_for
from pretix_secrets_import.pool.store import Group
from pretix_secrets_import.sales.generator import (
    refuses_when_empty, ticket_group,
)
from pretix_secrets_import.sales.safeguards import fingerprint
from pretix_secrets_import.sales.sellable import (
    draws, draws_from_pool, left_for_any, sets_left, unused_by_group,
)

logger = logging.getLogger(__name__)

# The pretix release and the code of the two methods this patch was reviewed against; tests/sales/test_availability.py
# fails when the installed pretix differs, so that an upgrade gets a review instead of a silent change.
REVIEWED_PRETIX = "2026.8"
REVIEWED_FINGERPRINTS = {
    Item: "384ef4621fb45d7c70c5f23ba15870e2ca207a457b7c41a0ac93597917b4728b",
    ItemVariation: "41f2c23800db4c212b1753b96d24d5606d973cc440d9f5f498af14fd2a71a668",
}
# The arguments of check_quotas the cap reads; without them it cannot know the date and is not installed.
ARGUMENTS = ("subevent", "_cache", "include_bundled")
# Where the pool's counters are kept in the quota cache pretix passes to check_quotas, read once per product list
# like the quotas (pretix keeps its own "_count_waitinglist" there too).
CACHE_KEY = "_secrets_import_unused"


def caps(event) -> bool:
    """Whether ``event``'s availability is capped: its sales take secrets from the pool and refuse without one."""
    return enabled_for(event) and refuses_when_empty(event)


def capped(result, left):
    """pretix' availability ``result`` (state, number or ``None`` for unlimited) with at most ``left`` tickets."""
    state, available = result
    if left == 0:
        return Quota.AVAILABILITY_GONE, 0
    return state, left if available is None else min(available, left)


@scopes_disabled()
def cap_quota_availability(event, quota, result):
    """
    Limit a quota's availability to the unused secrets that fit at least one of its products (variations) on its
    date, so that its products show as sold out before a customer fills a cart. Only for quotas whose products all
    draw from the pool: capping a quota that also holds a T-shirt would stop the shirt's sales.
    """
    if not caps(event):
        return result
    targets = quota_targets(event, quota)
    if not targets:
        return result
    return capped(result, left_for_any(targets, unused_by_group(event)))


def quota_targets(event, quota) -> list:
    """A ``Group`` per product (variation) the quota sells on its date; empty if one of them does not draw."""
    chosen = event.settings.secrets_import_products
    items = list(quota.items.annotate(
        has_variations=Exists(ItemVariation.objects.filter(item_id=OuterRef("pk"))),
    ).values_list("pk", "admission", "has_variations"))
    if not all(draws(chosen, pk, admission) for pk, admission, _variations in items):
        return []
    with_variations = {pk for pk, _admission, has_variations in items if has_variations}
    products = [(pk, None) for pk, _admission, _variations in items if pk not in with_variations]
    products += [(item_id, pk) for item_id, pk in quota.variations.values_list("item_id", "pk")
                 if item_id in with_variations]
    return [Group(item_id, variation_id, quota.subevent_id) for item_id, variation_id in products]


def cap_product_availability(item, variation, subevent, result, include_bundled=False, cache=None):
    """
    Limit the availability pretix found for ``item`` (``variation``, ``subevent``) to the tickets that can still get a
    secret: its own and, with ``include_bundled``, those of the products it bundles. ``cache`` is the quota cache
    pretix passes along.
    """
    event = item.event
    if not caps(event):
        return result
    wanted = Counter()
    if draws_from_pool(event, item):
        wanted[ticket_group(item, variation, subevent)] += 1
    for bundle in item.bundles.all() if include_bundled else ():
        if draws_from_pool(event, bundle.bundled_item):
            wanted[Group(bundle.bundled_item_id, bundle.bundled_variation_id, getattr(subevent, "pk", None))] += \
                bundle.count
    if not wanted:
        return result
    return capped(result, sets_left(wanted, unused_for(event, cache)))


def unused_for(event, cache) -> dict:
    """``unused_by_group``, read once per quota cache that pretix passes along (a product list, a dashboard)."""
    if cache is None:
        return unused_by_group(event)
    key = (CACHE_KEY, event.pk)
    if key not in cache:
        cache[key] = unused_by_group(event)
    return cache[key]


def unreviewed_changes(model) -> list:
    """What differs from the pretix this patch was reviewed against, as words for the log; empty if nothing does."""
    changes = []
    if not pretix.__version__.startswith(REVIEWED_PRETIX + "."):
        changes.append(f"this is pretix {pretix.__version__}")
    if fingerprint(model.check_quotas) != REVIEWED_FINGERPRINTS[model]:
        changes.append(f"the source of {model.__name__}.check_quotas is not the reviewed one")
    return changes


def install():
    for model in (Item, ItemVariation):
        original = model.check_quotas
        if getattr(original, "secrets_import_capped", False):
            continue
        signature = inspect.signature(original)
        missing = [name for name in ARGUMENTS if name not in signature.parameters]
        changes = unreviewed_changes(model)
        if changes:
            logger.warning(
                "pretix_secrets_import: the cap of %s.check_quotas at the pool's secrets was written for pretix %s and "
                "needs a review (%s; see availability.py). %s", model.__name__, REVIEWED_PRETIX, "; ".join(changes),
                f"It is not installed: the method has no argument {', '.join(missing)}." if missing else
                "It is installed anyway.",
            )
        if not missing:
            model.check_quotas = _wrap(original, signature)


def _wrap(original, signature):
    @functools.wraps(original)
    def check_quotas(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        item, variation = (self.item, self) if isinstance(self, ItemVariation) else (self, None)
        if not caps(item.event):  # before reading the arguments: events without the pool pay nothing more
            return result
        arguments = signature.bind(self, *args, **kwargs).arguments
        return cap_product_availability(item, variation, arguments.get("subevent"), result,
                                        arguments.get("include_bundled", False), arguments.get("_cache"))

    check_quotas.secrets_import_capped = True
    return check_quotas
