"""The reference client: files for a gate system from the feed, a cursor that survives errors and restarts."""
import csv
import json

import pytest

from pretix_secrets_import import gate_sync

from . import test_generator
from .helpers import add_secret, url
from .test_gate import place, post

pytestmark = pytest.mark.django_db
shop = test_generator.shop


def api_fetch(client, failures=()):
    """The client's fetch through pretix' test client; ``failures`` are raised first, one per call."""
    pending = list(failures)

    def fetch(link):
        if pending:
            raise pending.pop(0)
        resp = client.get(link)
        if resp.status_code != 200:
            raise gate_sync.Fatal(f"HTTP {resp.status_code}")
        return json.loads(resp.content)
    return fetch


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.django_db(transaction=True)  # a real commit moves the cursor on PostgreSQL (tests/test_feed.py)
def test_first_sync_then_polls_write_the_files(token_client, shop, committed, tmp_path):
    for secret in ("A", "B", "C"):
        add_secret(shop.event, secret)
    paid = place(token_client, shop, committed)
    pending = place(token_client, shop, committed, status="n")
    state_file, feed = tmp_path / "state.json", url(shop.event, suffix="gate_feed/")
    fetch = api_fetch(token_client)
    gate_sync.run(fetch, feed, state_file, tmp_path, once=True)
    assert [r["secret"] for r in rows(tmp_path / "admitted.csv")] == ["A"]
    assert rows(tmp_path / "refused.csv") == []
    first_cursor = json.loads(state_file.read_text())["cursor"]

    post(token_client, committed, shop.event, paid, "mark_canceled")
    post(token_client, committed, shop.event, pending, "mark_paid")
    gate_sync.run(fetch, feed, state_file, tmp_path, once=True)
    assert [(r["secret"], r["state"], r["order"]) for r in rows(tmp_path / "admitted.csv")] == [
        ("B", "valid", pending)]
    assert [(r["secret"], r["reason"], r["order"]) for r in rows(tmp_path / "refused.csv")] == [
        ("A", "canceled", paid)]
    assert json.loads(state_file.read_text())["cursor"] != first_cursor
    assert not list(tmp_path.glob(".gate_sync-*"))  # no temporary files left


def test_pending_tickets_admitted_on_request(token_client, shop, committed, tmp_path):
    add_secret(shop.event, "P")
    place(token_client, shop, committed, status="n")
    gate_sync.run(api_fetch(token_client), url(shop.event, suffix="gate_feed/"), tmp_path / "s.json", tmp_path,
                  include_pending=True, once=True)
    assert [(r["secret"], r["state"]) for r in rows(tmp_path / "admitted.csv")] == [("P", "pending")]


def test_network_errors_are_retried_and_keep_the_cursor(token_client, shop, committed, tmp_path):
    add_secret(shop.event, "A")
    place(token_client, shop, committed)
    state_file, feed, pauses = tmp_path / "state.json", url(shop.event, suffix="gate_feed/"), []
    fetch = api_fetch(token_client, failures=[OSError("connection refused"), TimeoutError("timed out")])
    gate_sync.run(fetch, feed, state_file, tmp_path, once=True, sleep=pauses.append, log=lambda text: None)
    assert pauses == [2, 4]
    assert [r["secret"] for r in rows(tmp_path / "admitted.csv")] == ["A"]
    saved = state_file.read_text()
    # a round that fails for good leaves the state file and the files as they were
    with pytest.raises(OSError):
        gate_sync.run(api_fetch(token_client, failures=[OSError("down")] * 3), feed, state_file, tmp_path,
                      once=True, retries=2, sleep=lambda s: None, log=lambda text: None)
    assert state_file.read_text() == saved


def test_a_refused_token_ends_with_a_message(client, shop, tmp_path):
    fetch = api_fetch(client)  # not logged in
    with pytest.raises(gate_sync.Fatal):
        gate_sync.run(fetch, url(shop.event, suffix="gate_feed/"), tmp_path / "s.json", tmp_path, once=True)
    assert not (tmp_path / "s.json").exists()


def test_command_line_needs_url_token_and_state_file(capsys):
    with pytest.raises(SystemExit):
        gate_sync.main([])
    assert "--url" in capsys.readouterr().err
