"""The code format of an event (codeformat.py): the rule itself, on every way into the pool, and changing it."""
import time

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled
from hypothesis import given, settings, strategies as st

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import codeformat, format_change
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.tickets import barcodes
from tests.control.test_views import pool_url, settings_url, upload
from tests.helpers import URL, add_secret
from tests.importing.test_importer import write

pytestmark = pytest.mark.django_db


def settings_api(event):
    return f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/settings/"


def pool_api(event, suffix=""):
    return URL.format(orga=event.organizer.slug, event=event.slug) + suffix


def set_format(event, **values):
    for key, value in values.items():
        event.settings.set(key, value)


def secrets(event):
    with scopes_disabled():
        return sorted(ImportedSecret.of_event(event).values_list("secret", flat=True))


@pytest.mark.parametrize("code_format, secret, message", [
    (CodeFormat(), "any-Thing_ä", None),
    (CodeFormat(codeformat.DIGITS), "0123456789", None),
    (CodeFormat(codeformat.DIGITS), "01234A",
     "01234A contains characters other than digits, the only ones this event's codes have."),
    (CodeFormat(codeformat.ALPHANUMERIC), "Ab9+/=", None),
    (CodeFormat(codeformat.ALPHANUMERIC), "Ab-9",
     "Ab-9 contains characters other than letters, digits and + / =, the only ones this event's codes have."),
    (CodeFormat(codeformat.EAN13), "4006381333931", None),
    (CodeFormat(codeformat.EAN13), "4006381333932",
     "4006381333932 has a wrong EAN-13 check digit: the last digit must be 1."),
    (CodeFormat(codeformat.EAN13), "400638133393",
     "400638133393 is not an EAN-13 code, which this event's codes are: 13 digits, the last of them the check digit."),
    (CodeFormat(codeformat.EAN13, symbology="ean13"), "400638133393",
     "400638133393 is not an EAN-13 code, which this event's codes are: 13 digits, the last of them the check digit."),
    (CodeFormat(length_min=8, length_max=8), "1234567", "1234567 has 7 characters, but this event's codes have "
                                                        "exactly 8 characters."),
    (CodeFormat(length_min=4, length_max=6), "ABCDEFG", "ABCDEFG has 7 characters, but this event's codes have "
                                                        "4 to 6 characters."),
    (CodeFormat(length_min=4), "ABC", "ABC has 3 characters, but this event's codes have at least 4 characters."),
    (CodeFormat(length_max=4), "ABCDE", "ABCDE has 5 characters, but this event's codes have at most 4 characters."),
    (CodeFormat(length_min=4, length_max=6), "ABCD", None),
    (CodeFormat(codeformat.PATTERN, pattern="[A-Z]{2}[0-9]{3}"), "AB123", None),
    (CodeFormat(codeformat.PATTERN, pattern="[A-Z]{2}[0-9]{3}"), "AB1234",
     "AB1234 does not match this event's regular expression [A-Z]{2}[0-9]{3}."),
    (CodeFormat(codeformat.PATTERN, pattern=r"(?i)\pL+-\d+"), "Grüße-12", None),
    # RE2's \d, \w and the like are ASCII (README)
    (CodeFormat(codeformat.PATTERN, pattern=r"\d+"), "١٢٣",
     "١٢٣ does not match this event's regular expression \\d+."),
    # the symbologies' own rules
    (CodeFormat(symbology="ean13"), "4006381333932",
     "4006381333932 has a wrong EAN-13 check digit: the last digit must be 1."),
    (CodeFormat(symbology="itf"), "123", "123 cannot be printed as Interleaved 2 of 5, which encodes an even number "
                                         "of digits."),
    (CodeFormat(symbology="itf"), "1" * 60, None),
    (CodeFormat(symbology="itf"), "1" * 62,
     "1" * 62 + " is too long to be printed as Interleaved 2 of 5 on a ticket: at most 60 characters."),
    (CodeFormat(symbology="code39"), "abc", "abc cannot be printed as Code 39, which encodes capital letters A–Z, "
                                            "digits and the characters - . $ / + %."),
    (CodeFormat(symbology="code39"), "A" * 26, "A" * 26 + " is too long to be printed as Code 39 on a ticket: at "
                                                          "most 25 characters."),
    (CodeFormat(symbology="code128"), "Grüße", "Grüße cannot be printed as Code 128, which encodes letters A–Z and "
                                               "a–z, digits and the ASCII punctuation characters."),
    (CodeFormat(symbology="code128"), "x" * 47, None),
    (CodeFormat(symbology="datamatrix"), "Grüße" * 51, None),
])
def test_the_rule_of_a_format(code_format, secret, message):
    assert code_format.checker()(secret) == message


