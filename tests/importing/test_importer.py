import io
import logging
import re
import zipfile
from datetime import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_scopes import scopes_disabled
from openpyxl import Workbook

from pretix.base.modelimport import DataImportError
from pretix.base.models import LogEntry

from pretix_secrets_import.importing import files, pipeline
from pretix_secrets_import.importing.columns import (
    ColumnMapping, Source, column_index, first_line_is_header, guess_mapping,
)
from pretix_secrets_import.importing.files import (
    FileFormat, preview, read_rows, sniff,
)
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.models import ImportedSecret
from tests.helpers import add_secret, add_ticket

pytestmark = pytest.mark.django_db


def pool(event):
    with scopes_disabled():
        return list(ImportedSecret.objects.filter(event=event).order_by("id").values_list(
            "secret", "item_id", "variation_id", "subevent_id"))


def run(event, data: bytes, mapping=None, filename="secrets.csv", **kwargs):
    f = io.BytesIO(data)
    with scopes_disabled():
        fmt = sniff(f, filename)
        return import_file(event, f, fmt, mapping or ColumnMapping(), filename=filename, **kwargs)


def messages(result):
    return [(e.line, e.column, e.value, e.message) for e in result.errors]


def xlsx(rows):
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.parametrize("encoding,bom", [
    ("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
    ("cp1252", b""), ("iso-8859-1", b""),
])
def test_encodings_are_detected(event, encoding, bom):
    text = "Secret;Product\nGRÜN-1;\nÉTÉ-2;\nSTRASSE-ß3;\n"
    result = run(event, bom + text.encode(encoding))
    assert messages(result) == []
    assert [row[0] for row in pool(event)] == ["GRÜN-1", "ÉTÉ-2", "STRASSE-ß3"]


def test_encoding_detection_does_not_log_its_reasoning(caplog):
    # pretix' console logging would print charset_normalizer's DEBUG lines into the command's output
    caplog.set_level(logging.DEBUG)
    text = "Secret;Product\nGRÜN-1;\nÉTÉ-2;\nSTRASSE-ß3;\n"  # as in test_encodings_are_detected
    encoding = sniff(io.BytesIO(text.encode("cp1252"))).encoding
    assert text.encode("cp1252").decode(encoding) == text
    assert not [r for r in caplog.records if r.name.startswith("charset_normalizer")]
    assert logging.getLogger("charset_normalizer").level == logging.NOTSET  # left as it was


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(event, item, delimiter):
    text = f"code{delimiter}product\nA-1{delimiter}{item.pk}\nA-2{delimiter}Ticket\n"
    f = io.BytesIO(text.encode())
    fmt = sniff(f)
    assert (fmt.delimiter, fmt.has_header) == (delimiter, True)
    result = run(event, text.encode(), ColumnMapping(secret=0, item=Source.column(1)))
    assert messages(result) == []
    assert pool(event) == [("A-1", item.pk, None, None), ("A-2", item.pk, None, None)]


def test_single_column_without_header_and_blank_lines(event):
    result = run(event, b"\r\nA-1\r\n\r\n   \r\nA-2\r\n,\r\n")
    assert (result.lines, result.imported, result.error_count) == (2, 2, 0)
    assert [row[0] for row in pool(event)] == ["A-1", "A-2"]


def test_every_invalid_line_is_reported_and_nothing_is_imported(event, item):
    add_secret(event, "OLD-1")
    add_ticket(event, "TICKET-1")
    text = (
        "secret,product\n"
        "GOOD-1,Ticket\n"
        "OLD-1,\n"
        "TICKET-1,\n"
        "BAD 1,\n"
        "GOOD-1,\n"
        "GOOD-2,Nonsense\n"
        ",Ticket\n"
        + "X" * 256 + ",\n"
    )
    result = run(event, text.encode(), ColumnMapping(secret=0, item=Source.column(1)))
    assert result.imported == 0
    assert messages(result) == [
        (3, "Secret", "OLD-1", "This secret has already been imported for this organizer."),
        (4, "Secret", "TICKET-1", "This secret is already used by a ticket of this organizer."),
        (5, "Secret", "BAD 1", "The secret must not contain whitespace."),
        (6, "Secret", "GOOD-1", "This secret appears more than once in your input (first in line 2)."),
        (7, "Product", "Nonsense", 'Unknown product "Nonsense".'),
        (8, "Secret", "", "The secret must not be empty."),
        (9, "Secret", "X" * 256, "The secret must not be longer than 255 characters."),
    ]
    assert pool(event) == [("OLD-1", None, None, None)]


def test_repeats_are_found_across_chunks(event, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 3)
    lines = [f"S-{i}" for i in range(10)] + ["S-1", "S-8"]
    result = run(event, "\n".join(lines).encode())
    assert messages(result) == [
        (11, "Secret", "S-1", "This secret appears more than once in your input (first in line 2)."),
        (12, "Secret", "S-8", "This secret appears more than once in your input (first in line 9)."),
    ]
    assert pool(event) == []


def test_unprintable_characters_are_rejected(event):
    result = run(event, "A\u00001\nB\u200b2\n".encode())
    assert [m[3] for m in messages(result)] == ["The secret must only contain printable characters."] * 2


def test_line_numbers_count_physical_lines_of_quoted_cells(event):
    result = run(event, b'secret,note\nA-1,"two\nlines"\nA 2,x\n')
    assert messages(result) == [(4, "Secret", "A 2", "The secret must not contain whitespace.")]


def test_names_ids_and_fixed_values_are_resolved(event, item, item2, variation, variation2):
    with scopes_disabled():
        item2.internal_name = "shirt-internal"
        item2.save()
    text = (
        "secret;product;size\n"
        f"V-1;{item2.pk};S\n"
        "V-2;shirt-internal;m\n"
        f"V-3;;{variation.pk}\n"
        "V-4;SHIRT;XL\n"
    )
    result = run(event, text.encode(), ColumnMapping(secret=0, item=Source.column(1), variation=Source.column(2)))
    assert messages(result) == [(5, "Variation", "XL", 'Unknown variation "XL".')]
    result = run(event, text.replace("V-4;SHIRT;XL\n", "").encode(),
                 ColumnMapping(secret=0, item=Source.column(1), variation=Source.column(2)))
    assert pool(event) == [
        ("V-1", item2.pk, variation.pk, None), ("V-2", item2.pk, variation2.pk, None),
        ("V-3", item2.pk, variation.pk, None),
    ]
    run(event, b"F-1\nF-2\n", ColumnMapping(secret=0, item=Source.fixed(item.pk)))
    assert pool(event)[-2:] == [("F-1", item.pk, None, None), ("F-2", item.pk, None, None)]


def test_variation_of_another_product_is_rejected(event, item, variation):
    result = run(event, f"X-1,Ticket,{variation.pk}\n".encode(),
                 ColumnMapping(secret=0, item=Source.column(1), variation=Source.column(2)))
    assert messages(result) == [
        (1, "Variation", str(variation.pk), "The variation does not belong to the selected product."),
    ]


def test_dates_by_id_day_time_and_name(series, subevent, subevent2, series_item):
    text = (
        f"D-1,{subevent.pk}\n"
        "D-2,2030-01-02\n"
        "D-3,2030-01-01 10:00\n"
        "D-4,day 2\n"
        "D-5,2031-01-01\n"
    )
    result = run(series, text.encode(), ColumnMapping(secret=0, subevent=Source.column(1)))
    assert messages(result) == [(5, "Date", "2031-01-01", 'Unknown date "2031-01-01".')]
    run(series, text.replace("D-5,2031-01-01\n", "").encode(), ColumnMapping(secret=0, subevent=Source.column(1)))
    assert [(s, sub) for s, _i, _v, sub in pool(series)] == [
        ("D-1", subevent.pk), ("D-2", subevent2.pk), ("D-3", subevent.pk), ("D-4", subevent2.pk),
    ]


def test_ambiguous_names_ask_for_the_id(event):
    with scopes_disabled():
        event.items.create(name="Ticket", default_price=1)
        event.items.create(name="Ticket", default_price=2)
    result = run(event, b"A-1,Ticket\n", ColumnMapping(secret=0, item=Source.column(1)))
    assert messages(result) == [(1, "Product", "Ticket", '"Ticket" matches more than one product; please use the ID.')]


def test_date_on_a_non_series_is_rejected(event):
    result = run(event, b"A-1,1\n", ColumnMapping(secret=0, subevent=Source.column(1)))
    assert messages(result) == [(1, "Date", "1", 'Unknown date "1".')]


def test_xlsx_is_read_with_numbers_and_dates_as_text(event, item):
    data = xlsx([["Code", "Product"], [12345, "Ticket"], [None, None], ["ABC-1", item.pk], [1.0, None],
                 [datetime(2030, 1, 2), None]])
    f = io.BytesIO(data)
    fmt = sniff(f, "upload.bin")
    assert (fmt.kind, fmt.has_header) == ("xlsx", True)
    # rows end with their last cell (the sheet's stated size is not trusted, see below)
    assert preview(f, fmt) == (["Code", "Product"], [(2, ["12345", "Ticket"]), (4, ["ABC-1", str(item.pk)]),
                                                     (5, ["1"]), (6, ["2030-01-02"])])
    result = run(event, data, ColumnMapping(secret=0, item=Source.column(1)), filename="codes.xlsx")
    assert messages(result) == []
    assert pool(event) == [("12345", item.pk, None, None), ("ABC-1", item.pk, None, None),
                           ("1", None, None, None), ("2030-01-02", None, None, None)]


def test_broken_files_give_a_clear_error(event):
    with pytest.raises(DataImportError, match="Excel"):
        run(event, b"PK\x03\x04garbage")
    with pytest.raises(DataImportError, match="does not contain any secrets"):
        run(event, b"\n\n")
    f = io.BytesIO("A-1\nÄ-2\n".encode("cp1252"))
    with pytest.raises(DataImportError, match="not valid utf-8"):
        list(read_rows(f, FileFormat(encoding="utf-8")))
    with pytest.raises(DataImportError, match="not valid utf-16"):  # no byte order mark: UnicodeError
        list(read_rows(io.BytesIO(b"A-1\n"), FileFormat(encoding="utf-16")))


def test_dry_run_and_log_entry(event):
    result = run(event, b"A-1\nA-2\n", dry_run=True)
    assert (result.imported, result.error_count, pool(event)) == (0, 0, [])
    result = run(event, b"A-1\nA-2\n")
    assert result.imported == 2
    with scopes_disabled():
        entry = LogEntry.objects.get(action_type="pretix_secrets_import.secrets.imported")
    assert entry.parsed_data == {"count": 2, "filename": "secrets.csv"}


def test_progress_is_reported(event, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_SIZE", 10)
    seen = []
    run(event, "\n".join(f"P-{i}" for i in range(50)).encode(), progress=seen.append)
    assert seen and all(0 < p <= 1 for p in seen) and seen == sorted(seen)


def test_column_index():
    assert column_index("2", None) == 1
    assert column_index("Product", ["Code", "product"]) == 1
    with pytest.raises(DataImportError):
        column_index("Missing", ["Code"])


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_command_imports_with_fixed_product(event, item, tmp_path, capsys):
    path = write(tmp_path, "codes.csv", b"code;other\nC-1;x\nC-2;y\n")
    call_command("import_secrets", "bigevents", "sampleconf", path, "--item", "Ticket", "--secret-column", "code")
    assert "Imported 2 secret(s)." in capsys.readouterr().out
    assert pool(event) == [("C-1", item.pk, None, None), ("C-2", item.pk, None, None)]


def test_command_lists_errors_and_imports_nothing(event, tmp_path, capsys):
    add_secret(event, "C-1")
    path = write(tmp_path, "codes.csv", b"C-1\nC-2\nC 3\n")
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_secrets", "bigevents", "sampleconf", path)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert 'line 1: Secret "C-1": This secret has already been imported' in err
    assert 'line 3: Secret "C 3": The secret must not contain whitespace.' in err
    assert "2 error(s) in 3 line(s); nothing was imported." in err
    assert pool(event) == [("C-1", None, None, None)]


def test_command_dry_run_and_bad_arguments(event, disabled_event, tmp_path, capsys):
    path = write(tmp_path, "codes.csv", b"C-1\n")
    call_command("import_secrets", "bigevents", "sampleconf", path, "--dry-run")
    assert "All 1 line(s) are valid" in capsys.readouterr().out
    assert pool(event) == []
    for args, message in [
        (("nobody", "sampleconf", path), "Organizer not found."),
        (("bigevents", "nothing", path), "Event not found."),
        (("bigevents", "noplugin", path), "not enabled"),
        (("bigevents", "sampleconf", str(tmp_path / "missing.csv")), "No such file"),
        (("bigevents", "sampleconf", path, "--item", "Nope"), 'Unknown product "Nope".'),
        (("bigevents", "sampleconf", path, "--secret-column", "code"), 'There is no column "code"'),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("import_secrets", *args)


def test_command_refuses_codes_a_spreadsheet_shortened(event, tmp_path, capsys):
    # saved as CSV, Excel writes a long number as it shows it; the command follows the rule of the backend import
    path = write(tmp_path, "codes.csv", b"Code;Product\nC-1;x\n9,00719925474099E+15;y\n")
    with pytest.raises(SystemExit):
        call_command("import_secrets", "bigevents", "sampleconf", path, "--secret-column", "Code")
    assert 'line 3: Secret "9,00719925474099E+15": The code "9,00719925474099E+15" is a long number as a ' \
           "spreadsheet program shows it, in scientific notation" in capsys.readouterr().err
    assert pool(event) == []


def rewrite_sheet(data: bytes, change) -> bytes:
    """The XLSX file with its first sheet's XML passed through ``change``."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = change(content)
            target.writestr(info, content)
    return out.getvalue()


def test_xlsx_numbers_beyond_excels_precision_are_refused(event):
    # number cells keep 15 significant digits; the error shows the number as the file stores it (openpyxl, which
    # wrote this file, stores 2**53 + 1 as 9007199254740992), and the rule is importing/numbers.py's
    data = xlsx([["Code"], [1.23456789012345e17], [123456789012345678], [999999999999999.0], ["12345678901234567"],
                 [2 ** 53 + 1], [1.5]])
    result = run(event, data, filename="codes.xlsx")
    assert [(line, column, value) for line, column, value, _message in messages(result)] == [
        (2, "Secret", "123456789012345000"), (3, "Secret", "123456789012345700"), (6, "Secret", "9007199254740992"),
        (7, "Secret", "1.5")]
    assert "9007199254740992, which has more than 15 digits" in messages(result)[2][3]
    assert "1.5, which is not a whole number" in messages(result)[3][3]
    assert (result.imported, pool(event)) == (0, [])
    as_text = xlsx([["Code"], ["123456789012345678"], [999999999999999.0], ["12345678901234567"]])
    assert run(event, as_text, filename="codes.xlsx").imported == 3
    assert [row[0] for row in pool(event)] == ["123456789012345678", "999999999999999", "12345678901234567"]


def test_xlsx_with_a_wrong_stated_size_is_read_completely(event):
    data = xlsx([[None], [None], ["S1"], ["S2"], ["S3"]])
    data = rewrite_sheet(data, lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:A3"', xml))
    result = run(event, data, filename="codes.xlsx")
    assert (result.imported, result.error_count) == (3, 0)


def test_damaged_xlsx_gives_a_clear_error(event):
    data = rewrite_sheet(xlsx([["S1"], ["S2"]]), lambda xml: xml[:len(xml) // 2])
    with pytest.raises(DataImportError, match="Excel file is damaged"):
        run(event, data, filename="codes.xlsx")
    assert pool(event) == []


def test_command_rejects_a_long_delimiter(event, tmp_path):
    path = write(tmp_path, "codes.csv", b"C-1\n")
    with pytest.raises(CommandError, match="single character"):
        call_command("import_secrets", "bigevents", "sampleconf", path, "--delimiter", ";;")


@pytest.mark.parametrize("payload", [b"", b"<a", b"\x06"])
def test_xlsx_with_a_damaged_part_is_refused_as_unreadable(event, payload):
    # openpyxl's XML parse errors (xml.etree's and lxml's) used to escape as server errors
    original = zipfile.ZipFile(io.BytesIO(xlsx([["Secret"], ["X-1"]])))
    refused = 0
    for victim in original.namelist():
        damaged = io.BytesIO()
        with zipfile.ZipFile(damaged, "w") as target:
            for name in original.namelist():
                target.writestr(name, payload if name == victim else original.read(name))
        try:
            run(event, damaged.getvalue(), filename="secrets.xlsx", dry_run=True)  # some parts are optional
        except DataImportError as e:
            assert "Excel" in str(e)
            refused += 1
    assert refused


def test_imports_are_logged_for_operators_without_secrets(event, caplog):
    caplog.set_level("INFO", logger="pretix_secrets_import")
    run(event, b"LOG-1\nLOG-2\n", filename="gate.csv")
    run(event, b"LOG-3\nLOG-1\n", filename="again.csv")
    with pytest.raises(DataImportError):
        run(event, b"\n\n", filename="empty.csv")
    lines = [r.getMessage() for r in caplog.records if r.name == "pretix_secrets_import.importing.pipeline"]
    assert lines[0] == "Secrets import into bigevents/sampleconf started (gate.csv)"
    assert re.fullmatch(r"Secrets import into bigevents/sampleconf imported: 2 lines, 2 imported, 0 invalid lines, "
                        r"[0-9.]+ s", lines[1])
    assert re.fullmatch(r"Secrets import into bigevents/sampleconf refused for invalid lines: 2 lines, 0 imported, "
                        r"1 invalid lines, [0-9.]+ s", lines[3])
    assert re.fullmatch(r"Secrets import into bigevents/sampleconf failed after [0-9.]+ s: DataImportError: The file "
                        r"does not contain any secrets.; nothing was imported", lines[5])
    assert "LOG-" not in caplog.text


# --- header detection and column names --------------------------------------------------------------------------------


def lines_of(text, delimiter=","):
    return [line.split(delimiter) for line in text.strip().split("\n")]


@pytest.mark.parametrize("text", [
    "Ticketnummer\nA1B2C3\nD4E5F6\nG7H8I9",  # a German column name
    "Ticket\nREG-0001\nREG-0002\nREG-0003",
    "Ticket-Nr.;Produkt;Variante;Termin\nX1;VIP;S;2030-01-01\nX2;VIP;M;2030-01-01",
    "Losnummer\nQWERTZUI\nASDFGHJK\nYXCVBNMQ",  # unknown word: lower case and another length than the codes
    "EAN\n4006381333931\n4006381333948",  # letters above numbers
    "Code 128\nAB12CD34\nEF56GH78",  # whitespace, which no secret has
    "Numéro de billet;Produit\nX1Y2;VIP\nX3Y4;VIP",  # a language the plugin does not speak
])
def test_a_first_line_of_column_names_is_a_header(text):
    assert first_line_is_header(lines_of(text, ";" if ";" in text else ","))


@pytest.mark.parametrize("text", [
    "REG-0001\nREG-0002\nREG-0003",
    "ABCDEFGH\nA1B2C3D4\nE5F6G7H8",  # a code without digits among codes with some
    "999\n1000\n1001",
    "a1b2c3\nd4e5f6",
    "A1,Regular\nA2,VIP\nA3,STUDENT",  # product names are no codes
    "A1,Regular ticket\nA2,VIP\nA3,VIP",
    "ONLY-ONE-LINE",
    "X-1,Ticket,5",  # a product may be called like a column
])
def test_a_first_line_of_data_is_no_header(text):
    assert not first_line_is_header(lines_of(text))


def test_header_lines_are_detected_and_skipped_by_the_import(event):
    for text in (b"Ticketnummer\nT-1\nT-2\nT-3\n", b"Ticket\nT-4\nT-5\nT-6\n"):
        assert sniff(io.BytesIO(text)).has_header
        result = run(event, text, dry_run=True)
        assert (result.lines, result.error_count) == (3, 0)
    assert not sniff(io.BytesIO(b"A1B2C3\nD4E5F6\nG7H8I9\n")).has_header
    assert run(event, b"A1B2C3\nD4E5F6\nG7H8I9\n").imported == 3


def test_column_names_in_english_and_german_are_mapped():
    mapping = guess_mapping(["Ticket-Nr.", "Ticketart", "Variante", "Termin"])
    assert (mapping.secret, mapping.item, mapping.variation, mapping.subevent) == (
        0, Source.column(1), Source.column(2), Source.column(3))
    mapping = guess_mapping(["Ticket type", "Name", "Barcode", "Kategorie", "Datum"], has_subevents=False)
    assert (mapping.secret, mapping.item, mapping.subevent) == (2, Source.column(0), None)  # the first product column
    assert guess_mapping(["Ticket", "Code"]).secret == 1  # "Code" says more than "Ticket"
    assert guess_mapping(["Produkt", "QR_Code"]).secret == 1
    assert guess_mapping(None) == ColumnMapping()


def test_xlsx_ticket_type_column_is_the_product(event, item, item2, tmp_path, capsys):
    path = write(tmp_path, "codes.xlsx", xlsx([["Barcode", "Ticket type"], ["XT-1", "Ticket"], ["XT-2", "Shirt"]]))
    call_command("import_secrets", "bigevents", "sampleconf", path)
    out = capsys.readouterr().out
    assert 'The first line is read as column names: "Barcode", "Ticket type"' in out
    assert pool(event) == [("XT-1", item.pk, None, None), ("XT-2", item2.pk, None, None)]


def test_command_detects_a_header_and_warns_when_told_to_import_it(event, tmp_path, capsys):
    path = write(tmp_path, "codes.csv", b"Ticketnummer\nT-1\nT-2\nT-3\n")
    call_command("import_secrets", "bigevents", "sampleconf", path, "--dry-run")
    out, err = capsys.readouterr()
    assert "All 3 line(s) are valid" in out and "Warning" not in err
    warning = 'the first line ("Ticketnummer") looks like column names, but --no-header imports it as a secret.'
    call_command("import_secrets", "bigevents", "sampleconf", path, "--dry-run", "--no-header")
    out, err = capsys.readouterr()
    assert "All 4 line(s) are valid" in out and warning in err
    call_command("import_secrets", "bigevents", "sampleconf", path, "--no-header")
    out, err = capsys.readouterr()
    assert "Imported 4 secret(s)." in out and warning in err
    assert [row[0] for row in pool(event)] == ["Ticketnummer", "T-1", "T-2", "T-3"]
    path = write(tmp_path, "plain.csv", b"A1B2C3\nD4E5F6\n")
    call_command("import_secrets", "bigevents", "sampleconf", path, "--dry-run")
    out, err = capsys.readouterr()
    assert "All 2 line(s) are valid" in out and "column names" not in out + err


# --- whitespace around secrets and products without pool secrets ----------------------------------------------------


def test_whitespace_around_secrets_is_removed_and_counted(event):
    result = run(event, b"secret,note\n BAD-0005,x\nOK-1,y\n\tTAB-1 ,z\n", ColumnMapping())
    assert (result.imported, result.trimmed) == (3, 2)
    assert result.warnings == ["Whitespace around 2 secrets was removed."]
    assert [row[0] for row in pool(event)] == ["BAD-0005", "OK-1", "TAB-1"]
    result = run(event, b" BAD-0005\nIN SIDE\n  \n", ColumnMapping(), dry_run=True)
    assert messages(result) == [
        (1, "Secret", "BAD-0005", "This secret has already been imported for this organizer."),
        (2, "Secret", "IN SIDE", "The secret must not contain whitespace."),
    ]
    assert run(event, b"CLEAN-1\nCLEAN-2\n").warnings == []


def test_secrets_for_products_without_pool_secrets_are_imported_with_a_warning(event, item, item2, variation):
    text = f"P-1,Ticket,\nP-2,Shirt,\nP-3,,{variation.pk}\nP-4,,\n".encode()
    result = run(event, text, ColumnMapping(secret=0, item=Source.column(1), variation=Source.column(2)))
    assert result.imported == 4
    assert result.restricted == {item: 1, item2: 2}
    assert result.warnings == [
        '2 secrets are restricted to "Shirt", which does not get pool secrets – see the plugin settings.']
    event.settings.secrets_import_products = [item2.pk]
    result = run(event, b"P-5\n", ColumnMapping(item=Source.fixed(item.pk)), dry_run=True)
    assert result.warnings == [
        '1 secret is restricted to "Ticket", which does not get pool secrets – see the plugin settings.']


def test_command_prints_the_warnings(event, item2, tmp_path, capsys):
    path = write(tmp_path, "codes.csv", b" W-1\nW-2\n")
    call_command("import_secrets", "bigevents", "sampleconf", path, "--item", "Shirt", "--dry-run")
    out, err = capsys.readouterr()
    assert "All 2 line(s) are valid" in out
    assert "Warning: Whitespace around 1 secret was removed." in err
    assert 'Warning: 2 secrets are restricted to "Shirt", which does not get pool secrets' in err
    call_command("import_secrets", "bigevents", "sampleconf", path, "--item", "Shirt")
    out, err = capsys.readouterr()
    assert "Imported 2 secret(s)." in out and "Warning: Whitespace around 1 secret was removed." in err
    assert pool(event) == [("W-1", item2.pk, None, None), ("W-2", item2.pk, None, None)]


def test_a_code_format_changed_during_the_import_fails_it(event, monkeypatch):
    """The change checked the pool without this import's secrets: storing them could let secrets in that misfit."""
    monkeypatch.setattr(files, "CHUNK_SIZE", 2)
    store = pipeline._FileImport.store

    def store_then_change(self, valid):
        store(self, valid)
        if valid[-1][1]["secret"] == "A-3":  # after the last chunk was checked and stored
            with scopes_disabled():
                type(event).objects.get(pk=event.pk).settings.set("secrets_import_format", "digits")

    monkeypatch.setattr(pipeline._FileImport, "store", store_then_change)
    with pytest.raises(DataImportError, match="The code format of this event was changed while the file was "
                                              "imported, so nothing was imported."):
        run(event, b"A-1\nA-2\nA-3\n")
    assert pool(event) == []
