"""Every order log type pretix registers is known to change tickets or not (order_actions.py)."""
import pytest
from django.urls import reverse

from pretix.base.logentrytypes import log_entry_types

from pretix_secrets_import.gate.order_actions import changes_tickets, classify


def registered_types():
    reverse("api-v1:event-list", kwargs={"organizer": "x"})  # loads every app's log types
    return sorted({entry["action_type"] for entry in log_entry_types.registered_entries.values()})


def test_every_order_type_pretix_registers_is_classified():
    order_types = [t for t in registered_types() if t.startswith(("pretix.event.order.", "pretix.event.checkin"))
                   and not t.startswith("pretix.event.checkinlist")]
    assert len(order_types) > 80
    unknown = [t for t in order_types if classify(t) is None]
    assert unknown == [], "classify these in order_actions.py: do they change a ticket as a gate sees it?"


@pytest.mark.parametrize("action_type", [
    "pretix.event.checkin", "pretix.event.checkin.denied", "pretix.event.checkin.unknown",
    "pretix.event.order.email.order_paid", "pretix.event.order.comment", "pretix.event.order.payment.confirmed",
    "pretix.event.order.checkin_text", "pretix.event.order.print", "pretix.event.order.invoice.generated",
    "pretix.plugins.banktransfer.order.email.invoice",
])
def test_these_change_no_ticket(action_type):
    assert not changes_tickets(action_type)


@pytest.mark.parametrize("action_type", [
    "pretix.event.order.placed", "pretix.event.order.paid", "pretix.event.order.canceled",
    "pretix.event.order.changed.add_block", "pretix.event.order.changed.valid_until",
    "pretix.event.order.valid_if_pending", "pretix.event.order.valid_if_pending.set",
    "pretix.event.order.secret.changed", "pretix.event.order.changed.seat",
    "something.pretix.does.not.know",  # unknown: derive, to be safe
])
def test_these_change_tickets(action_type):
    assert changes_tickets(action_type)