def refusal(pattern):
    """What the settings say to ``pattern`` as the format's regular expression; ``None``: taken."""
    return CodeFormat(codeformat.PATTERN, pattern=pattern).problems().get(codeformat.REGEX)


@pytest.mark.parametrize("pattern, fits, misfits", [
    ("(a+)+$", "a" * 255, "a" * 254 + "!"),
    ("(a|a)*b", "a" * 254 + "b", "a" * 255),
    ("(a|aa)+c", "a" * 254 + "c", "a" * 255),
    ("(.*a){25}", "a" * 255, "a" * 24 + "b" * 231),
    ("(x+x+)+y", "x" * 254 + "y", "x" * 255),
])
def test_an_expression_that_would_backtrack_is_answered_at_once(pattern, fits, misfits):
    """RE2 matches in time linear in the secret: what took a backtracking engine ages is taken and checked."""
    started = time.monotonic()
    assert refusal(pattern) is None
    check = CodeFormat(codeformat.PATTERN, pattern=pattern).checker()
    assert [check(fits) for _n in range(1000)] == [None] * 1000
    assert check(misfits) == f"{misfits} does not match this event's regular expression {pattern}."
    assert time.monotonic() - started < 1


def test_a_secret_that_the_quick_match_says_no_to_is_matched_again(monkeypatch):
    """A set of one expression matches with RE2's DFA alone, which says no when it runs out of memory."""
    monkeypatch.setattr(codeformat.re2.Set, "Match", lambda self, text: None)
    codeformat.compile_pattern.cache_clear()
    try:
        check = CodeFormat(codeformat.PATTERN, pattern="[A-Z]{2}[0-9]{3}").checker()
        assert check("AB123") is None and "does not match" in check("AB1234")
    finally:
        codeformat.compile_pattern.cache_clear()


def test_an_expression_too_large_for_a_set_is_matched_all_the_same():
    pattern = r"\pL{60}"  # RE2 compiles it, but a set has too little memory left for its DFA
    check = CodeFormat(codeformat.PATTERN, pattern=pattern).checker()
    assert check("ä" * 60) is None and "does not match" in check("ä" * 59 + "1")


@pytest.mark.parametrize("code_format, errors", [
    (CodeFormat(length_min=9, length_max=8), [codeformat.LENGTH_MAX]),
    (CodeFormat(codeformat.EAN13, length_min=8, length_max=8), [codeformat.LENGTH_MIN]),
    (CodeFormat(codeformat.PATTERN), [codeformat.REGEX]),
    (CodeFormat(codeformat.PATTERN, pattern="[A-Z"), [codeformat.REGEX]),
    (CodeFormat(codeformat.PATTERN, pattern=r"(a)\1"), [codeformat.REGEX]),
    (CodeFormat(codeformat.PATTERN, pattern="(a|aa)+c"), []),
    (CodeFormat(length_min=30, symbology="code39"), [barcodes.SETTING]),
    (CodeFormat(codeformat.PATTERN, pattern="[A-Z]+", length_min=2, length_max=2, symbology="code39"), []),
    # a symbology that can print none of the format's codes
    (CodeFormat(length_max=12, symbology="ean13"), [barcodes.SETTING]),
    (CodeFormat(length_min=14, symbology="ean13"), [barcodes.SETTING]),
    (CodeFormat(codeformat.EAN13, symbology="itf"), [barcodes.SETTING]),
    (CodeFormat(length_min=7, length_max=7, symbology="itf"), [barcodes.SETTING]),
    (CodeFormat(length_min=7, length_max=8, symbology="itf"), []),
    (CodeFormat(codeformat.EAN13, symbology="ean13"), []),
])
def test_what_makes_a_format_wrong_in_itself(code_format, errors):
    assert list(code_format.problems()) == errors


