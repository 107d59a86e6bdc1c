"""
The state of every pool secret as a gate needs it (``GateState``), derived from pretix' orders and kept current.

pretix writes a log entry on the order for everything that happens to it: placed, paid, approved, denied, marked
unpaid, canceled (also by canceling a date or the event), expired, reactivated, changed (product, date, a position
canceled, a secret regenerated), split. Each such entry makes the order's secrets be derived again from the order
as it is (``order_logged``): in the transaction that wrote the entry, so that the states commit with the change,
and again after the commit. Deleting a test-mode order voids its secrets in the deleting transaction
(``order_deleted``), since the positions are gone afterwards.

Every write carries the number of its transaction (``current_tx``), which the gate feed (``feed.py``) orders
changes by.
"""
import logging
from collections import Counter
from typing import NamedTuple, Optional

from django.db import connection, transaction
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix.api.models import WebHook, WebHookEventListener
from pretix.base.models import Event, Order, OrderPosition

from . import after_commit
from .models import GateState, ImportedSecret

UNSOLD, RESERVED, PENDING, VALID, VOID = GateState.STATES
# Why a state changed; stable words that the feed, the webhooks and the exports give out.
SOLD, PAID, UNPAID, REACTIVATED = "sold", "paid", "unpaid", "reactivated"
CANCELED, EXPIRED, DENIED, REPLACED, DELETED = "canceled", "expired", "denied", "replaced", "deleted"
CHANGED, SPLIT, MARKED_USED = "changed", "split", "marked_used"
REASONS = (SOLD, PAID, UNPAID, REACTIVATED, CANCELED, EXPIRED, DENIED, REPLACED, DELETED, CHANGED, SPLIT, MARKED_USED)

# The log entry this plugin writes on an order whose secrets changed state (the webhook's trigger).
CHANGED_ACTION = "pretix_secrets_import.gate.changed"

logger = logging.getLogger(__name__)


# PostgreSQL's ID of the current transaction, as a number (also inside the statements that write the states)
PG_TX = "pg_current_xact_id()::text::bigint"


def current_tx() -> int:
    """The number of the writing transaction: every change it writes carries it (``GateState.tx``)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT {PG_TX}")
        else:
            # SQLite runs one writer at a time, so the counter's order is the order of the commits. The row may be
            # missing after a flush of the tables (Django's transactional tests): then it starts again.
            cursor.execute("INSERT INTO pretix_secrets_import_feedclock (id, value) VALUES (1, 1) "
                           "ON CONFLICT (id) DO UPDATE SET value = value + 1 RETURNING value")
        return cursor.fetchone()[0]


def ticket_state(order_status, require_approval, canceled) -> tuple:
    """The state of a secret on a ticket, and the reason it would have if it just got there."""
    if order_status == Order.STATUS_CANCELED:
        return VOID, DENIED if require_approval else CANCELED
    if order_status == Order.STATUS_EXPIRED:
        return VOID, EXPIRED
    if canceled:
        return VOID, CANCELED
    return (VALID, PAID) if order_status == Order.STATUS_PAID else (PENDING, SOLD)


def reason_for(old: GateState, state, reason, ticket) -> str:
    """Why ``old`` becomes ``state`` (``reason``: what ``ticket_state`` said), or ``None`` if nothing changed."""
    if old is None:
        return reason
    if old.state == state:
        moved = {key: value for key, value in ticket.items() if getattr(old, key) != value}
        if not moved:
            return None
        if old.order_code is None:
            return old.reason  # the sale's order was stored: the same change, now with its ticket
        return SPLIT if "order_code" in moved else CHANGED
    if old.state == VOID and state in (PENDING, VALID):
        return PAID if old.reason == EXPIRED and state == VALID else REACTIVATED
    if old.state == VALID and state == PENDING:
        return UNPAID
    if old.state == PENDING and state == VALID:
        return PAID
    return reason


@scopes_disabled()
def sync_orders(event_id, order_ids, status_only=False):
    """
    Derive the states of the secrets on the tickets of orders ``order_ids`` of event ``event_id``; write changes.
    ``status_only``: only the orders' status changed, no secret left a ticket (``LOGGED_AFTER_THE_CHANGE``).
    """
    known, wanted, codes, listens = {}, {}, set(), None
    for row in _tickets(event_id, order_ids):
        position, secret_id, gate, listens = row[:9], row[9], row[10:17], row[17]
        codes.add(position[6])
        if secret_id is None:
            continue
        if gate[0] is not None:
            known[secret_id] = Known(*gate)
        p = dict(zip(TICKET_FIELDS, position))
        wanted[secret_id] = (*ticket_state(p["order__status"], p["order__require_approval"], p["canceled"]),
                             _ticket(p))
    # Secrets that were on these orders' tickets and are no more: moved to another order by a split (that order's
    # own log entry brings them up to date), or replaced by a new secret.
    gone = {s.secret_id: s for s in GateState.objects.filter(event_id=event_id, order_code__in=codes)
            .exclude(state=VOID).exclude(secret_id__in=list(wanted)).select_related("secret")} \
        if codes and not status_only else {}
    if gone:
        moved = set(OrderPosition.all.filter(order__event_id=event_id,
                                             secret__in=[s.secret.secret for s in gone.values()])
                    .values_list("secret", flat=True))
        for pk, state in gone.items():
            if state.secret.secret not in moved:
                known[pk] = state
                wanted[pk] = (VOID, REPLACED, _as_ticket(state))
    return write(event_id, known, wanted, listens)


class Known(NamedTuple):
    """The stored state of a secret as ``reason_for`` compares it (the fields of ``GateState`` it reads)."""
    state: str
    reason: str
    order_code: Optional[str]
    positionid: Optional[int]
    item_id: Optional[int]
    variation_id: Optional[int]
    subevent_id: Optional[int]


def _tickets(event_id, order_ids) -> list:
    """
    Every position of the orders (canceled ones too), with its pool secret's ID and stored state where it has them,
    and whether a webhook listens (``_webhook_listens``). Raw SQL in one statement: this runs for every logged order
    change, and the ORM's compiling cost more than the query (BENCHMARKS.md, cancel-date).
    """
    order_ids = list(order_ids)
    with connection.cursor() as cursor:
        cursor.execute(_TICKETS_SQL.format(ids=", ".join(["%s"] * len(order_ids))),
                       [*_listens_params(event_id), event_id, *order_ids])
        return cursor.fetchall()


def _tables():
    return dict(position=OrderPosition._meta.db_table, order=Order._meta.db_table, event=Event._meta.db_table,
                pool=ImportedSecret._meta.db_table, gate=GateState._meta.db_table,
                webhook=WebHook._meta.db_table, listener=WebHookEventListener._meta.db_table,
                limit=WebHook.limit_events.through._meta.db_table)


_TICKETS_SQL = """
    SELECT p.secret, p.positionid, p.item_id, p.variation_id, p.subevent_id, p.canceled, o.code, o.status,
           o.require_approval, s.id, g.state, g.reason, g.order_code, g.positionid, g.item_id, g.variation_id,
           g.subevent_id, EXISTS ({listens}) AS listens
    FROM {position} p
    JOIN {order} o ON o.id = p.order_id
    LEFT JOIN {pool} s ON s.event_id = %s AND s.secret = p.secret
    LEFT JOIN {gate} g ON g.secret_id = s.id
    WHERE p.order_id IN ({{ids}})
