from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import CASCADE, Count, F, Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from pretix.base.models import (
    Event, Item, ItemVariation, LoggedModel, OrderPosition, SubEvent,
)

SECRET_MAX_LENGTH = 255  # pretix' OrderPosition.secret column
DB_ID_MAX = 2 ** 63 - 1  # pretix uses BigAutoField; larger numbers would overflow database lookups
ALREADY_IMPORTED = _("This secret has already been imported for this organizer.")


def validate_secret(value):
    """The format rule for one secret; uniqueness is checked set-based in ImportedSecret.clean_rows."""
    if not isinstance(value, str) or not value:
        raise ValidationError(_("The secret must not be empty."), code="blank")
    if len(value) > SECRET_MAX_LENGTH:
        raise ValidationError(
            _("The secret must not be longer than %(max)s characters."),
            code="max_length", params={"max": SECRET_MAX_LENGTH},
        )
    if any(c.isspace() for c in value):
        raise ValidationError(_("The secret must not contain whitespace."), code="whitespace")
    if not value.isprintable():
        raise ValidationError(_("The secret must only contain printable characters."), code="unprintable")


def keep_used_delete_unused(collector, field, sub_objs, using):
    """
    on_delete for the product, variation and date a secret is restricted to. An unused secret goes away with
    its restriction (turning it into an unrestricted one would hand it to the wrong tickets). A used secret
    must survive, because it is printed on a ticket: it only loses the reference.
    """
    collector.add_field_update(field, None, sub_objs.filter(used=True))
    CASCADE(collector, field, sub_objs.filter(used=False), using)


keep_used_delete_unused.lazy_sub_objs = True


def _pk(value):
    return getattr(value, "pk", value)


