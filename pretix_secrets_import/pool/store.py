"""
The storage engine of the pools: the hand-written SQL that stores, finds, searches and counts pool secrets at any pool
size. The schema and the rules for a secret live in ``models.py``; this module only reads and writes.
"""
from typing import NamedTuple, Optional

from django.db import connections, models, router
from django.db.models import Func
from django.utils.timezone import now

from pretix.base.models import Event, OrderPosition

from pretix_secrets_import.models import ImportedSecret, PoolCount
from pretix_secrets_import.pool.rules import pk_of


class Group(NamedTuple):
    """
    A restriction group of a pool: the IDs of the product, variation and date its secrets are restricted to, ``None``
    for "any". Its field names are those of the API's summary and of the log entries.
    """
    item: Optional[int] = None
    variation: Optional[int] = None
    subevent: Optional[int] = None

    @classmethod
    def of(cls, obj) -> "Group":
        """The group of a pool secret or an alert (anything with ``item_id``, ``variation_id``, ``subevent_id``)."""
        return cls(obj.item_id, obj.variation_id, obj.subevent_id)

    def as_filter(self) -> dict:
        """The group as field values of a model with these three foreign keys."""
        return {"item_id": self.item, "variation_id": self.variation, "subevent_id": self.subevent}


class GroupCount(NamedTuple):
    """How many secrets a restriction group holds in total and unused."""
    group: Group
    total: int
    unused: int

    @property
    def used(self) -> int:
        return self.total - self.unused

    def as_dict(self) -> dict:
        """The shape of the summary API: the group's IDs and the counts ``total``, ``used``, ``unused``."""
        return {**self.group._asdict(), "total": self.total, "used": self.used, "unused": self.unused}


# Fold the counting rows once there are this many more rows than groups, so that summing them stays cheap.
COMPACT_AFTER = 500


def summary(event: Event) -> list:
    """
    A ``GroupCount`` per non-empty restriction group of ``event``'s pool, unrestricted groups first. Read from
    ``PoolCount``, so the cost does not grow with the pool. Shared by the pool page, the summary API, the list API's
    count, the quota cap, the order import check and the alerts.
    """
    return [GroupCount(Group(item or None, variation or None, subevent or None), total, unused)
            for item, variation, subevent, total, unused in read_counts(event.pk)]


def count(event: Event, used=None, item=None, variation=None, subevent=None, groups=None) -> int:
    """
    How many of ``event``'s secrets match the filters, from ``summary`` (or ``groups``, a summary the caller already
    read): ``None`` does not filter, an ID selects that product/variation/date, 0 selects secrets without that
    restriction.
    """
    field = {None: "total", True: "used", False: "unused"}[used]
    return sum(getattr(counted, field) for counted in matching(
        summary(event) if groups is None else groups, item=item, variation=variation, subevent=subevent))


def matching(groups, item=None, variation=None, subevent=None) -> list:
    """The ``GroupCount``s of ``groups`` (a summary) whose restriction matches the filters, as ``count`` takes them."""
    wanted = Group(item, variation, subevent)
    return [counted for counted in groups
            if all(value is None or (have or 0) == value for value, have in zip(wanted, counted.group))]


def read_counts(event_id) -> list:
    """``(item, variation, subevent, total, unused)`` of each non-empty group of the event, ordered by the IDs."""
    connection = connections[router.db_for_write(PoolCount)]
    table = connection.ops.quote_name(PoolCount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT item_id, variation_id, subevent_id, SUM(total), SUM(unused), COUNT(*) FROM {table} "
            f"WHERE event_id = %s GROUP BY item_id, variation_id, subevent_id "
            f"ORDER BY item_id, variation_id, subevent_id",
            [event_id],
        )
        rows = cursor.fetchall()
        if sum(row[5] for row in rows) > len(rows) + COMPACT_AFTER:
            _compact(cursor, table, event_id)
    return [(i, v, s, int(total), int(unused)) for i, v, s, total, unused, _rows in rows if total]


def _compact(cursor, table, event_id):
    # Folds only rows no other transaction is folding (SKIP LOCKED), so that it never waits, not even inside a
    # sale; differences that concurrent transactions add meanwhile stay as they are. The sums never change.
    cursor.execute(
        f"WITH gone AS (DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE event_id = %s "
        f"FOR UPDATE SKIP LOCKED) RETURNING item_id, variation_id, subevent_id, total, unused) "
        f"INSERT INTO {table} (event_id, item_id, variation_id, subevent_id, total, unused) "
        f"SELECT %s, item_id, variation_id, subevent_id, SUM(total), SUM(unused) FROM gone "
        # A subset of the rows (the others locked by another fold) can sum to 0 secrets and 1 unused one.
        f"GROUP BY item_id, variation_id, subevent_id HAVING SUM(total) <> 0 OR SUM(unused) <> 0",
        [event_id, event_id],
    )