def test_the_settings_api_reads_and_writes_the_format(token_client, event):
    data = token_client.get(settings_api(event)).data
    assert (data[codeformat.FORMAT], data[codeformat.LENGTH_MIN], data[codeformat.LENGTH_MAX],
            data[codeformat.REGEX]) == ("free", 0, 0, "")
    resp = token_client.patch(settings_api(event), {
        codeformat.FORMAT: "regex", codeformat.REGEX: "[A-Z]{2}[0-9]+", codeformat.LENGTH_MIN: 5,
    }, format="json")
    assert resp.status_code == 200, resp.content
    assert CodeFormat.of_event(event) == CodeFormat(codeformat.PATTERN, 5, 0, "[A-Z]{2}[0-9]+")


@pytest.mark.parametrize("values, field", [
    ({codeformat.FORMAT: "hex"}, codeformat.FORMAT),
    ({codeformat.LENGTH_MIN: 256}, codeformat.LENGTH_MIN),
    ({codeformat.LENGTH_MIN: 9, codeformat.LENGTH_MAX: 8}, codeformat.LENGTH_MAX),
    ({codeformat.FORMAT: "regex"}, codeformat.REGEX),
    ({codeformat.FORMAT: "regex", codeformat.REGEX: "(unclosed"}, codeformat.REGEX),
    ({codeformat.FORMAT: "regex", codeformat.REGEX: "x" * 501}, codeformat.REGEX),
    ({codeformat.FORMAT: "ean13", codeformat.LENGTH_MAX: 12}, codeformat.LENGTH_MIN),
])
def test_the_settings_api_refuses_a_wrong_format(token_client, event, values, field):
    resp = token_client.patch(settings_api(event), values, format="json")
    assert resp.status_code == 400 and field in resp.data, resp.content
    assert CodeFormat.of_event(event) == CodeFormat()


def test_every_way_in_refuses_secrets_that_do_not_fit(token_client, backend_client, event, tmp_path, capsys):
    set_format(event, **{codeformat.FORMAT: codeformat.EAN13})
    resp = token_client.post(pool_api(event), {"secret": "4006381333932"}, format="json")
    assert resp.status_code == 400
    assert resp.data == {"secret": ["4006381333932 has a wrong EAN-13 check digit: the last digit must be 1."]}
    resp = token_client.post(pool_api(event, "bulk_create/"), [
        {"secret": "4006381333931"}, {"secret": "ABC"},
    ], format="json")
    assert resp.status_code == 400 and resp.data[0] == {} and "ABC is not an EAN-13 code" in \
        resp.data[1]["secret"][0]
    resp = backend_client.post(pool_url(event, "add"), {"secret": "4006381333932"})
    assert resp.status_code == 200
    assert "4006381333932 has a wrong EAN-13 check digit" in resp.content.decode()
    lines = b"".join(b"40063813339%02d\n" % n for n in range(31, 48))
    path = write(tmp_path, "codes.csv", lines)
    with pytest.raises(SystemExit):
        call_command("import_secrets", "bigevents", "sampleconf", path)
    err = capsys.readouterr().err
    # line 1 holds 4006381333931; every other line has a wrong check digit
    assert 'line 17: Secret "4006381333947": 4006381333947 has a wrong EAN-13 check digit: the last digit must be ' \
           '8.' in err
    assert "16 error(s) in 17 line(s); nothing was imported." in err
    assert secrets(event) == []
    resp = token_client.post(pool_api(event), {"secret": "4006381333931"}, format="json")
    assert resp.status_code == 201


