"""
What can still be sold: for each product (variation, date) whose tickets draw from the pool, how many unused secrets
fit it. A ticket takes a secret restricted to its variation, its product or nothing, each for its date or for any
date (``tiers``); the secrets of a tier that fits several products or dates are shared among them. Read from the
pool's counters, so the cost grows with the number of products and dates, not with the pool. Used by the pool page,
the summary API, the dashboard, the running-low alerts, the shop's event check, the cart check and what the shop
shows as available (``availability``).
"""
from collections import Counter, defaultdict
from datetime import timedelta
from typing import NamedTuple

from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _, ngettext
from django_scopes import scopes_disabled

from pretix.base.models import (
    ItemVariation, SubEventItem, SubEventItemVariation,
)

from pretix_secrets_import.pool.store import Group, summary


def draws_from_pool(event, item) -> bool:
    """Whether tickets of ``item`` get pool secrets: the chosen products, or by default all admission products."""
    return draws(event.settings.secrets_import_products, item.pk, item.admission)


def draws(chosen_products, item_id, admission) -> bool:
    return item_id in chosen_products if chosen_products else admission


def tiers(target: Group) -> list:
    """The restriction groups whose secrets fit a ticket of ``target``, in the order the generator takes them."""
    item, variation, subevent = target
    products = ((item, variation), (item, None), (None, None)) if variation else ((item, None), (None, None))
    dates = (subevent, None) if subevent else (None,)
    return [Group(product, product_variation, date) for product, product_variation in products for date in dates]


def fits(group: Group, target: Group) -> bool:
    """Whether secrets of restriction ``group`` fit tickets of ``target``."""
    return all(restricted is None or restricted == value for restricted, value in zip(group, target))


class Sellable(NamedTuple):
    """
    The unused secrets that fit tickets of one product (variation, date): ``own`` ones fit only it, ``shared`` ones
    fit other products or dates as well, so they are counted for each of them.
    """
    target: Group
    own: int
    shared: int

    @property
    def left(self) -> int:
        return self.own + self.shared

    def as_dict(self) -> dict:
        return {**self.target._asdict(), "left": self.left, "own": self.own, "shared": self.shared}


@scopes_disabled()
def targets(event, item=None, subevent=None, on_sale=False) -> list:
    """
    A ``Group`` per product (variation) that draws from the pool, and for a series per date that is not over and
    sells it; ``item``/``subevent`` (IDs) select one product or date, ``on_sale`` only active products, variations
    and dates (the backend and the API sell the others too).
    """
    chosen = event.settings.secrets_import_products
    products = event.items.filter(active=True) if on_sale else event.items.all()
    if item is not None:
        products = products.filter(pk=item)
    items = [pk for pk, admission in products.values_list("pk", "admission") if draws(chosen, pk, admission)]
    # A product with variations sells only them: with none of them active, it is not on sale at all.
    variations, has_variations = defaultdict(list), set()
    for item_id, pk, active in ItemVariation.objects.filter(item_id__in=items).values_list("item_id", "pk", "active"):
        has_variations.add(item_id)
        if active or not on_sale:
            variations[item_id].append(pk)
    pairs = [(i, v) for i in items for v in (variations[i] if i in has_variations else [None])]
    if not event.has_subevents:
        return [Group(i, v, None) for i, v in pairs]
    # A date without an end time stays on the list for a day after it begins.
    dates = event.subevents.filter(
        Q(date_to__gte=now()) | Q(date_to__isnull=True, date_from__gte=now() - timedelta(days=1))
    )
    if on_sale:
        dates = dates.filter(active=True)
    if subevent is not None:
        dates = dates.filter(pk=subevent)
    dates = list(dates.values_list("pk", flat=True))
    off_items = set(SubEventItem.objects.filter(subevent_id__in=dates, item_id__in=items, disabled=True)
                    .values_list("subevent_id", "item_id"))
    off_variations = set(SubEventItemVariation.objects.filter(subevent_id__in=dates, variation__item_id__in=items,
                                                              disabled=True).values_list("subevent_id", "variation_id"))
    return [Group(i, v, s) for s in dates for i, v in pairs if (s, i) not in off_items and (s, v) not in off_variations]


def unused_by_group(event, groups=None) -> dict:
    """The unused secrets per restriction group, from ``summary`` (or ``groups``, a summary the caller already read)."""
    return {counted.group: counted.unused for counted in (summary(event) if groups is None else groups)
            if counted.unused}


