"""Running-low alerts: notification after a sale crosses the threshold, re-arming, dashboard warning, setting."""
import io
import json
import threading
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django_scopes import scope, scopes_disabled

from pretix.base.models import LogEntry, User

from pretix_secrets_import.importing.columns import ColumnMapping
from pretix_secrets_import.importing.files import sniff
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.models import PoolAlert
from pretix_secrets_import.pool.store import Group
from pretix_secrets_import.sales import alerts
from pretix_secrets_import.sales.alerts import ACTION_TYPE, THRESHOLD_MAX
from pretix_secrets_import.sales.generator import allocate_secret
from tests.control.test_views import pool_url, upload
from tests.helpers import add_secret, make_team, token_client_for, url
from tests.sales.test_generator import api_order, use_generator

pytestmark = pytest.mark.django_db
needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                      reason="needs concurrent writers and row locks (PostgreSQL)")


@pytest.fixture
def shop(event):
    use_generator(event)
    event.settings.secrets_import_low_threshold = 2
    ticket = event.items.create(name="Ticket", default_price=0, admission=True)
    workshop = event.items.create(name="Workshop", default_price=0, admission=True)
    morning = workshop.variations.create(value="Morning")
    quota = event.quotas.create(name="All", size=None)
    quota.items.add(ticket, workshop)
    quota.variations.add(morning)
    # Only tickets draw from the pool, so that unrestricted secrets fit one product; tests of several set it back.
    event.settings.secrets_import_products = [ticket.pk]
    return SimpleNamespace(event=event, ticket=ticket, workshop=workshop, morning=morning)


def subscribe(user):
    user.notification_settings.create(action_type=ACTION_TYPE, method="mail", enabled=True, event=None)


@pytest.fixture
def subscriber(organizer):
    """A team member who may read orders and asked for this notification by email."""
    with scopes_disabled():
        user = User.objects.create_user("alerts@example.org", "dummy")
        make_team(organizer, ["event.orders:read"]).members.add(user)
        subscribe(user)
    return user


@pytest.fixture
def sell(token_client, django_capture_on_commit_callbacks):
    """Buy through pretix' order API and run what waits for the commit, as a real request would."""
    def sell(event, *positions):
        with django_capture_on_commit_callbacks(execute=True):
            return api_order(token_client, event, *positions)
    return sell


def alerts_logged(event):
    with scopes_disabled():
        return [json.loads(le.data) for le in LogEntry.all.filter(event=event, action_type=ACTION_TYPE).order_by("id")]


def alerted_groups(event):
    with scopes_disabled():
        return list(PoolAlert.objects.filter(event=event).values_list("item", "variation", "subevent"))


def test_crossing_the_threshold_notifies_once(shop, subscriber, sell, mailoutbox):
    for i in range(3):
        # with a character no token of the email's links has: "S0" was found inside a random unsubscribe token
        add_secret(shop.event, f"S.{i}")
    assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201  # 2 left: not below 2
    assert alerts_logged(shop.event) == []
    assert mailoutbox == []

    assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201  # 1 left
    assert alerts_logged(shop.event) == [{
        "item": shop.ticket.pk, "item_name": "Ticket", "variation": None, "variation_name": None, "subevent": None,
        "subevent_name": None, "remaining": 1, "threshold": 2,
    }]
    assert alerted_groups(shop.event) == [(shop.ticket.pk, None, None)]
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [subscriber.email]
    assert "Only 1 ticket secret left for Ticket" in email.subject
    assert f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/secrets_import/" in email.body
    assert "Warning threshold: 2" in email.body
    assert "S.0" not in email.body and "S.2" not in email.body

    assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201  # 0 left: still below, no second alert
    assert len(alerts_logged(shop.event)) == 1
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_alert_after_a_real_commit(shop, token_client, subscriber, mailoutbox):
    """Without the test's surrounding transaction: the check really runs when pretix commits the order."""
    add_secret(shop.event, "S0")
    add_secret(shop.event, "S1")
    assert api_order(token_client, shop.event, {"item": shop.ticket.pk}).status_code == 201
    assert [a["remaining"] for a in alerts_logged(shop.event)] == [1]
    assert len(mailoutbox) == 1


def test_several_tickets_of_one_order_alert_once(shop, subscriber, sell, mailoutbox):
    for i in range(4):
        add_secret(shop.event, f"S{i}")
    assert sell(shop.event, *[{"item": shop.ticket.pk}] * 4).status_code == 201
    assert [a["remaining"] for a in alerts_logged(shop.event)] == [0]
    assert len(mailoutbox) == 1
    assert "No ticket secrets left" in mailoutbox[0].subject


