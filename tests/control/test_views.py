import html
import io
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled
from openpyxl import Workbook

from pretix.base.models import CachedFile, LogEntry, OrderPosition, User

from pretix_secrets_import.control.views import (
    base as base_views, pool as pool_views,
)
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool.codeformat import LENGTH_MAX, LENGTH_MIN
from tests.helpers import add_secret, add_ticket, make_team
from tests.importing.test_files import spreadsheet

pytestmark = pytest.mark.django_db


def settings_url(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/settings"


def test_settings_page_shows_pool_and_generator_hint(backend_client, event, item):
    add_secret(event, "A")
    add_secret(event, "B", used=True)
    page = backend_client.get(settings_url(event)).content.decode()
    assert "1 unused secret" in page
    assert "ticket code generator" in page
    event.settings.ticket_secret_generator = "imported_secrets"
    page = backend_client.get(settings_url(event)).content.decode()
    assert "1 secret is left" in page
    ticket_settings = f'href="/control/event/{event.organizer.slug}/{event.slug}/settings/tickets"'
    assert ticket_settings in page and "The ticket code generator is chosen in the ticket settings." in page
    general_settings = f"/control/event/{event.organizer.slug}/{event.slug}/settings/"
    assert "Secrets Import" in backend_client.get(general_settings).content.decode()


def test_settings_page_saves_products_and_fallback(backend_client, event, item, item2):
    resp = backend_client.post(settings_url(event), {
        "secrets_import_products": [str(item2.pk)], "secrets_import_when_empty": "random",
    })
    assert resp.status_code == 302
    event.settings.flush()
    assert event.settings.secrets_import_products == [item2.pk]
    assert event.settings.secrets_import_when_empty == "random"
    page = backend_client.get(settings_url(event)).content.decode()
    assert f'value="{item2.pk}"' in page and "checked" in page


def test_settings_page_shows_no_length_limit_as_an_empty_field(backend_client, event):
    """The help text says "leave empty for no limit": the stored 0 is shown so, and a set limit as its number."""
    def length_inputs():
        page = backend_client.get(settings_url(event)).content.decode()
        return [re.search(rf'<input[^>]*name="{key}"[^>]*>', page).group(0) for key in (LENGTH_MIN, LENGTH_MAX)]

    assert not any("value=" in field for field in length_inputs())
    event.settings.set(LENGTH_MIN, 8)
    shortest, longest = length_inputs()
    assert 'value="8"' in shortest and "value=" not in longest


def test_settings_page_rejects_foreign_product(backend_client, event, event2_item):
    resp = backend_client.post(settings_url(event), {
        "secrets_import_products": [str(event2_item.pk)], "secrets_import_when_empty": "refuse",
    })
    assert resp.status_code == 200
    assert "is not one of the available choices" in resp.content.decode()
    event.settings.flush()
    assert event.settings.secrets_import_products == []


@pytest.mark.parametrize("permissions,status", [
    (["event.orders:read", "event.orders:write"], 403),
    (["event.settings.general:write"], 200),
])
def test_settings_page_needs_settings_permission(client, organizer, user, event, permissions, status):
    make_team(organizer, permissions).members.add(user)
    client.login(email=user.email, password="dummy")
    resp = client.get(settings_url(event))
    assert resp.status_code == status
    assert ('name="secrets_import_low_threshold"' in resp.content.decode()) == (status == 200)


def pool_url(event, suffix=""):
    return f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/{suffix}"


def pool_rows(event):
    with scopes_disabled():
        return list(ImportedSecret.objects.filter(event=event).order_by("id").values_list("secret", "used", "item_id"))


def test_pool_page_shows_totals_groups_and_tickets(backend_client, event, item, item2, variation):
    add_secret(event, "FREE-1")
    add_secret(event, "ITEM-1", item=item)
    add_secret(event, "VAR-1", item=item2, variation=variation)
    add_secret(event, "SOLD-1", used=True)
    add_ticket(event, "SOLD-1")
    page = backend_client.get(pool_url(event)).content.decode()
    assert '<div class="h2" id="pool-total">4</div>' in page
    assert '<div class="h2" id="pool-used">1</div>' in page
    assert '<div class="h2" id="pool-unused">3</div>' in page
    summary = page[page.index('id="pool-summary"'):page.index("</table>", page.index('id="pool-summary"'))]
    assert "Ticket" in summary and "Shirt" in summary and "S</td>" in summary
    assert "<code>SOLD-1</code>" in page
    with scopes_disabled():
        position = OrderPosition.all.get(secret="SOLD-1")
    assert f"{position.order.code}-{position.positionid}" in page


def test_pool_page_filters(backend_client, event, item):
    add_secret(event, "ALPHA-1", item=item)
    add_secret(event, "BETA-1", used=True)
    add_secret(event, "BETA-2")

    def listed(query):
        page = backend_client.get(pool_url(event), query).content.decode()
        return [s for s in ("ALPHA-1", "BETA-1", "BETA-2") if f"<code>{s}</code>" in page]

    assert listed({}) == ["ALPHA-1", "BETA-1", "BETA-2"]
    assert listed({"search": "BETA"}) == ["BETA-1", "BETA-2"]
    assert listed({"search": "BETA-1"}) == ["BETA-1"]
    assert listed({"search": "beta"}) == []  # upper and lower case count
    assert listed({"search": "ETA"}) == []  # secrets that begin with the text
    assert listed({"used": "yes"}) == ["BETA-1"]
    assert listed({"used": "no"}) == ["ALPHA-1", "BETA-2"]
    assert listed({"item": str(item.pk)}) == ["ALPHA-1"]
    assert listed({"item": "none", "used": "no"}) == ["BETA-2"]
    assert "did not match any secrets" in backend_client.get(pool_url(event), {"search": "zzz"}).content.decode()
    # the counts come from the pool's counters, except for a search
    for query, count in [({}, 3), ({"search": "BETA"}, 2), ({"used": "yes"}, 1), ({"item": str(item.pk)}, 1),
                         ({"item": "none", "used": "no"}, 1), ({"search": "BETA", "used": "no"}, 1)]:
        assert backend_client.get(pool_url(event), query).context["count"] == count


def test_pool_page_pages_a_search_in_secret_order(backend_client, event, monkeypatch):
    monkeypatch.setattr(pool_views, "POOL_PAGE_SIZE", 2)
    for secret in ("K-3", "K-1", "OTHER", "K-5", "K-2", "K-4"):
        add_secret(event, secret)

    def page(query):
        ctx = backend_client.get(pool_url(event), {"search": "K-", **query}).context
        return [s.secret for s in ctx["secrets"]], ctx["prev_cursor"], ctx["next_cursor"]

    assert page({}) == (["K-1", "K-2"], None, "K-2")
    assert page({"after": "K-2"}) == (["K-3", "K-4"], "K-3", "K-4")
    assert page({"after": "K-4"}) == (["K-5"], "K-5", None)
    assert page({"before": "K-3"}) == (["K-1", "K-2"], None, "K-2")
    assert page({"last": "1"}) == (["K-4", "K-5"], "K-4", None)


def test_pool_page_paginates_by_keyset_with_constant_queries(backend_client, event, monkeypatch):
    monkeypatch.setattr(pool_views, "POOL_PAGE_SIZE", 3)
    for i in range(8):
        add_secret(event, f"S-{i}")
    with scopes_disabled():
        ids = list(ImportedSecret.objects.filter(event=event).order_by("id").values_list("id", flat=True))

    def page(query):
        content = backend_client.get(pool_url(event), query).content.decode()
        return [i for i in range(8) if f"<code>S-{i}</code>" in content], content

    shown, content = page({})
    assert shown == [0, 1, 2] and "Previous" not in content and f"after={ids[2]}" in content
    shown, content = page({"after": ids[2]})
    assert shown == [3, 4, 5] and f"before={ids[3]}" in content and f"after={ids[5]}" in content
    shown, content = page({"after": ids[5]})
    assert shown == [6, 7] and "Next" not in content
    shown, content = page({"before": ids[3]})
    assert shown == [0, 1, 2] and "Previous" not in content
    shown, content = page({"last": "1"})
    assert shown == [5, 6, 7] and f"before={ids[5]}" in content

    with CaptureQueriesContext(connection) as few:
        backend_client.get(pool_url(event))
    for i in range(8, 30):
        add_secret(event, f"S-{i}", used=True)
        add_ticket(event, f"S-{i}")
    monkeypatch.setattr(pool_views, "POOL_PAGE_SIZE", 30)
    with CaptureQueriesContext(connection) as many:
        backend_client.get(pool_url(event))
    # the ticket lookup, the restriction lookups and, now that a product draws from the pool, the per-product
    # table's variations and names: never one per row
    assert len(many) <= len(few) + 4


@pytest.mark.parametrize("permissions,read,write", [
    (["event.orders:read"], 200, 403),
    (["event.orders:read", "event.orders:write"], 200, 200),
    (["event.vouchers:read"], 403, 403),
])
def test_pool_pages_need_order_permissions(client, organizer, user, event, permissions, read, write):
    make_team(organizer, permissions).members.add(user)
    client.login(email=user.email, password="dummy")
    add_secret(event, "LEFT")  # else "delete all unused" has nothing to ask about and leads back to the pool
    assert client.get(pool_url(event)).status_code == read
    for suffix in ("add", "delete_unused", "import/"):
        assert client.get(pool_url(event, suffix)).status_code == write
    nav = client.get(f"/control/event/{organizer.slug}/{event.slug}/").content.decode()
    assert ("Ticket secrets" in nav) == (read == 200)


def test_pool_pages_need_the_plugin(backend_client, disabled_event):
    add_secret(disabled_event, "NOT-SHOWN")
    for suffix in ("", "import/"):
        resp = backend_client.get(pool_url(disabled_event, suffix))
        assert resp.status_code == 404
        assert "Not found" in resp.content.decode() and "NOT-SHOWN" not in resp.content.decode()


def test_add_secret_form(backend_client, event, item, item2, variation):
    add_secret(event, "TAKEN")
    data = {"secret": "NEW-1", "item": str(item2.pk), "variation": str(variation.pk)}
    resp = backend_client.post(pool_url(event, "add"), data)
    assert resp.status_code == 302
    assert pool_rows(event)[-1] == ("NEW-1", False, item2.pk)
    for data, error in [
        ({"secret": "TAKEN"}, "already been imported"),
        ({"secret": "WITH SPACE"}, "must not contain whitespace"),
        ({"secret": "NEW-2", "item": str(item.pk), "variation": str(variation.pk)}, "does not belong"),
    ]:
        resp = backend_client.post(pool_url(event, "add"), data)
        assert resp.status_code == 200 and error in resp.content.decode()
    assert len(pool_rows(event)) == 2
    with scopes_disabled():
        assert LogEntry.objects.filter(action_type="pretix_secrets_import.secret.added").count() == 1


def test_delete_selected_keeps_used_secrets(backend_client, event, event2):
    a, b = add_secret(event, "A"), add_secret(event, "B", used=True)
    foreign = add_secret(event2, "C")
    data = {"secret": [a.pk, b.pk, foreign.pk, "x"]}
    page = backend_client.post(pool_url(event, "delete"), data).content.decode()
    assert "delete the 1 selected secret?" in page and "1 more selected secret is already on a ticket" in page
    assert len(pool_rows(event)) == 2  # not before the confirmation
    resp = backend_client.post(pool_url(event, "delete"), {**data, "confirm": "1"}, follow=True)
    page = resp.content.decode()
    assert "1 secret has been deleted." in page and "1 selected secret is already on a ticket" in page
    assert pool_rows(event) == [("B", True, None)]
    assert pool_rows(event2) == [("C", False, None)]


def test_delete_all_unused_after_confirmation(backend_client, event):
    add_secret(event, "A")
    add_secret(event, "B")
    add_secret(event, "C", used=True)
    assert "all 2 unused secrets" in backend_client.get(pool_url(event, "delete_unused")).content.decode()
    assert backend_client.post(pool_url(event, "delete_unused")).status_code == 302
    assert pool_rows(event) == [("C", True, None)]
    with scopes_disabled():
        assert LogEntry.objects.get(action_type="pretix_secrets_import.secrets.deleted").parsed_data == {
            "count": 2, "codes": ["A", "B"]}


def upload(backend_client, event, name, data):
    resp = backend_client.post(pool_url(event, "import/"), {"file": SimpleUploadedFile(name, data)})
    assert resp.status_code == 302, resp.content.decode()
    return resp["Location"]


def test_import_preview_mapping_and_import(backend_client, event, item):
    process = upload(backend_client, event, "codes.csv", "Code;Product\nK-1;Ticket\nK-2;Ticket\n".encode("cp1252"))
    page = backend_client.get(process).content.decode()
    assert "<td>K-1</td>" in page and "<th>Code</th>" in page
    assert 'value="column:0" selected' in page and 'value="column:1" selected' in page
    resp = backend_client.post(process, {
        "format_set": "1", "encoding": "cp1252", "delimiter": ";", "has_header": "on",
        "secret": "column:0", "item": "column:1", "variation": "",
    }, follow=True)
    assert "2 secrets have been imported." in resp.content.decode()
    assert pool_rows(event) == [("K-1", False, item.pk), ("K-2", False, item.pk)]


def test_import_preview_says_whether_it_shows_every_line(backend_client, event):
    short = backend_client.get(upload(backend_client, event, "short.csv", b"S-1\nS-2\n")).content.decode()
    assert "<td>S-2</td>" in short and "…" not in short and "import-preview-size" not in short
    lines = b"".join(f"L-{i}\n".encode() for i in range(1, 26))
    long = backend_client.get(upload(backend_client, event, "long.csv", lines)).content.decode()
    assert "<td>L-10</td>" in long and "<td>L-11</td>" not in long and "…" in long
    assert "The first 10 lines of 25 lines are shown." in long


def test_import_preview_can_change_the_format(backend_client, event):
    process = upload(backend_client, event, "codes.csv", b"A-1,x\nA-2,y\n")
    page = backend_client.post(process, {"refresh": "1", "format_set": "1", "encoding": "utf-8",
                                         "delimiter": ";", "secret": "column:0"}).content.decode()
    assert "<td>A-1,x</td>" in page and "error" not in page.split('id="import-preview"')[1].split("</table>")[0]
    assert "This field is required" not in page and '<option value=";" selected>' in page
    resp = backend_client.post(process, {"refresh": "1", "format_set": "1", "encoding": "utf-16", "delimiter": ",",
                                         "secret": "column:0"}, follow=True)
    assert resp.redirect_chain[-1][0] == pool_url(event, "import/") and "not valid utf-16" in resp.content.decode()


def test_import_errors_are_reported_and_nothing_is_imported(backend_client, event, user):
    add_secret(event, "OLD")
    process = upload(backend_client, event, "codes.csv", b"NEW-1\nOLD\n=cmd x\nNEW-1\n")
    resp = backend_client.post(process, {"format_set": "1", "encoding": "utf-8", "delimiter": ",",
                                         "secret": "column:0"})
    assert resp.status_code == 302 and "/report/" in resp["Location"]
    page = backend_client.get(resp["Location"]).content.decode()
    assert "the file has 3 problems" in page
    assert "<td>2</td>" in page and "already been imported" in page
    assert "<td>4</td>" in page and "first in line 1" in page
    assert pool_rows(event) == [("OLD", False, None)]
    download = backend_client.get(resp["Location"] + "?download=1")
    report = b"".join(download.streaming_content).decode("utf-8-sig")
    assert report.splitlines()[0] == "Line,Column,Value,Problem"
    assert report.splitlines()[2].startswith("3,Secret,'=cmd x,")
    assert download["Content-Disposition"] == 'attachment; filename="codes-errors.csv"'
    assert len(report.splitlines()) == 4  # the header and the three problems the page counts
    # the report and the upload belong to this browser session only
    other = Client()
    other.force_login(user)  # the same user, in another browser
    assert other.get(resp["Location"]).status_code == 404
    assert other.get(process).status_code == 404


def test_import_xlsx_and_rejected_uploads(backend_client, event):
    workbook = Workbook()
    workbook.active.append(["Secret"])
    workbook.active.append(["X-1"])
    data = io.BytesIO()
    workbook.save(data)
    process = upload(backend_client, event, "codes.xlsx", data.getvalue())
    page = backend_client.get(process).content.decode()
    assert "<td>X-1</td>" in page and 'name="encoding"' not in page
    backend_client.post(process, {"format_set": "1", "has_header": "on", "secret": "column:0"})
    assert pool_rows(event) == [("X-1", False, None)]
    resp = backend_client.post(pool_url(event, "import/"), {"file": SimpleUploadedFile("codes.pdf", b"%PDF")})
    assert "Please upload a CSV or XLSX file." in resp.content.decode()
    process = upload(backend_client, event, "broken.xlsx", b"PK\x03\x04nonsense")
    resp = backend_client.get(process, follow=True)
    assert resp.redirect_chain[-1][0] == pool_url(event, "import/")
    assert "could not be read as an Excel" in resp.content.decode()


def test_odd_parameters_are_ignored_not_errors(backend_client, event):
    add_secret(event, "A")
    for query in ({"after": "²"}, {"before": "²"}, {"after": "9" * 30}, {"item": "x"}, {"used": "maybe"}):
        assert backend_client.get(pool_url(event), query).status_code == 200
    resp = backend_client.post(pool_url(event, "delete"), {"secret": ["²", "9" * 30]}, follow=True)
    assert "You did not select any secrets." in resp.content.decode()
    assert pool_rows(event) == [("A", False, None)]


def test_add_form_reports_a_too_long_secret_once(backend_client, event):
    page = backend_client.post(pool_url(event, "add"), {"secret": "X" * 300}).content.decode()
    assert "must not be longer than 255 characters" in page and "must not be empty" not in page


def test_pool_page_links_only_tickets_of_this_event(backend_client, event, event2):
    add_secret(event, "SHARED", used=True)
    add_ticket(event2, "SHARED")
    with scopes_disabled():
        code = OrderPosition.all.get(secret="SHARED").order.code
    assert code not in backend_client.get(pool_url(event)).content.decode()


def test_import_pages_only_open_our_own_uploads(backend_client, event):
    with scopes_disabled():
        foreign = CachedFile.objects.create(filename="export.csv", type="text/csv", web_download=True)
        foreign.file.save("export.csv", ContentFile(b"SECRET-OF-SOMEONE\n"))
    for suffix in (f"import/{foreign.id}/", f"import/{foreign.id}/report/{foreign.id}/"):
        resp = backend_client.get(pool_url(event, suffix))
        assert resp.status_code == 404
        assert "SECRET-OF-SOMEONE" not in resp.content.decode()
    with scopes_disabled():
        assert CachedFile.objects.filter(pk=foreign.pk).exists()  # still there for its owner
    assert pool_rows(event) == []


def test_pool_page_filters_secrets_without_a_date(backend_client, series, subevent):
    # "Any date" used to send ?subevent=none, which pretix' page context takes for a date's ID: a server error
    add_secret(series, "DATED", subevent=subevent)
    add_secret(series, "UNDATED")
    assert '<option value="0">Any date</option>' in backend_client.get(pool_url(series)).content.decode()
    resp = backend_client.get(pool_url(series), {"subevent": "0"})
    page = resp.content.decode()
    assert "<code>UNDATED</code>" in page and "<code>DATED</code>" not in page
    assert resp.context["count"] == 1


def test_pool_page_with_an_overlong_search(backend_client, event):
    # SQLite refused the LIKE pattern of a 20,000-character search with a server error
    add_secret(event, "A")
    resp = backend_client.get(pool_url(event), {"search": "\u200e" * 20000})
    assert resp.status_code == 200 and "<code>A</code>" in resp.content.decode()


def test_delete_selected_asks_first_and_leads_to_the_whole_pool(backend_client, event):
    """Cancelling goes back to the list as it was; deleting to the whole pool, where the result shows."""
    secrets = [add_secret(event, f"S-{i}") for i in range(3)]
    query = f"search=S-&used=no&after={secrets[0].pk}&page=2"
    data = {"secret": [s.pk for s in secrets[1:]], "query": query}
    page = backend_client.post(pool_url(event, "delete"), data).content.decode()
    assert "delete the 2 selected secrets?" in page and "Delete 2 secrets" in page
    back = pool_url(event) + "?" + query.replace("&", "&amp;")
    assert f'href="{back}"' in page  # Cancel
    assert len(pool_rows(event)) == 3
    resp = backend_client.post(pool_url(event, "delete"), {**data, "confirm": "1"})
    assert resp.status_code == 302 and resp["Location"] == pool_url(event)
    assert pool_rows(event) == [("S-0", False, None)]
    with scopes_disabled():
        assert not LogEntry.objects.filter(action_type="pretix_secrets_import.secret.deleted").exists()
        assert LogEntry.objects.get(action_type="pretix_secrets_import.secrets.deleted").parsed_data == {
            "count": 2, "codes": ["S-1", "S-2"]}
    # only a query string comes back, whatever is sent
    resp = backend_client.post(pool_url(event, "delete"), {"secret": [secrets[0].pk],
                                                           "query": "x=1\r\nLocation: https://evil.example/"})
    assert 'href="/control/event/bigevents/sampleconf/secrets_import/?x=1%0D%0ALocation' in resp.content.decode()


def test_delete_selected_of_used_secrets_only_reports(backend_client, event):
    used = add_secret(event, "USED", used=True)
    resp = backend_client.post(pool_url(event, "delete"), {"secret": [used.pk], "query": "used=yes"})
    assert resp.status_code == 302 and resp["Location"] == pool_url(event) + "?used=yes"
    page = backend_client.get(resp["Location"]).content.decode()
    assert "1 selected secret is already on a ticket and was kept." in page
    assert pool_rows(event) == [("USED", True, None)]


def test_pool_page_offers_selection_only_where_something_can_be_deleted(backend_client, client, organizer, event):
    add_secret(event, "FREE")
    add_secret(event, "SOLD", used=True)

    def selection(c, query):
        page = c.get(pool_url(event), query).content.decode()
        return ("data-toggle-table" in page, "batch-select-checkbox" in page, 'id="pool-delete"' in page)

    assert selection(backend_client, {}) == (True, True, True)
    assert selection(backend_client, {"used": "yes"}) == (False, False, False)
    assert selection(backend_client, {"used": "no"}) == (True, True, True)
    reader = User.objects.create_user("reader@example.org", "reader")
    make_team(organizer, ["event.orders:read"]).members.add(reader)
    client.login(email=reader.email, password="reader")
    assert selection(client, {}) == (False, False, False)


def test_delete_all_unused_with_nothing_unused(backend_client, event):
    add_secret(event, "SOLD", used=True)
    assert "delete_unused" not in backend_client.get(pool_url(event)).content.decode()
    for method in (backend_client.get, backend_client.post):
        resp = method(pool_url(event, "delete_unused"), follow=True)
        assert resp.redirect_chain == [(pool_url(event), 302)]
        page = resp.content.decode()
        assert "There are no unused secrets to delete." in page and "Do you really want" not in page
    assert pool_rows(event) == [("SOLD", True, None)]
    with scopes_disabled():
        assert not LogEntry.objects.filter(action_type="pretix_secrets_import.secrets.deleted").exists()


def test_pool_page_says_which_page_of_how_many(backend_client, event, monkeypatch):
    monkeypatch.setattr(pool_views, "POOL_PAGE_SIZE", 3)
    for i in range(11):
        add_secret(event, f"S-{i:02d}", used=i % 2 == 1)

    def visit(url):
        page = backend_client.get(url).content.decode()
        found = re.findall(r'<a href="([^"]*)" id="pool-(next|last)"', page)
        found += re.findall(r'<a href="([^"]*)">[^<]*?(First|Previous)', page)
        links = {name: pool_url(event) + html.unescape(href) for href, name in found}
        shown = re.search(r'id="pool-page">\s*(.*?)\s*</a>', page)
        return shown and shown.group(1), links

    text, links = visit(pool_url(event))
    assert text == "Page 1 of 4"
    for expected in ("Page 2 of 4", "Page 3 of 4", "Page 4 of 4"):
        text, links = visit(links["next"])
        assert text == expected
    for expected in ("Page 3 of 4", "Page 2 of 4", "Page 1 of 4"):
        text, links = visit(links["Previous"])
        assert text == expected
    text, links = visit(links["last"])
    assert text == "Page 4 of 4"
    text, links = visit(links["Previous"])
    assert text == "Page 3 of 4"
    assert visit(links["First"])[0] == "Page 1 of 4"
    # the counts of a filter; one page needs no pager
    assert visit(pool_url(event) + "?used=no")[0] == "Page 1 of 2"
    assert visit(pool_url(event) + "?search=S-0")[0] == "Page 1 of 4"
    assert visit(pool_url(event) + "?search=S-1")[0] is None
    # the number comes from the pool's counters and the links, never from counting the pool's rows
    with CaptureQueriesContext(connection) as queries:
        assert visit(links["Previous"])[0] == "Page 2 of 4"
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "importedsecret" in q["sql"].lower()]


