"""
The gate feed's cursor with writers that commit in another order than they started (PostgreSQL, where writers run
concurrently): a poller in a loop must see every change, at least once.
"""
import threading
import time

import pytest
from django.db import (  # noqa: F401 (connection: in the skipif)
    connection, connections, transaction,
)
from django_scopes import scopes_disabled

from pretix_secrets_import.gate import states as gate
from pretix_secrets_import.models import GateState
from tests.helpers import add_secret, url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent writers (PostgreSQL)"),
]

WRITERS = 6


def change_and_hold(event, secret_id, state, started, release, errors):
    """In a connection of its own: write a gate state change, then keep the transaction open until ``release``."""
    try:
        with scopes_disabled(), transaction.atomic():
            gate.write(event.pk, {}, {secret_id: (state, gate.PAID if state == gate.VALID else gate.CANCELED, {
                "order_code": None, "positionid": None, "item_id": None, "variation_id": None, "subevent_id": None,
            })})
            started.set()
            assert release.wait(timeout=30)
    except Exception as e:  # reported by the test thread
        errors.append(e)
        started.set()
    finally:
        connections.close_all()


def poll_all(client, event, cursor):
    """Every page of a poll (or, without a cursor, of the full sync): results and the cursor to go on with."""
    results, link = [], url(event, suffix="gate_feed/") + (f"?cursor={cursor}" if cursor else "")
    while link:
        page = client.get(link).data
        results += page["results"]
        cursor, link = page["cursor"], page["next"]
    return results, cursor


def test_no_change_is_missed_when_transactions_commit_out_of_order(token_client, event):
    ids = [add_secret(event, f"S-{i}", used=True).pk for i in range(WRITERS)]
    seen, polls, stop, errors = {}, [], threading.Event(), []
    _results, cursor = poll_all(token_client, event, None)

    def poller():
        nonlocal cursor
        try:
            while not stop.is_set():
                results, cursor = poll_all(token_client, event, cursor)
                polls.append(len(results))
                for entry in results:
                    seen.setdefault(entry["secret"], []).append(entry["state"])
                time.sleep(0.02)
        finally:
            connections.close_all()

    # writers start (and take their transaction numbers) in order 0, 1, 2, ...
    releases, threads = [], []
    for i, secret_id in enumerate(ids):
        started, release = threading.Event(), threading.Event()
        thread = threading.Thread(target=change_and_hold, args=(
            event, secret_id, gate.VALID if i % 2 else gate.VOID, started, release, errors))
        thread.start()
        assert started.wait(timeout=30)
        releases.append(release)
        threads.append(thread)
    watcher = threading.Thread(target=poller)
    watcher.start()
    # ... and commit in reverse order, with polls in between
    for release in reversed(releases):
        time.sleep(0.2)
        release.set()
    for thread in threads:
        thread.join(timeout=30)
    time.sleep(0.3)
    stop.set()
    watcher.join(timeout=30)
    assert not errors
    assert len(polls) > WRITERS  # the poller ran while the writers committed one by one

    results, cursor = poll_all(token_client, event, cursor)  # nothing in flight any more
    for entry in results:
        seen.setdefault(entry["secret"], []).append(entry["state"])
    with scopes_disabled():
        final = {g.secret.secret: g.state for g in GateState.objects.filter(event=event).select_related("secret")}
    assert {secret: states[-1] for secret, states in seen.items()} == final
    assert len(final) == WRITERS

    # with nothing in flight, a poll returns exactly what changed after its cursor
    assert poll_all(token_client, event, cursor)[0] == []
    with scopes_disabled(), transaction.atomic():
        known = {ids[0]: GateState.objects.get(secret_id=ids[0])}
        gate.write(event.pk, known, {ids[0]: (gate.PENDING, gate.UNPAID, {
            "order_code": None, "positionid": None, "item_id": None, "variation_id": None, "subevent_id": None})})
    assert [(e["secret"], e["state"]) for e in poll_all(token_client, event, cursor)[0]] == [("S-0", "pending")]
