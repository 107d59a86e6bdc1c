from django.db import models
from django.db.models import CASCADE, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _, pgettext_lazy
from django_scopes import ScopedManager

from pretix.base.models import Event, LoggedModel

from pretix_secrets_import.pool.rules import SECRET_MAX_LENGTH, validate_secret


def keep_used_delete_unused(collector, field, sub_objs, using):
    """
    on_delete for the product, variation and date a secret is restricted to. An unused secret goes away with
    its restriction (turning it into an unrestricted one would hand it to the wrong tickets). A used secret
    must survive, because it is printed on a ticket: it only loses the reference.
    """
    collector.add_field_update(field, None, sub_objs.filter(used=True))
    CASCADE(collector, field, sub_objs.filter(used=False), using)


keep_used_delete_unused.lazy_sub_objs = True


def _or_zero(field):
    """A restriction with "any" (NULL) as 0, for index definitions."""
    return Coalesce(field, Value(0), output_field=models.BigIntegerField())


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
        verbose_name=_("Product"), db_index=False,  # a partial index below
    )
    variation = models.ForeignKey(
        "pretixbase.ItemVariation", null=True, blank=True, on_delete=keep_used_delete_unused, related_name="+",
        verbose_name=_("Product variation"), db_index=False,  # a partial index below
    )
    subevent = models.ForeignKey(
        "pretixbase.SubEvent", null=True, blank=True, on_delete=keep_used_delete_unused, related_name="+",
        verbose_name=pgettext_lazy("subevent", "Date"), db_index=False,  # a partial index below
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
            # The foreign keys' indexes without the (many) secrets that lack the restriction: imports write less.
            *(models.Index(fields=[name], condition=Q(**{f"{name}__isnull": False}), name=f"importedsecret_{name}_idx")
              for name in ("item", "variation", "subevent")),
        ]

    def __str__(self):
        return self.secret

    @classmethod
    def of_event(cls, event: Event):
        """
        The event's pool. The event already belongs to one organizer, so this leaves out the organizer condition the
        scoped manager would add: with it, PostgreSQL without fresh statistics combined two bitmap scans over the whole
        organizer's pool and sorted them for every list page (see BENCHMARKS.md).
        """
        return cls.objects.with_scopes_disabled().filter(event=event)

    @classmethod
    def build(cls, event: Event, row: dict):
        """An unsaved secret for ``event`` from a row cleaned by ``validation.clean_rows``."""
        secret = cls(event=event, organizer_id=event.organizer_id, **row)
        if secret.used:
            secret.used_at = now()
        return secret

    def as_row(self) -> dict:
        """This secret in the shape of a row, with IDs for the restrictions (API input/output, log data)."""
        return {"secret": self.secret, "used": self.used, "item": self.item_id, "variation": self.variation_id,
                "subevent": self.subevent_id}

    def apply(self, row: dict):
        """Change this secret to a row cleaned by ``validation.clean_rows``."""
        if row["used"] and not self.used:
            self.used_at = now()
        for field, value in row.items():
            setattr(self, field, value)


class PoolAlert(models.Model):
    """
    The running-low alert was sent for this product (variation, date) of an event (``sellable.targets``); deleting
    the row re-arms it.

    Of two sales that leave it below the threshold at the same time, only the one that stores this row alerts.
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

    Read it only summed per group (``pool/store.read_counts``, which also folds them once they pile up): on PostgreSQL
    each statement adds a row of differences instead of updating one row per group, so that concurrent sales never
    wait for each other's lock on a shared counter row; on SQLite, whose writers never overlap, one row per group.
    Django rebuilds a SQLite table for some schema changes, which drops its triggers: a migration that alters
    ``ImportedSecret`` must create them again.
    """
    event_id = models.BigIntegerField()
    item_id = models.BigIntegerField()
    variation_id = models.BigIntegerField()
    subevent_id = models.BigIntegerField()
    total = models.BigIntegerField()
    unused = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["event_id", "item_id", "variation_id", "subevent_id"], name="poolcount_group_idx"),
        ]


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


class TicketFacts(models.Model):
    """
    What a gate must know of a secret, kept current by ``gate/states.py`` from pretix' orders: its state, why and since
    when, the ticket it is or was on, and what of that ticket decides pretix' check-in answer (``gate/admission.py``).

    ``tx`` orders the changes for the gate feed: the ID of the transaction that wrote the row (PostgreSQL), or a
    counter that writers bump in turn (SQLite, whose writers never overlap). The feed's cursor relies on it.
    """
    UNSOLD, RESERVED, PENDING, VALID, VOID = "unsold", "reserved", "pending", "valid", "void"
    STATES = (UNSOLD, RESERVED, PENDING, VALID, VOID)

    event = models.ForeignKey("pretixbase.Event", on_delete=models.CASCADE, related_name="+",
                              db_index=False)  # the indexes start with it
    state = models.CharField(max_length=8)
    reason = models.CharField(max_length=16)
    changed = models.DateTimeField()
    # The ticket the secret is or was on, as plain values: they stay when the order is deleted or changes.
    order_code = models.CharField(max_length=16, null=True)
    positionid = models.PositiveIntegerField(null=True)
    item_id = models.BigIntegerField(null=True)
    variation_id = models.BigIntegerField(null=True)
    subevent_id = models.BigIntegerField(null=True)
    # pretix' check-in answer for the secret on any list (``admission.ticket_refusal``; NULL: admitted), and what
    # else of the ticket it reads
    refusal = models.CharField(max_length=16, null=True)
    valid_if_pending = models.BooleanField(default=False, db_default=False)  # old code may insert during upgrades
    valid_from = models.DateTimeField(null=True)
    valid_until = models.DateTimeField(null=True)
    tx = models.BigIntegerField()

    class Meta:
        abstract = True


class GateState(TicketFacts):
    """
    A pool secret that has left the "unsold" state: on a ticket (``pending``, ``valid``, ``void``) or given out
    elsewhere (``reserved``). A secret without this row was never on a ticket nor marked used: it is ``unsold``, or
    ``reserved`` while marked used.
    """
    secret = models.OneToOneField(ImportedSecret, primary_key=True, on_delete=models.CASCADE, related_name="gate")

    class Meta:
        indexes = [
            models.Index(fields=["event", "tx", "secret"], name="gatestate_feed_idx"),
            models.Index(fields=["event", "order_code"], name="gatestate_order_idx"),
        ]


class TicketState(TicketFacts):
    """
    A ticket of an event with a pool whose secret is not from the pool (a product that does not draw from it, or a
    secret given through the order API): the check-in lists' feeds carry those too. Kept for the secret after it
    left its ticket (``void``), so that a poll can tell the gate to refuse it.
    """
    id = models.BigAutoField(primary_key=True)
    secret = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "secret"], name="ticketstate_event_secret_uniq"),
        ]
        indexes = [
            models.Index(fields=["event", "tx", "id"], name="ticketstate_feed_idx"),
            models.Index(fields=["event", "order_code"], name="ticketstate_order_idx"),
        ]


class ListVersion(models.Model):
    """
    The settings of a check-in list that its gate feed last answered with (``admission.Scope.fingerprint``), and
    from which feed transaction number on (``since``): a cursor from before it must sync again.
    """
    checkinlist = models.OneToOneField("pretixbase.CheckinList", primary_key=True, on_delete=models.CASCADE,
                                       related_name="+")
    fingerprint = models.CharField(max_length=64)
    since = models.BigIntegerField()


class FeedClock(models.Model):
    """SQLite only: one row; each transaction that writes gate states takes its next value (``GateState.tx``)."""
    value = models.BigIntegerField(default=0)