def test_no_alert_while_at_or_above_threshold(shop, subscriber, sell, mailoutbox):
    for i in range(5):
        add_secret(shop.event, f"S{i}")
    for _ in range(3):
        assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201
    assert alerts_logged(shop.event) == []
    assert alerted_groups(shop.event) == []
    assert mailoutbox == []


def test_alert_counts_every_secret_that_fits_the_product(shop, subscriber, sell, mailoutbox):
    """The own secrets of Workshop – Morning run low, but it can still take a shared one: no alert until those go."""
    shop.event.settings.secrets_import_products = []  # every admission product draws from the pool
    add_secret(shop.event, "ANY-1")
    add_secret(shop.event, "MORNING-1", item=shop.workshop, variation=shop.morning)
    add_secret(shop.event, "MORNING-2", item=shop.workshop, variation=shop.morning)
    sell(shop.event, {"item": shop.workshop.pk, "variation": shop.morning.pk})  # its own: 1 own + 1 shared left
    assert alerts_logged(shop.event) == []
    sell(shop.event, {"item": shop.ticket.pk})  # the shared one: Ticket has none left, Morning 1
    assert sorted(alerts_logged(shop.event), key=lambda a: a["item"]) == [{
        "item": shop.ticket.pk, "item_name": "Ticket", "variation": None, "variation_name": None,
        "subevent": None, "subevent_name": None, "remaining": 0, "threshold": 2,
    }, {
        "item": shop.workshop.pk, "item_name": "Workshop", "variation": shop.morning.pk,
        "variation_name": "Morning", "subevent": None, "subevent_name": None, "remaining": 1, "threshold": 2,
    }]
    assert any("Only 1 ticket secret left for Workshop – Morning" in m.subject for m in mailoutbox)
    with scopes_disabled():
        entry = LogEntry.all.get(action_type=ACTION_TYPE, data__contains='"remaining": 1')
        assert str(entry.display()) == ("Unused ticket secrets for Workshop – Morning fell below the warning "
                                        "threshold of 2: 1 left.")


@pytest.fixture
def day_pass(series, subevent):
    use_generator(series)
    series.settings.secrets_import_low_threshold = 1
    ticket = series.items.create(name="Day pass", default_price=0, admission=True)
    series.quotas.create(name="Day 1", size=None, subevent=subevent).items.add(ticket)
    return ticket


def test_date_group_is_named(series, subevent, day_pass, sell):
    add_secret(series, "DAY1", subevent=subevent)
    assert sell(series, {"item": day_pass.pk, "subevent": subevent.pk}).status_code == 201
    [logged] = alerts_logged(series)
    assert (logged["subevent"], logged["remaining"]) == (subevent.pk, 0)
    assert logged["subevent_name"].startswith("Day 1")
    # pretix names a date "Day 1 - <date>": in a one-line label it stands in brackets, not as one more "–" part
    with scopes_disabled():
        assert alerts.labels(series, [Group(day_pass.pk, None, subevent.pk)]) == [f"Day pass ({subevent})"]
    assert alerts.group_label("Workshop", "Morning") == "Workshop – Morning"


def test_only_subscribed_members_who_may_read_orders_get_the_email(shop, organizer, sell, mailoutbox):
    with scopes_disabled():
        unsubscribed = User.objects.create_user("quiet@example.org", "dummy")
        make_team(organizer, ["event.orders:read"]).members.add(unsubscribed)
        no_permission = User.objects.create_user("settings@example.org", "dummy")
        make_team(organizer, ["event.settings.general:write"]).members.add(no_permission)
        subscribe(no_permission)
    add_secret(shop.event, "ONLY")
    assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201
    assert len(alerts_logged(shop.event)) == 1
    assert mailoutbox == []


