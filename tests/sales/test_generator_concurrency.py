"""Concurrent sales through pretix' real order API, each request on its own database connection."""
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django_scopes import scope, scopes_disabled

from pretix.base.models import OrderPosition

from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.sales.generator import allocate_secret
from tests.helpers import (
    add_secret, counted_summary, pool_summary, token_client_for,
)
from tests.sales.test_generator import api_order, pool_state

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 12
POOL_SIZE = 5


@pytest.fixture(params=["quota with other products", "quota of pool products only"])
def sale(event, team, request):
    event.live = True
    event.save()
    event.settings.ticket_secret_generator = "imported_secrets"
    ticket = event.items.create(name="Ticket", default_price=0, admission=True)
    quota = event.quotas.create(name="Unlimited", size=None)
    quota.items.add(ticket)
    if request.param == "quota with other products":
        # Then the quota is not capped to the pool's size: the generator alone refuses what it cannot serve.
        quota.items.add(event.items.create(name="Shirt", default_price=0, admission=False))
    for i in range(POOL_SIZE):
        add_secret(event, f"POOL-{i}")
    return event, ticket


def order_concurrently(event, ticket, team, n):
    clients = [token_client_for(team) for _ in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def buy(index):
        try:
            barrier.wait(timeout=30)
            resp = api_order(clients[index], event, {"item": ticket.pk})
            results[index] = (resp.status_code, resp.data)
        except Exception as e:  # a 500 surfaces as an exception in pretix' test settings
            results[index] = ("exception", repr(e))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def issued_secrets(event):
    with scopes_disabled():
        return list(OrderPosition.all.filter(order__event=event).values_list("secret", flat=True))


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent writers (PostgreSQL)")
def test_parallel_orders_never_share_a_secret(sale, team):
    event, ticket = sale
    started = time.monotonic()
    results = order_concurrently(event, ticket, team, CLIENTS)
    elapsed = time.monotonic() - started
    statuses = sorted(str(r[0]) for r in results)
    assert statuses.count("201") == POOL_SIZE, results
    assert statuses.count("400") == CLIENTS - POOL_SIZE, results
    for status, data in results:
        if status == 400:  # refused by the generator, or already by the quota capped to the pool
            assert "no ticket code left" in str(data) or "not enough quota" in str(data)
    secrets = issued_secrets(event)
    assert len(secrets) == len(set(secrets)) == POOL_SIZE
    assert set(secrets) == {f"POOL-{i}" for i in range(POOL_SIZE)}
    assert all(pool_state(event).values())
    print(f"{CLIENTS} concurrent orders, pool of {POOL_SIZE}: {statuses.count('201')} sold, "
          f"{statuses.count('400')} refused, {elapsed:.2f}s")
    assert connection.vendor == "postgresql"


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs row locks (PostgreSQL)")
def test_a_pending_sale_does_not_block_others(sale, team):
    """While one transaction holds the first secret, another order takes the next one at once instead of waiting."""
    event, ticket = sale
    taken, release = threading.Event(), threading.Event()
    held = {}

    def slow_sale():
        try:
            with scope(organizer=event.organizer), transaction.atomic():
                held["secret"] = allocate_secret(event, ticket)
                taken.set()
                release.wait(timeout=30)
                raise RuntimeError("roll back")  # the slow sale fails: its secret goes back to the pool
        except RuntimeError:
            pass
        finally:
            connections.close_all()

    slow = threading.Thread(target=slow_sale)
    slow.start()
    assert taken.wait(timeout=10)
    started = time.monotonic()
    resp = api_order(token_client_for(team), event, {"item": ticket.pk})
    waited = time.monotonic() - started
    release.set()
    slow.join(timeout=30)
    assert resp.status_code == 201
    assert held["secret"] == "POOL-0"
    assert resp.data["positions"][0]["secret"] == "POOL-1"
    assert waited < 5
    print(f"order next to a sale holding a secret took {waited:.2f}s")
    assert pool_state(event)["POOL-0"] is False  # rolled back, so free again


def test_parallel_orders_on_any_database_never_share_a_secret(sale, team):
    """Also on SQLite, where writers wait for the database lock (see tests/settings.py) instead of row locks."""
    event, ticket = sale
    results = order_concurrently(event, ticket, team, 8)
    statuses = [r[0] for r in results]
    assert statuses.count(201) == POOL_SIZE, results
    assert statuses.count(400) == 8 - POOL_SIZE, results
    secrets = issued_secrets(event)
    assert len(secrets) == len(set(secrets)) == POOL_SIZE
    assert all(pool_state(event).values())


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent writers (PostgreSQL)")
def test_counters_stay_right_under_concurrent_sales_and_folding(sale, team, monkeypatch):
    """Sales add rows of differences while other connections read the counters and fold them on every read."""
    event, ticket = sale
    for i in range(POOL_SIZE, 20):
        add_secret(event, f"POOL-{i}")
    monkeypatch.setattr(pool, "COMPACT_AFTER", 0)
    done = threading.Event()
    read_errors = []

    def read_and_fold():
        try:
            with scopes_disabled():
                while not done.is_set():
                    pool_summary(event)
        except Exception as e:
            read_errors.append(repr(e))
        finally:
            connections.close_all()

    readers = [threading.Thread(target=read_and_fold) for _ in range(3)]
    for t in readers:
        t.start()
    results = order_concurrently(event, ticket, team, CLIENTS)
    done.set()
    for t in readers:
        t.join(timeout=30)
    assert not read_errors
    sold = [r[0] for r in results].count(201)
    assert sold == CLIENTS, results
    assert pool_summary(event) == counted_summary(event)
    assert pool.count(event, used=False) == 20 - sold