def test_a_secret_in_the_pool_keeps_its_value_when_changed(token_client, event, item):
    """A format set behind the pool's back (pretix' shell, a copied event) does not lock the secrets it holds."""
    secret = add_secret(event, "OLD-1")
    set_format(event, **{codeformat.FORMAT: codeformat.DIGITS})
    resp = token_client.patch(pool_api(event, f"{secret.pk}/"), {"item": item.pk}, format="json")
    assert resp.status_code == 200, resp.content
    resp = token_client.patch(pool_api(event, f"{secret.pk}/"), {"secret": "NEW-1"}, format="json")
    assert resp.status_code == 400 and "NEW-1 contains characters other than digits" in resp.data["secret"][0]


def test_a_change_is_refused_while_unused_secrets_do_not_fit(token_client, event):
    add_secret(event, "1234")
    add_secret(event, "12345")
    add_secret(event, "ABCDEF", used=True)  # on a ticket already: not the pool's to refuse
    resp = token_client.patch(settings_api(event), {barcodes.SETTING: "itf"}, format="json")
    assert resp.status_code == 400
    message = resp.data[barcodes.SETTING][0]
    assert message.startswith(
        '1 unused secret in the pool does not fit the format "printable as Interleaved 2 of 5" (12345).')
    url = message.split("They are listed at ")[1]
    assert url.startswith("http") and "/secrets_import/misfits?format=" in url
    assert CodeFormat.of_event(event) == CodeFormat()
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "digits", codeformat.LENGTH_MAX: 4},
                              format="json")
    assert resp.status_code == 400 and codeformat.FORMAT in resp.data
    assert '1 unused secret in the pool does not fit the format "Digits only, at most 4 characters" (12345).' in \
        resp.data[codeformat.FORMAT][0]
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "digits"}, format="json")
    assert resp.status_code == 200
    # saving other settings does not check the pool again
    resp = token_client.patch(settings_api(event), {"secrets_import_low_threshold": 5}, format="json")
    assert resp.status_code == 200


def test_the_settings_page_links_to_the_secrets_that_do_not_fit(backend_client, event):
    for n in range(3):
        add_secret(event, f"A-{n}")
    add_secret(event, "4006381333931")
    data = {"secrets_import_when_empty": "refuse", "secrets_import_symbology": "qr", "secrets_import_format": "ean13"}
    resp = backend_client.post(settings_url(event), data)
    page = resp.content.decode()
    assert resp.status_code == 200 and "3 unused secrets in the pool do not fit the format &quot;EAN-13" in page
    link = page.split('<a href="http://example.com/control/event/bigevents/sampleconf/secrets_import/misfits?')[1]
    link = link.split('">Show them</a>')[0].replace("&amp;", "&")
    event.settings.flush()
    assert CodeFormat.of_event(event) == CodeFormat()
    page = backend_client.get(pool_url(event, "misfits?" + link)).content.decode()
    assert page.count('name="secret"') == 3 and "A-2 is not an EAN-13 code" in page
    with scopes_disabled():
        ids = list(ImportedSecret.of_event(event).exclude(secret="4006381333931").values_list("pk", flat=True))
    backend_client.post(pool_url(event, "delete"), {"secret": ids, "confirm": "1"})
    assert secrets(event) == ["4006381333931"]
    assert backend_client.post(settings_url(event), data).status_code == 302
    event.settings.flush()
    assert CodeFormat.of_event(event) == CodeFormat(codeformat.EAN13)
    page = backend_client.get(pool_url(event, "misfits?" + link)).content.decode()
    assert "All unused secrets of the pool fit." in page