def test_adding_secrets_rearms_the_group(shop, token_client, subscriber, sell, mailoutbox):
    shop.event.settings.secrets_import_low_threshold = 3
    for i in range(3):
        add_secret(shop.event, f"S{i}")
    sell(shop.event, {"item": shop.ticket.pk})  # 2 left: alert
    sell(shop.event, {"item": shop.ticket.pk})  # 1 left
    assert len(alerts_logged(shop.event)) == 1

    # Back to 2: still below 3, so the group stays alerted and the next sale is quiet.
    resp = token_client.post(url(shop.event, suffix="bulk_create/"), [{"secret": "B1"}], format="json")
    assert resp.status_code == 201, resp.content
    assert alerted_groups(shop.event) == [(shop.ticket.pk, None, None)]
    sell(shop.event, {"item": shop.ticket.pk})  # 1 left
    assert len(alerts_logged(shop.event)) == 1

    # Back to 3: re-armed, and the next sale that leaves fewer than 3 alerts again.
    for secret in ("A1", "A2"):
        assert token_client.post(url(shop.event), {"secret": secret}, format="json").status_code == 201
    assert alerted_groups(shop.event) == []
    sell(shop.event, {"item": shop.ticket.pk})
    assert [a["remaining"] for a in alerts_logged(shop.event)] == [2, 2]
    assert len(mailoutbox) == 2


def test_file_import_rearms_the_group(shop, subscriber, sell):
    add_secret(shop.event, "S0")
    add_secret(shop.event, "S1")
    sell(shop.event, {"item": shop.ticket.pk})  # 1 left: alert
    assert alerted_groups(shop.event) == [(shop.ticket.pk, None, None)]
    f = io.BytesIO(b"F1\nF2\n")
    with scopes_disabled():
        result = import_file(shop.event, f, sniff(f, "more.csv"), ColumnMapping(), filename="more.csv")
    assert result.imported == 2
    assert alerted_groups(shop.event) == []


def test_changing_the_threshold_rearms(shop, token_client, subscriber, sell, mailoutbox):
    for i in range(3):
        add_secret(shop.event, f"S{i}")
    sell(shop.event, {"item": shop.ticket.pk})
    sell(shop.event, {"item": shop.ticket.pk})  # 1 left: alert
    assert alerted_groups(shop.event) == [(shop.ticket.pk, None, None)]
    resp = token_client.patch(f"/api/v1/organizers/{shop.event.organizer.slug}/events/{shop.event.slug}/settings/",
                              {"secrets_import_low_threshold": 5}, format="json")
    assert resp.status_code == 200, resp.content
    assert alerted_groups(shop.event) == []
    sell(shop.event, {"item": shop.ticket.pk})  # 0 left, below the new threshold: alerts again
    assert [(a["remaining"], a["threshold"]) for a in alerts_logged(shop.event)] == [(1, 2), (0, 5)]


def test_threshold_zero_turns_alerts_off(shop, subscriber, sell, mailoutbox):
    shop.event.settings.secrets_import_low_threshold = 0
    add_secret(shop.event, "ONLY")
    assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201
    assert alerts_logged(shop.event) == []
    assert alerted_groups(shop.event) == []
    assert mailoutbox == []


def test_rolled_back_order_sends_nothing(shop, subscriber, sell, mailoutbox):
    shop.event.settings.secrets_import_products = []  # the workshop draws from the pool too
    add_secret(shop.event, "T1", item=shop.ticket)
    add_secret(shop.event, "T2", item=shop.ticket)
    # The ticket takes T1 (leaving 1 < 2), then the workshop finds no secret and the whole order is rolled back.
    resp = sell(shop.event, {"item": shop.ticket.pk}, {"item": shop.workshop.pk})
    assert resp.status_code == 400
    assert alerts_logged(shop.event) == []
    assert alerted_groups(shop.event) == []
    assert mailoutbox == []
    assert sell(shop.event, {"item": shop.ticket.pk}).status_code == 201
    assert [a["remaining"] for a in alerts_logged(shop.event)] == [1]


# --- dashboard ------------------------------------------------------------------------------------------------------


def dashboard(client, event):
    return client.get(f"/control/event/{event.organizer.slug}/{event.slug}/").content.decode()


def test_dashboard_lists_products_below_the_threshold(shop, backend_client):
    shop.event.settings.secrets_import_products = []
    for i in range(2):
        add_secret(shop.event, f"ANY-{i}")
    assert "running low" not in dashboard(backend_client, shop.event)
    shop.event.settings.secrets_import_low_threshold = 3
    add_secret(shop.event, "MORNING", item=shop.workshop, variation=shop.morning)
    page = dashboard(backend_client, shop.event)
    assert "Imported ticket secrets are running low: fewer than 3 left for" in page
    assert "Ticket: 2 secrets left" in page
    assert "(2 of them shared with other products or dates)" in page
    assert "Workshop – Morning" not in page  # 3 fit it
    assert f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/secrets_import/" in page


