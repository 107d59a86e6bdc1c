"""
The plugin's migrations as an installation runs them. tests/settings.py builds the test database through pretix' and
the plugin's real migrations, so these tests check the counting triggers of migration 0005 as installed, on the
database the tests run on (SQLite under ``make test``, PostgreSQL under ``make test-pg``).
"""
import importlib
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Count, Q
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix_secrets_import.models import ImportedSecret, PoolCount
from pretix_secrets_import.pool import store as pool
from tests.helpers import add_secret

pytestmark = pytest.mark.django_db

APP = "pretix_secrets_import"
SECRETS = ImportedSecret._meta.db_table
TRIGGERS = {f"{APP}_count_insert", f"{APP}_count_update", f"{APP}_count_delete"}


def triggers():
    """The names of the triggers on the secrets' table, from the database's catalog."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [SECRETS])
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [SECRETS])
        return {name for (name,) in cursor.fetchall()}


def stored_counts(event):
    """The pool's counts as the plugin reads them, ``{(item, variation, subevent): (total, unused)}``."""
    return {tuple(counted.group): (counted.total, counted.unused) for counted in pool.summary(event)}


def counted_rows(event):
    """The same, counted over the rows."""
    with scopes_disabled():
        rows = (
            ImportedSecret.objects.filter(event=event).order_by().values_list("item", "variation", "subevent")
            .annotate(total=Count("id"), unused=Count("id", filter=Q(used=False)))
        )
        return {(item, variation, subevent): (total, unused) for item, variation, subevent, total, unused in rows}


def assert_counts_right(event):
    assert stored_counts(event) == counted_rows(event)


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql.format(secrets=SECRETS), params)


def raw_insert(event, secret, item=None, used=False):
    """A secret written past Django, as another program would."""
    raw(
        "INSERT INTO {secrets} (organizer_id, event_id, secret, used, item_id, created, modified) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [event.organizer_id, event.pk, secret, used, item and item.pk, now(), now()],
    )


def test_every_migration_of_the_plugin_is_applied():
    package = Path(importlib.import_module(f"{APP}.migrations").__file__).parent
    on_disk = {path.stem for path in package.glob("[0-9]*.py")}
    applied = {name for app, name in MigrationRecorder(connection).applied_migrations() if app == APP}
    assert on_disk
    assert applied == on_disk


def test_counting_triggers_are_installed():
    assert triggers() == TRIGGERS


def test_counts_follow_inserts_updates_and_deletes(event, item, item2):
    with scopes_disabled():
        add_secret(event, "orm")
        ImportedSecret.objects.bulk_create([
            ImportedSecret(event=event, organizer=event.organizer, secret=f"bulk{i}", item=item, used=i == 0)
            for i in range(4)
        ])
        raw_insert(event, "raw0", item=item2)
        raw_insert(event, "raw1", used=True)
        assert_counts_right(event)
        assert stored_counts(event) == {(None, None, None): (2, 1), (item.pk, None, None): (4, 3),
                                        (item2.pk, None, None): (1, 1)}

        ImportedSecret.objects.filter(secret="orm").update(used=True)
        assert_counts_right(event)
        ImportedSecret.objects.filter(secret="bulk1").update(item=item2)  # moves to another group
        assert_counts_right(event)
        raw("UPDATE {secrets} SET used = %s, item_id = %s WHERE secret = %s", [True, item.pk, "raw0"])
        assert_counts_right(event)

        ImportedSecret.objects.filter(secret="bulk2").delete()
        assert_counts_right(event)
        raw("DELETE FROM {secrets} WHERE secret = %s", ["raw1"])
        assert_counts_right(event)
        item.delete()  # deletes its unused secrets and keeps the used ones without the product
        assert_counts_right(event)
        assert stored_counts(event) == {(None, None, None): (3, 0), (item2.pk, None, None): (1, 1)}


@pytest.mark.django_db(transaction=True)  # migrations cannot run inside the test's transaction
def test_migrating_back_before_the_counts_and_forward_again(event, item):
    add_secret(event, "before", item=item)
    try:
        with scopes_disabled():
            call_command("migrate", APP, "0004", verbosity=0)
        assert triggers() == set()
        assert PoolCount._meta.db_table not in connection.introspection.table_names()
        raw_insert(event, "without-triggers", item=item, used=True)
    finally:
        with scopes_disabled():
            call_command("migrate", APP, verbosity=0)
    assert triggers() == TRIGGERS
    assert_counts_right(event)  # 0005 counts the secrets stored so far
    assert stored_counts(event) == {(item.pk, None, None): (2, 1)}
    add_secret(event, "after")
    assert_counts_right(event)


@pytest.mark.django_db(transaction=True)  # SQLite drops tables only outside a transaction
def test_upgrading_derives_the_gate_states_of_the_secrets_used_so_far(event, item):
    from pretix.base.models import Order

    from pretix_secrets_import.models import GateState
    from tests.helpers import add_ticket
    add_secret(event, "FREE")
    add_secret(event, "ELSEWHERE", used=True)
    add_secret(event, "ON-TICKET", used=True)
    add_secret(event, "CANCELED", used=True)
    try:
        call_command("migrate", APP, "0008", verbosity=0)  # as before the upgrade: no states
        with scopes_disabled():
            add_ticket(event, "ON-TICKET", item=item)
            canceled = add_ticket(event, "CANCELED", item=item)
            Order.objects.filter(pk=canceled.order_id).update(status=Order.STATUS_CANCELED)
    finally:
        call_command("migrate", APP, verbosity=0)  # runs outside django-scopes, as on an installation
    with scopes_disabled():
        states = {g.secret.secret: (g.state, g.reason) for g in GateState.objects.select_related("secret")}
    assert states == {"ELSEWHERE": ("reserved", "marked_used"), "ON-TICKET": ("valid", "paid"),
                      "CANCELED": ("void", "canceled")}