"""  # completed below _LISTENS_SQL


def order_deleted(event, order):
    """pretix is about to delete the test-mode ``order``: its pool secrets are void from now on."""
    with scopes_disabled():
        positions = list(OrderPosition.all.filter(order=order).values(*TICKET_FIELDS))
        rows = dict(ImportedSecret.of_event(event).filter(secret__in=[p["secret"] for p in positions])
                    .values_list("secret", "pk"))
        known = {s.secret_id: s for s in GateState.objects.filter(secret_id__in=list(rows.values()))}
        write(event.pk, known, {rows[p["secret"]]: (VOID, DELETED, _ticket(p))
                                for p in positions if p["secret"] in rows})


def marked_used(event, secrets):
    """``secrets`` were stored as used through the API, on no ticket: given out elsewhere."""
    write(event.pk, {}, {secret.pk: (RESERVED, MARKED_USED, {
        "order_code": None, "positionid": None, "item_id": secret.item_id, "variation_id": secret.variation_id,
        "subevent_id": secret.subevent_id,
    }) for secret in secrets if secret.used})


TICKET_FIELDS = ("secret", "positionid", "item_id", "variation_id", "subevent_id", "canceled", "order__code",
                 "order__status", "order__require_approval")


def _ticket(position) -> dict:
    return {"order_code": position["order__code"], "positionid": position["positionid"],
            "item_id": position["item_id"], "variation_id": position["variation_id"],
            "subevent_id": position["subevent_id"]}


def _as_ticket(state: GateState) -> dict:
    return {key: getattr(state, key) for key in TICKET_COLUMNS}


def write(event_id, known, wanted, listens=None) -> dict:
    """
    Store ``wanted`` (secret ID: state, reason, ticket) where it differs from ``known`` (secret ID: a ``GateState``
    or ``Known``), and log one entry per order whose secrets changed if a webhook listens (``listens``, looked up
    if ``None``). Returns the number of changes per order code.
    """
    changes = [(pk, known.get(pk), state, reason_for(known.get(pk), state, reason, ticket), ticket)
               for pk, (state, reason, ticket) in wanted.items()]
    changes = [change for change in changes if change[3] is not None]
    if not changes:
        return {}
    per_order = Counter(ticket["order_code"] for *_rest, ticket in changes)
    when = connection.ops.adapt_datetimefield_value(now())
    # the states, their transaction number and the webhook's log entry together (inside a transaction: its own)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            tx, tx_sql = None, PG_TX  # saves a statement per write
        else:
            tx, tx_sql = current_tx(), "%s"
        new, updated = [], []
        for pk, old, state, why, ticket in changes:
            if old is None:
                new.append([state, why, when, *([] if tx is None else [tx]), *(ticket[c] for c in TICKET_COLUMNS),
                            pk, event_id])
            else:
                updated.append([pk, state, why, *(ticket[c] for c in TICKET_COLUMNS)])
        # one statement per order however many tickets it has (in chunks within SQLite's limit of parameters)
        for rows in _chunks(new):
            cursor.execute(_INSERT_SQL.format(rows=", ".join([_INSERT_ROW.format(tx=tx_sql)] * len(rows))),
                           [value for row in rows for value in row])
        for rows in _chunks(updated):
            cursor.execute(_UPDATE_SQL.format(tx=tx_sql, rows=", ".join([_UPDATE_ROW] * len(rows))),
                           [when, *([] if tx is None else [tx]), *(value for row in rows for value in row)])
        codes = [code for code in per_order if code]
        if codes and (_webhook_listens(cursor, event_id) if listens is None else listens):
            cursor_value = str(current_tx() if tx is None else tx)
            for order in Order.objects.filter(event_id=event_id, code__in=codes):
                order.log_action(CHANGED_ACTION, data={"code": order.code, "cursor": cursor_value,
                                                       "changes": per_order[order.code]})
    return dict(per_order)


TICKET_COLUMNS = ("order_code", "positionid", "item_id", "variation_id", "subevent_id")

# Raw SQL: Django's bulk_update builds a CASE expression per field and row, which cost more than the statement.
_INSERT_SQL = """
    INSERT INTO {gate} (state, reason, changed, tx, order_code, positionid, item_id, variation_id, subevent_id,
                        secret_id, event_id)
    VALUES {{rows}}
