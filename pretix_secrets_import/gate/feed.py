"""
The gate feed: every pool secret with its state (``gate.py``), as a full sync in pool order, and as polls for what
changed after a cursor.

Every change carries the number of the transaction that wrote it (``GateState.tx``). On PostgreSQL a cursor is the
snapshot of the read that made it: the first transaction number not yet started then (``pg_snapshot_xmax``) and the
transactions still running then (``pg_snapshot_xip``). Whatever any other transaction wrote was committed and seen
by that read; so a poll returns the changes with a number at or above the first, or of one of the running ones.
A change of a transaction that was running at the cursor can thus arrive twice (once it is seen, and again in the
next poll), never zero times, whatever order transactions commit in; a transaction that writes no gate states
(another event, another database on the server) adds nothing. With nothing running, a poll returns exactly what
changed after the cursor. On SQLite writers take turns and number their changes by a counter
(``gate.current_tx``); the cursor is the counter's next value.

Pages are keyset pages (by ID for a full sync, by transaction number and ID for a poll): each costs the same however
large the pool is. The links of the following pages carry the first page's cursor along, so that a change committed
behind a page already read is in the next poll.
"""
from typing import NamedTuple, Optional

from django.db import connection
from django.db.models import Q

from pretix_secrets_import import paging
from pretix_secrets_import.gate.states import RESERVED, UNSOLD
from pretix_secrets_import.models import GateState, ImportedSecret
from pretix_secrets_import.pool import store as pool

PAGE_SIZE = 100
MAX_PAGE_SIZE = 5000  # a full sync of a million secrets in 200 requests


# The code of an answer that tells the gate to drop its cursor and sync again from the start (409, or 400 for a
# cursor that cannot be read).
SYNC_AGAIN = "sync_again"


class FeedError(ValueError):
    """A parameter the feed cannot use: ``field`` and ``message`` for the 400 answer (``code``: ``SYNC_AGAIN``)."""

    def __init__(self, field, message, code=None):
        super().__init__(message)
        self.field, self.code = field, code


class SyncAgain(Exception):
    """The cursor cannot be answered: the gate must sync again without it (409, ``SYNC_AGAIN``)."""


MAX_RUNNING = 10000  # transactions a cursor may name as running: far above any server's connection limit


