"""
pretix' order import from CSV (backend: Orders → Import), driven through the real backend views with the
imported_secrets generator active. In tests Celery runs eagerly, so posting the column mapping runs the import task
and answers with the redirect the browser would follow once the task is done.
"""
import pytest
from django.contrib import messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled

from pretix.base.models import CachedFile, Order

from tests.helpers import add_secret
from tests.sales import test_generator
from tests.sales.test_generator import pool_state, ticket_secrets

pytestmark = pytest.mark.django_db

shop = test_generator.shop  # the fixture of the generator tests: an event whose tickets use the pool

EMAILS = ["ada@example.org", "grace@example.org", "linus@example.org"]


def import_url(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/orders/import/"


def make_csv(*rows):
    """A CSV file with one line per dict in ``rows``, the keys of the first one as header."""
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(row[column] for column in header) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def buyers(count):
    """CSV rows of ``count`` buyers. pretix needs two columns at least to detect the delimiter."""
    return [{"Email": email, "Name": email.split("@")[0].title()} for email in EMAILS[:count]]


def upload(client, event, content):
    """Step 1 of the import: upload the file; pretix stores it as a CachedFile and redirects to the mapping form."""
    resp = client.post(import_url(event), {"file": SimpleUploadedFile("orders.csv", content, "text/csv")})
    assert resp.status_code == 302, resp.content
    assert resp["Location"].startswith(import_url(event))
    return resp["Location"]


def run_import(client, event, content, **mapping):
    """
    Upload ``content`` and submit the mapping form with its defaults, changed by ``mapping``. Returns the page the
    browser ends up on: the order list on success, the mapping form again on failure, each with a message.
    """
    process_url = upload(client, event, content)
    form = client.get(process_url).context["form"]
    # The event has no region, so pretix cannot preselect the countries: a user would choose one.
    data = {"orders": "many", "status": "paid", "invoice_address_country": "static:DE", "attendee_country": "static:DE"}
    for name, field in form.fields.items():
        choices = [value for value, _ in getattr(field, "choices", [])]
        if choices and name not in data:
            # Like a browser: the preselected option of each column's drop-down, or else its first one.
            data[name] = form[name].value() if form[name].value() in choices else choices[0]
    data.update(mapping)
    resp = client.post(process_url, data)  # runs the import task
    assert resp.status_code == 302, resp.context["form"].errors if resp.context else resp.content
    resp = client.get(resp["Location"], follow=True)
    assert resp.status_code == 200
    return resp


def messages_of(resp):
    return [(m.level, str(m)) for m in resp.context["messages"]]


def orders(event):
    with scopes_disabled():
        return list(Order.objects.filter(event=event).order_by("email").values_list("email", flat=True))


def test_imported_tickets_get_distinct_pool_secrets(backend_client, shop):
    for i in range(4):
        add_secret(shop.event, f"POOL-{i}")
    resp = run_import(backend_client, shop.event, make_csv(*buyers(3)),
                      item=f"static:{shop.ticket.pk}", email="csv:Email")
    assert resp.request["PATH_INFO"] == f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/orders/"
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")]
    assert orders(shop.event) == sorted(EMAILS)
    assert ticket_secrets(shop.event) == ["POOL-0", "POOL-1", "POOL-2"]
    assert pool_state(shop.event) == {"POOL-0": True, "POOL-1": True, "POOL-2": True, "POOL-3": False}
    with scopes_disabled():
        assert not CachedFile.objects.filter(filename="import.csv").exists()  # pretix deletes it after success


def test_one_order_with_several_tickets(backend_client, shop):
    add_secret(shop.event, "POOL-0")
    add_secret(shop.event, "POOL-1")
    rows = [{"Email": EMAILS[0], "Name": name} for name in ("Ada", "Charles")]
    resp = run_import(backend_client, shop.event, make_csv(*rows),
                      item=f"static:{shop.ticket.pk}", email="csv:Email", orders="one")
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")]
    assert orders(shop.event) == [EMAILS[0]]
    assert ticket_secrets(shop.event) == ["POOL-0", "POOL-1"]
    assert pool_state(shop.event) == {"POOL-0": True, "POOL-1": True}


def test_import_larger_than_pool_fails_as_a_whole(backend_client, shop):
    add_secret(shop.event, "POOL-0")
    add_secret(shop.event, "POOL-1")
    resp = run_import(backend_client, shop.event, make_csv(*buyers(3)),
                      item=f"static:{shop.ticket.pk}", email="csv:Email")
    assert resp.request["PATH_INFO"].startswith(import_url(shop.event))  # back to the mapping form, no error 500
    assert messages_of(resp) == [(messages.ERROR, (
        'Error while importing value "" for column "If the imported pool runs out" in line "3": The pool of '
        'imported secrets has no fitting secret left for "Ticket". Import more secrets, or choose "Give those '
        'tickets a random ticket code" in this column.'
    ))]
    assert orders(shop.event) == []
    assert ticket_secrets(shop.event) == []
    assert pool_state(shop.event) == {"POOL-0": False, "POOL-1": False}


def test_import_check_follows_allocation_order(backend_client, shop):
    """A secret bound to the product is counted before an unrestricted one, like the generator takes them."""
    add_secret(shop.event, "FOR-WORKSHOP", item=shop.workshop)
    add_secret(shop.event, "FREE")
    rows = [{"Email": EMAILS[0], "Product": "Workshop", "Variation": "Morning"},
            {"Email": EMAILS[1], "Product": "Ticket", "Variation": ""}]
    resp = run_import(backend_client, shop.event, make_csv(*rows), item="csv:Product", email="csv:Email",
                      variation="csv:Variation")
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")], messages_of(resp)
    assert ticket_secrets(shop.event) == ["FOR-WORKSHOP", "FREE"]


def test_import_with_random_fallback_as_set_for_the_event(backend_client, shop):
    shop.event.settings.secrets_import_when_empty = "random"
    add_secret(shop.event, "POOL-0")
    resp = run_import(backend_client, shop.event, make_csv(*buyers(2)),
                      item=f"static:{shop.ticket.pk}", email="csv:Email")
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")]
    secrets = ticket_secrets(shop.event)
    assert len(secrets) == 2 and "POOL-0" in secrets
    assert pool_state(shop.event) == {"POOL-0": True}


def test_check_column_offers_what_to_do_when_the_pool_runs_out(backend_client, shop):
    form = backend_client.get(upload(backend_client, shop.event, make_csv(*buyers(1)))).context["form"]
    field = form.fields["secrets_import_pool_check"]
    assert field.label == "If the imported pool runs out"
    assert "every line is checked against the pool" in field.help_text
    # pretix lists the file's columns between the first option and the column's own ones
    assert [(value, str(label)) for value, label in field.choices if not value.startswith("csv:")] == [
        ("empty", "As set for the event: import nothing"),
        ("static:refuse", "Import nothing"),
        ("static:random", "Give those tickets a random ticket code"),
    ]
    shop.event.settings.secrets_import_when_empty = "random"
    form = backend_client.get(upload(backend_client, shop.event, make_csv(*buyers(1)))).context["form"]
    assert str(form.fields["secrets_import_pool_check"].choices[0][1]) == (
        "As set for the event: give those tickets a random ticket code"
    )


def test_import_chooses_random_codes_although_the_event_refuses(backend_client, shop, caplog):
    add_secret(shop.event, "POOL-0")
    add_secret(shop.event, "POOL-1")
    resp = run_import(backend_client, shop.event, make_csv(*buyers(3)), item=f"static:{shop.ticket.pk}",
                      email="csv:Email", secrets_import_pool_check="static:random")
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")]
    secrets = ticket_secrets(shop.event)
    [random_one] = set(secrets) - {"POOL-0", "POOL-1"}
    assert len(secrets) == 3 and len(random_one) == shop.event.settings.ticket_secret_length
    assert pool_state(shop.event) == {"POOL-0": True, "POOL-1": True}
    assert "Order import: no imported secret left for bigevents/sampleconf" in caplog.text


def test_import_refuses_although_the_event_gives_random_codes(backend_client, shop):
    shop.event.settings.secrets_import_when_empty = "random"
    add_secret(shop.event, "POOL-0")
    resp = run_import(backend_client, shop.event, make_csv(*buyers(2)), item=f"static:{shop.ticket.pk}",
                      email="csv:Email", secrets_import_pool_check="static:refuse")
    [(level, message)] = messages_of(resp)
    assert level == messages.ERROR and 'in line "2": The pool of imported secrets has no fitting secret' in message
    assert orders(shop.event) == []
    assert pool_state(shop.event) == {"POOL-0": False}


def test_check_column_refuses_a_file_column_that_names_no_option(backend_client, shop):
    add_secret(shop.event, "POOL-0")
    resp = run_import(backend_client, shop.event, make_csv(*buyers(1)), item=f"static:{shop.ticket.pk}",
                      email="csv:Email", secrets_import_pool_check="csv:Name")
    assert messages_of(resp) == [(messages.ERROR, (
        'Error while importing value "Ada" for column "If the imported pool runs out" in line "1": A column of your '
        'file chosen here must say "refuse" or "random" in every line.'
    ))]
    assert orders(shop.event) == []


def test_explicit_ticket_code_bypasses_pool(backend_client, shop):
    add_secret(shop.event, "POOL-0")
    add_secret(shop.event, "POOL-1")
    content = make_csv({"Email": EMAILS[0], "Ticket code": "GIVEN-0"}, {"Email": EMAILS[1], "Ticket code": ""})
    resp = run_import(backend_client, shop.event, content,
                      item=f"static:{shop.ticket.pk}", email="csv:Email", secret="csv:Ticket code")
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")]
    with scopes_disabled():
        secrets = dict(Order.objects.filter(event=shop.event).values_list("email", "all_positions__secret"))
    assert secrets == {EMAILS[0]: "GIVEN-0", EMAILS[1]: "POOL-0"}
    assert pool_state(shop.event) == {"POOL-0": True, "POOL-1": False}


def test_explicit_ticket_codes_need_no_pool(backend_client, shop):
    content = make_csv(*[{"Email": e, "Ticket code": f"GIVEN-{i}"} for i, e in enumerate(EMAILS)])
    resp = run_import(backend_client, shop.event, content,
                      item=f"static:{shop.ticket.pk}", email="csv:Email", secret="csv:Ticket code")
    assert messages_of(resp) == [(messages.SUCCESS, "The import was successful.")]
    assert ticket_secrets(shop.event) == ["GIVEN-0", "GIVEN-1", "GIVEN-2"]
    assert pool_state(shop.event) == {}


def test_explicit_ticket_code_from_the_pool_is_refused(backend_client, shop):
    """Another line could draw that secret from the pool first, and pretix would silently replace the given code."""
    add_secret(shop.event, "POOL-0")
    add_secret(shop.event, "POOL-1")
    content = make_csv({"Email": EMAILS[0], "Ticket code": ""}, {"Email": EMAILS[1], "Ticket code": "POOL-0"})
    resp = run_import(backend_client, shop.event, content,
                      item=f"static:{shop.ticket.pk}", email="csv:Email", secret="csv:Ticket code")
    [(level, message)] = messages_of(resp)
    assert level == messages.ERROR
    assert 'line "2"' in message and "unused secret of the imported pool" in message
    assert orders(shop.event) == []
    assert pool_state(shop.event) == {"POOL-0": False, "POOL-1": False}


def test_check_column_only_with_generator(backend_client, shop):
    process_url = upload(backend_client, shop.event, make_csv(*buyers(1)))
    assert "secrets_import_pool_check" in backend_client.get(process_url).context["form"].fields
    shop.event.settings.ticket_secret_generator = "random"
    process_url = upload(backend_client, shop.event, make_csv(*buyers(1)))
    assert "secrets_import_pool_check" not in backend_client.get(process_url).context["form"].fields


def test_explicit_ticket_code_that_a_spreadsheet_shortened_is_refused(backend_client, shop):
    """The rule of the plugin's own import (importing/numbers.py): saved as CSV, Excel writes a long number as shown."""
    content = make_csv({"Email": EMAILS[0], "Ticket code": "GIVEN-0"},
                       {"Email": EMAILS[1], "Ticket code": "9.00719925474099E+15"})
    resp = run_import(backend_client, shop.event, content,
                      item=f"static:{shop.ticket.pk}", email="csv:Email", secret="csv:Ticket code")
    [(level, message)] = messages_of(resp)
    assert level == messages.ERROR
    assert 'line "2": The code "9.00719925474099E+15" is a long number as a spreadsheet program shows it' in message
    assert orders(shop.event) == []
