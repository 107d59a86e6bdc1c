"""
The gate feed of one check-in list (``?checkinlist=ID``): every pool secret of the event and every other ticket of
the list's products and dates, each with pretix' check-in answer on that list (``admission.py``) and the ticket's
validity window. A complete list of what to admit and what to refuse at that entrance.

A full sync reads pretix' tickets as they are now: first the pool in ID order, then the other tickets in position
order. Polls deliver the stored states (``gate.py``) that changed after the cursor, pool and other tickets merged in
the order of their transactions; a poll delivers every changed ticket of the event, also one no longer on the list
(refused as ``product``). The list's settings are kept with the feed's transaction number they were first answered
with (``ListVersion``): a cursor from before a change of them is answered 409, the gate syncs again.
"""
import json

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from pretix.base.models import OrderPosition

from pretix_secrets_import import paging
from pretix_secrets_import.gate import feed
from pretix_secrets_import.gate.admission import INVALID, Scope, refusal
from pretix_secrets_import.gate.feed import FeedError, _number, iso
from pretix_secrets_import.gate.states import (
    position_values, ticket_of, ticket_state,
)
from pretix_secrets_import.gate.store import TICKET_COLUMNS, current_tx
from pretix_secrets_import.models import (
    GateState, ImportedSecret, ListVersion, TicketState,
)
from pretix_secrets_import.pool import store as pool

POOL_PART, TICKETS_PART = 0, 1


def read(event, checkinlist, params, ignore_unpaid=False) -> dict:
    """One page of the list's feed for the query ``params`` (``feed.parse``), as ``feed.read``, plus ``rules``."""
    query = feed.parse(params)
    if query.state is not None:
        raise FeedError("state", "Not available with checkinlist: use the entries' admit and refusal.")
    scope, since = scope_of(checkinlist)
    cursor = feed.taken(query, since)
    carry = None
    if query.cursor is None:
        count, results, after = _full_sync_page(event, scope, query, ignore_unpaid, params.get("total"))
        carry = {"total": count}
    else:
        count, results, after = _poll_page(event, scope, query, ignore_unpaid)
    return {**feed.page(params, count, feed.shown(query, results), after, cursor, carry), "rules": scope.rules}


def scope_of(checkinlist):
    """The list's ``Scope``, and the feed transaction number from which on its settings are as they are now."""
    scope = Scope.of(checkinlist)
    fingerprint = scope.fingerprint(json.dumps(checkinlist.rules, sort_keys=True))
    version = ListVersion.objects.filter(checkinlist=checkinlist).first()
    if version is None or version.fingerprint != fingerprint:
        with transaction.atomic():
            since = current_tx() + 1  # every cursor issued before this is older than the settings
            ListVersion.objects.update_or_create(checkinlist=checkinlist,
                                                 defaults={"fingerprint": fingerprint, "since": since})
        return scope, since
    return scope, version.since


def answer(scope, ticket, ignore_unpaid) -> dict:
    """What the list's feed adds to an entry: pretix' answer and the validity window."""
    refused = refusal(scope, ticket, ignore_unpaid)
    return {"admit": refused is None, "refusal": refused, "valid_from": iso(ticket.get("valid_from")),
            "valid_until": iso(ticket.get("valid_until"))}


NOT_ON_A_TICKET = {"refusal": INVALID, "state": None, "item_id": None, "subevent_id": None, "valid_if_pending": False}


def _full_sync_page(event, scope, query, ignore_unpaid, total):
    part, after = _after(query.after, 2)
    results = []
    if part == POOL_PART:
        results, after = _pool_page(event, scope, query, ignore_unpaid, after)
        part = POOL_PART if after is not None else TICKETS_PART
    if part == TICKETS_PART:
        if len(results) < query.size:
            more, after = _tickets_page(event, scope, query, ignore_unpaid, after, query.size - len(results))
            results += more
        elif after is None and _other_tickets(event, scope, query).exists():
            after = 0  # the pool filled this page: the next one starts with the other tickets
    count = _number("total", total) if total else _full_sync_count(event, scope, query)
    return count, results, f"{part}-{after}" if after is not None else None


def _after(value, parts):
    if value is None:
        return (0,) * (parts - 1) + (None,)
    numbers = _number("after", value, parts=parts)
    return (*numbers[:-1], numbers[-1])


def _pool_secrets(event, query):
    qs = paging.in_pool_order(event)
    if query.subevent is not None or query.item is not None:
        qs = qs.filter(feed._full_sync_filter(None, query.subevent, query.item))
    return qs