def test_import_button_says_how_much_it_imports(backend_client, event):
    short = backend_client.get(upload(backend_client, event, "short.csv", b"Code\nS-1\nS-2\n")).content.decode()
    assert re.search(r'id="import-submit">\s*Import 2 secrets\s*</button>', short)
    lines = b"Code\n" + b"".join(f"L-{i}\n".encode() for i in range(1, 1235))
    long = backend_client.get(upload(backend_client, event, "long.csv", lines)).content.decode()
    assert re.search(r'id="import-submit">\s*Import 1,234 lines\s*</button>', long)
    assert "The first 10 lines of 1234 lines are shown." in long  # the header line is not counted
    # an Excel file's lines are not counted, only its stated size is read: about as many
    sheet = spreadsheet([['<c r="A1" t="inlineStr"><is><t>Code</t></is></c>']]
                        + [[f'<c r="A{i}" t="inlineStr"><is><t>X-{i}</t></is></c>'] for i in range(2, 21)],
                        dimension="A1:A400")
    xlsx = backend_client.get(upload(backend_client, event, "codes.xlsx", sheet)).content.decode()
    assert re.search(r'id="import-submit">\s*Import about 399 lines\s*</button>', xlsx)
    assert "The first 10 lines of about 399 lines are shown." in xlsx


