from collections import OrderedDict

from django import forms
from django.utils.translation import gettext_lazy as _, pgettext_lazy

from pretix.base.exporter import ListExporter
from pretix.base.models import ItemVariation, Order, OrderPosition
from pretix.helpers.names import build_name

from pretix_secrets_import import paging
from pretix_secrets_import.gate.states import REASON_LABELS, STATE_LABELS
from pretix_secrets_import.models import GateState

# Pool secrets per database round trip: keeps memory flat for pools of a million secrets, and the list of secrets
# looked up among the tickets well below the query parameter limits (PostgreSQL 65535, SQLite 32766 since 3.32).
CHUNK_SIZE = 2000

# pretix' own labels ("pending", "paid", "expired", "canceled"), so they come translated.
ORDER_STATUS_LABELS = dict(Order.STATUS_CHOICE)
USED_WITHOUT_TICKET = _("used, no ticket")


def date_label(subevent, tz) -> str:
    """An event series date in a list: its name and start, e.g. ``Day 1 - 2030-01-01 11:00``."""
    if subevent is None:
        return ""
    return "{} - {}".format(subevent.name, subevent.date_from.astimezone(tz).strftime("%Y-%m-%d %H:%M"))


def moment(value, tz, form_data):
    """
    A point in time in the event's time zone: a date cell in an Excel file (which knows no time zones, so without
    one), text with its UTC offset in a CSV file.
    """
    if value is None:
        return ""
    local = value.astimezone(tz)
    return local.replace(tzinfo=None) if form_data.get("_format") == "xlsx" else local.isoformat(timespec="seconds")


def ticket_status(position):
    if position.canceled or position.order.status == Order.STATUS_CANCELED:
        return ORDER_STATUS_LABELS[Order.STATUS_CANCELED]
    return ORDER_STATUS_LABELS[position.order.status]


class ImportedSecretExporter(ListExporter):
    identifier = "imported_secrets"
    verbose_name = _("Imported ticket secrets")
    category = pgettext_lazy("export_category", "Order data")
    description = _("Download a spreadsheet of the event's pool of imported ticket secrets: whether each secret is "
                    "used, and the ticket that carries it.")
    # pretix advises against a REPEATABLE READ snapshot for long list exports; a pool can hold a million secrets.
    repeatable_read = False

    @classmethod
    def get_required_event_permission(cls):
        # The same as reading the pool through the API: the export reveals ticket secrets and orders.
        return "event.orders:read"

    def get_filename(self):
        return f"{self.event.slug}_imported_secrets"

    def _date(self, subevent):
        return date_label(subevent, self.timezone)

    def iterate_list(self, form_data):
        yield self._dated([
            pgettext_lazy("ticket_secret", "Secret"),
            _("Used"),
            _("Used at"),
            _("Restricted to product"),
            _("Restricted to variation"),
            _("Restricted to date"),
            _("Order code"),
            _("Position ID"),
            _("Ticket product"),
            _("Ticket variation"),
            _("Ticket date"),
            _("Attendee name"),
            _("Ticket status"),
        ])
        pool = (
            paging.in_pool_order(self.event)
            .select_related("item", "variation", "subevent")
        )
        yield self.ProgressSetTotal(total=pool.count())
        name_scheme = self.event.settings.name_scheme  # read once instead of once per ticket without a name scheme

        last_id = 0
        while True:
            # Keyset pagination: every chunk is an index range scan, however deep into the pool.
            chunk = list(pool.filter(id__gt=last_id)[:CHUNK_SIZE])
            if not chunk:
                break
            tickets = self._tickets(chunk)
            for secret in chunk:
                yield self._row(secret, tickets.get(secret.secret), name_scheme, form_data)
            if len(chunk) < CHUNK_SIZE:
                break
            last_id = chunk[-1].pk

    def _tickets(self, chunk) -> dict:
        # pretix keeps ticket secrets unique per organizer (database constraint), canceled tickets included.
        # Only this event's tickets: a pool secret given explicitly to a ticket of another event must not
        # show that event's orders to someone who may only read this one.
        return {
            position.secret: position
            for position in OrderPosition.all.filter(
                order__event=self.event, secret__in=[s.secret for s in chunk],
            ).select_related("order", "item", "variation", "subevent")
        }

    def _dated(self, row) -> list:
        # Only an event series has dates: without, the two date columns would always be empty.
        return row if self.event.has_subevents else row[:5] + row[6:10] + row[11:]

    def _row(self, secret, position, name_scheme, form_data) -> list:
        row = [
            secret.secret,
            _("Yes") if secret.used else _("No"),
            moment(secret.used_at, self.timezone, form_data),
            str(secret.item) if secret.item else "",
            str(secret.variation) if secret.variation else "",
            self._date(secret.subevent),
        ]
        if position is None:
            return self._dated(row + ["", "", "", "", "", "", USED_WITHOUT_TICKET if secret.used else ""])
        return self._dated(row + [
            position.order.code,
            position.positionid,
            str(position.item),
            str(position.variation) if position.variation else "",
            self._date(position.subevent),
            build_name(position.attendee_name_parts, fallback_scheme=name_scheme) or "",
            ticket_status(position),
        ])


