import re

from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.models import CASCADE, F, Func, Q, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _, pgettext_lazy
from django_scopes import ScopedManager

from pretix.base.models import (
    Event, Item, ItemVariation, LoggedModel, OrderPosition, SubEvent,
)

SECRET_MAX_LENGTH = 255  # pretix' OrderPosition.secret column
DB_ID_MAX = 2 ** 63 - 1  # pretix uses BigAutoField; larger numbers would overflow database lookups
ALREADY_IMPORTED = _("This secret has already been imported for this organizer.")
REPEATED = _("This secret appears more than once in your input (first in {label}).")


WHITESPACE = re.compile(r"\s")  # the same characters as str.isspace(), checked in C: a file import checks millions


def validate_secret(value):
    """The format rule for one secret; uniqueness is checked set-based in ImportedSecret.clean_rows."""
    if not isinstance(value, str) or not value:
        raise ValidationError(_("The secret must not be empty."), code="blank")
    if len(value) > SECRET_MAX_LENGTH:
        raise ValidationError(
            _("The secret must not be longer than %(max)s characters."),
            code="max_length", params={"max": SECRET_MAX_LENGTH},
        )
    if WHITESPACE.search(value):
        raise ValidationError(_("The secret must not contain whitespace."), code="whitespace")
    if not value.isprintable():
        raise ValidationError(_("The secret must only contain printable characters."), code="unprintable")


def _all_valid_and_distinct(secrets) -> bool:
    """
    Whether every one of ``secrets`` passes ``validate_secret`` and none repeats, checked for all at once in C (a file
    import checks millions); when not, the caller checks each secret to say which ones fail.
    """
    if not secrets or not all(type(s) is str for s in secrets):
        return False
    joined = "".join(secrets)
    return (
        min(map(len, secrets)) > 0 and max(map(len, secrets)) <= SECRET_MAX_LENGTH
        and joined.isprintable() and not WHITESPACE.search(joined) and len(set(secrets)) == len(secrets)
    )


def keep_used_delete_unused(collector, field, sub_objs, using):
    """
    on_delete for the product, variation and date a secret is restricted to. An unused secret goes away with
    its restriction (turning it into an unrestricted one would hand it to the wrong tickets). A used secret
    must survive, because it is printed on a ticket: it only loses the reference.
    """
    collector.add_field_update(field, None, sub_objs.filter(used=True))
    CASCADE(collector, field, sub_objs.filter(used=False), using)


keep_used_delete_unused.lazy_sub_objs = True


def _find_secrets(model, organizer_id, secrets) -> dict:
    """
    ``{secret: id}`` for those of ``secrets`` that rows of ``model`` (pool or tickets) of the organizer hold, through
    the unique (organizer, secret) index. On PostgreSQL each secret of an array is looked up by a lateral subquery of
    its own, which is an index lookup whatever the table statistics say. A join or an IN list is planned from the
    statistics, which are outdated during and after a large import: the planner then reads all of the organizer's
    rows into a hash table (0.5 s instead of 6 ms per 500 secrets right after importing 300,000).
    """
    secrets = list(secrets)
    found = {}
    connection = connections[router.db_for_read(model)]
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        # OFFSET 0 keeps the planner from turning the lateral subquery into a join it would plan from statistics.
        sql = "SELECT u.s, f.{id} FROM unnest(%s::text[]) AS u(s) CROSS JOIN LATERAL (SELECT t.{id} FROM {table} t " \
              "WHERE t.{organizer} = %s AND t.{secret} = u.s OFFSET 0) AS f"
        sql = sql.format(secret=quote("secret"), id=quote("id"), table=quote(model._meta.db_table),
                         organizer=quote("organizer_id"))
        with connection.cursor() as cursor:
            for start in range(0, len(secrets), 5000):
                cursor.execute(sql, [secrets[start:start + 5000], organizer_id])
                found.update(cursor.fetchall())
        return found
    manager = model.all if model is OrderPosition else model.objects
    for start in range(0, len(secrets), 1000):
        batch = secrets[start:start + 1000]
        found.update(manager.filter(organizer_id=organizer_id, secret__in=batch).order_by().values_list("secret", "pk"))
    return found


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


