"""
Property test: random sequences of order operations against the imported_secrets generator.

A hypothesis state machine creates orders, adds, changes, splits and cancels positions, cancels orders, regenerates
secrets and deletes orders through pretix' own code (REST API, OrderChangeManager, cancel_order) for an event whose
pool holds 15-30 secrets, some restricted to a product or variation, some imported as used. After every step it
checks:

1. no secret is on two order positions of the organizer (canceled positions included), nor ever moves from one
   position to another (deleted orders included);
2. every ticket secret that is in the pool is marked used there and fits the ticket's product and variation; every
   ticket of an admission product (ticket, workshop) carries a pool secret; secrets imported as used never go to a
   ticket;
3. ``used`` never turns back from True to False, and every secret the generator marks used goes to a ticket;
4. each operation either succeeds or is refused because no fitting secret is left (a 400 from the API, pretix'
   OrderError from the OrderChangeManager), and a refused operation changes nothing. Whether an operation is
   refused, and which secrets it takes, is predicted by a model of the allocation rule (most specific
   restriction first, then import order).

Every example runs in a savepoint that is rolled back afterwards, so each one starts from the fixtures' state.
``HYPOTHESIS_EXAMPLES`` and ``HYPOTHESIS_STEPS`` (operations per example) allow deeper runs.
"""
import os
from collections import Counter
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils.timezone import now
from django_scopes import scope, scopes_disabled
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule,
    run_state_machine_as_test,
)

from pretix.base.models import Order, OrderPosition
from pretix.base.services.orders import (
    OrderChangeManager, OrderError, cancel_order,
)

from pretix_secrets_import.models import ImportedSecret
from tests.helpers import counted_summary, pool_summary
from tests.sales import test_generator
from tests.sales.test_generator import api_order, orders_url

pytestmark = [pytest.mark.django_db, pytest.mark.heavy]

shop = test_generator.shop  # the fixture: products ticket, workshop (morning/afternoon) and shirt (no admission)

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", 25))
STEPS = int(os.environ.get("HYPOTHESIS_STEPS", 25))
REFUSED = "no ticket code left"

# Restrictions of pool secrets and products of positions, as attribute names of the ``shop`` fixture.
RESTRICTIONS = [None, "ticket", "workshop", "morning", "afternoon", "shirt"]
PRODUCTS = [("ticket", None), ("workshop", "morning"), ("workshop", "afternoon"), ("shirt", None)]
OPERATIONS = ["create order", "add position", "change product", "split position", "cancel position", "cancel order",
              "regenerate order", "regenerate position", "delete order"]

# By design (docs/organizer/tickets.rst, "What uses up pool secrets") a ticket keeps a secret that did not come from
# the pool when its product changes, so that explicitly given secrets are never replaced behind the client's back.
# A shirt changed into a ticket therefore keeps its random secret; the model exempts exactly these tickets from
# invariant 2.
KEEPS_FOREIGN_SECRET_ON_CHANGE = True


def tiers(item_id, variation_id):
    """The restrictions a ticket accepts, most specific first, as generator.restriction_tiers (without dates)."""
    return ([(item_id, variation_id)] if variation_id else []) + [(item_id, None), (None, None)]


def simulate(pool, needs):
    """
    The model: the secrets the generator should take for ``needs`` (``(item_id, variation_id)`` per ticket that
    draws, in order) from ``pool`` (``(secret, item_id, variation_id, used)`` in import order); ``None`` if one of
    them finds none.
    """
    taken = []
    for need in needs:
        for tier in tiers(*need):
            secret = next((s for s, i, v, used in pool if not used and s not in taken and (i, v) == tier), None)
            if secret is not None:
                taken.append(secret)
                break
        else:
            return None
    return taken


def has(kind):
    """Run the rule only if there is something of ``kind`` to work on (see PoolMachine.refresh_targets)."""
    return precondition(lambda self: self.targets[kind])