def left_for(target: Group, unused: dict) -> int:
    """The unused secrets that fit ``target``, from ``unused_by_group``."""
    return left_for_any([target], unused)


def left_for_any(targets, unused: dict) -> int:
    """The unused secrets that fit at least one of ``targets``, each counted once, from ``unused_by_group``."""
    return sum(unused.get(group, 0) for group in {group for target in targets for group in tiers(target)})


def sets_left(wanted: Counter, unused: dict) -> int:
    """
    How often every ticket of ``wanted`` (``Group`` → number of tickets: a product and the products it bundles) can
    still get a secret, from ``unused_by_group``. Each product is counted on its own, so where they share secrets this
    is an upper bound, and the generator stays the authoritative check.
    """
    return min(left_for(target, unused) // number for target, number in wanted.items())


def sellable(event, item=None, subevent=None, on_sale=False, groups=None) -> list:
    """
    A ``Sellable`` per product (variation, date) of ``targets``, fewest left first. Whether a secret is shared is
    decided over all products and dates, also when ``item``/``subevent`` select some.
    """
    unused = unused_by_group(event, groups)
    fitting = [(target, [group for group in tiers(target) if group in unused])
               for target in targets(event, on_sale=on_sale)]
    serves = Counter(group for _target, fitting_groups in fitting for group in fitting_groups)
    result = []
    for target, fitting_groups in fitting:
        if (item is not None and target.item != item) or (subevent is not None and target.subevent != subevent):
            continue
        shared = sum(unused[group] for group in fitting_groups if serves[group] > 1)
        result.append(Sellable(target, sum(unused[group] for group in fitting_groups) - shared, shared))
    result.sort(key=lambda s: (s.left, s.target.item, s.target.variation or 0, s.target.subevent or 0))
    return result


def sold_out(event) -> list:
    """The products (variations, dates) on sale whose tickets cannot get a secret any more."""
    unused = unused_by_group(event)
    return [target for target in targets(event, on_sale=True) if not left_for(target, unused)]


def shortfall(event, wanted) -> list:
    """
    ``wanted`` is a ``Group`` per ticket, in order. Hand out the pool's unused secrets to them as the generator would
    (most specific tier first) and return the tickets that would get none.
    """
    unused = unused_by_group(event)
    return [target for target in wanted if not take(target, unused)]


def take(target: Group, unused: dict) -> bool:
    """Take one secret for a ticket of ``target`` from ``unused`` (``unused_by_group``) on paper; whether one fitted."""
    group = next((group for group in tiers(target) if unused.get(group)), None)
    if group is not None:
        unused[group] -= 1
    return group is not None


NEVER_USED = _('Tickets of "{product}" do not get pool secrets, so a secret restricted to it would never be used. '
               'Choose the product in the plugin settings first.')


def restriction_warnings(event, counts) -> list:
    """
    Warnings for secrets restricted to products that never draw from the pool (``counts``: product → number of
    secrets), which would stay unused. Not refusals: the organizer may choose the product in the settings later.
    The REST API, which has no place for warnings, refuses them instead (``refuse_never_used``).
    """
    return [
        ngettext(
            '{count} secret is restricted to "{product}", which does not get pool secrets – see the plugin settings.',
            '{count} secrets are restricted to "{product}", which does not get pool secrets – see the plugin '
            'settings.', count,
        ).format(count=count, product=str(item.name))
        for item, count in counts.items() if not draws_from_pool(event, item)
    ]


def refuse_never_used(event, rows, cleaned, errors, instance=None):
    """
    Where no warning can be shown (the REST API): refuse the rows that ``validation.clean_rows`` found valid
    (``cleaned``, ``errors``) but that are restricted to a product which never gets pool secrets, on the field that
    named it. A row that keeps the product of ``instance``, the secret being changed, is not refused again.
    """
    chosen = event.settings.secrets_import_products
    for index, (row, clean) in enumerate(zip(rows, cleaned)):
        item = clean["item"] if clean else None
        if item is None or item.pk == getattr(instance, "item_id", None) or draws(chosen, item.pk, item.admission):
            continue
        errors[index]["item" if row.get("item") is not None else "variation"] = [
            str(NEVER_USED).format(product=item.name)]
        cleaned[index] = None