class _OrZero(Func):
    """
    A restriction with "any" (NULL) as 0, as the allocation index stores it, with the 0 written into the SQL: SQLite
    only uses an expression index when the query's expression matches it literally, and ``Value(0)`` would become a
    bound parameter (the allocation query then reads the whole pool, see BENCHMARKS.md).
    """
    function = "COALESCE"
    template = "%(function)s(%(expressions)s, 0)"
    output_field = models.BigIntegerField()


def unused_in_group(event: Event, group: Group):
    """The unused secrets of one restriction group, in the shape the allocation index serves."""
    return ImportedSecret.objects.alias(
        group_item=_OrZero("item"), group_variation=_OrZero("variation"), group_subevent=_OrZero("subevent"),
    ).filter(
        event=event, used=False,
        group_item=group.item or 0, group_variation=group.variation or 0, group_subevent=group.subevent or 0,
    )


def _after_prefix(text: str):
    """The first string in code point order after every string that begins with ``text``; ``None``: there is none."""
    while text:
        following = ord(text[-1]) + 1
        if following == 0xD800:  # surrogates cannot be stored
            following = 0xE000
        if following <= 0x10FFFF:
            return text[:-1] + chr(following)
        text = text[:-1]
    return None


def starting_with(qs, text: str):
    """
    The secrets of ``qs`` that begin with ``text`` (an exact match included; upper and lower case differ), in a form
    the (event, secret) index answers. SQLite's LIKE ignores case and cannot use that index, so there the prefix
    becomes the range from ``text`` up to the next string that does not begin with it.
    """
    if connections[router.db_for_read(ImportedSecret)].vendor != "sqlite":
        return qs.filter(secret__startswith=text)
    qs = qs.filter(secret__gte=text)
    end = _after_prefix(text)
    return qs if end is None else qs.filter(secret__lt=end)


def _find(model, organizer_id, secrets, columns=("id",), by_secret=False) -> dict:
    """
    ``{secret: id}`` for those of ``secrets`` that rows of ``model`` (pool or tickets) of the organizer hold, through
    the unique (organizer, secret) index; with more ``columns`` than the ID, a tuple of their values. On PostgreSQL
    each secret of an array is looked up by a lateral subquery of its own, which is an index lookup whatever the table
    statistics say. A join or an IN list is planned from the statistics, which are outdated during and after a large
    import: the planner then reads all of the organizer's rows into a hash table (see BENCHMARKS.md). ``by_secret``:
    the lookup asks for the secret alone and the organizer outside it, for a table with an index of the secret alone
    beside one of the organizer alone (pretix' tickets), between which a planner without statistics may take the
    organizer's and read every row of the organizer per secret (1.6 s per 5,000 secrets among 2,700 tickets).
    """
    secrets = list(secrets)
    found = {}
    connection = connections[router.db_for_read(model)]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        # OFFSET 0 keeps the planner from turning the lateral subquery into a join it would plan from statistics.
        sql = "SELECT u.s, {f} FROM unnest(%s::text[]) AS u(s) CROSS JOIN LATERAL (SELECT {t}, t.{organizer} FROM " \
              "{table} t WHERE {inside} t.{secret} = u.s OFFSET 0) AS f WHERE f.{organizer} = %s"
        sql = sql.format(secret=quote("secret"), f=", ".join("f." + quote(c) for c in columns),
                         t=", ".join("t." + quote(c) for c in columns), table=quote(model._meta.db_table),
                         organizer=quote("organizer_id"), inside="" if by_secret else "t.organizer_id = %s AND")
        with connection.cursor() as cursor:
            for start in range(0, len(secrets), 5000):
                cursor.execute(sql, [secrets[start:start + 5000], *([] if by_secret else [organizer_id]),
                                     organizer_id])
                found.update((row[0], row[1] if len(row) == 2 else row[1:]) for row in cursor.fetchall())
        return found
    # The SQL the ORM would write for secret__in, without preparing each of a file's million values through it.
    sql = "SELECT {f} FROM {table} WHERE {organizer} = %s AND {secret} IN ({{}})".format(
        f=", ".join(map(quote, ("secret", *columns))), table=quote(model._meta.db_table),
        organizer=quote("organizer_id"), secret=quote("secret"))
    with connection.cursor() as cursor:
        for start in range(0, len(secrets), 1000):
            batch = secrets[start:start + 1000]
            cursor.execute(sql.format(", ".join(["%s"] * len(batch))), [organizer_id, *batch])
            found.update((row[0], row[1] if len(row) == 2 else row[1:]) for row in cursor.fetchall())
    return found