class ImportedSecret(LoggedModel):
    """
    One entry of an event's pool of imported ticket secrets.

    ``organizer`` duplicates ``event.organizer`` so that the database can enforce that a secret is unique
    within the organizer, as pretix requires for ticket secrets.
    """
    organizer = models.ForeignKey("pretixbase.Organizer", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(
        "pretixbase.Event", on_delete=models.CASCADE, related_name="imported_secrets",
        db_index=False,  # covered by the composite indexes below
    )
    secret = models.CharField(max_length=SECRET_MAX_LENGTH, validators=[validate_secret], verbose_name=_("Secret"))
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
        verbose_name=_("Date"),
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
            # Allocation: the first unused secret of an event for an exact restriction, in import order.
            models.Index(
                fields=["event", "item", "variation", "subevent", "id"],
                condition=Q(used=False),
                name="importedsecret_alloc_idx",
            ),
            # Listing an event's pool in import order, optionally filtered by the used flag.
            models.Index(fields=["event", "id"], name="importedsecret_event_idx"),
            models.Index(fields=["event", "used", "id"], name="importedsecret_event_used_idx"),
        ]

    def __str__(self):
        return self.secret

    @classmethod
    def summary(cls, event: Event):
        """
        How many secrets ``event``'s pool holds per restriction group (product, variation, date), as a list of dicts
        with the IDs ``item``, ``variation``, ``subevent`` and the counts ``total``, ``used``, ``unused``; one
        aggregate query, unrestricted groups first. Shared by the pool page, the summary API and the alerts.
        """
        rows = (
            cls.objects.filter(event=event)
            .values("item", "variation", "subevent")
            .annotate(total=Count("id"), unused=Count("id", filter=Q(used=False)))
            .order_by(F("item").asc(nulls_first=True), F("variation").asc(nulls_first=True),
                      F("subevent").asc(nulls_first=True))
        )
        return [{**row, "used": row["total"] - row["unused"]} for row in rows]

    @classmethod
    def clean_rows(cls, event: Event, rows, instance=None, labels=None, stored_from=None):
        """
        Validate rows to be stored in ``event``'s pool, set-based: a fixed number of queries for any number of rows.

        Each row is a dict with ``secret`` and optionally ``used``, ``item``, ``variation``, ``subevent`` (each an
        ID, a model instance or ``None``). ``instance`` is the secret being changed, if any.

        ``labels`` names each row in messages (default: "entry 1", "entry 2", ...). A file import validates and
        stores its rows chunk by chunk in one transaction; it passes ``stored_from``, a function that returns the
        label of its own row that stored a given pool secret ID (or ``None``), so that a secret repeated in the file
        is reported as such instead of as "already imported".

        Returns ``(cleaned, errors)``: ``cleaned`` holds one dict per row with model instances in place of IDs
        (``None`` for invalid rows), ``errors`` one dict per row mapping field names to lists of messages (empty
        for valid rows). This is the single place where the rules of the pool live; the API, the file import and
        the backend forms all call it.
        """
        rows = list(rows)
        errors = [{} for _ in rows]

        def add_error(index, field, message):
            errors[index].setdefault(field, []).append(message)

        item_ids = {_pk(r.get("item")) for r in rows} - {None}
        variation_ids = {_pk(r.get("variation")) for r in rows} - {None}
        subevent_ids = {_pk(r.get("subevent")) for r in rows} - {None}
        items = {i.pk: i for i in Item.objects.filter(event=event, pk__in=item_ids)} if item_ids else {}
        variations = {
            v.pk: v
            for v in ItemVariation.objects.filter(item__event=event, pk__in=variation_ids).select_related("item")
        } if variation_ids else {}
        subevents = {
            s.pk: s for s in SubEvent.objects.filter(event=event, pk__in=subevent_ids)
        } if subevent_ids and event.has_subevents else {}

        if labels is None:
            labels = [_("entry {number}").format(number=index + 1) for index in range(len(rows))]
        repeated = _("This secret appears more than once in your input (first in {label}).")

        secrets_seen = {}
        for index, row in enumerate(rows):
            secret = row.get("secret")
            try:
                validate_secret(secret)
            except ValidationError as e:
                add_error(index, "secret", e.messages[0])
            else:
                if secret in secrets_seen:
                    add_error(index, "secret", repeated.format(label=labels[secrets_seen[secret]]))
                else:
                    secrets_seen[secret] = index

        existing_secrets = {}
        ticket_secrets = set()
        if secrets_seen:
            pool_qs = cls.objects.filter(organizer_id=event.organizer_id, secret__in=list(secrets_seen))
            if instance is not None and instance.pk:
                pool_qs = pool_qs.exclude(pk=instance.pk)
            existing_secrets = dict(pool_qs.values_list("secret", "pk"))
            ticket_qs = OrderPosition.all.filter(organizer_id=event.organizer_id, secret__in=list(secrets_seen))
            ticket_secrets = set(ticket_qs.values_list("secret", flat=True))

        cleaned = []
        for index, row in enumerate(rows):
            secret = row.get("secret")
            earlier_label = stored_from(existing_secrets[secret]) if stored_from and secret in existing_secrets \
                else None
            if earlier_label is not None:
                add_error(index, "secret", repeated.format(label=earlier_label))
            elif secret in existing_secrets:
                add_error(index, "secret", ALREADY_IMPORTED)
            elif secret in ticket_secrets:
                add_error(index, "secret", _("This secret is already used by a ticket of this organizer."))

            item = variation = subevent = None
            if _pk(row.get("item")) is not None:
                item = items.get(_pk(row.get("item")))
                if item is None:
                    add_error(index, "item", _('Invalid pk "{pk}" - object does not exist.').format(
                        pk=_pk(row.get("item"))))
            if _pk(row.get("variation")) is not None:
                variation = variations.get(_pk(row.get("variation")))
                if variation is None:
                    add_error(index, "variation", _('Invalid pk "{pk}" - object does not exist.').format(
                        pk=_pk(row.get("variation"))))
                elif item is None and "item" not in errors[index]:
                    item = variation.item
                elif item is not None and variation.item_id != item.pk:
                    add_error(index, "variation", _("The variation does not belong to the selected product."))
            if _pk(row.get("subevent")) is not None:
                if not event.has_subevents:
                    add_error(index, "subevent", _("This event is not an event series, so secrets cannot be "
                                                   "restricted to a date."))
                else:
                    subevent = subevents.get(_pk(row.get("subevent")))
                    if subevent is None:
                        add_error(index, "subevent", _('Invalid pk "{pk}" - object does not exist.').format(
                            pk=_pk(row.get("subevent"))))

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
