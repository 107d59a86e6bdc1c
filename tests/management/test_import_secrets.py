"""The ``import_secrets`` command: passing over what the pool holds, and dates as people write them."""
from datetime import datetime, timezone

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from tests.helpers import add_secret
from tests.importing.test_importer import pool, write

pytestmark = pytest.mark.django_db


def test_skip_existing_passes_over_the_known_secrets_and_says_how_many(event, item, tmp_path, capsys):
    add_secret(event, "C-1", item=item)
    add_secret(event, "C-2")  # without the product: another restriction
    path = write(tmp_path, "codes.csv", b"C-1\nC-3\n")
    call_command("import_secrets", "bigevents", "sampleconf", path, "--item", "Ticket", "--skip-existing",
                 "--dry-run")
    out = capsys.readouterr().out
    assert "All 2 line(s) are valid" in out and "1 secret(s) are in the pool already and would be passed over." in out
    call_command("import_secrets", "bigevents", "sampleconf", path, "--item", "Ticket", "--skip-existing")
    out = capsys.readouterr().out
    assert "Imported 1 secret(s)." in out and "Passed over 1 secret(s) that were in the pool already." in out
    assert [row[0] for row in pool(event)] == ["C-1", "C-2", "C-3"]
    path = write(tmp_path, "more.csv", b"C-2\nC-4\n")
    with pytest.raises(SystemExit):
        call_command("import_secrets", "bigevents", "sampleconf", path, "--item", "Ticket", "--skip-existing")
    err = capsys.readouterr().err
    assert 'line 1: Secret "C-2": This secret has already been imported' in err
    assert "1 error(s) in 2 line(s); nothing was imported." in err
    call_command("import_secrets", "bigevents", "sampleconf", write(tmp_path, "new.csv", b"C-5\n"))
    assert "passed over" not in capsys.readouterr().out  # without the option, as ever


def test_a_date_is_chosen_by_its_start_as_written_in_german(series, series_item, tmp_path, capsys):
    with scopes_disabled():
        day = series.subevents.create(name="Day", date_from=datetime(2027, 2, 5, 19, tzinfo=timezone.utc))
    path = write(tmp_path, "codes.csv", b"D-1\n")
    call_command("import_secrets", "bigevents", "series", path, "--subevent", "05.02.2027")
    assert "Imported 1 secret(s)." in capsys.readouterr().out
    assert pool(series) == [("D-1", None, None, day.pk)]