def test_import_preview_warns_of_numbers_and_the_import_refuses_them(backend_client, event):
    # the rule of importing/numbers.py, in the backend: a spreadsheet may have changed such a number
    sheet = spreadsheet([
        ['<c r="A1" t="inlineStr"><is><t>Code</t></is></c>'],
        ['<c r="A2" t="inlineStr"><is><t>9007199254740993</t></is></c>'],
        ['<c r="A3"><v>9007199254740993</v></c>'],
    ])
    process = upload(backend_client, event, "codes.xlsx", sheet)
    page = html.unescape(backend_client.get(process).content.decode())
    assert "<td>9007199254740993</td>" in page  # the number as the file stores it
    warning = re.search(r'id="import-number-warning">(.*?)</div>', page, re.S).group(1)
    assert " ".join(warning.split()).startswith('Line 3, column "Code": The cell holds the number 9007199254740993, '
                                                "which has more than 15 digits.")
    resp = backend_client.post(process, {"format_set": "1", "has_header": "on", "secret": "column:0"}, follow=True)
    assert "which has more than 15 digits" in html.unescape(resp.content.decode())
    assert pool_rows(event) == []
    plain = backend_client.get(upload(backend_client, event, "codes.csv", b"9007199254740993\n")).content.decode()
    assert "import-number-warning" not in plain  # text, as written