def horizon() -> str:
    """The cursor of a read starting now (see above): the first transaction number to come, then the running ones."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmax(s)::text, ARRAY(SELECT pg_snapshot_xip(s)::text ORDER BY 1) "
                           "FROM pg_current_snapshot() s")
            first, running = cursor.fetchone()
            return ".".join([first, *running])
        cursor.execute("SELECT coalesce(max(value), 0) + 1 FROM pretix_secrets_import_feedclock")
        return str(cursor.fetchone()[0])


def _cursor(field, value):
    """A cursor as (first number to come, running numbers); 400 for anything this feed did not give out."""
    parts = value.split(".")
    if len(parts) > MAX_RUNNING + 1:
        raise FeedError(field, "Use the value of the answer's cursor or of its next link.", SYNC_AGAIN)
    numbers = [_number(field, part) for part in parts]
    if any(running >= numbers[0] for running in numbers[1:]):
        raise FeedError(field, "Use the value of the answer's cursor or of its next link.", SYNC_AGAIN)
    return numbers[0], numbers[1:]


def check_issued(cursor, now, since=0):
    """
    409 for a cursor this server cannot have issued (ahead of ``now``, the current horizon: a restored database,
    another server), or one from before ``since`` (a check-in list changed since).
    """
    first, _running = cursor
    if first > int(now.split(".")[0]):
        raise SyncAgain("This cursor is ahead of the server (was the database restored?). Sync again without it.")
    if first < since:
        raise SyncAgain("The check-in list changed after this cursor was issued. Sync again without it.")


def _number(field, value, parts=1):
    try:
        numbers = [int(part) for part in value.split("-")]
    except ValueError:
        numbers = []
    if len(numbers) != parts or any(n < 0 or n >= 2 ** 63 for n in numbers):
        if field in ("cursor", "horizon", "after"):
            raise FeedError(field, "Use the value of the answer's cursor or of its next link.", SYNC_AGAIN)
        raise FeedError(field, "Must be a whole number.")
    return numbers if parts > 1 else numbers[0]


def iso(moment) -> Optional[str]:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def entry(secret: ImportedSecret, gate: GateState = None) -> dict:
    """One secret of the feed, with its gate state (``None``: it never changed)."""
    if gate is None:
        return {"id": secret.pk, "secret": secret.secret, "state": RESERVED if secret.used else UNSOLD,
                "reason": None, "changed": None, "item": secret.item_id, "variation": secret.variation_id,
                "subevent": secret.subevent_id, "order": None, "positionid": None}
    return {"id": secret.pk, "secret": secret.secret, "state": gate.state, "reason": gate.reason,
            "changed": iso(gate.changed), "item": gate.item_id, "variation": gate.variation_id,
            "subevent": gate.subevent_id, "order": gate.order_code, "positionid": gate.positionid}


def _full_sync_filter(state, subevent, item=None):
    q = Q()
    if state is not None:
        if state in (UNSOLD, RESERVED):
            q &= Q(gate__isnull=True, used=state == RESERVED) | Q(gate__state=state)
        else:
            q &= Q(gate__state=state)
    if subevent is not None:
        q &= Q(gate__isnull=True, subevent_id=subevent) | Q(gate__subevent_id=subevent)
    if item is not None:
        q &= Q(gate__isnull=True, item_id=item) | Q(gate__item_id=item)
    return q


class Query(NamedTuple):
    """The parameters of a feed request, checked."""
    state: Optional[str]
    subevent: Optional[int]
    item: Optional[int]
    size: int
    cursor: Optional[tuple]
    after: Optional[str]
    horizon: Optional[str]
    compact: bool = False


def parse(params) -> Query:
    """The query ``params`` (``cursor``, ``state``, ``subevent``, ``item``, ``page_size``, ``compact``, and the
    ``after`` and ``horizon`` of a next link) checked: ``FeedError`` for one that cannot be used."""
    state = params.get("state") or None
    if state is not None and state not in GateState.STATES:
        raise FeedError("state", f"Must be one of: {', '.join(GateState.STATES)}.")
    subevent = _number("subevent", params["subevent"]) if params.get("subevent") else None
    item = _number("item", params["item"]) if params.get("item") else None
    size = _number("page_size", params["page_size"]) if params.get("page_size") else PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise FeedError("page_size", f"Must be between 1 and {MAX_PAGE_SIZE}.")
    cursor = _cursor("cursor", params["cursor"]) if params.get("cursor") else None
    if params.get("horizon"):
        _cursor("horizon", params["horizon"])
    compact = str(params.get("compact") or "false").lower()
    if compact not in ("true", "1", "false", "0"):
        raise FeedError("compact", 'Must be "true" or "false".')
    return Query(state, subevent, item, size, cursor, params.get("after") or None, params.get("horizon") or None,
                 compact in ("true", "1"))


def shown(query, results):
    """The entries as the query asks: whole, or (``compact``) without the keys whose value is null."""
    if not query.compact:
        return results
    return [{key: value for key, value in entry.items() if value is not None} for entry in results]


def taken(query, since=0) -> str:
    """
    The cursor this request hands out: the first page's, carried along by the next links. The first page checks the
    cursor asked with (409 for one the server never issued, or one from before ``since``).
    """
    if query.horizon:
        return query.horizon
    now = horizon()
    if query.cursor is not None:
        check_issued(query.cursor, now, since)
    return now


def page(params, count, results, after, taken, carry=None) -> dict:
    """A page of the feed: ``next_params`` (``None`` on the last page) carry the cursor (and ``carry``) along."""
    next_params = None
    if after is not None:
        next_params = {key: value for key, value in params.items() if key not in ("after", "horizon")}
        next_params.update(after=after, horizon=taken, **(carry or {}))
    return {"count": count, "results": results, "cursor": taken, "next_params": next_params}


def read(event, params) -> dict:
    """One page of the pool's feed for the query ``params`` (``parse``): ``results``, ``count``, ``cursor`` and
    ``next_params``."""
    query = parse(params)
    cursor = taken(query)
    if query.cursor is None:
        count, results, after = _full_sync_page(event, query)
    else:
        count, results, after = _poll_page(event, query)
    return page(params, count, shown(query, results), after, cursor)


def _full_sync_page(event, query):
    """The pool in ID order: the count, a page of entries, and where the next page starts (``None``: none)."""
    after, size = query.after, query.size
    filtered = query.state is not None or query.subevent is not None or query.item is not None
    qs = paging.in_pool_order(event)
    if filtered:
        qs = qs.select_related("gate").filter(_full_sync_filter(query.state, query.subevent, query.item))
    count = qs.count() if filtered else pool.count(event)
    if after is not None:
        qs = qs.filter(pk__gt=_number("after", after))
    rows, more = paging.forward(qs, size)
    if filtered:
        gates = {row.pk: getattr(row, "gate", None) for row in rows}
    else:
        # The page's states by their keys: joined to the page, PostgreSQL hashed all of the event's states
        # (29 ms for a page of a million-secret pool instead of 5 ms).
        gates = GateState.objects.in_bulk([row.pk for row in rows])
    results = [entry(row, gates.get(row.pk)) for row in rows]
    return count, results, str(rows[-1].pk) if more else None


def changes(model, event, query):
    """The states of ``model`` changed after the query's cursor, filtered as it asks."""
    first, running = query.cursor
    qs = model.objects.filter(Q(tx__gte=first) | Q(tx__in=running), event=event)
    for field, value in (("state", query.state), ("subevent_id", query.subevent), ("item_id", query.item)):
        if value is not None:
            qs = qs.filter(**{field: value})
    return qs


