"""
The pool pages (control/views/pool.py): the counters under a filter, the "select all that match" row, the page of
secrets that do not fit a code format with their count, deleting them all and the way back to the settings.
"""
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from pretix.base.models import LogEntry, User

from pretix_secrets_import.control.views import pool as pool_views
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import codeformat, format_change
from pretix_secrets_import.pool.codeformat import CodeFormat
from tests.control.test_views import pool_rows, pool_url, settings_url
from tests.helpers import add_secret, make_team

pytestmark = pytest.mark.django_db

DIGITS = CodeFormat(codeformat.DIGITS, length_max=4)


def signed_format(event, url, page="misfits"):
    """
    The code format a link to the page of misfits (or the settings) carries, after checking where it leads. The
    format is signed with the time, so the link of a moment ago is not compared as text with one made now.
    """
    parts = urlsplit(html.unescape(url))
    expected = format_change.misfits_url if page == "misfits" else format_change.settings_url
    assert parts.path == urlsplit(expected(event, CodeFormat())).path
    return CodeFormat.unsign(event, parse_qs(parts.query)["format"][0])


def counters(page):
    return [page.split(f'id="pool-{name}">')[1].split("<")[0] for name in ("total", "used", "unused")]


def summary_rows(page):
    table = page[page.index('id="pool-summary"'):page.index("</table>", page.index('id="pool-summary"'))]
    return table.count("<tr>") - 1  # the header's row


def test_the_counters_and_the_table_per_restriction_count_the_filter(backend_client, event, item, item2):
    add_secret(event, "ANY-1")
    add_secret(event, "ITEM-1", item=item)
    add_secret(event, "ITEM-2", item=item, used=True)
    add_secret(event, "OTHER-1", item=item2)
    page = backend_client.get(pool_url(event)).content.decode()
    assert counters(page) == ["4", "1", "3"] and summary_rows(page) == 3 and 'id="pool-filtered"' not in page
    with CaptureQueriesContext(connection) as queries:
        page = backend_client.get(pool_url(event), {"item": str(item.pk)}).content.decode()
    assert counters(page) == ["2", "1", "1"] and summary_rows(page) == 1
    filtered = page.split('id="pool-filtered">')[1].split("</div>")[0]
    assert "the numbers below count only the secrets of" in filtered and f"<strong>{item.name}</strong>" in filtered
    assert "Show the whole pool" in filtered and '<span class="label label-info">filtered</span>' in page
    # from the pool's counters: no query counts the rows of the pool
    table = ImportedSecret._meta.db_table
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
    page = backend_client.get(pool_url(event), {"item": "none"}).content.decode()
    assert counters(page) == ["1", "0", "1"] and "<strong>Any product</strong>" in page
    # a search and the status filter choose rows of the list, not restrictions: the counters count the whole pool
    for query in ({"search": "ITEM"}, {"used": "yes"}):
        page = backend_client.get(pool_url(event), query).content.decode()
        assert counters(page) == ["4", "1", "3"] and 'id="pool-filtered"' not in page


def test_the_counters_count_a_date_filter(backend_client, series, subevent, subevent2):
    add_secret(series, "DAY-1", subevent=subevent)
    add_secret(series, "DAY-2", subevent=subevent2, used=True)
    add_secret(series, "ANY-1")
    page = backend_client.get(pool_url(series), {"subevent": str(subevent2.pk)}).content.decode()
    assert counters(page) == ["1", "1", "0"]
    page = backend_client.get(pool_url(series), {"subevent": "0"}).content.decode()
    assert counters(page) == ["1", "0", "1"] and "<strong>Any date</strong>" in page


def test_the_list_offers_every_secret_that_matches_beyond_the_page(backend_client, event, item, monkeypatch):
    monkeypatch.setattr(pool_views, "POOL_PAGE_SIZE", 2)
    for n in range(3):
        add_secret(event, f"S-{n}", item=item)
    add_secret(event, "OTHER")
    page = backend_client.get(pool_url(event)).content.decode()
    assert 'name="__ALL"' in page and 'data-results-total="4"' in page and "Select all 4 secrets of the pool" in page
    page = backend_client.get(pool_url(event), {"item": str(item.pk)}).content.decode()
    assert "Select all 3 secrets that match this search and filter" in page
    # a single page: ticking the page selects all; nothing to select: nothing to offer
    for query in ({"search": "OTHER"}, {"used": "yes"}):
        assert 'name="__ALL"' not in backend_client.get(pool_url(event), query).content.decode()


