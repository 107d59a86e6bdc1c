from django.utils.translation import gettext_lazy as _, pgettext_lazy

from pretix.base.exporter import ListExporter
from pretix.base.models import Order, OrderPosition
from pretix.helpers.names import build_name

from .models import ImportedSecret

# Pool secrets per database round trip: keeps memory flat for pools of a million secrets, and the list of secrets
# looked up among the tickets well below the query parameter limits (PostgreSQL 65535, SQLite 32766 since 3.32).
CHUNK_SIZE = 2000

# pretix' own labels ("pending", "paid", "expired", "canceled"), so they come translated.
ORDER_STATUS_LABELS = dict(Order.STATUS_CHOICE)
USED_WITHOUT_TICKET = _("used, no ticket")


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
        if subevent is None:
            return ""
        return "{} - {}".format(subevent.name, subevent.date_from.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M"))

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
            ImportedSecret.of_event(self.event)
            .select_related("item", "variation", "subevent")
            .order_by("id")
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
                yield self._row(secret, tickets.get(secret.secret), name_scheme)
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

    def _row(self, secret, position, name_scheme) -> list:
        row = [
            secret.secret,
            _("Yes") if secret.used else _("No"),
            secret.used_at.astimezone(self.timezone).isoformat(timespec="seconds") if secret.used_at else "",
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
