"""
The ``COPY`` path of a large import on PostgreSQL (``importing/copying.py``): every test of the importer runs again with
it taken for any file, so that every line-precise message comes out as the chunked import gives it; and the path's own
cases below.
"""
import io
import logging

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django_scopes import scopes_disabled

from pretix.base.modelimport import DataImportError

from pretix_secrets_import.importing import copying, files
from pretix_secrets_import.importing.columns import ColumnMapping, Source
from pretix_secrets_import.importing.files import FileFormat
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.pool import store as pool_store
from tests.helpers import add_secret, add_ticket
from tests.importing.test_importer import *  # noqa: F401,F403
from tests.importing.test_importer import (
    messages, pool, run, test_a_code_format_changed_during_the_import_fails_it,
)
from tests.importing.test_pipeline import *  # noqa: F401,F403

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's"),
]
del test_a_code_format_changed_during_the_import_fails_it  # it changes the format from the chunked import's store


@pytest.fixture(autouse=True)
def copy_any_file(monkeypatch):
    monkeypatch.setattr(copying, "COPY_FROM_LINES", 0)


@pytest.fixture
def chunked(monkeypatch, caplog):
    """The lines that went to the chunked import: [] if the COPY stored the file."""
    stored = []
    insert = pool_store.insert_rows

    def insert_rows(event, rows, **kwargs):
        rows = list(rows)
        stored.extend(row["secret"] for row in rows)
        return insert(event, rows, **kwargs)

    monkeypatch.setattr(pool_store, "insert_rows", insert_rows)
    caplog.set_level(logging.INFO, logger="pretix_secrets_import.importing.copying")
    return stored


def test_a_valid_file_is_stored_by_one_copy(event, chunked, caplog, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 2)
    result = run(event, b"C-1\nC-2\n C-3\n\nC-4\nC-5\n")
    assert (result.lines, result.imported, result.trimmed, result.error_count) == (5, 5, 1, 0)
    assert [secret for secret, *_r in pool(event)] == ["C-1", "C-2", "C-3", "C-4", "C-5"]
    assert chunked == [] and "chunk by chunk" not in caplog.text


def test_backslashes_and_quotes_are_stored_as_they_are(event, chunked):
    secrets = ["A\\B", "\\N", "C\\\\D", 'E"F', "G'H", "Ü-€-😀"]
    data = "".join(f'"{s}"\n' if '"' not in s else '"E""F"\n' for s in secrets).encode()
    result = run(event, data)
    assert result.imported == 6 and chunked == []
    assert [secret for secret, *_r in pool(event)] == secrets


def test_restrictions_from_columns_and_fixed_go_through_copy(event, item, item2, variation, chunked):
    data = f"R-1,{item.pk},\nR-2,Shirt,{variation.value}\nR-3,,\n".encode()
    result = run(event, data, ColumnMapping(secret=0, item=Source.column(1), variation=Source.column(2)))
    assert result.imported == 3 and chunked == []
    assert pool(event) == [("R-1", item.pk, None, None), ("R-2", item2.pk, variation.pk, None),
                           ("R-3", None, None, None)]
    assert result.restricted == {item: 1, item2: 1}
    fixed = run(event, b"R-4\n", ColumnMapping(item=Source.fixed(item2.pk), variation=Source.fixed(variation.pk)))
    assert fixed.imported == 1 and pool(event)[-1] == ("R-4", item2.pk, variation.pk, None)


@pytest.mark.parametrize("tickets", [1, 30])  # fewer tickets than lines, and more: each side looks up the other
def test_a_secret_on_a_ticket_sends_the_file_to_the_chunked_import(event, event2, chunked, caplog, tickets):
    for i in range(tickets):
        add_ticket(event2, f"T-{i}")
    data = b"".join(b"N-%d\n" % i for i in range(10)) + b"T-0\n"
    result = run(event, data)
    assert messages(result) == [(11, "Secret", "T-0", "This secret is already used by a ticket of this organizer.")]
    assert "chunk by chunk, to find the lines in question: a secret on a ticket" in caplog.text
    assert result.imported == 0 and pool(event) == [] and len(chunked) == 10


@pytest.mark.parametrize("data,line,found", [
    (b"P-1\nP-2\nP-3\n", 2, "a secret in the pool"),  # in the first chunk: looked up before the COPY
    (b"P-1\nP-3\nP-4\nP-2\n", 4, "IntegrityError"),  # later: the unique index fails the COPY
])
def test_a_secret_in_the_pool_sends_the_file_to_the_chunked_import(
        event, event2, chunked, caplog, monkeypatch, data, line, found):
    monkeypatch.setattr(files, "CHUNK_SIZE", 2)
    add_secret(event2, "P-2")
    result = run(event, data)
    assert messages(result) == [(line, "Secret", "P-2", "This secret has already been imported for this organizer.")]
    assert f"chunk by chunk, to find the lines in question: {found}" in caplog.text
    assert pool(event) == []


def test_a_repeat_in_a_later_chunk_fails_the_copy(event, chunked, caplog, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 2)
    result = run(event, b"Q-1\nQ-2\nQ-3\nQ-1\n")
    assert messages(result) == [
        (4, "Secret", "Q-1", "This secret appears more than once in your input (first in line 1).")]
    assert "chunk by chunk, to find the lines in question: IntegrityError" in caplog.text
    assert pool(event) == []


def test_progress_does_not_go_back_when_the_file_is_read_again(event, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 2)
    seen = []
    result = run(event, b"".join(b"G-%d\n" % i for i in range(9)) + b"G-0\n", progress=seen.append)
    assert result.error_count == 1
    assert seen and seen == sorted(seen) and len(set(seen)) == len(seen)


def test_small_files_take_the_chunked_import(event, monkeypatch, chunked):
    monkeypatch.setattr(copying, "COPY_FROM_LINES", 3)
    run(event, b"S-1\nS-2\n")
    assert chunked == ["S-1", "S-2"]
    run(event, b"S-3\nS-4\nS-5\n")
    assert chunked == ["S-1", "S-2"]


def test_what_ends_the_reading_within_the_copy_is_raised_as_it_is(event, monkeypatch):
    """psycopg2 turns an exception of the COPY's source into a database error of its own: the import's stays."""
    monkeypatch.setattr(files, "CHUNK_SIZE", 100)
    data = b"".join(b"U-%05d\n" % i for i in range(3000)) + b"\xff\n"  # past the text reader's first block
    with pytest.raises(DataImportError, match="The file is not valid utf-8 text"):
        with scopes_disabled():
            import_file(event, io.BytesIO(data), FileFormat(), ColumnMapping())

    def stop(fraction):
        if fraction > 0.5:
            raise SoftTimeLimitExceeded()

    with pytest.raises(SoftTimeLimitExceeded):
        run(event, b"".join(b"U-%05d\n" % i for i in range(3000)), progress=stop)
    assert pool(event) == []