class GateListExporter(ListExporter):
    """
    A list of pool secrets for an access-control system, from their gate states (``gate/states.py``): the secret, its
    state or reason in the event's language, since when, and its ticket; both lists in this order.
    """
    category = pgettext_lazy("export_category", "Order data")
    repeatable_read = False

    @classmethod
    def get_required_event_permission(cls):
        return "event.orders:read"

    def states(self, form_data) -> list:
        raise NotImplementedError

    def header(self) -> list:
        raise NotImplementedError

    def row(self, state, names, form_data) -> list:
        raise NotImplementedError

    def iterate_list(self, form_data):
        yield self.header()
        rows = GateState.objects.filter(event=self.event, state__in=self.states(form_data)).select_related("secret")
        yield self.ProgressSetTotal(total=rows.count())
        names = self._names()
        last_id = 0
        while True:
            chunk = list(rows.filter(secret_id__gt=last_id).order_by("secret_id")[:CHUNK_SIZE])
            for state in chunk:
                yield self.row(state, names, form_data)
            if len(chunk) < CHUNK_SIZE:
                break
            last_id = chunk[-1].secret_id

    def _names(self) -> dict:
        items = {i.pk: str(i) for i in self.event.items.all()}
        variations = {v.pk: str(v) for v in ItemVariation.objects.filter(item__event=self.event)}
        dates = {s.pk: date_label(s, self.timezone) for s in self.event.subevents.all()} \
            if self.event.has_subevents else {}
        return {"item": items, "variation": variations, "subevent": dates}

    def ticket(self, state, names) -> list:
        ticket = [state.order_code or "", state.positionid or "", names["item"].get(state.item_id, ""),
                  names["variation"].get(state.variation_id, "")]
        if self.event.has_subevents:
            ticket.append(names["subevent"].get(state.subevent_id, ""))
        return ticket

    def ticket_header(self) -> list:
        header = [_("Order code"), _("Position ID"), _("Product"), _("Variation")]
        return header + [pgettext_lazy("subevent", "Date")] if self.event.has_subevents else header

    def changed(self, state, form_data):
        return moment(state.changed, self.timezone, form_data)


class AdmittedSecretsExporter(GateListExporter):
    identifier = "imported_secrets_gate_admitted"
    verbose_name = _("Gate list: admitted secrets")
    description = _("The imported ticket secrets that admit: on a ticket of a paid order (and, if you choose, of an "
                    "order awaiting payment or approval). For an access-control system; schedule it to send it "
                    "regularly.")

    @property
    def additional_form_fields(self):
        return OrderedDict([("include_pending", forms.BooleanField(
            label=_("Include tickets of orders awaiting payment or approval"), required=False,
        ))])

    def get_filename(self):
        return f"{self.event.slug}_gate_admitted"

    def states(self, form_data):
        return [GateState.VALID, GateState.PENDING] if form_data.get("include_pending") else [GateState.VALID]

    def header(self):
        return [pgettext_lazy("ticket_secret", "Secret"), _("State"), _("Since"), *self.ticket_header()]

    def row(self, state, names, form_data):
        return [state.secret.secret, STATE_LABELS[state.state], self.changed(state, form_data),
                *self.ticket(state, names)]


class RefusedSecretsExporter(GateListExporter):
    identifier = "imported_secrets_gate_refused"
    verbose_name = _("Gate list: refused secrets")
    description = _("The imported ticket secrets that must not admit any more, with the reason (canceled, expired, "
                    "denied, replaced, deleted) and when. For an access-control system; schedule it to send it "
                    "regularly.")

    def get_filename(self):
        return f"{self.event.slug}_gate_refused"

    def states(self, form_data):
        return [GateState.VOID]

    def header(self):
        return [pgettext_lazy("ticket_secret", "Secret"), _("Reason"), _("Since"), *self.ticket_header()]

    def row(self, state, names, form_data):
        return [state.secret.secret, REASON_LABELS.get(state.reason, state.reason), self.changed(state, form_data),
                *self.ticket(state, names)]
