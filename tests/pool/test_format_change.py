"""Changing a code format (format_change.py): the page of misfits with its count, deleting them all, the way back."""
from time import monotonic
from urllib.parse import parse_qs, urlsplit

import pytest
from django_scopes import scopes_disabled

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import codeformat, format_change
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.tickets import barcodes
from tests.helpers import add_secret

pytestmark = pytest.mark.django_db

DIGITS = CodeFormat(codeformat.DIGITS)


def secrets(event):
    with scopes_disabled():
        return list(ImportedSecret.of_event(event).order_by("pk").values_list("secret", "used"))


def test_a_page_of_misfits_counts_them_all(event, event2):
    for secret in ("A-1", "1", "A-2", "A-3", "2", "A-4"):
        add_secret(event, secret)
    add_secret(event, "A-USED", used=True)  # on a ticket: printed, not checked
    add_secret(event2, "A-ELSEWHERE")
    rows, count, stopped = format_change.misfit_page(event, DIGITS, size=2)
    assert [secret for _pk, secret, _message in rows] == ["A-1", "A-2"] and count == 4 and stopped is None
    rows, count, stopped = format_change.misfit_page(event, DIGITS, after=rows[-1][0], size=2)
    assert [secret for _pk, secret, _message in rows] == ["A-3", "A-4"] and count == 2 and stopped is None
    assert format_change.misfit_page(event, DIGITS, size=0) == ([], 4, None)
    assert format_change.misfit_page(event, CodeFormat(), size=2) == ([], 0, None)


def test_a_page_of_misfits_stops_counting_at_its_deadline(event):
    first = add_secret(event, "A-1")
    add_secret(event, "A-2")
    rows, count, stopped = format_change.misfit_page(event, DIGITS, size=5, deadline=monotonic() - 1)
    assert [secret for _pk, secret, _message in rows] == ["A-1"] and count == 1 and stopped == first.pk


def test_deleting_all_misfits_keeps_used_and_fitting_secrets(event, event2):
    for secret in ("A-1", "123", "A-2"):
        add_secret(event, secret)
    add_secret(event, "A-USED", used=True)
    add_secret(event2, "A-3")
    assert format_change.delete_misfits(event, DIGITS) == ["A-1", "A-2"]
    assert secrets(event) == [("123", False), ("A-USED", True)]
    assert secrets(event2) == [("A-3", False)]
    assert format_change.delete_misfits(event, DIGITS) == []


def test_deleting_all_misfits_past_the_deadline_deletes_none(event):
    for secret in ("A-1", "A-2"):
        add_secret(event, secret)
    with pytest.raises(format_change.TooSlow):
        format_change.delete_misfits(event, DIGITS, deadline=monotonic() - 1)
    assert secrets(event) == [("A-1", False), ("A-2", False)]


def test_deleting_all_misfits_checks_each_again_before_it_deletes_it(event, monkeypatch):
    """What a sale takes or an API client corrects while the pool is read stays; only what still does not fit goes."""
    sold, corrected = add_secret(event, "A-1"), add_secret(event, "A-2")
    add_secret(event, "A-3")
    scan = format_change.misfits

    def scan_then_change(*args, **kwargs):
        found = list(scan(*args, **kwargs))
        with scopes_disabled():
            ImportedSecret.objects.filter(pk=sold.pk).update(used=True)
            ImportedSecret.objects.filter(pk=corrected.pk).update(secret="42")
        return iter(found)

    monkeypatch.setattr(format_change, "misfits", scan_then_change)
    assert format_change.delete_misfits(event, DIGITS) == ["A-3"]
    assert secrets(event) == [("A-1", True), ("42", False)]


@pytest.mark.parametrize("code_format, settings", [
    (CodeFormat(codeformat.DIGITS, length_min=8, length_max=8, symbology="code128"),
     {codeformat.FORMAT: "digits", codeformat.LENGTH_MIN: 8, codeformat.LENGTH_MAX: 8, barcodes.SETTING: "code128"}),
    (CodeFormat(codeformat.PATTERN, pattern="[A-Z]{2}[0-9]+"),
     {codeformat.FORMAT: "regex", codeformat.LENGTH_MIN: 0, codeformat.LENGTH_MAX: 0, barcodes.SETTING: "qr",
      codeformat.REGEX: "[A-Z]{2}[0-9]+"}),
])
def test_the_settings_link_carries_the_wanted_format(event, code_format, settings):
    signed = parse_qs(urlsplit(format_change.settings_url(event, code_format)).query)["format"][0]
    assert format_change.wanted_settings(event, signed) == settings
    assert CodeFormat.of(settings) == code_format


def test_the_settings_link_takes_only_a_signed_format(event, event2):
    signed = DIGITS.sign(event)
    for value in (None, "", "digits", signed + "x", DIGITS.sign(event2)):
        assert format_change.wanted_settings(event, value) == {}
    assert format_change.wanted_settings(event, signed)[codeformat.FORMAT] == "digits"