def test_the_settings_page_shows_a_wrong_format(backend_client, event):
    resp = backend_client.post(settings_url(event), {
        "secrets_import_when_empty": "refuse", "secrets_import_format": "regex", "secrets_import_regex": "[",
    })
    assert resp.status_code == 200 and "This is not a valid regular expression" in resp.content.decode()


def test_the_backend_file_import_reports_the_line(backend_client, event):
    set_format(event, **{codeformat.FORMAT: codeformat.DIGITS, codeformat.LENGTH_MIN: 6, codeformat.LENGTH_MAX: 6})
    process = upload(backend_client, event, "codes.csv", b"123456\n654321\n12345\n12345A\n")
    resp = backend_client.post(process, {"format_set": "1", "encoding": "utf-8", "delimiter": ",",
                                         "secret": "column:0"})
    page = backend_client.get(resp["Location"]).content.decode()
    assert "the file has 2 problems" in page
    assert "<td>3</td>" in page and "12345 has 5 characters, but this event&#x27;s codes have exactly 6 characters." \
        in page
    assert "<td>4</td>" in page and "12345A contains characters other than digits" in page
    assert secrets(event) == []


def next_page(page):
    return page.split('href="http://example.com')[-1].split('"')[0].replace("&amp;", "&")


def test_the_page_of_misfits_goes_on_page_by_page(backend_client, event):
    with scopes_disabled():
        ImportedSecret.objects.bulk_create(ImportedSecret(event=event, organizer=event.organizer, secret=f"X-{n:03d}")
                                           for n in range(52))
    first = backend_client.get(format_change.misfits_url(event, CodeFormat(codeformat.DIGITS))).content.decode()
    assert first.count('name="secret"') == 50 and "X-049" in first and "X-050" not in first
    assert "Next page" in first
    second = backend_client.get(next_page(first)).content.decode()
    assert second.count('name="secret"') == 2 and "X-051" in second and "Next page" not in second


def test_the_page_of_misfits_takes_only_formats_that_a_change_checked(backend_client, event, event2):
    """The page runs the format over the whole pool: no reader can make it run an expression of their own."""
    add_secret(event, "A-1")
    for query in ("", "?format=digits", "?format=regex&regex=x{99999999}",
                  "?" + format_change.misfits_url(event, CodeFormat(codeformat.DIGITS)).split("?")[1] + "x"):
        assert backend_client.get(pool_url(event, "misfits" + query)).status_code == 404, query
    elsewhere = format_change.misfits_url(event2, CodeFormat(codeformat.DIGITS)).split("?")[1]
    assert backend_client.get(pool_url(event, "misfits?" + elsewhere)).status_code == 404
    page = backend_client.get(format_change.misfits_url(event, CodeFormat(codeformat.DIGITS))).content.decode()
    assert "A-1 contains characters other than digits" in page


def test_the_page_of_misfits_answers_in_time_and_goes_on_from_there(backend_client, event, monkeypatch):
    monkeypatch.setattr("pretix_secrets_import.control.views.pool.MISFITS_SECONDS", 0)
    for secret in ("A-1", "123", "A-2"):
        add_secret(event, secret)
    page = backend_client.get(format_change.misfits_url(event, CodeFormat(codeformat.DIGITS))).content.decode()
    assert "shows what it found so far" in page and "A-1" in page and "A-2" not in page
    page = backend_client.get(next_page(page)).content.decode()  # "123" fits: nothing to show, but it goes on
    assert "shows what it found so far" in page and 'name="secret"' not in page and "All unused" not in page
    page = backend_client.get(next_page(page)).content.decode()
    assert "A-2" in page and "A-1" not in page
    page = backend_client.get(next_page(page)).content.decode()
    assert "No further unused secrets of the pool that do not fit." in page and "All unused" not in page


def test_a_change_that_takes_too_long_to_check_is_refused(token_client, event, monkeypatch):
    monkeypatch.setattr(format_change, "CHECK_SECONDS", 0)
    add_secret(event, "123")
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "digits"}, format="json")
    assert resp.status_code == 400
    assert "took longer than 0 seconds, so the settings were not changed" in resp.data[codeformat.FORMAT][0]
    assert CodeFormat.of_event(event) == CodeFormat()


