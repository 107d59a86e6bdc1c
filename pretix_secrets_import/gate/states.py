"""
The state of every secret as a gate needs it, derived from pretix' orders and kept current: every pool secret
(``GateState``), and every other ticket of an event with a pool (``TicketState``).

pretix writes a log entry on the order for everything that happens to it: placed, paid, approved, denied, marked
unpaid, canceled (also by canceling a date or the event), expired, reactivated, changed (product, date, a position
canceled, a secret regenerated), split. Each such entry makes the order's secrets be derived again from the order
as it is (``order_logged``): in the transaction that wrote the entry, so that the states commit with the change,
and again after the commit. Deleting a test-mode order voids its secrets in the deleting transaction
(``order_deleted``), since the positions are gone afterwards.

Which log entries change tickets is decided in ``order_actions.py``; the others cost nothing. ``gate_store.py``
writes the states.
"""
import logging
from datetime import timezone
from typing import Optional

from django.db import connection, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from django.utils.translation import pgettext_lazy
from django_scopes import scopes_disabled

from pretix.base.models import Order, OrderPosition

from pretix_secrets_import import after_commit
from pretix_secrets_import.gate.admission import INVALID, ticket_refusal
from pretix_secrets_import.gate.order_actions import (
    LOGGED_AFTER_THE_CHANGE, changes_tickets,
)
from pretix_secrets_import.gate.store import (  # noqa: F401 (CHANGED_ACTION: the gate's log entry, named here too)
    CHANGED_ACTION, LISTENS_SQL, POOL, TICKET_COLUMNS, TICKETS, changes_of,
    listens_params, write as store,
)
from pretix_secrets_import.models import GateState, ImportedSecret, TicketState

UNSOLD, RESERVED, PENDING, VALID, VOID = GateState.STATES
# Why a state changed; stable words that the feed, the webhooks and the exports give out.
SOLD, PAID, UNPAID, REACTIVATED = "sold", "paid", "unpaid", "reactivated"
CANCELED, EXPIRED, DENIED, REPLACED, DELETED = "canceled", "expired", "denied", "replaced", "deleted"
CHANGED, SPLIT, MARKED_USED, BLOCKED, UNBLOCKED = "changed", "split", "marked_used", "blocked", "unblocked"
REASONS = (SOLD, PAID, UNPAID, REACTIVATED, CANCELED, EXPIRED, DENIED, REPLACED, DELETED, CHANGED, SPLIT, MARKED_USED,
           BLOCKED, UNBLOCKED)
# The same words for people, in the gate lists (exports) and the manual; machines read the stable words above.
STATE_LABELS = {
    UNSOLD: pgettext_lazy("gate_state", "unsold"), RESERVED: pgettext_lazy("gate_state", "reserved"),
    PENDING: pgettext_lazy("gate_state", "pending"), VALID: pgettext_lazy("gate_state", "valid"),
    VOID: pgettext_lazy("gate_state", "void"),
}
REASON_LABELS = {
    SOLD: pgettext_lazy("gate_reason", "sold"), PAID: pgettext_lazy("gate_reason", "paid"),
    UNPAID: pgettext_lazy("gate_reason", "unpaid"), REACTIVATED: pgettext_lazy("gate_reason", "reactivated"),
    CANCELED: pgettext_lazy("gate_reason", "canceled"), EXPIRED: pgettext_lazy("gate_reason", "expired"),
    DENIED: pgettext_lazy("gate_reason", "denied"), REPLACED: pgettext_lazy("gate_reason", "replaced"),
    DELETED: pgettext_lazy("gate_reason", "deleted"), CHANGED: pgettext_lazy("gate_reason", "changed"),
    SPLIT: pgettext_lazy("gate_reason", "split"), MARKED_USED: pgettext_lazy("gate_reason", "marked used"),
    BLOCKED: pgettext_lazy("gate_reason", "blocked"), UNBLOCKED: pgettext_lazy("gate_reason", "unblocked"),
}