def _poll_page(event, query):
    """The changes after the cursor in the order they were made: as ``_full_sync_page``."""
    after, size = query.after, query.size
    qs = changes(GateState, event, query)
    count = qs.count()
    if after is not None:
        tx, pk = _number("after", after, parts=2)
        qs = qs.filter(Q(tx__gt=tx) | Q(tx=tx, secret_id__gt=pk))
    gates, more = paging.forward(qs.select_related("secret").order_by("tx", "secret_id"), size)
    results = [entry(gate.secret, gate) for gate in gates]
    return count, results, f"{gates[-1].tx}-{gates[-1].secret_id}" if more else None


# pretix lets a device read only the API routes its security profile lists. The pool's feed carries what a scanner
# that syncs the orders for offline scanning reads there anyway (``order-list``, which pretix' "online only, no order
# sync" and kiosk profiles leave out): the secrets and whether they admit. A check-in list's feed carries what a
# scanner that checks in and reads a list's tickets (``checkinlistpos-list``) may learn: so every profile that lists
# both lists the feed too, and the view (``api.py``) lets such a device read only the feed of a check-in list. The
# kiosk profile, which may not read a list's tickets, gets neither.
FEED_ROUTE = ("GET", "api-v1:importedsecret-gate-feed")
OFFLINE_SYNC_ROUTE = ("GET", "api-v1:order-list")
CHECKIN_ROUTES = (("POST", "api-v1:checkinrpc.redeem"), ("GET", "api-v1:checkinlistpos-list"))


def _profiles():
    from pretix.api.auth.devicesecurity import AllowListSecurityProfile

    profiles, seen = [AllowListSecurityProfile], []
    while profiles:
        profile = profiles.pop()
        if profile not in seen:
            seen.append(profile)
            profiles.extend(profile.__subclasses__())
    return seen


def allow_for_scanners():
    for profile in _profiles():
        allowed = profile.__dict__.get("allowlist", ())
        if FEED_ROUTE not in allowed and (OFFLINE_SYNC_ROUTE in allowed or all(r in allowed for r in CHECKIN_ROUTES)):
            profile.allowlist = tuple(allowed) + (FEED_ROUTE,)


def device_may_read_pool(device) -> bool:
    """Whether ``device``'s security profile lets it read the pool's feed (not only a check-in list's)."""
    from pretix.api.auth.devicesecurity import get_all_security_profiles

    profile = get_all_security_profiles().get(device.security_profile)
    allowlist = getattr(profile, "allowlist", None)
    return profile is None or allowlist is None or OFFLINE_SYNC_ROUTE in allowlist
