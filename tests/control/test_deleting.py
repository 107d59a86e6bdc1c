"""
Deleting secrets in the backend (control/views/deleting.py): all that match the list's search and filters, where a
deletion leads, and its one log entry.
"""
import pytest
from django_scopes import scopes_disabled

from pretix.base.models import LogEntry

from pretix_secrets_import.control.views import deleting
from tests.control.test_views import pool_rows, pool_url
from tests.helpers import add_secret

pytestmark = pytest.mark.django_db


def deletions(event):
    with scopes_disabled():
        return [(e.parsed_data, e.display()) for e in LogEntry.objects.filter(
            event=event, action_type__startswith="pretix_secrets_import.secret").order_by("pk")]


def test_all_that_match_the_filter_after_one_confirmation(backend_client, event, item, item2):
    for n in range(3):
        add_secret(event, f"ITEM-{n}", item=item)
    add_secret(event, "ITEM-USED", item=item, used=True)
    add_secret(event, "OTHER", item=item2)
    query = f"item={item.pk}&after=1&page=2"
    data = {"__ALL": "on", "secret": ["1"], "query": query}  # the page's ticks do not count beside __ALL
    page = backend_client.post(pool_url(event, "delete"), data).content.decode()
    assert "delete the 3 selected secrets?" in page and "Delete 3 secrets" in page
    assert "You selected every unused secret that matches the search and filter of the list" in page
    assert "1 more selected secret is already on a ticket and will be kept." in page
    assert 'name="__ALL" value="on"' in page and 'name="secret"' not in page
    assert f'href="{pool_url(event)}?item={item.pk}&amp;after=1&amp;page=2"' in page  # Cancel: the list as it was
    assert len(pool_rows(event)) == 5
    resp = backend_client.post(pool_url(event, "delete"), {**data, "confirm": "1"})
    # to the whole pool, where the result shows, not into the filtered list
    assert resp.status_code == 302 and resp["Location"] == pool_url(event)
    page = backend_client.get(resp["Location"]).content.decode()
    assert "3 secrets have been deleted." in page and "1 selected secret is already on a ticket and was kept." in page
    assert [secret for secret, _used, _item in pool_rows(event)] == ["ITEM-USED", "OTHER"]
    assert deletions(event) == [({"count": 3, "codes": ["ITEM-0", "ITEM-1", "ITEM-2"]},
                                 "3 unused imported ticket secrets were deleted.")]


def test_all_that_match_a_search(backend_client, event):
    for secret in ("VIP-1", "VIP-2", "GA-1"):
        add_secret(event, secret)
    add_secret(event, "VIP-3", used=True)
    data = {"__ALL": "on", "query": "search=VIP-"}
    page = backend_client.post(pool_url(event, "delete"), data).content.decode()
    assert "delete the 2 selected secrets?" in page and "1 more selected secret is already on a ticket" in page
    backend_client.post(pool_url(event, "delete"), {**data, "confirm": "1"})
    assert [secret for secret, _used, _item in pool_rows(event)] == ["GA-1", "VIP-3"]


def test_all_of_the_pool(backend_client, event):
    add_secret(event, "A")
    add_secret(event, "B", used=True)
    page = backend_client.post(pool_url(event, "delete"), {"__ALL": "on", "query": ""}).content.decode()
    assert "delete the 1 selected secret?" in page and "You selected every unused secret of the pool." in page
    resp = backend_client.post(pool_url(event, "delete"), {"__ALL": "on", "query": "", "confirm": "1"})
    assert resp["Location"] == pool_url(event) and pool_rows(event) == [("B", True, None)]


def test_all_that_match_when_none_can_be_deleted(backend_client, event):
    add_secret(event, "A")
    add_secret(event, "B", used=True)
    resp = backend_client.post(pool_url(event, "delete"), {"__ALL": "on", "query": "used=yes"})
    assert resp.status_code == 302 and resp["Location"] == pool_url(event) + "?used=yes"
    page = backend_client.get(resp["Location"]).content.decode()
    assert "1 selected secret is already on a ticket and was kept." in page
    assert len(pool_rows(event)) == 2 and deletions(event) == []


def test_all_that_match_a_filter_that_is_no_longer_valid(backend_client, event, item):
    add_secret(event, "A")
    resp = backend_client.post(pool_url(event, "delete"), {"__ALL": "on", "query": "item=999999", "confirm": "1"})
    assert resp.status_code == 302 and resp["Location"] == pool_url(event)
    page = backend_client.get(resp["Location"]).content.decode()
    assert "The filters of the list are not valid any more. Please filter it again." in page
    assert len(pool_rows(event)) == 1


def test_a_large_deletion_logs_its_count_and_the_first_secrets(backend_client, event, monkeypatch):
    monkeypatch.setattr(deleting, "LOGGED_CODES", 2)
    selected = [add_secret(event, f"S-{n}") for n in range(3)]
    backend_client.post(pool_url(event, "delete"), {"secret": [s.pk for s in selected], "confirm": "1"})
    assert deletions(event) == [({"count": 3, "codes": ["S-0", "S-1"]},
                                 "3 unused imported ticket secrets were deleted.")]


def test_one_deleted_secret_is_one_entry_in_the_singular(backend_client, event):
    selected = add_secret(event, "S-0")
    backend_client.post(pool_url(event, "delete"), {"secret": [selected.pk], "confirm": "1"})
    assert deletions(event) == [({"count": 1, "codes": ["S-0"]}, "1 unused imported ticket secret was deleted.")]