@pytest.mark.parametrize("pattern, message", [
    (r"(a)\1", r"Backreferences such as \1 are not supported: an expression for secrets cannot refer to what a group "
               "matched."),
    (r"(?P<x>a)(?P=x)", "Backreferences such as (?P=name) are not supported"),
    (r"(?P<x>a)\k<x>", r"Backreferences such as \k are not supported"),
    ("a(?=b)b", "Lookahead and lookbehind ((?=) are not supported: describe the characters at that place instead, "
                "for example with a character class."),
    ("a(?!b).", "Lookahead and lookbehind ((?!) are not supported"),
    ("(?<=a)b", "Lookahead and lookbehind ((?<=) are not supported"),
    ("(?<!a)b", "Lookahead and lookbehind ((?<!) are not supported"),
    ("(?>a+)b", "Atomic groups and possessive repetitions ((?>) are not supported: RE2 never backtracks, so write a "
                "plain group or repetition instead."),
    ("a*+b", "Atomic groups and possessive repetitions (*+) are not supported"),
    ("a{2}+b", "Atomic groups and possessive repetitions ({2}+) are not supported"),
    (r"[A-Z]+\Z", r"\Z is not supported: write \z for the end of the secret, or nothing, as the expression matches "
                  "the whole secret anyway."),
    ("(?x)x{10000000 }", "Verbose mode (the flag x) is not available for secrets' expressions."),
    ("(?i:(?x:x{3 000000}))", "Verbose mode (the flag x) is not available"),
    ("(?a)x", "(?a is not supported: of the groups that start with (?, RE2 takes (?:…), named groups such as "
              "(?P<name>…) and the flags i, m, s and U, as in (?i) or (?i:…)."),
    ("(?V1)[[a-z]--[aeiou]]{3}", "(?V is not supported"),
    (r"(?#{99999})[A-Z]{3}", "(?# is not supported"),
    ("(a)?(?(1)b|c)", "(?( is not supported"),
    # RE2 takes counts up to 1000, multiplied where they are inside each other; the old bounds' examples
    ("x{1001}", "This regular expression repeats too much ({1001}): RE2 takes counts up to 1000, also multiplied "
                "where counted repetitions are inside each other. Use + or * with the format's lengths instead."),
    ("x{99999999}", "This regular expression repeats too much ({99999999})"),
    ("(x{50}){50}", "This regular expression repeats too much ({50})"),
    ("((x{255}){255}){3}", "This regular expression repeats too much"),
    ("(?:(?:[a-z]{100}){100}){100}", "This regular expression repeats too much"),
    ("(?i)(?:(?:x{255}){255}){3}", "This regular expression repeats too much"),
    ("(x{99}){99}+", "This regular expression repeats too much"),
    # counts that Python's engines read as repetitions and RE2 as characters
    ("x{,5}", "RE2 reads {,5} as these characters, not as a repetition: write counts from 0 to 1000 without leading "
              "zeros, and the smallest count too, as in {0,5}."),
    ("x{,}", "RE2 reads {,} as these characters"),
    ("x{05}", "RE2 reads {05} as these characters"),
    ("x{1,05}", "RE2 reads {1,05} as these characters"),
    ("x{4294967296}", "RE2 reads {4294967296} as these characters"),
    ("[{]{,3}", "RE2 reads {,3} as these characters"),
    # too large for RE2's memory: what the trial process refused before
    (r"\pL{255}", "This regular expression takes too much memory or time to prepare. Please simplify it."),
    (r"(?i)[\pL\pN]{200}", "This regular expression takes too much memory or time to prepare."),
    (r"(\pL{30}){30}", "This regular expression takes too much memory or time to prepare."),
    # invalid, as RE2 says
    ("[A-Z", "This is not a valid regular expression: missing ]: [A-Z"),
    ("x{2,1}", "This is not a valid regular expression: invalid repetition size: {2,1}"),
    ("x{1000}{1000}", "This is not a valid regular expression: bad repetition operator: {1000}{1000}"),
    (r"\p{Letter}", r"This is not a valid regular expression: invalid character class range: \p{Letter}"),
    ("\ud800", "This is not a valid regular expression: 'utf-8' codec can't encode character"),
    ("(?:(?:x{255})(?){255})(?){50}", "This regular expression repeats too much"),
    ("(?>((a|){99}){99})", "Atomic groups and possessive repetitions ((?>) are not supported"),
    ("x" * 501, "The regular expression must not be longer than 500 characters."),
    ("", "Enter the regular expression that the secrets must match."),
])
def test_what_re2_does_not_take_is_refused_with_a_message_that_names_it(pattern, message, capfd):
    assert refusal(pattern).startswith(message)
    assert capfd.readouterr().err == ""  # RE2 writes nothing to the server's log


