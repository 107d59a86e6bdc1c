"""Races between two database connections; only PostgreSQL runs writers concurrently, so only it can show them."""
import io
import threading

import pytest
from django.db import connection, connections, transaction
from django_scopes import scopes_disabled

from pretix.base.modelimport import DataImportError

from pretix_secrets_import.importing import columns, files, pipeline
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import format_change
from tests.helpers import url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs concurrent writers (PostgreSQL)"),
]


def insert_and_hold(event, secret, inserted, release):
    """In a second connection: insert ``secret`` and keep the transaction open until ``release`` is set."""
    try:
        with scopes_disabled(), transaction.atomic():
            ImportedSecret.objects.create(event=event, organizer=event.organizer, secret=secret)
            inserted.set()
            release.wait(timeout=10)
    finally:
        connections.close_all()


def run_racing(event, secret, request):
    inserted, release = threading.Event(), threading.Event()
    other = threading.Thread(target=insert_and_hold, args=(event, secret, inserted, release))
    other.start()
    assert inserted.wait(timeout=10)
    # Our request passes validation (the other row is not committed), then waits on the unique index
    # until the other transaction commits.
    threading.Timer(0.5, release.set).start()
    try:
        return request()
    finally:
        other.join(timeout=10)


@pytest.mark.parametrize("bulk", [False, True])
def test_concurrent_insert_of_same_secret_is_400_not_500(token_client, event, bulk):
    if bulk:
        resp = run_racing(event, "raced", lambda: token_client.post(
            url(event, suffix="bulk_create/"), [{"secret": "other"}, {"secret": "raced"}], format="json"))
    else:
        resp = run_racing(event, "raced", lambda: token_client.post(url(event), {"secret": "raced"}, format="json"))
    assert resp.status_code == 400
    assert "already been imported" in str(resp.data)
    with scopes_disabled():
        assert list(ImportedSecret.objects.filter(event=event).values_list("secret", flat=True)) == ["raced"]
    assert connection.vendor == "postgresql"


class HeldImport:
    """
    A file import in a second connection that stops after storing its secrets, before it commits, until ``go`` is
    set; ``outcome`` is then "imported" or the import's error.
    """

    def __init__(self, event, monkeypatch):
        self.stored, self.go, self.outcome = threading.Event(), threading.Event(), []
        store = pipeline._FileImport.store

        def store_and_wait(run, valid):
            store(run, valid)
            self.stored.set()
            self.go.wait(timeout=10)

        monkeypatch.setattr(pipeline._FileImport, "store", store_and_wait)
        self.thread = threading.Thread(target=self.run, args=(event,))
        self.thread.start()
        assert self.stored.wait(timeout=10)

    def run(self, event):
        try:
            with scopes_disabled():
                data = io.BytesIO(b"A-1\nA-2\n")
                pipeline.import_file(event, data, files.sniff(data, "codes.csv"), columns.ColumnMapping())
            self.outcome.append("imported")
        except DataImportError as e:
            self.outcome.append(str(e))
        finally:
            connections.close_all()

    def finish(self):
        self.go.set()
        self.thread.join(timeout=10)


def change_format(token_client, event):
    return token_client.patch(f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/settings/",
                              {"secrets_import_format": "digits"}, format="json")


def test_a_code_format_change_while_a_file_is_imported_fails_the_import(token_client, event, monkeypatch):
    """
    The change checks the pool in its own connection, which cannot see the import's secrets before the import
    commits; the import sees the change before it commits and stores nothing.
    """
    held = HeldImport(event, monkeypatch)
    try:
        resp = change_format(token_client, event)
        assert resp.status_code == 200, resp.content  # the pool it sees is empty
    finally:
        held.finish()
    assert held.outcome == ["The code format of this event was changed while the file was imported, so nothing was "
                            "imported. Please import the file again to check it against the new format."]
    with scopes_disabled():
        assert not ImportedSecret.objects.filter(event=event).exists()


def test_a_file_import_that_commits_while_a_format_change_reads_the_pool_fails_the_change(
        token_client, event, monkeypatch):
    """The change's read of the pool cannot see what commits during it; it notices that the pool changed."""
    scan = format_change.misfits

    def scan_then_let_the_import_commit(*args, **kwargs):
        found = list(scan(*args, **kwargs))
        held.finish()
        return found

    monkeypatch.setattr(format_change, "misfits", scan_then_let_the_import_commit)
    held = HeldImport(event, monkeypatch)
    try:
        resp = change_format(token_client, event)
    finally:
        held.finish()
    assert held.outcome == ["imported"]
    assert resp.status_code == 400 and "Please save again" in resp.data["secrets_import_format"][0]
    event.settings.flush()
    assert event.settings.secrets_import_format == "free"
