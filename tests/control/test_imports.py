"""The backend import: passing over what the pool holds, a file without secrets, the code format on the upload page."""
import re
import uuid

import pytest
from django_scopes import scopes_disabled

from pretix.base.models import CachedFile

from pretix_secrets_import.models import ImportRun
from pretix_secrets_import.pool import codeformat
from tests.control.test_views import pool_rows, pool_url, text, upload
from tests.helpers import add_secret

pytestmark = pytest.mark.django_db
CSV_FORM = {"format_set": "1", "encoding": "utf-8", "delimiter": ",", "secret": "column:0"}


def run_of(process):
    with scopes_disabled():
        return ImportRun.objects.get(upload=uuid.UUID(process.rstrip("/").split("/")[-1]))


def test_the_checkbox_passes_over_the_secrets_in_the_pool_and_the_message_counts_them(backend_client, event):
    add_secret(event, "K-1")
    add_secret(event, "K-2")
    process = upload(backend_client, event, "codes.csv", b"K-1\nK-2\nK-3\n")
    page = text(backend_client.get(process))
    assert 'name="skip_existing"' in page and "Pass over secrets already in the pool" in page
    assert not re.search(r'name="skip_existing"[^>]* checked', page)  # unticked unless chosen
    page = text(backend_client.post(process, {**CSV_FORM, "skip_existing": "on"}, follow=True))
    assert "1 secret has been imported. 2 secrets were in the pool already and have been passed over." in page
    assert [row[0] for row in pool_rows(event)] == ["K-1", "K-2", "K-3"]
    run = run_of(process)
    assert run.options["skip_existing"] is True
    assert (run.outcome["imported"], run.outcome["passed_over"]) == (1, 2)


def test_a_file_whose_secrets_are_all_in_the_pool_is_done_and_its_upload_gone(backend_client, event):
    add_secret(event, "K-1")
    process = upload(backend_client, event, "codes.csv", b"K-1\n")
    page = text(backend_client.post(process, {**CSV_FORM, "skip_existing": "on"}, follow=True))
    assert "0 secrets have been imported. 1 secret was in the pool already and has been passed over." in page
    assert run_of(process).state == ImportRun.IMPORTED
    with scopes_disabled():
        assert not CachedFile.objects.filter(pk=run_of(process).upload).exists()


def test_without_the_checkbox_a_secret_in_the_pool_is_refused_and_a_retry_keeps_it(backend_client, event, item):
    add_secret(event, "K-1")
    process = upload(backend_client, event, "codes.csv", b"K-1\nK-2\n")
    resp = backend_client.post(process, CSV_FORM)
    assert "/report/" in resp["Location"]
    assert "already been imported" in text(backend_client.get(resp["Location"]))
    add_secret(event, "K-2", item=item)  # meanwhile, with a product: another restriction
    resp = backend_client.post(process, {**CSV_FORM, "skip_existing": "on"})
    assert "/report/" in resp["Location"]  # K-1 passed over, K-2 still refused
    report = text(backend_client.get(resp["Location"]))
    assert "the file has 1 problem" in report and "K-2" in report
    assert re.search(r'name="skip_existing"[^>]* checked', text(backend_client.get(process)))  # the retry's choice
    assert pool_rows(event) == [("K-1", False, None), ("K-2", False, item.pk)]


def test_a_file_of_column_names_only_is_said_to_hold_no_secrets_and_offers_no_import(backend_client, event):
    process = upload(backend_client, event, "codes.csv", b"Code;Produkt\n\n")
    page = text(backend_client.get(process))
    assert "The file does not contain any secrets, only a line of column names." in page
    assert 'id="import-submit"' not in page and 'name="secret"' not in page
    assert 'id="import-refresh"' in page  # the first line may still be read as a secret
    page = text(backend_client.post(process, {"refresh": "1", "format_set": "1", "encoding": "utf-8",
                                              "delimiter": ";", "secret": "column:0"}))
    assert "<td>Code</td>" in page and 'id="import-submit"' in page and "import-empty" not in page
    resp = backend_client.post(process, {**CSV_FORM, "delimiter": ";", "has_header": "on"})
    assert resp.status_code == 200 and "does not contain any secrets" in text(resp)  # sent all the same
    assert pool_rows(event) == []
    with scopes_disabled():
        assert not ImportRun.objects.exists()


def test_the_upload_page_names_the_events_code_format(backend_client, event):
    page = text(backend_client.get(pool_url(event, "import/")))
    assert "import-code-format" not in page
    event.settings.set(codeformat.FORMAT, codeformat.DIGITS)
    event.settings.set(codeformat.LENGTH_MIN, 8)
    event.settings.set(codeformat.LENGTH_MAX, 8)
    page = text(backend_client.get(pool_url(event, "import/")))
    assert "The secrets of this event must fit its code format: Digits only, exactly 8 characters." in page