""".format(**_tables())
_INSERT_ROW = "(%s, %s, %s, {tx}, %s, %s, %s, %s, %s, %s, %s)"
# VALUES names its columns column1, column2, ... on both databases; the casts type the NULLs for PostgreSQL.
_UPDATE_SQL = """
    UPDATE {gate} SET state = v.column2, reason = v.column3, changed = %s, tx = {{tx}}, order_code = v.column4,
                      positionid = v.column5, item_id = v.column6, variation_id = v.column7, subevent_id = v.column8
    FROM (VALUES {{rows}}) AS v
    WHERE {gate}.secret_id = v.column1
""".format(**_tables())
_UPDATE_ROW = "(%s, %s, %s, %s, CAST(%s AS bigint), CAST(%s AS bigint), CAST(%s AS bigint), CAST(%s AS bigint))"


def _chunks(rows, size=50):
    return (rows[start:start + size] for start in range(0, len(rows), size))


def _webhook_listens(cursor, event_id) -> bool:
    """
    Whether an enabled webhook of the organizer subscribes to gate changes of the event. The log entry that
    pretix' webhooks are sent for is only written then: it costs a write and pretix' webhook lookup per order.
    """
    cursor.execute(f"SELECT EXISTS ({_LISTENS_SQL})", _listens_params(event_id))
    return bool(cursor.fetchone()[0])


def _listens_params(event_id) -> list:
    return [event_id, CHANGED_ACTION, event_id]


_LISTENS_SQL = """
    SELECT 1 FROM {listener} l
    JOIN {webhook} w ON w.id = l.webhook_id
    JOIN {event} e ON e.organizer_id = w.organizer_id AND e.id = %s
    WHERE l.action_type = %s AND w.enabled
      AND (w.all_events OR EXISTS (SELECT 1 FROM {limit} le WHERE le.webhook_id = w.id AND le.event_id = %s))
""".format(**_tables())
_TICKETS_SQL = _TICKETS_SQL.format(listens=_LISTENS_SQL, **_tables())


# Log entries on an order that never change its tickets or their secrets (a status change is logged on its own).
UNRELATED_ACTIONS = tuple(f"pretix.event.order.{kind}" for kind in (
    "email.", "invoice.", "payment.", "refund.", "comment", "contact.", "checkin_text", "checkin_attention",
    "consent", "custom_followup_at", "data_sync.", "cancellationrequest.",
))


# Written by pretix after the order's status has changed and been saved (pretix 2026.8; tests/test_gate.py covers
# each): deriving the secrets then sees the final state, no second look after the commit is needed.
LOGGED_AFTER_THE_CHANGE = frozenset(f"pretix.event.order.{kind}" for kind in (
    "placed", "placed.require_approval", "paid", "canceled", "expired", "approved", "denied", "reactivated",
))


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
    if action_type.startswith(UNRELATED_ACTIONS) or not has_pool(event_id):
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
