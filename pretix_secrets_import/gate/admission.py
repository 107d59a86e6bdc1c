"""
What pretix' check-in answers for a secret on a check-in list: ``checkinrpc/redeem`` as a gate would call it, leaving
out only what depends on the moment of the scan (the validity window, which the feed hands to the gate, earlier
check-ins and entry counts) and what a gate cannot evaluate (the list's custom rules, questions asked at check-in).

The rules are pretix' own, in the order ``pretix.base.services.checkin.perform_checkin`` applies them; the lookup of
the secret is that of ``pretix.api.views.checkin._redeem_process`` (only positions that are not canceled, and of the
list's date, count). ``tests/gate/test_admission.py`` fails when pretix changes either function, and
``tests/gate/test_list_feed.py`` compares every answer with pretix' own simulated check-in.
"""
import hashlib
import json
from typing import NamedTuple, Optional

from pretix.base.models import Order

# pretix' reason codes (``Checkin.REASON_*``, with ``canceled_supported`` as checkinrpc/redeem sets it)
INVALID, CANCELED, BLOCKED, UNAPPROVED, PRODUCT, UNPAID = (
    "invalid", "canceled", "blocked", "unapproved", "product", "unpaid")
REFUSALS = (INVALID, CANCELED, BLOCKED, UNAPPROVED, PRODUCT, UNPAID)


def ticket_refusal(position_canceled, order_status, require_approval, blocked) -> Optional[str]:
    """The answer for a ticket whatever the list: ``None`` unless pretix refuses it on every list."""
    if position_canceled:
        return INVALID  # pretix looks secrets up among the positions that are not canceled
    if order_status not in (Order.STATUS_PAID, Order.STATUS_PENDING):
        return CANCELED
    if blocked:
        return BLOCKED
    if order_status == Order.STATUS_PENDING and require_approval:
        return UNAPPROVED
    return None


class Scope(NamedTuple):
    """What of a check-in list decides its answers."""
    id: int
    all_products: bool
    products: frozenset
    subevent_id: Optional[int]
    include_pending: bool
    rules: bool
    addon_match: bool

    @classmethod
    def of(cls, checkinlist) -> "Scope":
        return cls(checkinlist.pk, checkinlist.all_products,
                   frozenset(checkinlist.limit_products.values_list("pk", flat=True)),
                   checkinlist.subevent_id, checkinlist.include_pending, bool(checkinlist.rules),
                   checkinlist.addon_match)

    def fingerprint(self, rules) -> str:
        """Changes whenever an answer of the list may change (its custom rules included, ``rules``)."""
        data = [self.all_products, sorted(self.products), self.subevent_id, self.include_pending, rules,
                self.addon_match]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def refusal(scope: Scope, ticket, ignore_unpaid=False) -> Optional[str]:
    """
    pretix' answer on the list ``scope`` for a secret (``None``: admitted), from what the gate feed keeps of it
    (``ticket``: ``refusal``, ``state``, ``item_id``, ``subevent_id``, ``valid_if_pending``; ``refusal`` must be
    ``INVALID`` for a secret on no ticket). ``ignore_unpaid`` is checkinrpc/redeem's parameter of that name.
    """
    if scope.subevent_id is not None and ticket["subevent_id"] != scope.subevent_id:
        return INVALID  # pretix looks secrets up among the list's date only
    if ticket["refusal"]:
        return ticket["refusal"]
    if not scope.all_products and ticket["item_id"] not in scope.products:
        return PRODUCT
    if ticket["state"] == "pending" and not ticket["valid_if_pending"] and not (
            ignore_unpaid and scope.include_pending):
        return UNPAID
    return None