def text(resp) -> str:
    """The page as the user reads it (messages and values are HTML-escaped)."""
    return html.unescape(resp.content.decode())


def test_add_form_removes_whitespace_around_the_secret_and_says_so(backend_client, event):
    add_secret(event, "TAKEN")
    page = text(backend_client.post(pool_url(event, "add"), {"secret": "  X-1\t"}, follow=True))
    assert 'The whitespace around it was removed: the secret is "X-1".' in page
    assert pool_rows(event)[-1] == ("X-1", False, None)
    page = text(backend_client.post(pool_url(event, "add"), {"secret": "NO-WS"}, follow=True))
    assert "The secret has been added." in page and "whitespace around it" not in page
    for secret, error in [("  X  Y  ", "must not contain whitespace"), (" TAKEN ", "already been imported"),
                          ("   ", "must not be empty"), (" " + "X" * 256, "must not be longer than 255")]:
        assert error in text(backend_client.post(pool_url(event, "add"), {"secret": secret})), secret
    assert pool_rows(event) == [("TAKEN", False, None), ("X-1", False, None), ("NO-WS", False, None)]


def test_add_form_warns_about_a_product_without_pool_secrets(backend_client, event, item, item2, variation):
    def add(**data):
        return text(backend_client.post(pool_url(event, "add"), data, follow=True))

    page = add(secret="SHIRT-1", variation=str(variation.pk))
    assert '1 secret is restricted to "Shirt", which does not get pool secrets – see the plugin settings.' in page
    page = add(secret="TICKET-1", item=str(item.pk))
    assert "The secret has been added." in page and "does not get pool secrets" not in page
    event.settings.secrets_import_products = [item2.pk]  # chosen in the settings: now it is the ticket that does not
    assert '1 secret is restricted to "Ticket", which does not get pool secrets' in add(secret="T-2", item=str(item.pk))
    assert [row[0] for row in pool_rows(event)] == ["SHIRT-1", "TICKET-1", "T-2"]