def misfits(backend_client, event, code_format=DIGITS, **query):
    url = format_change.misfits_url(event, code_format, **query)
    return backend_client.get(url).content.decode()


def test_the_page_of_misfits_says_how_many_there_are(backend_client, event, monkeypatch):
    monkeypatch.setattr(pool_views, "POOL_PAGE_SIZE", 2)
    for secret in ("A-1", "12", "A-2", "A-3"):
        add_secret(event, secret)
    add_secret(event, "A-USED", used=True)
    page = misfits(backend_client, event)
    assert '3 unused secrets of the pool do not fit the format "Digits only, at most 4 characters".' in page
    assert "This page shows numbers 1 to 2." in page and "Delete all 3 secrets that do not fit" in page
    next_url = html.unescape(page.split('btn-default">Next page')[0].rsplit('href="', 1)[1].split('"')[0])
    page = backend_client.get(next_url).content.decode()
    assert "3 unused secrets of the pool do not fit" in page and "This page shows numbers 3 to 3." in page
    assert "<code>A-3</code>" in page and "Next page" not in page


def test_the_page_of_misfits_says_at_least_when_counting_takes_too_long(backend_client, event, monkeypatch):
    monkeypatch.setattr(pool_views, "MISFITS_SECONDS", 0)
    for secret in ("A-1", "A-2"):
        add_secret(event, secret)
    page = misfits(backend_client, event)
    assert "At least 1 unused secret of the pool does not fit" in page and "counting them all takes" in page
    assert "Delete all secrets that do not fit" in page


def test_the_page_of_misfits_leads_back_to_the_settings_change(backend_client, client, organizer, event):
    add_secret(event, "A-1")
    page = misfits(backend_client, event)
    link = html.unescape(page.split('id="misfits-settings">')[0].rsplit('href="', 1)[1].split('"')[0])
    assert signed_format(event, link, "settings") == DIGITS
    orders_only = User.objects.create_user("orders@example.org", "orders")
    make_team(organizer, ["event.orders:read", "event.orders:write"]).members.add(orders_only)
    client.login(email=orders_only.email, password="orders")
    page = misfits(client, event)
    assert "misfits-settings" not in page and "misfits-delete-all" in page


def delete_url(event, code_format=DIGITS):
    return format_change.misfits_url(event, code_format).replace("/misfits?", "/misfits/delete?")


def test_deleting_all_misfits_asks_once_then_fills_in_the_settings_again(backend_client, event):
    for secret in ("A-1", "12", "A-2", "12345"):
        add_secret(event, secret)
    add_secret(event, "A-USED", used=True)
    resp = backend_client.post(settings_url(event), {
        "secrets_import_when_empty": "refuse", "secrets_import_symbology": "qr",
        codeformat.FORMAT: codeformat.DIGITS, codeformat.LENGTH_MAX: "4",
    })
    assert "3 unused secrets in the pool do not fit" in resp.content.decode()
    page = backend_client.get(delete_url(event)).content.decode()
    assert ('Do you really want to delete all 3 unused secrets that do not fit the format "Digits only, at most 4 '
            'characters"?') in page and "Delete 3 secrets" in page
    assert len(pool_rows(event)) == 5  # not before the confirmation
    resp = backend_client.post(delete_url(event))
    assert resp.status_code == 302 and signed_format(event, resp["Location"], "settings") == DIGITS
    assert [secret for secret, _used, _item in pool_rows(event)] == ["12", "A-USED"]
    with scopes_disabled():
        entry = LogEntry.objects.get(action_type="pretix_secrets_import.secrets.deleted")
    assert entry.parsed_data == {"count": 3, "codes": ["A-1", "A-2", "12345"]}
    assert entry.display() == "3 unused imported ticket secrets were deleted."
    # the settings page, with the format filled in and a word about it
    page = backend_client.get(resp["Location"], follow=True).content.decode()
    assert "3 secrets that did not fit have been deleted." in page
    assert "The code format you wanted is filled in again. Save to change the settings." in page
    assert "checked" in re.search(r'<input[^>]*name="secrets_import_format" value="digits"[^>]*>', page).group(0)
    assert 'value="4"' in re.search(r'<input[^>]*name="secrets_import_length_max"[^>]*>', page).group(0)
    assert "value=" not in re.search(r'<input[^>]*name="secrets_import_length_min"[^>]*>', page).group(0)
    resp = backend_client.post(settings_url(event), {
        "secrets_import_when_empty": "refuse", "secrets_import_symbology": "qr",
        codeformat.FORMAT: codeformat.DIGITS, codeformat.LENGTH_MAX: "4",
    })
    assert resp.status_code == 302
    event.settings.flush()
    assert CodeFormat.of_event(event) == DIGITS