def test_dashboard_warns_about_an_empty_pool_without_threshold(shop, backend_client):
    shop.event.settings.secrets_import_low_threshold = 0
    add_secret(shop.event, "USED", used=True)
    assert "no unused secrets left" in dashboard(backend_client, shop.event)
    add_secret(shop.event, "FREE")
    assert "no unused secrets left" not in dashboard(backend_client, shop.event)


def test_dashboard_is_quiet_without_the_generator(shop, backend_client):
    shop.event.settings.ticket_secret_generator = "random"
    assert "no unused secrets left" not in dashboard(backend_client, shop.event)


def test_dashboard_warning_needs_order_permission(shop, client, organizer, user):
    make_team(organizer, ["event.settings.general:write"]).members.add(user)
    client.login(email=user.email, password="dummy")
    page = dashboard(client, shop.event)
    assert shop.event.slug in page
    assert "no unused secrets left" not in page


# --- setting --------------------------------------------------------------------------------------------------------


def settings_page(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/settings"


def post_settings(client, event, threshold):
    return client.post(settings_page(event), {
        "secrets_import_when_empty": "refuse", "secrets_import_low_threshold": threshold,
    })


def test_settings_page_saves_threshold(backend_client, event):
    assert 'name="secrets_import_low_threshold"' in backend_client.get(settings_page(event)).content.decode()
    assert post_settings(backend_client, event, "25").status_code == 302
    event.settings.flush()
    assert event.settings.secrets_import_low_threshold == 25
    assert post_settings(backend_client, event, "").status_code == 302
    event.settings.flush()
    assert event.settings.secrets_import_low_threshold == 0


@pytest.mark.parametrize("value", ["-1", str(THRESHOLD_MAX + 1), "many"])
def test_settings_page_rejects_invalid_threshold(backend_client, event, value):
    assert post_settings(backend_client, event, value).status_code == 200
    event.settings.flush()
    assert event.settings.secrets_import_low_threshold == 0


def api_settings(event):
    return f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/settings/"


def test_settings_api_threshold(token_client, event):
    assert token_client.get(api_settings(event)).data["secrets_import_low_threshold"] == 0
    resp = token_client.patch(api_settings(event), {"secrets_import_low_threshold": 50}, format="json")
    assert resp.status_code == 200, resp.content
    event.settings.flush()
    assert event.settings.secrets_import_low_threshold == 50


@pytest.mark.parametrize("value", [-1, THRESHOLD_MAX + 1, "many", None])
def test_settings_api_rejects_invalid_threshold(token_client, event, value):
    resp = token_client.patch(api_settings(event), {"secrets_import_low_threshold": value}, format="json")
    assert resp.status_code == 400
    assert "secrets_import_low_threshold" in resp.data


# --- concurrency (PostgreSQL) ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@needs_postgresql
def test_parallel_sales_crossing_together_alert_once(shop, team, subscriber, mailoutbox):
    """Each sale's transaction sees only its own secret gone; all of them may find the group below 2 at once."""
    for i in range(4):
        add_secret(shop.event, f"S{i}")
    clients = [token_client_for(team) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    statuses = []

    def buy(client):
        try:
            barrier.wait(timeout=30)
            statuses.append(api_order(client, shop.event, {"item": shop.ticket.pk}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [201] * 4 + [400] * 2
    assert len(alerts_logged(shop.event)) == 1
    assert alerted_groups(shop.event) == [(shop.ticket.pk, None, None)]
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
@needs_postgresql
@pytest.mark.parametrize("pool_size", [2, 3])
def test_crossing_shared_by_two_open_transactions_alerts_once(shop, team, subscriber, mailoutbox, pool_size):
    """
    A sale holds its transaction open while a second one commits. With 3 secrets and threshold 2 neither sees the
    group below 2 before its commit (the alert must not get lost); with 2 both do (it must not be sent twice).
    """
    for i in range(pool_size):
        add_secret(shop.event, f"S{i}")
    taken, release = threading.Event(), threading.Event()
    held = {}

    def slow_sale():
        try:
            with scope(organizer=shop.event.organizer), transaction.atomic():
                held["secret"] = allocate_secret(shop.event, shop.ticket)
                taken.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    slow = threading.Thread(target=slow_sale)
    slow.start()
    assert taken.wait(timeout=10)
    resp = api_order(token_client_for(team), shop.event, {"item": shop.ticket.pk})
    assert resp.status_code == 201
    release.set()
    slow.join(timeout=30)
    assert held["secret"] == "S0"
    assert [a["remaining"] for a in alerts_logged(shop.event)] == [1]
    assert len(mailoutbox) == 1


# --- every write that adds secrets re-arms: the explicit contract of alerts.pool_grew --------------------------------

def _api_create(shop, clients):
    return clients.api.post(url(shop.event), {"secret": "NEW"}, format="json").status_code == 201


def _api_bulk_create(shop, clients):
    resp = clients.api.post(url(shop.event, suffix="bulk_create/"), [{"secret": "NEW"}], format="json")
    return resp.status_code == 201


def _api_update(shop, clients):
    moved = add_secret(shop.event, "NEW", item=shop.workshop)  # in another group until it is changed
    return clients.api.patch(url(shop.event, moved.pk), {"item": None}, format="json").status_code == 200


def _backend_add(shop, clients):
    return clients.backend.post(pool_url(shop.event, "add"), {"secret": "NEW"}).status_code == 302


def _backend_import(shop, clients):
    process = upload(clients.backend, shop.event, "more.csv", b"NEW\n")
    resp = clients.backend.post(process, {"format_set": "1", "encoding": "utf-8", "delimiter": ",",
                                          "secret": "column:0"}, follow=True)
    return "1 secret has been imported." in resp.content.decode()


def _command(shop, clients, tmp_path):
    path = tmp_path / "more.csv"
    path.write_bytes(b"NEW\n")
    call_command("import_secrets", shop.event.organizer.slug, shop.event.slug, str(path))
    return True


WRITE_PATHS = {
    # the functions of the package that store pool secrets (see test_every_pool_writer_is_listed), and how to use them
    "api.ImportedSecretViewSet.perform_create": _api_create,
    "api.ImportedSecretViewSet.bulk_create": _api_bulk_create,
    "api.ImportedSecretViewSet.perform_update": _api_update,
    "control.views.pool.AddSecretView.form_valid": _backend_add,
    "importing.pipeline.import_file": _backend_import,
    "management.commands.import_secrets": _command,
}


@pytest.mark.parametrize("writer", WRITE_PATHS)
def test_every_pool_write_path_rearms_its_group(shop, subscriber, sell, token_client, backend_client, tmp_path,
                                                monkeypatch, writer):
    from pretix_secrets_import.sales import alerts
    shop.event.settings.secrets_import_low_threshold = 2
    add_secret(shop.event, "S0")
    add_secret(shop.event, "S1")
    sell(shop.event, {"item": shop.ticket.pk})  # 1 left: alert
    assert alerted_groups(shop.event) == [(shop.ticket.pk, None, None)]
    calls = []
    original = alerts.pool_grew
    monkeypatch.setattr(alerts, "pool_grew", lambda *args: (calls.append(args), original(*args))[1])
    clients = SimpleNamespace(api=token_client, backend=backend_client)
    write = WRITE_PATHS[writer]
    assert (write(shop, clients, tmp_path) if writer.startswith("management") else write(shop, clients))
    assert calls, f"{writer} stored secrets without calling alerts.pool_grew"
    assert alerted_groups(shop.event) == []  # 2 unused again: re-armed


def test_every_pool_writer_is_listed():
    """A new way of storing secrets must call alerts.pool_grew: this fails until it is in WRITE_PATHS above."""
    import ast
    import pathlib

    import pretix_secrets_import
    package = pathlib.Path(pretix_secrets_import.__file__).parent
    stores = {"insert_rows", "bulk_create", "build"}  # pool.insert_rows, ListSerializer's bulk_create, model build
    writers = set()
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        if module in ("pool.store", "models", "gate.states") or module.startswith("migrations"):
            continue  # the primitives themselves; gate/states.py stores gate states, not secrets
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in stores:
                names, owner = [], node
                while not isinstance(owner, ast.Module):
                    if isinstance(owner, (ast.FunctionDef, ast.ClassDef)):
                        names.insert(0, owner.name)
                    owner = owner.parent
                writers.add(".".join([module, *names]))
    # the functions that store, and the one that calls pool_grew for them where that differs
    called_for = {
        "api.ImportedSecretListSerializer.create": "api.ImportedSecretViewSet.bulk_create",
        "api.ImportedSecretSerializer.create": "api.ImportedSecretViewSet.perform_create",
        "importing.pipeline._FileImport.store": "importing.pipeline.import_file",
    }
    assert {called_for.get(writer, writer) for writer in writers} <= set(WRITE_PATHS), writers