def test_a_refused_expression_is_refused_by_the_settings_api(token_client, event):
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "regex", codeformat.REGEX: r"(a)\1"},
                              format="json")
    assert resp.status_code == 400 and "Backreferences such as \\1" in resp.data[codeformat.REGEX][0]
    assert CodeFormat.of_event(event) == CodeFormat()


@pytest.mark.parametrize("pattern", [
    "[0-9]{255}", "x{0,255}", "x{1000}", "[A-Z]{1000}", "(x{10}){100}", r"\p{L}{3}[0-9]{4,6}", r"\pL{60}",
    "(?:[A-Z]{2}[0-9]+)+", "[a{9}]{3}", r"\{99999\}", r"\{,5}", "[{,5}]", "[]{,5}]", "[^]{,5}]", r"\Q{,5}\E",
    r"\x{41}{3}", "(DAY[0-9]+|SERIES)-[0-9]{4}", "[A-Z]{2}-[0-9]{4}-[0-9]{4}(-[A-Z])?", "(?i)[a-f0-9]{32}",
    "(?P<code>[0-9]{10}){10}", "(?<code>[0-9]{4})", "(?i:[a-z]{3})-[0-9]{4}", "(?i)(?s)x{3}", "x(?i)y", "x(?i){5}",
    r"[A-Z]+\z", "[[:alpha:]]{3}", "a{ 5}",
])
def test_an_expression_that_re2_takes_is_taken(pattern):
    assert refusal(pattern) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ax059\\[]{}(),?*+|#:^-pLPkZ=<>!", max_size=40))
def test_any_text_as_a_regular_expression_gets_an_answer(pattern):
    """Whatever an organizer types, the answer is a message or an expression that checks secrets."""
    problem = refusal(pattern)
    if problem is None:
        check = CodeFormat(codeformat.PATTERN, pattern=pattern).checker()
        assert all(check(secret) is None or "does not match" in check(secret) for secret in ("a" * 255, "x0", "("))
    else:
        assert problem and not problem.startswith("This is not a valid regular expression: b'")


def test_a_change_is_refused_when_secrets_came_in_while_the_pool_was_checked(token_client, event, monkeypatch):
    """What another connection commits during the check may not have been read: the organizer saves again."""
    add_secret(event, "123")
    scan = format_change.misfits

    def scan_then_import(*args, **kwargs):
        found = list(scan(*args, **kwargs))
        add_secret(event, "A-1")
        return found

    monkeypatch.setattr(format_change, "misfits", scan_then_import)
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "digits"}, format="json")
    assert resp.status_code == 400
    assert resp.data[codeformat.FORMAT] == ["Secrets were added to the pool or removed while it was checked against "
                                            "the new format. Please save again."]
    monkeypatch.setattr(format_change, "misfits", scan)
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "digits"}, format="json")
    assert resp.status_code == 400 and "1 unused secret in the pool does not fit" in resp.data[codeformat.FORMAT][0]