def ids_of(organizer_id, secrets) -> dict:
    """``{secret: id}`` for those of ``secrets`` that the organizer's pool holds."""
    return _find(ImportedSecret, organizer_id, secrets)


def holders(organizer_id, secrets) -> dict:
    """
    ``{secret: (id, event ID, product ID, variation ID, date ID)}`` for those of ``secrets`` that the organizer's pool
    holds: which pool secret, of which event, restricted to what (the fields of its ``Group``, as a plain tuple: a file
    import reads hundreds of thousands).
    """
    return _find(ImportedSecret, organizer_id, secrets,
                 columns=("id", "event_id", "item_id", "variation_id", "subevent_id"))


def in_pool(organizer_id, secrets, but=None) -> set:
    """Those of ``secrets`` that the organizer's pool holds, apart from the pool secret ``but``."""
    return {secret for secret, pk in ids_of(organizer_id, secrets).items() if but is None or pk != but.pk}


def on_tickets(organizer_id, secrets) -> set:
    """Those of ``secrets`` that tickets of the organizer carry (canceled ones included)."""
    return set(_find(OrderPosition, organizer_id, secrets, by_secret=True))


COLUMNS = ("organizer_id", "event_id", "secret", "used", "used_at", "item_id", "variation_id", "subevent_id",
           "created", "modified")


def insert_rows(event: Event, rows, skip_existing=False) -> dict:
    """
    Store rows cleaned by ``validation.clean_rows`` and return ``{secret: id}`` of the stored ones. With
    ``skip_existing``, rows whose secret the organizer's pool already holds are left out instead of failing the
    statement. The caller tells the alerts that the pool grew (``alerts.pool_grew``).

    Unlike ``bulk_create`` this builds no model instances: a file import stores up to millions of rows, and the
    instances would cost more time than the database does. PostgreSQL gets each column as one array
    (``INSERT ... SELECT FROM unnest(...)``, 5,000 rows per statement), which it parses faster than as many rows of
    ``VALUES``; SQLite gets a multi-row ``INSERT ... RETURNING`` per 1,000 rows (10,000 parameters, below its limit).
    """
    connection = connections[router.db_for_write(ImportedSecret)]
    timestamp = ImportedSecret._meta.get_field("created").get_db_prep_save(now(), connection)
    quote = connection.ops.quote_name
    head = "INSERT INTO {} ({}) ".format(quote(ImportedSecret._meta.db_table), ", ".join(map(quote, COLUMNS)))
    conflict = " ON CONFLICT ({}, {}) DO NOTHING".format(quote("organizer_id"), quote("secret"))
    tail = (conflict if skip_existing else "") + " RETURNING id, secret"
    insert = _insert_postgresql if connection.vendor == "postgresql" else _insert_sqlite
    ids = {}
    with connection.cursor() as cursor:
        for pk, secret in insert(cursor, head, tail, event, list(rows), timestamp):
            ids[secret] = pk
    return ids


def _insert_postgresql(cursor, head, tail, event, rows, timestamp):
    sql = head + (
        "SELECT %s, %s, u.secret, u.used, CASE WHEN u.used THEN %s::timestamptz END, u.item, u.variation, "
        "u.subevent, %s, %s FROM unnest(%s::text[], %s::boolean[], %s::bigint[], %s::bigint[], "
        "%s::bigint[]) AS u (secret, used, item, variation, subevent)"
    ) + tail
    for start in range(0, len(rows), 5000):
        batch = rows[start:start + 5000]
        cursor.execute(sql, [
            event.organizer_id, event.pk, timestamp, timestamp, timestamp,
            [row["secret"] for row in batch], [bool(row["used"]) for row in batch],
            [pk_of(row["item"]) for row in batch], [pk_of(row["variation"]) for row in batch],
            [pk_of(row["subevent"]) for row in batch],
        ])
        yield from cursor.fetchall()


def _insert_sqlite(cursor, head, tail, event, rows, timestamp):
    placeholder = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    columns = {}  # per used flag and restriction: the values after the secret (a file's rows share a few)
    for start in range(0, len(rows), 1000):
        batch = rows[start:start + 1000]
        params = []
        for row in batch:
            key = (row["used"], row["item"], row["variation"], row["subevent"])
            after = columns.get(key)
            if after is None:
                used, *restriction = key
                after = columns[key] = (bool(used), timestamp if used else None, *map(pk_of, restriction), timestamp,
                                        timestamp)
            params += (event.organizer_id, event.pk, row["secret"]) + after
        cursor.execute(head + "VALUES " + ", ".join([placeholder] * len(batch)) + tail, params)
        yield from cursor.fetchall()


