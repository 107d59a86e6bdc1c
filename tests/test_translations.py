"""
The translations are complete and in use. When a test here fails after you changed or added a user-visible text, run
`make messages`, translate the new entries in pretix_secrets_import/locale/*/LC_MESSAGES/django.po (no empty and no
fuzzy ones) and run `make messages` again to compile them.
"""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from pretix_secrets_import.pool.rules import ALREADY_IMPORTED
from tests.helpers import add_secret

PACKAGE = Path(__file__).resolve().parent.parent / "pretix_secrets_import"
CATALOGS = sorted(PACKAGE.glob("locale/*/LC_MESSAGES/django.po"))
HINT = "run `make messages`, translate the new entries and run `make messages` again"

needs_gettext = pytest.mark.skipif(
    not (shutil.which("msgfmt") and shutil.which("xgettext")), reason="GNU gettext (msgfmt, xgettext) is not installed",
)


def read_po(path):
    """``{(msgctxt, msgid, msgid_plural): (msgstrs, flags)}`` of a .po/.pot file; no header, no obsolete entries."""
    entries = {}
    for block in Path(path).read_text(encoding="utf-8").split("\n\n"):
        fields, flags, key = {}, set(), None
        for line in block.splitlines():
            if line.startswith("#,"):
                flags.update(f.strip() for f in line[2:].split(","))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
            elif not line.startswith("#") and line.strip():
                key, _space, value = line.partition(" ")
                fields[key] = ast.literal_eval(value)
        if fields.get("msgid"):
            msgstrs = [value for name, value in sorted(fields.items()) if name.startswith("msgstr")]
            entries[(fields.get("msgctxt"), fields["msgid"], fields.get("msgid_plural"))] = (msgstrs, flags)
    return entries


def test_there_is_a_german_catalog():
    assert {path.parent.parent.name for path in CATALOGS} >= {"de", "de_Informal"}


@needs_gettext
@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parent.parent.name)
def test_catalog_is_complete_and_valid(po):
    # --check also compares the placeholders ({count}, %(max)s) of every translation with those of the English text.
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po)],
        capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ translated messages?\.", result.stderr.strip()), f"{result.stderr.strip()}: {HINT}"
    # msgfmt leaves fuzzy entries out of its count only if they are translated; check the file itself, too.
    unfinished = [key[1] for key, (msgstrs, flags) in read_po(po).items() if "fuzzy" in flags or not all(msgstrs)]
    assert not unfinished, f"untranslated or fuzzy: {unfinished}; {HINT}"


@pytest.fixture(scope="module")
def source_messages(tmp_path_factory):
    """Every text marked for translation in the sources, extracted like `make messages` does, into a copy."""
    copy = tmp_path_factory.mktemp("messages") / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (copy / "locale").mkdir()
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "de", "--keep-pot", "--no-obsolete",
         "--add-location", "file"],
        cwd=copy, env=env, check=True, capture_output=True,
    )
    return set(read_po(copy / "locale" / "django.pot"))


@needs_gettext
@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parent.parent.name)
def test_catalog_has_every_text_of_the_sources(po, source_messages):
    catalog = set(read_po(po))
    assert source_messages, "no translatable texts found in the sources"
    missing = sorted(key[1] for key in source_messages - catalog)
    assert not missing, f"not in {po.relative_to(PACKAGE)}: {missing}; {HINT}"
    unused = sorted(key[1] for key in catalog - source_messages)
    assert not unused, f"no longer in the sources: {unused}; {HINT}"


@pytest.mark.parametrize("po", CATALOGS, ids=lambda path: path.parent.parent.name)
def test_catalog_is_compiled(po):
    mo = po.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime, (
        f"{mo.relative_to(PACKAGE)} is missing or older than the .po file: run `make compilemessages`"
    )


def backend_page(client, user, locale, path):
    user.locale = locale
    user.save(update_fields=["locale"])
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Language"] == locale
    return response.content.decode()


@pytest.mark.django_db
def test_backend_pages_in_german(backend_client, user, event, item):
    base = f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/"
    page = backend_page(backend_client, user, "de", base)
    assert "Ticket-Codes" in page
    assert "Sie haben noch keine Ticket-Codes importiert." in page
    assert "Beliebiges Produkt" in page  # the filter form
    assert "You have not imported any secrets yet." not in page

    add_secret(event, "ABC-1")
    page = backend_page(backend_client, user, "de", base)
    assert "1 Ticket-Code gefunden." in page
    assert '<span class="label label-success">frei</span>' in page

    page = backend_page(backend_client, user, "de", base + "settings")
    assert "Produkte, die importierte Ticket-Codes erhalten" in page
    assert "Verkauf ablehnen" in page
    assert ("Der Pool enthält 1 freien Ticket-Code, aber die Tickets dieser Veranstaltung verwenden ihn noch "
            "nicht.") in page
    assert "„Importierte Ticket-Codes“" in page

    page = backend_page(backend_client, user, "de-informal", base + "?search=nothing")
    assert "Zu deiner Suche wurden keine Ticket-Codes gefunden." in page


def test_python_texts_in_german():
    with translation.override("de"):
        assert str(ALREADY_IMPORTED) == "Dieser Ticket-Code wurde für diesen Veranstalter bereits importiert."
        assert translation.ngettext(
            "{count} secret has been imported.", "{count} secrets have been imported.", 2,
        ).format(count=2) == "2 Ticket-Codes wurden importiert."