class PoolMachine(RuleBasedStateMachine):

    def __init__(self, shop, client, stats):
        super().__init__()
        self.shop = shop
        self.event = shop.event
        self.client = client
        self.stats = stats
        self.admission = {shop.ticket.pk, shop.workshop.pk}
        self.imported_used = set()  # pool secrets imported as used
        self.seen_used = set()  # pool secrets seen with used=True so far
        self.owners = {}  # every ticket secret seen so far -> the position it was on
        self.foreign = {}  # position pk -> the non-pool secret it kept when it became an admission ticket
        self.targets = dict.fromkeys(["order", "open order", "testmode order", "position", "changeable", "multi"], [])
        # Everything an example does happens in this savepoint; teardown() rolls it back.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- helpers ----------------------------------------------------------------------------------------------------

    def pool_rows(self):
        with scopes_disabled():
            return list(ImportedSecret.objects.filter(event=self.event).order_by("id").values_list(
                "secret", "item_id", "variation_id", "used"))

    def snapshot(self):
        with scopes_disabled():
            orders = sorted(Order.objects.filter(event=self.event).values_list("code", "status"))
            positions = sorted(OrderPosition.all.filter(order__event=self.event).values_list(
                "pk", "order__code", "item_id", "variation_id", "canceled", "secret"))
        return {s: used for s, _, _, used in self.pool_rows()}, orders, positions

    def product(self, names):
        """The item and variation (or None) for a pair of names from PRODUCTS."""
        item, variation = names
        return getattr(self.shop, item), (getattr(self.shop, variation) if variation else None)

    def draws(self, item_id, variation_id):
        """What a ticket of this product asks the pool for: one fitting secret, or nothing (no admission)."""
        return [(item_id, variation_id)] if item_id in self.admission else []

    def attempt(self, op, needs, action):
        """
        Run ``action`` (returns True if done, False if refused for lack of secrets) and check the outcome against
        the model's prediction for the tickets ``needs`` and, if it was refused, that it changed nothing.
        """
        before = self.snapshot()
        expected = simulate(self.pool_rows(), needs)
        done = action()
        after = self.snapshot()
        self.stats[op, "done" if done else "refused"] += 1
        if done:
            assert expected is not None, f"{op} succeeded although no secret fits {needs}"
            newly_used = {s for s, used in after[0].items() if used and not before[0][s]}
            assert newly_used == set(expected), f"{op} took {sorted(newly_used)}, expected {expected}"
        else:
            assert expected is None, f"{op} was refused although {expected} fit {needs}"
            assert after == before, f"the refused {op} changed something"

    def change_order(self, order, *ops):
        """Apply ``ops`` (method name and arguments) with pretix' OrderChangeManager; False if refused."""
        try:
            with scope(organizer=self.event.organizer):
                ocm = OrderChangeManager(Order.objects.get(pk=order.pk), notify=False)
                for name, *args in ops:
                    getattr(ocm, name)(*args)
                ocm.commit()
        except OrderError as e:
            assert REFUSED in str(e), f"unexpected OrderError: {e}"
            return False
        return True

    def api_result(self, resp):
        """True for a success, False for a refusal for lack of secrets; anything else fails the test."""
        if resp.status_code in (200, 201, 204):
            return True
        assert resp.status_code == 400 and REFUSED in str(resp.data), (resp.status_code, resp.data)
        return False

    def post(self, url):
        return self.api_result(self.client.post(url, format="json"))

    def refresh_targets(self, positions):
        """What the next operations can work on; preconditions and rules draw from these."""
        with scopes_disabled():
            orders = list(Order.objects.filter(event=self.event).order_by("pk"))
        changeable = [p for p in positions if not p.canceled and p.order.status != Order.STATUS_CANCELED]
        per_order = Counter(p.order_id for p in changeable)
        self.targets = {
            "order": orders,
            "open order": [o for o in orders if o.status != Order.STATUS_CANCELED],
            "testmode order": [o for o in orders if o.testmode],
            "position": [p for p in positions if not p.canceled],
            "changeable": changeable,
            "multi": [p for p in changeable if per_order[p.order_id] > 1],  # split and cancel need another one
        }

    def draw(self, data, kind):
        return data.draw(st.sampled_from(self.targets[kind]), label=kind)

    # --- the pool ---------------------------------------------------------------------------------------------------

    @initialize(pool=st.lists(
        st.tuples(st.sampled_from(RESTRICTIONS), st.sampled_from([False] * 9 + [True])), min_size=15, max_size=30,
    ))
    def import_pool(self, pool):
        """``pool``: restriction and whether it is imported as used, per secret in import order."""
        rows = []
        for index, (restriction, used) in enumerate(pool):
            restrict = {}
            if restriction in ("morning", "afternoon"):
                restrict = {"item": self.shop.workshop, "variation": getattr(self.shop, restriction)}
            elif restriction:
                restrict = {"item": getattr(self.shop, restriction)}
            secret = f"P{index:02d}-{restriction or 'any'}"
            rows.append(ImportedSecret(event=self.event, organizer=self.event.organizer, secret=secret, used=used,
                                       used_at=now() if used else None, **restrict))
            if used:
                self.imported_used.add(secret)
        with scopes_disabled():
            ImportedSecret.objects.bulk_create(rows)

    # --- operations -------------------------------------------------------------------------------------------------

    @rule(products=st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=2), testmode=st.booleans())
    def create_order(self, products, testmode):
        positions = [{"item": item.pk, **({"variation": variation.pk} if variation else {})}
                     for item, variation in map(self.product, products)]
        needs = [need for p in positions for need in self.draws(p["item"], p.get("variation"))]
        self.attempt("create order", needs, lambda: self.api_result(
            api_order(self.client, self.event, *positions, testmode=testmode, send_email=False)))

    @has("open order")
    @rule(data=st.data(), product=st.sampled_from(PRODUCTS))
    def add_position(self, data, product):
        order = self.draw(data, "open order")
        item, variation = self.product(product)
        self.attempt("add position", self.draws(item.pk, getattr(variation, "pk", None)),
                     lambda: self.change_order(order, ("add_position", item, variation, Decimal("0.00"))))

    @has("changeable")
    @rule(data=st.data(), product=st.sampled_from(PRODUCTS))
    def change_product(self, data, product):
        pos = self.draw(data, "changeable")
        item, variation = self.product(product)
        variation_id = getattr(variation, "pk", None)
        with scopes_disabled():
            row = ImportedSecret.objects.filter(event=self.event, secret=pos.secret).first()
        needs = []
        if item.pk in self.admission:
            if row is None and KEEPS_FOREIGN_SECRET_ON_CHANGE:
                self.foreign[pos.pk] = pos.secret
            elif row is None or row.item_id not in (None, item.pk) or row.variation_id not in (None, variation_id):
                needs = [(item.pk, variation_id)]
        self.attempt("change product", needs,
                     lambda: self.change_order(pos.order, ("change_item", pos, item, variation)))

    @has("multi")
    @rule(data=st.data())
    def split_position(self, data):
        pos = self.draw(data, "multi")
        self.attempt("split position", self.draws(pos.item_id, pos.variation_id),
                     lambda: self.change_order(pos.order, ("split", pos)))

    @has("multi")
    @rule(data=st.data())
    def cancel_position(self, data):
        pos = self.draw(data, "multi")
        self.attempt("cancel position", [], lambda: self.change_order(pos.order, ("cancel", pos)))

    @has("open order")
    @rule(data=st.data())
    def cancel_whole_order(self, data):
        order = self.draw(data, "open order")

        def cancel():
            with scopes_disabled():
                cancel_order(order.pk, send_mail=False)
            return True

        self.attempt("cancel order", [], cancel)

    @has("order")
    @rule(data=st.data(), include_canceled=st.booleans())
    def regenerate_order(self, data, include_canceled):
        """Through the API; it renews the order's canceled positions only with ``include_canceled_positions``."""
        order = self.draw(data, "order")
        with scopes_disabled():
            positions = OrderPosition.all.filter(order=order) if include_canceled else order.positions.all()
            needs = [need for p in positions.order_by("positionid") for need in self.draws(p.item_id, p.variation_id)]
        query = "?include_canceled_positions=true" if include_canceled else ""
        self.attempt("regenerate order", needs,
                     lambda: self.post(orders_url(self.event, f"{order.code}/regenerate_secrets/{query}")))

    @has("position")
    @rule(data=st.data())
    def regenerate_position(self, data):
        pos = self.draw(data, "position")
        url = (f"/api/v1/organizers/{self.event.organizer.slug}/events/{self.event.slug}/orderpositions/{pos.pk}/"
               "regenerate_secrets/")
        self.attempt("regenerate position", self.draws(pos.item_id, pos.variation_id), lambda: self.post(url))

    @has("testmode order")
    @rule(data=st.data())
    def delete_order(self, data):
        order = self.draw(data, "testmode order")
        self.attempt("delete order", [], lambda: self.api_result(
            self.client.delete(orders_url(self.event, f"{order.code}/"))))

    # --- invariants -------------------------------------------------------------------------------------------------

    @invariant()
    def counters_match_the_pool(self):
        assert pool_summary(self.event) == counted_summary(self.event)

    @invariant()
    def pool_is_consistent(self):
        pool = {s: (i, v, used) for s, i, v, used in self.pool_rows()}
        with scopes_disabled():
            positions = list(OrderPosition.all.filter(order__event=self.event).select_related("order").order_by("pk"))
            organizer_secrets = list(OrderPosition.all.filter(organizer_id=self.event.organizer_id)
                                     .values_list("secret", flat=True))

        # 1. no secret on two positions, now or ever
        duplicates = {s for s, n in Counter(organizer_secrets).items() if n > 1}
        assert not duplicates, f"secrets on more than one position: {duplicates}"
        for pos in positions:
            owner = self.owners.setdefault(pos.secret, pos.pk)
            assert owner == pos.pk, f"{pos.secret} was on position {owner} before, now on {pos.pk}"

        # 2. pool secrets on tickets are used and fit, admission tickets carry one
        for pos in positions:
            if pos.secret in pool:
                item_id, variation_id, used = pool[pos.secret]
                assert used, f"{pos.secret} is on a ticket but not marked used"
                assert pos.secret not in self.imported_used, f"{pos.secret} was imported as used"
                if pos.item_id in self.admission:
                    assert item_id in (None, pos.item_id) and variation_id in (None, pos.variation_id), (
                        f"{pos.secret} for {item_id}/{variation_id} is on a ticket of {pos.item_id}/{pos.variation_id}")
            elif pos.item_id in self.admission:
                assert self.foreign.get(pos.pk) == pos.secret, f"ticket {pos} has the non-pool secret {pos.secret}"

        # 3. used only grows, and only by secrets that went to a ticket
        used = {s for s, (_, _, u) in pool.items() if u}
        assert self.seen_used <= used, f"no longer used: {self.seen_used - used}"
        self.seen_used = used
        burnt = used - self.owners.keys() - self.imported_used
        assert not burnt, f"used without going to a ticket: {burnt}"

        self.refresh_targets(positions)


def test_random_order_operations_keep_the_pool_consistent(shop, token_client):
    stats = Counter()
    run_state_machine_as_test(lambda: PoolMachine(shop, token_client, stats), settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    ))
    # The operations really ran: each one succeeded, and the pool ran dry at times.
    for op in OPERATIONS:
        assert stats[op, "done"], f"{op} never succeeded: {stats}"
    assert sum(n for (_, outcome), n in stats.items() if outcome == "refused"), f"nothing was refused: {stats}"
