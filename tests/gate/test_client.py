"""The reference client: files for a gate system from the feed, a cursor that survives errors and restarts."""
import csv
import json

import pytest

from pretix_secrets_import.gate import client as gate_sync
from tests.gate.test_states import place, post
from tests.helpers import add_secret, url
from tests.sales import test_generator

pytestmark = pytest.mark.django_db
shop = test_generator.shop


def api_fetch(client, failures=()):
    """The client's fetch through pretix' test client; ``failures`` are raised first, one per call."""
    pending = list(failures)

    def fetch(link):
        if pending:
            raise pending.pop(0)
        resp = client.get(link)
        if resp.status_code in (400, 409) and resp.data.get("code") == gate_sync.SYNC_AGAIN:
            raise gate_sync.SyncAgain(f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise gate_sync.Fatal(f"HTTP {resp.status_code}")
        return json.loads(resp.content)
    return fetch


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.django_db(transaction=True)  # a real commit moves the cursor on PostgreSQL (tests/gate/test_feed.py)
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


@pytest.mark.django_db(transaction=True)
def test_a_check_in_lists_files_follow_pretix_answer(token_client, shop, committed, tmp_path):
    from argparse import Namespace

    from django_scopes import scopes_disabled
    for secret in ("A", "B", "C"):
        add_secret(shop.event, secret)
    paid = place(token_client, shop, committed)
    place(token_client, shop, committed, status="n")
    with scopes_disabled():
        checkinlist = shop.event.checkin_lists.create(name="Entry", include_pending=True)
    args = Namespace(url="http://testserver" + url(shop.event, suffix="gate_feed/"), checkinlist=checkinlist.pk,
                     include_pending=False, page_size=2)
    feed, state_file, logged = gate_sync.feed_url_of(args), tmp_path / "state.json", []
    assert "checkinlist=" in feed and "page_size=2" in feed and "ignore_unpaid" not in feed
    fetch = api_fetch(token_client)
    gate_sync.run(fetch, feed, str(state_file), tmp_path, once=True, log=logged.append)
    assert [(r["secret"], r["order"]) for r in rows(tmp_path / "admitted.csv")] == [("A", paid)]
    assert [(r["secret"], r["refusal"]) for r in rows(tmp_path / "refused.csv")] == [("B", "unpaid")]
    # the gate admits tickets of orders awaiting payment where the list includes them, as pretixSCAN's "check in
    # anyway" does
    state_file.unlink()
    feed = gate_sync.feed_url_of(Namespace(**{**vars(args), "include_pending": True}))
    gate_sync.run(fetch, feed, str(state_file), tmp_path, once=True)
    assert [r["secret"] for r in rows(tmp_path / "admitted.csv")] == ["A", "B"]
    # a change of the list: pretix asks to sync again, the client does so by itself
    with scopes_disabled():
        checkinlist.all_products = False
        checkinlist.save()
    post(token_client, committed, shop.event, paid, "mark_canceled")
    gate_sync.run(fetch, feed, str(state_file), tmp_path, once=True, log=logged.append)
    assert any("syncing again" in line for line in logged)
    assert rows(tmp_path / "admitted.csv") == []
    assert {(r["secret"], r["refusal"]) for r in rows(tmp_path / "refused.csv")} == {
        ("A", "canceled"), ("B", "product")}


def test_one_run_per_state_file(tmp_path):
    state_file = str(tmp_path / "state.json")
    with gate_sync.exclusive(state_file):
        with pytest.raises(gate_sync.Fatal, match="another run"):
            with gate_sync.exclusive(state_file):
                pass
    with gate_sync.exclusive(state_file):  # free again
        pass


def urlopen_through(client, seen):
    """``urllib.request.urlopen`` answered by pretix' test client, as the server would answer the request."""
    class Answer:
        def __init__(self, resp):
            self.headers, self.content = resp.headers, resp.content

        def read(self):
            return self.content

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout):
        resp = client.get(request.full_url, HTTP_ACCEPT_ENCODING=request.get_header("Accept-encoding") or "")
        assert resp.status_code == 200, resp.content
        seen.append((request.full_url, resp.get("Content-Encoding"), len(resp.content)))
        return Answer(resp)
    return urlopen


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_list", [False, True])
def test_compact_gzip_pages_write_the_same_files(token_client, shop, committed, tmp_path, monkeypatch, with_list):
    """The command line reads compact entries in pages of 5,000 with gzip: the files are those of whole entries."""
    from django_scopes import scopes_disabled
    for i in range(40):
        add_secret(shop.event, f"S-{i:02d}")
    paid, pending = place(token_client, shop, committed), place(token_client, shop, committed, status="n")
    place(token_client, shop, committed, shop.shirt)
    feed, scope = "http://testserver" + url(shop.event, suffix="gate_feed/"), {}
    if with_list:
        with scopes_disabled():
            scope = {"checkinlist": shop.event.checkin_lists.create(name="All").pk}
    seen, whole = [], tmp_path / "whole"
    whole.mkdir()
    monkeypatch.setattr(gate_sync.urllib.request, "urlopen", urlopen_through(token_client, seen))

    def same_files():
        gate_sync.main(["--url", feed, "--token", "unused", "--once", "--state-file", str(tmp_path / "state.json"),
                        "--out-dir", str(tmp_path)] + [f"--{k}={v}" for k, v in scope.items()])
        gate_sync.run(api_fetch(token_client), gate_sync.with_query(feed, **scope), str(whole / "state.json"),
                      whole, once=True)
        for name in ("admitted.csv", "refused.csv"):
            assert (tmp_path / name).read_text() == (whole / name).read_text(), name
        return rows(tmp_path / "refused.csv")

    assert [r["secret"] for r in same_files()] == (["S-01"] if with_list else [])  # unpaid
    post(token_client, committed, shop.event, paid, "mark_canceled")
    post(token_client, committed, shop.event, pending, "mark_paid")
    assert "S-00" in {r["secret"] for r in same_files()}  # a poll
    (full_sync, encoding, _size), (poll, _encoding, _size) = seen
    assert "compact=true" in full_sync and "page_size=5000" in full_sync and encoding == "gzip"
    assert "cursor=" in poll and "compact=true" in poll