def test_deleting_all_misfits_without_the_settings_permission_ends_on_the_page_of_misfits(client, organizer, event):
    add_secret(event, "A-1")
    orders_only = User.objects.create_user("orders@example.org", "orders")
    make_team(organizer, ["event.orders:read", "event.orders:write"]).members.add(orders_only)
    client.login(email=orders_only.email, password="orders")
    resp = client.post(delete_url(event))
    assert resp.status_code == 302 and signed_format(event, resp["Location"]) == DIGITS
    page = client.get(resp["Location"]).content.decode()
    assert "1 secret that did not fit has been deleted." in page and "All unused secrets of the pool fit." in page
    assert pool_rows(event) == []


def test_deleting_all_misfits_that_takes_too_long_deletes_none(backend_client, event, monkeypatch):
    monkeypatch.setattr(pool_views, "CHECK_SECONDS", 0)
    for secret in ("A-1", "A-2"):
        add_secret(event, secret)
    for send in (backend_client.get, backend_client.post):
        resp = send(delete_url(event))
        assert resp.status_code == 302 and signed_format(event, resp["Location"]) == DIGITS
        page = backend_client.get(resp["Location"]).content.decode()
        assert "took longer than 0 seconds, so none were deleted. Please delete them page by page." in page
    assert len(pool_rows(event)) == 2
    with scopes_disabled():
        assert not LogEntry.objects.filter(action_type="pretix_secrets_import.secrets.deleted").exists()


def test_deleting_all_misfits_when_all_fit(backend_client, event):
    add_secret(event, "12")
    for send in (backend_client.get, backend_client.post):
        resp = send(delete_url(event), follow=True)
        assert "All unused secrets of the pool fit." in resp.content.decode()
        assert urlsplit(resp.redirect_chain[-1][0]).path == settings_url(event)
    assert len(pool_rows(event)) == 1
    with scopes_disabled():
        assert not LogEntry.objects.filter(action_type="pretix_secrets_import.secrets.deleted").exists()


def test_deleting_all_misfits_takes_only_a_signed_format_and_the_write_permission(
        backend_client, client, organizer, event, event2):
    add_secret(event, "A-1")
    for url in (delete_url(event).split("?")[0], delete_url(event) + "x", delete_url(event2).replace(
            f"/{event2.slug}/", f"/{event.slug}/")):
        assert backend_client.get(url).status_code == 404
        assert backend_client.post(url).status_code == 404
    # a format signed before a rule for formats was added: the page of misfits says what is wrong with it
    wrong = CodeFormat(codeformat.PATTERN, pattern=r"(a)\1")
    for send in (backend_client.get, backend_client.post):
        resp = send(delete_url(event, wrong))
        assert resp.status_code == 302 and signed_format(event, resp["Location"]) == wrong
    reader = User.objects.create_user("reader@example.org", "reader")
    make_team(organizer, ["event.orders:read"]).members.add(reader)
    client.login(email=reader.email, password="reader")
    assert client.get(delete_url(event)).status_code == 403
    assert client.post(delete_url(event)).status_code == 403
    assert len(pool_rows(event)) == 1


def test_deleting_selected_misfits_leads_back_to_the_page_of_misfits(backend_client, event):
    first, second = add_secret(event, "A-1"), add_secret(event, "A-2")
    page = misfits(backend_client, event)
    signed = html.unescape(page.split('name="format" value="')[1].split('"')[0])
    data = {"secret": [first.pk], "format": signed}
    page = backend_client.post(pool_url(event, "delete"), data).content.decode()
    assert f'name="format" value="{html.escape(signed)}"' in page
    assert DIGITS in [signed_format(event, link) for link in re.findall(r'href="([^"]*/misfits\?[^"]*)"', page)]
    resp = backend_client.post(pool_url(event, "delete"), {**data, "confirm": "1"})
    assert signed_format(event, resp["Location"]) == DIGITS
    page = backend_client.get(resp["Location"]).content.decode()
    assert "1 secret has been deleted." in page and "<code>A-2</code>" in page and "<code>A-1</code>" not in page
    assert second.pk in [pk for pk, in ImportedSecret.objects.with_scopes_disabled().values_list("pk")]


def test_the_settings_page_ignores_a_format_that_is_not_signed(backend_client, event):
    page = backend_client.get(settings_url(event), {"format": "digits"}).content.decode()
    assert "filled in again" not in page
    event.settings.flush()
    assert CodeFormat.of_event(event) == CodeFormat()