def test_a_change_is_refused_when_a_secret_was_changed_while_the_pool_was_checked(token_client, event, monkeypatch):
    secret = add_secret(event, "123")
    scan = format_change.misfits

    def scan_then_edit(*args, **kwargs):
        found = list(scan(*args, **kwargs))
        with scopes_disabled():
            secret.secret = "A-1"
            secret.save()
            secret.log_action("pretix_secrets_import.secret.changed", data=secret.as_row())
        return found

    monkeypatch.setattr(format_change, "misfits", scan_then_edit)
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "digits"}, format="json")
    assert resp.status_code == 400 and "Please save again" in resp.data[codeformat.FORMAT][0]
    # a free format checks nothing, so nothing that happens meanwhile matters
    set_format(event, **{codeformat.FORMAT: codeformat.DIGITS})
    resp = token_client.patch(settings_api(event), {codeformat.FORMAT: "free"}, format="json")
    assert resp.status_code == 200


def test_an_expression_stored_before_its_rules_refuses_secrets_with_a_message(token_client, backend_client, event,
                                                                              tmp_path, capsys):
    """
    An expression that RE2 does not take, stored before this version (or behind the settings' back), refuses every
    secret on every way in with a message, never a 500; and the format cannot be changed without correcting it.
    """
    set_format(event, **{codeformat.FORMAT: codeformat.PATTERN, codeformat.REGEX: r"(a)\1"})
    message = (r"aa cannot be checked: this event's regular expression is not valid (Backreferences such as \1 are "
               "not supported: an expression for secrets cannot refer to what a group matched.). Please correct it "
               "in the settings.")
    resp = token_client.post(pool_api(event), {"secret": "aa"}, format="json")
    assert resp.status_code == 400 and resp.data == {"secret": [message]}
    resp = token_client.post(pool_api(event, "bulk_create/"), [{"secret": "aa"}], format="json")
    assert resp.status_code == 400 and resp.data == [{"secret": [message]}]
    resp = backend_client.post(pool_url(event, "add"), {"secret": "aa"})
    assert resp.status_code == 200 and "aa cannot be checked: this event&#x27;s regular expression is not valid " \
        "(Backreferences such as \\1 are not supported" in resp.content.decode()
    process = upload(backend_client, event, "codes.csv", b"aa\nab\n")
    resp = backend_client.post(process, {"format_set": "1", "encoding": "utf-8", "delimiter": ",",
                                         "secret": "column:0"})
    page = backend_client.get(resp["Location"]).content.decode()
    assert "the file has 2 problems" in page and "ab cannot be checked" in page
    with pytest.raises(SystemExit):
        call_command("import_secrets", "bigevents", "sampleconf", write(tmp_path, "codes.csv", b"aa\n"))
    assert 'line 1: Secret "aa": aa cannot be checked' in capsys.readouterr().err
    assert secrets(event) == []
    # a change of the format keeps the expression: it is checked, and refused, with the change
    resp = token_client.patch(settings_api(event), {codeformat.LENGTH_MIN: 2}, format="json")
    assert resp.status_code == 400 and "Backreferences such as \\1" in resp.data[codeformat.REGEX][0]
    resp = token_client.patch(settings_api(event), {codeformat.REGEX: "a{2}"}, format="json")
    assert resp.status_code == 200, resp.content
    assert token_client.post(pool_api(event), {"secret": "aa"}, format="json").status_code == 201


def test_the_page_of_misfits_shows_what_is_wrong_with_a_format_it_was_linked_with(backend_client, event):
    """A link signed for an expression that this version does not take: the page says why, and checks nothing."""
    add_secret(event, "A-1")
    url = format_change.misfits_url(event, CodeFormat(codeformat.PATTERN, pattern=r"(a)\1"))
    resp = backend_client.get(url)
    assert resp.status_code == 200 and r"Backreferences such as \1 are not supported" in resp.content.decode()
    assert "All unused" not in resp.content.decode() and 'name="secret"' not in resp.content.decode()
