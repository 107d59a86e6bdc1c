"""
Storing gate states (``GateState`` for pool secrets, ``TicketState`` for the other tickets of an event with a pool):
raw SQL, one statement per table and order however many tickets it has, since this runs for every logged order
change (BENCHMARKS.md, cancel-date: Django's ``bulk_update`` built a CASE expression per field and row that cost more
than the statement). Every write carries the number of its transaction (``current_tx``), which the gate feed orders
changes by.
"""
from collections import Counter
from typing import NamedTuple

from django.db import connection, transaction
from django.utils.timezone import now

from pretix.api.models import WebHook, WebHookEventListener
from pretix.base.models import Event, Order

from pretix_secrets_import.models import GateState, TicketState

# The log entry this plugin writes on an order whose secrets changed state (the webhook's trigger).
CHANGED_ACTION = "pretix_secrets_import.gate.changed"

# What a state keeps of the ticket its secret is or was on (``TicketFacts``), in the order of the statements below.
TICKET_COLUMNS = ("order_code", "positionid", "item_id", "variation_id", "subevent_id", "refusal",
                  "valid_if_pending", "valid_from", "valid_until")
FACT_DEFAULTS = {"refusal": None, "valid_if_pending": False, "valid_from": None, "valid_until": None}
_DATETIMES = ("valid_from", "valid_until")

# PostgreSQL's ID of the current transaction, as a number (also inside the statements that write the states)
PG_TX = "pg_current_xact_id()::text::bigint"


def current_tx() -> int:
    """The number of the writing transaction: every change it writes carries it (``TicketFacts.tx``)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT {PG_TX}")
        else:
            # SQLite runs one writer at a time, so the counter's order is the order of the commits. The row may be
            # missing after a flush of the tables (Django's transactional tests): then it starts again.
            cursor.execute("INSERT INTO pretix_secrets_import_feedclock (id, value) VALUES (1, 1) "
                           "ON CONFLICT (id) DO UPDATE SET value = value + 1 RETURNING value")
        return cursor.fetchone()[0]


class Table(NamedTuple):
    """One of the two tables of states: its key column (``secret_id``: the pool's ID; ``secret``: the text)."""
    model: type
    key: str

    @property
    def name(self):
        return self.model._meta.db_table

    def insert_sql(self, rows, tx_sql):
        row = f"(%s, %s, %s, {tx_sql}, {', '.join(['%s'] * len(TICKET_COLUMNS))}, %s, %s)"
        return (f"INSERT INTO {self.name} (state, reason, changed, tx, {', '.join(TICKET_COLUMNS)}, {self.key}, "
                f"event_id) VALUES {', '.join([row] * rows)}")

    def update_sql(self, rows, tx_sql):
        # VALUES names its columns column1, column2, ...; the casts type the NULLs for PostgreSQL.
        sets = ", ".join(f"{column} = v.column{i + 4}" for i, column in enumerate(TICKET_COLUMNS))
        row = "(%s, %s, %s, %s, CAST(%s AS bigint), CAST(%s AS bigint), CAST(%s AS bigint), CAST(%s AS bigint), " \
              "%s, %s, CAST(%s AS timestamp with time zone), CAST(%s AS timestamp with time zone))"
        if connection.vendor != "postgresql":
            row = row.replace(" AS timestamp with time zone", " AS text")
        return (f"UPDATE {self.name} SET state = v.column2, reason = v.column3, changed = %s, tx = {tx_sql}, {sets} "
                f"FROM (VALUES {', '.join([row] * rows)}) AS v "
                f"WHERE {self.name}.event_id = %s AND {self.name}.{self.key} = v.column1")


POOL, TICKETS = Table(GateState, "secret_id"), Table(TicketState, "secret")


def changes_of(known, wanted, reason_for) -> list:
    """(key, old, state, reason, ticket) for each of ``wanted`` that differs from ``known``."""
    changes = []
    for key, (state, reason, ticket) in wanted.items():
        ticket = {**FACT_DEFAULTS, **ticket}
        why = reason_for(known.get(key), state, reason, ticket)
        if why is not None:
            changes.append((key, known.get(key), state, why, ticket))
    return changes


def write(event_id, parts, listens=None) -> dict:
    """
    Store ``parts`` (table, changes from ``changes_of``), and log one entry per order whose secrets changed if a
    webhook listens (``listens``, looked up if ``None``). Returns the number of changes per order code.
    """
    per_order = Counter(ticket["order_code"] for _table, changes in parts for *_rest, ticket in changes)
    if not per_order:
        return {}
    when = connection.ops.adapt_datetimefield_value(now())
    # the states, their transaction number and the webhook's log entry together (inside a transaction: its own)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            tx, tx_sql = None, PG_TX  # saves a statement per write
        else:
            tx, tx_sql = current_tx(), "%s"
        for table, changes in parts:
            _store(cursor, table, changes, event_id, when, tx, tx_sql)
        codes = [code for code in per_order if code]
        if codes and (_webhook_listens(cursor, event_id) if listens is None else listens):
            cursor_value = str(current_tx() if tx is None else tx)
            for order in Order.objects.filter(event_id=event_id, code__in=codes):
                order.log_action(CHANGED_ACTION, data={"code": order.code, "cursor": cursor_value,
                                                       "changes": per_order[order.code]})
    return dict(per_order)


def _store(cursor, table, changes, event_id, when, tx, tx_sql):
    new, updated = [], []
    for key, old, state, why, ticket in changes:
        values = [connection.ops.adapt_datetimefield_value(ticket[c]) if c in _DATETIMES else ticket[c]
                  for c in TICKET_COLUMNS]
        if old is None:
            new.append([state, why, when, *([] if tx is None else [tx]), *values, key, event_id])
        else:
            updated.append([key, state, why, *values])
    for rows in _chunks(new):
        cursor.execute(table.insert_sql(len(rows), tx_sql), [value for row in rows for value in row])
    for rows in _chunks(updated):
        cursor.execute(table.update_sql(len(rows), tx_sql),
                       [when, *([] if tx is None else [tx]), *(value for row in rows for value in row), event_id])


def _chunks(rows, size=50):
    """Rows in chunks within SQLite's limit of parameters per statement."""
    return (rows[start:start + size] for start in range(0, len(rows), size))


def _webhook_listens(cursor, event_id) -> bool:
    """
    Whether an enabled webhook of the organizer subscribes to gate changes of the event. The log entry that
    pretix' webhooks are sent for is only written then: it costs a write and pretix' webhook lookup per order.
    """
    cursor.execute(f"SELECT EXISTS ({LISTENS_SQL})", listens_params(event_id))
    return bool(cursor.fetchone()[0])


def listens_params(event_id) -> list:
    return [event_id, CHANGED_ACTION, event_id]


LISTENS_SQL = """
    SELECT 1 FROM {listener} l
    JOIN {webhook} w ON w.id = l.webhook_id
    JOIN {event} e ON e.organizer_id = w.organizer_id AND e.id = %s
    WHERE l.action_type = %s AND w.enabled
      AND (w.all_events OR EXISTS (SELECT 1 FROM {limit} le WHERE le.webhook_id = w.id AND le.event_id = %s))
""".format(listener=WebHookEventListener._meta.db_table, webhook=WebHook._meta.db_table, event=Event._meta.db_table,
           limit=WebHook.limit_events.through._meta.db_table)