def _pk(value):
    return getattr(value, "pk", value)


def _or_zero(field):
    """A restriction with "any" (NULL) as 0, for index definitions."""
    return Coalesce(field, Value(0), output_field=models.BigIntegerField())


class _OrZero(Func):
    """
    The same as ``_or_zero`` in queries, with the 0 written into the SQL: SQLite only uses an expression index when
    the query's expression matches it literally, and ``Value(0)`` would become a bound parameter (measured: the
    allocation query read the whole pool, 87 ms for 1,000,000 secrets, instead of one index entry).
    """
    function = "COALESCE"
    template = "%(function)s(%(expressions)s, 0)"
    output_field = models.BigIntegerField()


class ImportedSecret(LoggedModel):
    """
    One entry of an event's pool of imported ticket secrets.

    ``organizer`` duplicates ``event.organizer`` so that the database can enforce that a secret is unique
    within the organizer, as pretix requires for ticket secrets.
    """
    organizer = models.ForeignKey(
        "pretixbase.Organizer", on_delete=models.CASCADE, related_name="+",
        # The unique (organizer, secret) index serves lookups by organizer. A separate index would also make
        # SQLite, which keeps no statistics, scan all of an organizer's secrets to check a few.
        db_index=False,
    )
    event = models.ForeignKey(
        "pretixbase.Event", on_delete=models.CASCADE, related_name="imported_secrets",
        db_index=False,  # covered by the composite indexes below
    )
    secret = models.CharField(max_length=SECRET_MAX_LENGTH, validators=[validate_secret],
                              verbose_name=pgettext_lazy("ticket_secret", "Secret"))
    used = models.BooleanField(default=False, verbose_name=_("Used"))
    used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("Used at"))
    item = models.ForeignKey(
        "pretixbase.Item", null=True, blank=True, on_delete=keep_used_delete_unused, related_name="+",
        verbose_name=_("Product"),
    )
    variation = models.ForeignKey(
        "pretixbase.ItemVariation", null=True, blank=True, on_delete=keep_used_delete_unused, related_name="+",
        verbose_name=_("Product variation"),
    )
    subevent = models.ForeignKey(
        "pretixbase.SubEvent", null=True, blank=True, on_delete=keep_used_delete_unused, related_name="+",
        verbose_name=pgettext_lazy("subevent", "Date"),
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    objects = ScopedManager(organizer="organizer")

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["organizer", "secret"], name="importedsecret_organizer_secret_uniq"),
        ]
        indexes = [
            # Allocation: the first unused secret of an event for an exact restriction, in import order. NULL
            # ("any") is indexed as 0 so that every restriction is an equality: PostgreSQL cannot read the index in
            # id order after "IS NULL" conditions and would sort all unused secrets of the group instead.
            models.Index(
                F("event"), _or_zero("item"), _or_zero("variation"), _or_zero("subevent"), F("id"),
                condition=Q(used=False),
                name="importedsecret_alloc_idx",
            ),
            # Listing an event's pool in import order, optionally filtered by the used flag.
            models.Index(fields=["event", "id"], name="importedsecret_event_idx"),
            models.Index(fields=["event", "used", "id"], name="importedsecret_event_used_idx"),
            # Looking secrets up by their beginning (the pool page's search, the API's secret filter). PostgreSQL
            # needs the pattern operator class for LIKE 'abc%' whatever the database's collation; SQLite ignores it.
            models.Index(fields=["event", "secret"], opclasses=["int8_ops", "varchar_pattern_ops"],
                         name="importedsecret_search_idx"),
        ]

    def __str__(self):
        return self.secret

    @classmethod
    def of_event(cls, event: Event):
        """
        The event's pool. The event already belongs to one organizer, so this leaves out the organizer condition the
        scoped manager would add: with it, PostgreSQL without fresh statistics combined two bitmap scans over the whole
        organizer's pool and sorted them (350 ms for one list page of a 1,000,000-secret pool instead of 0.1 ms).
        """
        return cls.objects.with_scopes_disabled().filter(event=event)

    @classmethod
    def starting_with(cls, qs, text: str):
        """
        The secrets of ``qs`` that begin with ``text`` (an exact match included; upper and lower case differ), in a
        form the (event, secret) index answers. SQLite's LIKE ignores case and cannot use that index, so there the
        prefix becomes the range from ``text`` up to the next string that does not begin with it.
        """
        if connections[router.db_for_read(cls)].vendor != "sqlite":
            return qs.filter(secret__startswith=text)
        qs = qs.filter(secret__gte=text)
        end = _after_prefix(text)
        return qs if end is None else qs.filter(secret__lt=end)

    @classmethod
    def unused_in_group(cls, event: Event, item_id=None, variation_id=None, subevent_id=None):
        """The unused secrets of one restriction group (``None`` = any), in the shape the allocation index serves."""
        return cls.objects.alias(
            group_item=_OrZero("item"), group_variation=_OrZero("variation"), group_subevent=_OrZero("subevent"),
        ).filter(
            event=event, used=False,
            group_item=item_id or 0, group_variation=variation_id or 0, group_subevent=subevent_id or 0,
        )

    @classmethod
    def summary(cls, event: Event):
        """
        How many secrets ``event``'s pool holds per restriction group (product, variation, date), as a list of dicts
        with the IDs ``item``, ``variation``, ``subevent`` and the counts ``total``, ``used``, ``unused``,
        unrestricted groups first. Read from ``PoolCount``, so the cost does not grow with the pool. Shared by the
        pool page, the summary API, the list API's count and the alerts.
        """
        return [
            {"item": item or None, "variation": variation or None, "subevent": subevent or None,
             "total": total, "used": total - unused, "unused": unused}
            for item, variation, subevent, total, unused in PoolCount.groups(event.pk)
        ]

    @classmethod
    def count(cls, event: Event, used=None, item=None, variation=None, subevent=None, groups=None) -> int:
        """
        How many of ``event``'s secrets match the filters, from ``summary`` (or ``groups``, a summary the caller
        already read): ``None`` does not filter, an ID selects that product/variation/date, 0 selects secrets
        without that restriction.
        """
        wanted = {"item": item, "variation": variation, "subevent": subevent}
        field = {None: "total", True: "used", False: "unused"}[used]
        return sum(
            group[field] for group in (cls.summary(event) if groups is None else groups)
            if all(value is None or (group[key] or 0) == value for key, value in wanted.items())
        )

    @classmethod
    def clean_rows(cls, event: Event, rows, instance=None, labels=None, check_pool=True):
        """
        Validate rows to be stored in ``event``'s pool, set-based: a fixed number of queries for any number of rows.

        Each row is a dict with ``secret`` and optionally ``used``, ``item``, ``variation``, ``subevent`` (each an
        ID, a model instance or ``None``). ``instance`` is the secret being changed, if any.

        ``labels`` names each row in messages (default: "entry 1", "entry 2", ...). With ``check_pool=False`` the
        caller leaves the check against the pool to ``insert_rows(..., skip_existing=True)``, which a file import
        does: the unique index answers it while storing the rows, whatever the table statistics say.

        Returns ``(cleaned, errors)``: ``cleaned`` holds one dict per row with model instances in place of IDs
        (``None`` for invalid rows), ``errors`` one dict per row mapping field names to lists of messages (empty
        for valid rows). This is the single place where the rules of the pool live; the API, the file import and
        the backend forms all call it.
        """
        rows = list(rows)
        errors = [{} for _ in rows]

        def add_error(index, field, message):
            errors[index].setdefault(field, []).append(message)

        item_ids, variation_ids, subevent_ids = set(), set(), set()
        for row in rows:
            for key, ids in (("item", item_ids), ("variation", variation_ids), ("subevent", subevent_ids)):
                if row.get(key) is not None:
                    ids.add(_pk(row[key]))
        items = {i.pk: i for i in Item.objects.filter(event=event, pk__in=item_ids)} if item_ids else {}
        variations = {
            v.pk: v
            for v in ItemVariation.objects.filter(item__event=event, pk__in=variation_ids).select_related("item")
        } if variation_ids else {}
        subevents = {
            s.pk: s for s in SubEvent.objects.filter(event=event, pk__in=subevent_ids)
        } if subevent_ids and event.has_subevents else {}

        def label(index):
            return labels[index] if labels is not None else _("entry {number}").format(number=index + 1)

        secrets = [row.get("secret") for row in rows]
        secrets_seen = {}
        if not _all_valid_and_distinct(secrets):
            for index, secret in enumerate(secrets):
                try:
                    validate_secret(secret)
                except ValidationError as e:
                    add_error(index, "secret", e.messages[0])
                else:
                    if secret in secrets_seen:
                        add_error(index, "secret", REPEATED.format(label=label(secrets_seen[secret])))
                    else:
                        secrets_seen[secret] = index
        else:
            secrets_seen = secrets

        existing_secrets = set()
        if check_pool:
            existing_secrets = {
                secret for secret, pk in cls.ids_of(event.organizer_id, secrets_seen).items()
                if instance is None or pk != instance.pk
            }
        ticket_secrets = set(_find_secrets(OrderPosition, event.organizer_id, secrets_seen))
        taken = existing_secrets | ticket_secrets
        restricted = item_ids or variation_ids or subevent_ids

        cleaned = []
        for index, row in enumerate(rows):
            secret = secrets[index]
            if not (taken or restricted):  # the common case of a file import: nothing to look up per row
                cleaned.append(None if errors[index] else {
                    "secret": secret, "used": bool(row.get("used", False)), "item": None, "variation": None,
                    "subevent": None,
                })
                continue
            if secret in existing_secrets:
                add_error(index, "secret", ALREADY_IMPORTED)
            elif secret in ticket_secrets:
                add_error(index, "secret", _("This secret is already used by a ticket of this organizer."))

            item = variation = subevent = None
            item_id, variation_id, subevent_id = _pk(row.get("item")), _pk(row.get("variation")), \
                _pk(row.get("subevent"))
            if item_id is not None:
                item = items.get(item_id)
                if item is None:
                    add_error(index, "item", _('Invalid pk "{pk}" - object does not exist.').format(pk=item_id))
            if variation_id is not None:
                variation = variations.get(variation_id)
                if variation is None:
                    add_error(index, "variation", _('Invalid pk "{pk}" - object does not exist.').format(
                        pk=variation_id))
                elif item is None and "item" not in errors[index]:
                    item = variation.item
                elif item is not None and variation.item_id != item.pk:
                    add_error(index, "variation", _("The variation does not belong to the selected product."))
            if subevent_id is not None:
                if not event.has_subevents:
                    add_error(index, "subevent", _("This event is not an event series, so secrets cannot be "
                                                   "restricted to a date."))
                else:
                    subevent = subevents.get(subevent_id)
                    if subevent is None:
                        add_error(index, "subevent", _('Invalid pk "{pk}" - object does not exist.').format(
                            pk=subevent_id))

            if errors[index]:
                cleaned.append(None)
            else:
                cleaned.append({
                    "secret": secret,
                    "used": bool(row.get("used", False)),
                    "item": item,
                    "variation": variation,
                    "subevent": subevent,
                })
        return cleaned, errors

    @classmethod
    def build(cls, event: Event, row: dict):
        """An unsaved secret for ``event`` from a row cleaned by ``clean_rows``."""
        secret = cls(event=event, organizer_id=event.organizer_id, **row)
        if secret.used:
            secret.used_at = now()
        return secret

    @classmethod
    def ids_of(cls, organizer_id, secrets) -> dict:
        """``{secret: id}`` for those of ``secrets`` that the organizer's pool holds."""
        return _find_secrets(cls, organizer_id, secrets)

    @classmethod
    def insert_rows(cls, event: Event, rows, skip_existing=False) -> dict:
        """
        Store rows cleaned by ``clean_rows`` and return ``{secret: id}`` of the stored ones. With ``skip_existing``,
        rows whose secret the organizer's pool already holds are left out instead of failing the statement.

        Unlike ``bulk_create`` this builds no model instances: a file import stores up to millions of rows, and the
        instances would cost more time than the database does. PostgreSQL gets each column as one array
        (``INSERT ... SELECT FROM unnest(...)``, 5,000 rows per statement), which it parses 2-3x faster than as many
        rows of ``VALUES``; SQLite gets a multi-row ``INSERT ... RETURNING`` per 1,000 rows (10,000 parameters,
        below its limit).
        """
        columns = ("organizer_id", "event_id", "secret", "used", "used_at", "item_id", "variation_id",
                   "subevent_id", "created", "modified")
        connection = connections[router.db_for_write(cls)]
        timestamp = cls._meta.get_field("created").get_db_prep_save(now(), connection)
        quote = connection.ops.quote_name
        head = "INSERT INTO {} ({}) ".format(quote(cls._meta.db_table), ", ".join(map(quote, columns)))
        conflict = " ON CONFLICT ({}, {}) DO NOTHING".format(quote("organizer_id"), quote("secret")) \
            if skip_existing else ""
        ids = {}
        rows = list(rows)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                sql = head + (
                    "SELECT %s, %s, u.secret, u.used, CASE WHEN u.used THEN %s::timestamptz END, u.item, u.variation, "
                    "u.subevent, %s, %s FROM unnest(%s::text[], %s::boolean[], %s::bigint[], %s::bigint[], "
                    "%s::bigint[]) AS u (secret, used, item, variation, subevent)"
                ) + conflict + " RETURNING id, secret"
                for start in range(0, len(rows), 5000):
                    batch = rows[start:start + 5000]
                    cursor.execute(sql, [
                        event.organizer_id, event.pk, timestamp, timestamp, timestamp,
                        [row["secret"] for row in batch], [bool(row["used"]) for row in batch],
                        [_pk(row["item"]) for row in batch], [_pk(row["variation"]) for row in batch],
                        [_pk(row["subevent"]) for row in batch],
                    ])
                    ids.update((secret, pk) for pk, secret in cursor.fetchall())
                return ids
            placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
            for start in range(0, len(rows), 1000):
                batch = rows[start:start + 1000]
                params = []
                for row in batch:
                    params += [
                        event.organizer_id, event.pk, row["secret"], bool(row["used"]),
                        timestamp if row["used"] else None, _pk(row["item"]), _pk(row["variation"]),
                        _pk(row["subevent"]), timestamp, timestamp,
                    ]
                values = "VALUES " + ", ".join([placeholder] * len(batch))
                cursor.execute(head + values + conflict + " RETURNING id, secret", params)
                ids.update((secret, pk) for pk, secret in cursor.fetchall())
        return ids

    def as_row(self) -> dict:
        """This secret in the shape of a row, with IDs for the restrictions (API input/output, log data)."""
        return {
            "secret": self.secret,
            "used": self.used,
            "item": self.item_id,
            "variation": self.variation_id,
            "subevent": self.subevent_id,
        }

    def apply(self, row: dict):
        """Change this secret to a row cleaned by ``clean_rows``."""
        if row["used"] and not self.used:
            self.used_at = now()
        for field, value in row.items():
            setattr(self, field, value)