def test_import_preview_warns_when_a_header_is_imported_as_data(backend_client, event):
    process = upload(backend_client, event, "codes.csv", b"Ticketnummer\nA1B2C3\nD4E5F6\n")
    page = text(backend_client.get(process))
    assert "<th>Ticketnummer</th>" in page and "import-header-warning" not in page  # detected
    page = text(backend_client.post(process, {"refresh": "1", "format_set": "1", "encoding": "utf-8",
                                              "delimiter": ",", "secret": "column:0"}))
    assert "<td>Ticketnummer</td>" in page
    assert "The first line (Ticketnummer) looks like column names, but it will be imported as a secret." in page
    page = text(backend_client.get(upload(backend_client, event, "plain.csv", b"A1B2C3\nD4E5F6\nG7H8I9\n")))
    assert "<td>A1B2C3</td>" in page and "import-header-warning" not in page


def test_import_reports_removed_whitespace_and_products_without_pool_secrets(backend_client, event, item, item2):
    data = "Code;Produkt\n IMP-1 ;Shirt\nIMP-2;Shirt\nIMP-3\t;Ticket\n".encode()
    process = upload(backend_client, event, "codes.csv", data)
    assert 'value="column:1" selected' in text(backend_client.get(process))  # "Produkt" is the product column
    page = text(backend_client.post(process, {"format_set": "1", "encoding": "utf-8", "delimiter": ";",
                                              "has_header": "on", "secret": "column:0", "item": "column:1"},
                                    follow=True))
    assert "3 secrets have been imported." in page
    assert "Whitespace around 2 secrets was removed." in page
    assert '2 secrets are restricted to "Shirt", which does not get pool secrets – see the plugin settings.' in page
    assert '"Ticket", which' not in page
    assert pool_rows(event) == [("IMP-1", False, item2.pk), ("IMP-2", False, item2.pk), ("IMP-3", False, item.pk)]


def test_pool_page_works_while_its_stylesheet_is_not_collected(backend_client, event, monkeypatch, caplog):
    """After an upgrade without `python -m pretix rebuild`, pretix' static manifest does not know the stylesheet."""
    def missing(path):
        raise ValueError(f"Missing staticfiles manifest entry for '{path}'")

    monkeypatch.setattr(base_views, "static", missing)
    resp = backend_client.get(pool_url(event))
    assert resp.status_code == 200
    assert "pool.css" not in resp.content.decode()
    assert "run python -m pretix rebuild" in caplog.text


def test_settings_page_sets_the_symbology(backend_client, event):
    resp = backend_client.post(settings_url(event), {"secrets_import_when_empty": "refuse",
                                                     "secrets_import_symbology": "code128"})
    assert resp.status_code == 302
    event.settings.flush()
    assert event.settings.secrets_import_symbology == "code128"
    page = backend_client.get(settings_url(event)).content.decode()
    assert '<option value="code128" selected>' in page
    resp = backend_client.post(settings_url(event), {"secrets_import_when_empty": "refuse",
                                                     "secrets_import_symbology": "upc"})
    assert resp.status_code == 200 and "secrets_import_symbology" in resp.content.decode()
