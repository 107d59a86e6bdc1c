"""
Which of the entries pretix logs on an order change its tickets as a gate sees them: whether a ticket exists, its
secret, product, date, validity window, block, and the order's status, approval and ``valid_if_pending``.

Only those make the plugin derive the order's gate states again (``gate.order_logged``); the others (check-ins,
emails, payments, invoices, comments, ...) cost nothing. ``tests/gate/test_order_actions.py`` fails when pretix
registers an order log type that neither list knows, so that an upgrade cannot slip a ticket change past the gate.
A type unknown at run time (a plugin's, or one pretix logs without registering it) counts as a change: deriving
once too often costs a few queries, missing a change costs a wrong answer at the gate.
"""
import functools

ORDER = "pretix.event.order."

# A type listed here, or starting with one that ends in ".", changes tickets.
CHANGES_TICKETS = tuple(ORDER + kind for kind in (
    "placed", "placed.require_approval", "paid", "unpaid", "approved", "denied", "canceled", "expired",
    "reactivated", "refunded", "deleted",
    # OrderChangeManager: every change (product, date, seat, add, cancel, split, block, secret, validity window,
    # and the fee or price changes that come with them) is logged as one of these.
    "changed.",
    "valid_if_pending",  # the order API's PATCH
    "valid_if_pending.set", "valid_if_pending.unset",  # the backend's "extend" form
    "pretix.event.order.valid_if_pending",  # registered by pretix under this doubled name
    "modified",  # the order API's PATCH of positions and attendee data
    "secret.changed",  # the order API's regenerate_secrets: the order's links and every ticket's secret
))

# A type listed here, or starting with one that ends in ".", changes no ticket.
CHANGES_NO_TICKET = (
    "pretix.event.checkin",  # every check-in entry: "pretix.event.checkin", ".denied", ".unknown", ...
    *(ORDER + kind for kind in (
        "email.", "invoice.", "payment.", "refund.", "data_sync.", "cancellationrequest.", "contact.",
        "comment", "checkin_attention", "checkin_text", "consent", "custom_followup_at", "customer.changed",
        "locale.changed", "phone.changed", "print", "position.email.custom_sent", "vatid.validated", "overpaid",
        "quotaexceeded",  # a payment that could not be confirmed: the order stays as it was
        "expirychanged",  # the payment deadline; valid_if_pending changed along is logged on its own
    )),
    "pretix.event.order.waitinglist.transferred",
    "pretix.plugins.",  # plugins change tickets through pretix' order services, which log the core types
)

# Written by pretix after the order's status has changed and been saved (pretix 2026.8; tests/gate/test_states.py covers
# each): deriving the secrets then sees the final state, no second look after the commit is needed.
LOGGED_AFTER_THE_CHANGE = frozenset(ORDER + kind for kind in (
    "placed", "placed.require_approval", "paid", "canceled", "expired", "approved", "denied", "reactivated",
))


def _matches(action_type, kinds) -> bool:
    return any(action_type == kind or (kind.endswith(".") and action_type.startswith(kind))
               or action_type.startswith(kind + ".") for kind in kinds)


@functools.lru_cache(maxsize=1024)
def classify(action_type):
    """``True`` (changes tickets), ``False`` (changes none) or ``None`` (neither list knows it)."""
    if _matches(action_type, CHANGES_NO_TICKET):
        return False
    if _matches(action_type, CHANGES_TICKETS):
        return True
    return None


def changes_tickets(action_type) -> bool:
    return classify(action_type) is not False