class PoolAlert(models.Model):
    """
    The running-low alert was sent for this restriction group of an event's pool; deleting the row re-arms it.

    Of two sales that leave the group below the threshold at the same time, only the one that stores this row alerts.
    """
    event = models.ForeignKey(
        "pretixbase.Event", on_delete=models.CASCADE, related_name="+",
        db_index=False,  # the unique index starts with the event
    )
    item = models.ForeignKey("pretixbase.Item", null=True, on_delete=models.CASCADE, related_name="+")
    variation = models.ForeignKey("pretixbase.ItemVariation", null=True, on_delete=models.CASCADE, related_name="+")
    subevent = models.ForeignKey("pretixbase.SubEvent", null=True, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(organizer="event__organizer")

    class Meta:
        constraints = [
            # NULL means "any"; unique constraints take NULLs as distinct (nulls_distinct=False needs PostgreSQL 15
            # and does not exist on SQLite), so the index compares them as 0.
            models.UniqueConstraint(
                F("event"), _or_zero("item"), _or_zero("variation"), _or_zero("subevent"),
                name="poolalert_group_uniq",
            ),
        ]


class PoolCount(models.Model):
    """
    Counts of an event's pool per restriction group (``0`` = any), kept by database triggers on ``ImportedSecret``
    (migration 0005), so that every way of writing secrets, including cascades and raw SQL, keeps them right.

    Read it only summed per group (``groups``): on PostgreSQL each statement adds a row of differences instead of
    updating one row per group, so that concurrent sales never wait for each other's lock on a shared counter row.
    ``groups`` folds the differences into one row per group once they pile up. On SQLite, where writers never run
    concurrently, the triggers update one row per group. Django rebuilds a SQLite table for some schema changes,
    which drops its triggers: a migration that alters ``ImportedSecret`` must create them again.
    """
    event_id = models.BigIntegerField()
    item_id = models.BigIntegerField()
    variation_id = models.BigIntegerField()
    subevent_id = models.BigIntegerField()
    total = models.BigIntegerField()
    unused = models.BigIntegerField()

    # Fold the differences once there are this many more rows than groups: summing them stays well below 1 ms.
    COMPACT_AFTER = 500

    class Meta:
        indexes = [
            models.Index(fields=["event_id", "item_id", "variation_id", "subevent_id"], name="poolcount_group_idx"),
        ]

    @classmethod
    def groups(cls, event_id) -> list:
        """``(item, variation, subevent, total, unused)`` of each non-empty group of the event, ordered by the IDs."""
        connection = connections[router.db_for_write(cls)]
        table = connection.ops.quote_name(cls._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT item_id, variation_id, subevent_id, SUM(total), SUM(unused), COUNT(*) FROM {table} "
                f"WHERE event_id = %s GROUP BY item_id, variation_id, subevent_id "
                f"ORDER BY item_id, variation_id, subevent_id",
                [event_id],
            )
            rows = cursor.fetchall()
            if sum(row[5] for row in rows) > len(rows) + cls.COMPACT_AFTER:
                cls._compact(cursor, table, event_id)
        return [(i, v, s, int(total), int(unused)) for i, v, s, total, unused, _rows in rows if total]

    @staticmethod
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


class ImportRun(models.Model):
    """
    One start of a file import as a task. The task moves it from ``queued`` to ``running`` and, in the import's own
    transaction, to ``imported``; an import that ended without storing anything becomes ``failed``, one whose worker
    vanished ``lost``. It lets the import page tell a lost task from a slow one, a second submit of the same upload
    find the first run, and a retry start with the same choices.
    """
    QUEUED, RUNNING, IMPORTED, FAILED, LOST = "queued", "running", "imported", "failed", "lost"
    ACTIVE = (QUEUED, RUNNING, IMPORTED)  # at most one of these per upload

    id = models.UUIDField(primary_key=True)  # the Celery task ID
    event = models.ForeignKey("pretixbase.Event", on_delete=models.CASCADE, related_name="+")
    upload = models.UUIDField()  # the uploaded CachedFile, which is deleted after a successful import
    state = models.CharField(max_length=16, default=QUEUED)
    options = models.JSONField(default=dict)  # file format and column mapping
    outcome = models.JSONField(null=True)  # what a successful import stored, as the task returns it
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True)

    objects = ScopedManager(organizer="event__organizer")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload"], condition=Q(state__in=("queued", "running", "imported")),
                                    name="importrun_one_active_per_upload"),
        ]
        indexes = [models.Index(fields=["upload", "created"], name="importrun_upload_idx")]

    def move(self, source, target, **fields) -> bool:
        """Change the state from one of ``source`` to ``target`` unless someone else changed it first."""
        moved = ImportRun.objects.with_scopes_disabled().filter(pk=self.pk, state__in=source).update(
            state=target, **fields)
        if moved:
            self.state = target
        return bool(moved)