logger = logging.getLogger(__name__)


def ticket_state(order_status, require_approval, canceled) -> tuple:
    """The state of a secret on a ticket, and the reason it would have if it just got there."""
    if order_status == Order.STATUS_CANCELED:
        return VOID, DENIED if require_approval else CANCELED
    if order_status == Order.STATUS_EXPIRED:
        return VOID, EXPIRED
    if canceled:
        return VOID, CANCELED
    return (VALID, PAID) if order_status == Order.STATUS_PAID else (PENDING, SOLD)


def reason_for(old: Optional[dict], state, reason, ticket) -> Optional[str]:
    """Why ``old`` (a stored state) becomes ``state`` (``reason``: what ``ticket_state`` said); ``None``: no change."""
    if old is None:
        return reason
    if old["state"] == state:
        moved = {key for key, value in ticket.items() if old[key] != value}
        if not moved:
            return None
        if old["order_code"] is None:
            return old["reason"]  # the sale's order was stored: the same change, now with its ticket
        if "order_code" in moved:
            return SPLIT
        if "refusal" in moved and BLOCKED in (old["refusal"], ticket["refusal"]):
            return BLOCKED if ticket["refusal"] == BLOCKED else UNBLOCKED
        return CHANGED
    if old["state"] == VOID and state in (PENDING, VALID):
        return PAID if old["reason"] == EXPIRED and state == VALID else REACTIVATED
    if old["state"] == VALID and state == PENDING:
        return UNPAID
    if old["state"] == PENDING and state == VALID:
        return PAID
    return reason


@scopes_disabled()
def sync_orders(event_id, order_ids, status_only=False):
    """
    Derive the states of the secrets on the tickets of orders ``order_ids`` of event ``event_id``: pool secrets
    (``GateState``) and the others (``TicketState``); write changes.
    ``status_only``: only the orders' status changed, no secret left a ticket (``LOGGED_AFTER_THE_CHANGE``).
    """
    known = {POOL: {}, TICKETS: {}}
    wanted = {POOL: {}, TICKETS: {}}
    codes, listens = set(), None
    for row in _tickets(event_id, order_ids):
        listens = row["listens"]
        codes.add(row["order_code"])
        table, key, prefix = (POOL, row["pool_id"], "g_") if row["pool_id"] is not None else \
            (TICKETS, row["secret"], "t_")
        if row[prefix + "state"] is not None:
            known[table][key] = {column: row[prefix + column] for column in KNOWN_COLUMNS}
        wanted[table][key] = (*ticket_state(row["order_status"], row["require_approval"], row["canceled"]),
                              ticket_of(row))
    if codes and not status_only:
        _replaced(event_id, codes, known, wanted)
    return store(event_id, [(table, changes_of(known[table], wanted[table], reason_for)) for table in known],
                 listens)


def _replaced(event_id, codes, known, wanted):
    """
    Secrets that were on these orders' tickets and are no more: moved to another order by a split (that order's own
    log entry brings them up to date), or replaced by a new secret: void from now on.
    """
    gone = {}
    for table in (POOL, TICKETS):
        rows = table.model.objects.filter(event_id=event_id, order_code__in=codes).exclude(state=VOID)
        if table is POOL:
            rows = rows.exclude(secret_id__in=list(wanted[POOL])).select_related("secret")
        else:
            rows = rows.exclude(secret__in=list(wanted[TICKETS]))
        for state in rows:
            text = state.secret.secret if table is POOL else state.secret
            gone[text] = (table, getattr(state, table.key), state)
    if not gone:
        return
    moved = set(OrderPosition.all.filter(order__event_id=event_id, secret__in=list(gone)).values_list("secret",
                                                                                                      flat=True))
    for text, (table, key, state) in gone.items():
        if text not in moved:
            known[table][key] = as_known(state)
            wanted[table][key] = (VOID, REPLACED, {**as_known(state, TICKET_COLUMNS), "refusal": INVALID})