def _pool_page(event, scope, query, ignore_unpaid, after):
    """A page of the pool in ID order, each secret answered from the ticket it is on now."""
    qs = _pool_secrets(event, query)
    if after is not None:
        qs = qs.filter(pk__gt=after)
    page, more = paging.forward(qs, query.size)
    gates = GateState.objects.in_bulk([row.pk for row in page])
    # Only a secret that has been on a ticket has a state with an order: the others are on none.
    on_tickets = [row.secret for row in page if getattr(gates.get(row.pk), "order_code", None) is not None]
    tickets = {p["secret"]: p for p in position_values(
        OrderPosition.all.filter(order__event=event, secret__in=on_tickets))} if on_tickets else {}
    results = []
    for row in page:
        position = tickets.get(row.secret)
        ticket = NOT_ON_A_TICKET if position is None else {
            **ticket_of(position), "state": ticket_state(position["order_status"], position["require_approval"],
                                                         position["canceled"])[0]}
        results.append({**feed.entry(row, gates.get(row.pk)), **answer(scope, ticket, ignore_unpaid)})
    return results, page[-1].pk if more else None


def _other_tickets(event, scope, query):
    """The tickets of the list's products and dates whose secret is not from the pool."""
    in_pool = ImportedSecret.of_event(event).filter(organizer_id=event.organizer_id, secret=OuterRef("secret"))
    qs = OrderPosition.all.filter(order__event=event).filter(~Exists(in_pool))
    if not scope.all_products:
        qs = qs.filter(item_id__in=scope.products)
    for field, value in (("subevent_id", scope.subevent_id), ("subevent_id", query.subevent),
                         ("item_id", query.item)):
        if value is not None:
            qs = qs.filter(**{field: value})
    return qs


def _tickets_page(event, scope, query, ignore_unpaid, after, size):
    qs = _other_tickets(event, scope, query)
    if after is not None:
        qs = qs.filter(pk__gt=after)
    rows, more = paging.forward(position_values(qs.order_by("pk"), "pk"), size)
    results = [_ticket_entry(scope, row, ignore_unpaid) for row in rows]
    return results, rows[-1]["pk"] if more else None


def _ticket_entry(scope, position, ignore_unpaid) -> dict:
    state, reason = ticket_state(position["order_status"], position["require_approval"], position["canceled"])
    ticket = {**ticket_of(position), "state": state}
    return _other_entry(position["secret"], state, reason, None, ticket, scope, ignore_unpaid)


def _other_entry(secret, state, reason, changed, ticket, scope, ignore_unpaid) -> dict:
    """An entry of a ticket whose secret is not from the pool (``ticket``: as ``gate.ticket_of`` gives it)."""
    return {"id": None, "secret": secret, "state": state, "reason": reason, "changed": iso(changed),
            "item": ticket["item_id"], "variation": ticket["variation_id"], "subevent": ticket["subevent_id"],
            "order": ticket["order_code"], "positionid": ticket["positionid"], **answer(scope, ticket, ignore_unpaid)}


def _full_sync_count(event, scope, query):
    secrets = _pool_secrets(event, query).count() if query.subevent or query.item else pool.count(event)
    return secrets + _other_tickets(event, scope, query).count()


def _poll_page(event, scope, query, ignore_unpaid):
    """The changes after the cursor, pool secrets and other tickets, in the order of their transactions."""
    tx, part, key = _after(query.after, 3)
    size = query.size
    pool_qs, tickets_qs = feed.changes(GateState, event, query), feed.changes(TicketState, event, query)
    count = pool_qs.count() + tickets_qs.count()
    if key is not None:
        pool_qs = pool_qs.filter(Q(tx__gt=tx) | Q(tx=tx, secret_id__gt=key) if part == POOL_PART else Q(tx__gt=tx))
        tickets_qs = tickets_qs.filter(Q(tx__gt=tx) | Q(tx=tx, id__gt=key) if part == TICKETS_PART
                                       else Q(tx__gte=tx))
    rows = sorted(
        [(g.tx, POOL_PART, g.secret_id, g) for g in pool_qs.select_related("secret").order_by("tx", "secret_id")
         [:size + 1]]
        + [(t.tx, TICKETS_PART, t.id, t) for t in tickets_qs.order_by("tx", "id")[:size + 1]],
        key=lambda row: row[:3])[:size + 1]
    results = [_changed_entry(scope, state, part, ignore_unpaid) for _tx, part, _key, state in rows[:size]]
    last = rows[size - 1] if len(rows) > size else None
    return count, results, f"{last[0]}-{last[1]}-{last[2]}" if last else None


def _changed_entry(scope, state, part, ignore_unpaid) -> dict:
    ticket = {field: getattr(state, field) for field in ("state", *TICKET_COLUMNS)}
    if part == POOL_PART:
        return {**feed.entry(state.secret, state), **answer(scope, ticket, ignore_unpaid)}
    return _other_entry(state.secret, state.state, state.reason, state.changed, ticket, scope, ignore_unpaid)
