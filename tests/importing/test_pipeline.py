"""Passing over the secrets that the pool holds already (``skip_existing``): a vendor's list sent again, grown."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from pretix_secrets_import.importing import files
from pretix_secrets_import.importing.columns import ColumnMapping, Source
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import codeformat
from tests.helpers import add_secret, add_ticket
from tests.importing.test_importer import messages, pool, run

pytestmark = pytest.mark.django_db
REPEATED = "This secret appears more than once in your input (first in line {})."
TAKEN = "This secret has already been imported for this organizer."


def test_a_grown_list_imports_the_new_secrets_and_passes_over_the_known_ones(event, item):
    add_secret(event, "V-1", item=item)
    add_secret(event, "V-2", item=item, used=True)  # sold since: a ticket carries it
    add_ticket(event, "V-2", item=item)
    data = b"V-1\nV-2\nV-3\nV-4\n"
    refused = run(event, data, ColumnMapping(item=Source.fixed(item.pk)))
    assert [message for *_cells, message in messages(refused)] == [
        TAKEN, "This secret is already used by a ticket of this organizer."]  # without the option, as ever
    assert refused.passed_over == 0 and len(pool(event)) == 2
    result = run(event, data, ColumnMapping(item=Source.fixed(item.pk)), skip_existing=True)
    assert (result.lines, result.imported, result.passed_over, result.error_count) == (4, 2, 2, 0)
    assert pool(event) == [("V-1", item.pk, None, None), ("V-2", item.pk, None, None),
                           ("V-3", item.pk, None, None), ("V-4", item.pk, None, None)]
    with scopes_disabled():
        assert ImportedSecret.objects.get(secret="V-2").used  # passed over: not touched
    again = run(event, data, ColumnMapping(item=Source.fixed(item.pk)), skip_existing=True)
    assert (again.imported, again.passed_over, again.error_count) == (0, 4, 0)


def test_a_known_secret_with_another_restriction_or_elsewhere_is_still_an_error(event, event2, item, item2, variation):
    add_secret(event, "ITEM", item=item)
    add_secret(event, "SHIRT-S", item=item2, variation=variation)
    add_secret(event, "FREE")
    add_secret(event2, "OTHER-EVENT")
    add_ticket(event2, "ON-TICKET")
    data = f"ITEM,{item2.pk},\nSHIRT-S,,{variation.pk}\nFREE,{item.pk},\nOTHER-EVENT,,\nON-TICKET,,\nNEW,,\n"
    mapping = ColumnMapping(secret=0, item=Source.column(1), variation=Source.column(2))
    result = run(event, data.encode(), mapping, skip_existing=True)
    assert messages(result) == [
        (1, "Secret", "ITEM", TAKEN),
        (3, "Secret", "FREE", TAKEN),
        (4, "Secret", "OTHER-EVENT", TAKEN),
        (5, "Secret", "ON-TICKET", "This secret is already used by a ticket of this organizer."),
    ]
    assert result.passed_over == 1  # the variation's product is implied, as when it was stored
    assert result.imported == 0 and len(pool(event)) == 3


def test_repeats_in_the_file_stay_errors_within_and_across_chunks(event, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 3)
    add_secret(event, "K-1")
    add_secret(event, "K-2")
    lines = ["K-1", "N-1", "K-1", "K-2", "N-2", "x", "N-1", "K-2", "K-1"]
    result = run(event, "\n".join(lines).encode(), skip_existing=True)
    assert messages(result) == [
        (3, "Secret", "K-1", REPEATED.format(1)),  # in the chunk of its first line
        (7, "Secret", "N-1", REPEATED.format(2)),  # stored by this import
        (8, "Secret", "K-2", REPEATED.format(4)),  # passed over in an earlier chunk
        (9, "Secret", "K-1", REPEATED.format(1)),
    ]
    assert result.passed_over == 2 and [row[0] for row in pool(event)] == ["K-1", "K-2"]


def test_a_known_secret_is_passed_over_even_if_it_misfits_a_later_code_format(event):
    add_secret(event, "SOLD-1", used=True)  # a format change checks only the unused secrets
    event.settings.set(codeformat.FORMAT, codeformat.DIGITS)
    result = run(event, b"SOLD-1\n1234\nNEW-1\n", skip_existing=True)
    assert messages(result) == [
        (3, "Secret", "NEW-1", "NEW-1 contains characters other than digits, the only ones this event's codes have.")]
    assert result.passed_over == 1


def test_dry_run_and_warnings_count_only_what_would_be_imported(event, item, item2):
    add_secret(event, "S-1", item=item2)
    result = run(event, b"S-1\nS-2\n", ColumnMapping(item=Source.fixed(item2.pk)), skip_existing=True, dry_run=True)
    assert (result.imported, result.passed_over, result.error_count) == (0, 1, 0)
    assert result.warnings == [
        '1 secret is restricted to "Shirt", which does not get pool secrets – see the plugin settings.']
    assert pool(event) == [("S-1", item2.pk, None, None)]


def test_passing_over_looks_the_pool_up_per_chunk_not_per_line(event):
    def queries(count, prefix):
        run(event, "".join(f"{prefix}-{i}\n" for i in range(count)).encode())
        data = "".join(f"{prefix}-{i}\n" for i in range(count + 1)).encode()
        with CaptureQueriesContext(connection) as context:
            result = run(event, data, skip_existing=True)
        assert (result.imported, result.passed_over) == (1, count)
        return len(context.captured_queries)

    queries(2, "WARM")  # the first import reads what pretix caches afterwards
    assert queries(3, "A") == queries(900, "B")  # SQLite looks up 1,000 secrets per query, PostgreSQL 5,000