def _tickets(event_id, order_ids) -> list:
    """
    Every position of the orders (canceled ones too), with its pool secret's ID and stored state, or its
    ``TicketState``, where it has them, and whether a webhook listens. One statement: this runs for every logged
    order change, and the ORM's compiling cost more than the query (BENCHMARKS.md, cancel-date).
    """
    order_ids = list(order_ids)
    with connection.cursor() as cursor:
        cursor.execute(_TICKETS_SQL.format(ids=", ".join(["%s"] * len(order_ids))),
                       [*listens_params(event_id), event_id, event_id, *order_ids])
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    for row in rows:
        for column in ("valid_from", "valid_until", "g_valid_from", "g_valid_until", "t_valid_from", "t_valid_until"):
            row[column] = _datetime(row[column])
    return rows


def _datetime(value):
    """A date and time as raw SQL returns it (SQLite: text in UTC) as an aware ``datetime``."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return make_aware(value, timezone.utc) if value is not None and is_naive(value) else value


KNOWN_COLUMNS = ("state", "reason", *TICKET_COLUMNS)
_STATE_COLUMNS = ", ".join(f"{{alias}}.{column} AS {{alias}}_{column}" for column in KNOWN_COLUMNS)
_TICKETS_SQL = f"""
    SELECT p.secret, p.positionid, p.item_id, p.variation_id, p.subevent_id, p.canceled, p.blocked, p.valid_from,
           p.valid_until, o.code AS order_code, o.status AS order_status, o.require_approval, o.valid_if_pending,
           s.id AS pool_id, {_STATE_COLUMNS.format(alias="g")}, {_STATE_COLUMNS.format(alias="t")},
           EXISTS ({LISTENS_SQL}) AS listens
    FROM {OrderPosition._meta.db_table} p
    JOIN {Order._meta.db_table} o ON o.id = p.order_id
    LEFT JOIN {ImportedSecret._meta.db_table} s ON s.event_id = %s AND s.secret = p.secret
    LEFT JOIN {GateState._meta.db_table} g ON g.secret_id = s.id
    LEFT JOIN {TicketState._meta.db_table} t ON s.id IS NULL AND t.event_id = %s AND t.secret = p.secret
    WHERE p.order_id IN ({{ids}})