def last_id() -> int:
    """The highest ID of any pool secret: the secrets stored after this call have higher ones."""
    return ImportedSecret.objects.with_scopes_disabled().aggregate(last=models.Max("id"))["last"] or 0


def copy_rows(event: Event, chunks) -> int:
    """
    PostgreSQL: store the chunks' secrets with one streamed ``COPY`` and return how many were stored. A chunk is a
    list of secrets and either their one restriction or a list with each one's, as a row cleaned by
    ``validation.clean_rows`` (``used``, ``item``, ``variation``, ``subevent``). ``COPY`` costs the database about two
    thirds of ``insert_rows``' statements, and the caller checks the next chunk while the database stores the last
    one. A secret the organizer's pool holds fails the whole statement (``IntegrityError``): the caller finds out
    which lines with ``insert_rows``.
    """
    connection = connections[router.db_for_write(ImportedSecret)]
    quote = connection.ops.quote_name
    timestamp = ImportedSecret._meta.get_field("created").get_db_prep_save(now(), connection)
    stream = _CopyStream(event, chunks, timestamp)
    sql = "COPY {} ({}) FROM STDIN".format(quote(ImportedSecret._meta.db_table), ", ".join(map(quote, COLUMNS)))
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.copy_expert(sql, stream)
    return stream.rows


class _CopyStream:
    """The rows as the text of ``COPY``, a chunk per ``read`` (psycopg2 sends what ``read`` returns, of any length)."""

    def __init__(self, event, chunks, timestamp):
        self.chunks, self.timestamp, self.rows = iter(chunks), timestamp, 0
        self.head = f"{event.organizer_id}\t{event.pk}\t"
        self.tails = {}  # per used flag and restriction: the columns after the secret

    def tail(self, row):
        key = (row["used"], row["item"], row["variation"], row["subevent"])  # instances compare by their IDs
        tail = self.tails.get(key)
        if tail is None:
            used, *restriction = key
            self.tails[key] = tail = "\t".join(["", "t" if used else "f", str(self.timestamp) if used else r"\N", *(
                r"\N" if value is None else str(pk_of(value)) for value in restriction), str(self.timestamp),
                str(self.timestamp)]) + "\n"
        return tail

    def read(self, _size=-1):
        secrets, restriction = next(self.chunks, ((), None))
        if not secrets:  # the end; a chunk without valid rows is never handed over
            return ""
        self.rows += len(secrets)
        # a valid secret has no whitespace or control characters: only the backslash needs escaping in COPY's text
        if "\\" in "".join(secrets):
            secrets = [secret.replace("\\", "\\\\") for secret in secrets]
        head = self.head
        if isinstance(restriction, dict):
            tail = self.tail(restriction)
            return head + (tail + head).join(secrets) + tail
        return "".join([head + secret + self.tail(row) for secret, row in zip(secrets, restriction)])


def on_tickets_after(event: Event, after: int, stored: int) -> bool:
    """
    Whether a ticket of the organizer carries a secret of ``event``'s pool with an ID above ``after``: the ``stored``
    ones of a ``copy_rows``, and any that others stored meanwhile. Set-based from the smaller side, the organizer's
    tickets or these secrets, each looked up in the other's (organizer, secret) index, as ``_find`` does.
    """
    connection = connections[router.db_for_read(ImportedSecret)]
    quote = connection.ops.quote_name
    pool_table, tickets = quote(ImportedSecret._meta.db_table), quote(OrderPosition._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {tickets} WHERE organizer_id = %s LIMIT %s) t",
                       [event.organizer_id, stored])
        if cursor.fetchone()[0] < stored:
            # The event and the ID are asked outside the subquery: inside, a planner with outdated statistics (right
            # after the COPY) took them for the index condition and read all of the import's rows per ticket.
            cursor.execute(
                f"SELECT 1 FROM {tickets} t CROSS JOIN LATERAL (SELECT p.event_id, p.id FROM {pool_table} p WHERE "
                f"p.organizer_id = t.organizer_id AND p.secret = t.secret OFFSET 0) f "
                f"WHERE t.organizer_id = %s AND f.event_id = %s AND f.id > %s LIMIT 1",
                [event.organizer_id, event.pk, after])
        else:
            cursor.execute(
                f"SELECT 1 FROM {pool_table} p CROSS JOIN LATERAL (SELECT 1 FROM {tickets} t WHERE t.organizer_id = "
                f"p.organizer_id AND t.secret = p.secret OFFSET 0) f WHERE p.event_id = %s AND p.id > %s LIMIT 1",
                [event.pk, after])
        return cursor.fetchone() is not None