"""


def ticket_of(position) -> dict:
    """What a state keeps of the ticket ``position`` (a row of ``TICKET_VALUES``, or of ``_tickets``)."""
    blocked = position["blocked"] not in (None, "", "null", "[]", [])  # JSON; SQLite returns it as text
    return {"order_code": position["order_code"], "positionid": position["positionid"],
            "item_id": position["item_id"], "variation_id": position["variation_id"],
            "subevent_id": position["subevent_id"],
            "refusal": ticket_refusal(position["canceled"], position["order_status"], position["require_approval"],
                                      blocked),
            "valid_if_pending": bool(position["valid_if_pending"]),
            "valid_from": position["valid_from"], "valid_until": position["valid_until"]}


# The values of an ``OrderPosition`` that ``ticket_of`` reads, by the names it reads them under.
TICKET_VALUES = {"secret": "secret", "positionid": "positionid", "item_id": "item_id",
                 "variation_id": "variation_id", "subevent_id": "subevent_id", "canceled": "canceled",
                 "blocked": "blocked", "valid_from": "valid_from", "valid_until": "valid_until",
                 "order_code": "order__code", "order_status": "order__status",
                 "require_approval": "order__require_approval", "valid_if_pending": "order__valid_if_pending"}


def position_values(queryset, *extra):
    """``queryset`` of positions as rows that ``ticket_of`` and ``ticket_state`` read (and the fields ``extra``)."""
    plain = [name for name, path in TICKET_VALUES.items() if name == path]
    return queryset.values(*plain, *extra, **{name: F(path) for name, path in TICKET_VALUES.items() if name != path})


def as_known(state, columns=KNOWN_COLUMNS) -> dict:
    return {column: getattr(state, column) for column in columns}


def order_deleted(event, order):
    """pretix is about to delete the test-mode ``order``: its secrets are void from now on."""
    with scopes_disabled():
        positions = list(position_values(OrderPosition.all.filter(order=order)))
        pool_ids = dict(ImportedSecret.of_event(event).filter(secret__in=[p["secret"] for p in positions])
                        .values_list("secret", "pk"))
        parts = []
        for table in (POOL, TICKETS):
            keys = {p["secret"]: pool_ids.get(p["secret"]) if table is POOL else p["secret"] for p in positions
                    if (p["secret"] in pool_ids) == (table is POOL)}
            known = {getattr(s, table.key): as_known(s) for s in
                     table.model.objects.filter(event_id=event.pk, **{f"{table.key}__in": list(keys.values())})}
            wanted = {keys[p["secret"]]: (VOID, DELETED, {**ticket_of(p), "refusal": INVALID})
                      for p in positions if p["secret"] in keys}
            parts.append((table, changes_of(known, wanted, reason_for)))
        store(event.pk, parts)


def marked_used(event, secrets):
    """``secrets`` were stored as used through the API, on no ticket: given out elsewhere."""
    write(event.pk, {}, {secret.pk: (RESERVED, MARKED_USED, {
        "order_code": None, "positionid": None, "item_id": secret.item_id, "variation_id": secret.variation_id,
        "subevent_id": secret.subevent_id, "refusal": INVALID,
    }) for secret in secrets if secret.used})


def write(event_id, known, wanted, listens=None) -> dict:
    """
    Store ``wanted`` (pool secret ID: state, reason, ticket) where it differs from ``known`` (pool secret ID: a
    ``GateState``), as ``gate_store.write`` does.
    """
    known = {key: as_known(value) if isinstance(value, GateState) else value for key, value in known.items()}
    return store(event_id, [(POOL, changes_of(known, wanted, reason_for))], listens)


_events_with_pool = set()


def has_pool(event_id) -> bool:
    """
    Whether the event has (or had) pool secrets. Remembered once true: its secrets on tickets stay tracked when the
    pool is emptied later, and an event without a pool costs one indexed lookup per logged order change.
    """
    if event_id not in _events_with_pool and ImportedSecret.of_event(event_id).exists():
        _events_with_pool.add(event_id)
    return event_id in _events_with_pool


def order_logged(event_id, order_id, action_type):
    """
    pretix logged something on an order: derive the order's secrets right away, inside pretix' transaction, so that
    the new states commit with the change; and, unless the entry is one that pretix writes once the change is
    complete, again after the commit: pretix logs some changes before it makes them (an order change logs each
    operation, then regenerates secrets and cancels positions).
    """
    if not changes_tickets(action_type) or not has_pool(event_id):
        return
    final = action_type in LOGGED_AFTER_THE_CHANGE
    if transaction.get_connection().in_atomic_block:
        try:
            with transaction.atomic():  # a savepoint: a failure here must not break pretix' transaction
                sync_orders(event_id, [order_id], status_only=final)
            if final:
                return
        except Exception:
            logger.exception("Gate states of order %s could not be derived in its transaction", order_id)
    elif final:
        sync_orders(event_id, [order_id], status_only=True)  # logged after a committed change: read it now
        return
    schedule_order(event_id, order_id)


def schedule_order(event_id, order_id):
    """
    Derive the secrets of order ``order_id`` of event ``event_id`` again once the transaction has committed, once per
    order however many entries the transaction wrote.
    """
    after_commit.collect("gate_orders", _sync_after_commit, event_id, order_id)


def _sync_after_commit(orders_by_event):
    for event_id, order_ids in orders_by_event.items():
        sync_orders(event_id, order_ids)
