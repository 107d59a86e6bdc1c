"""
Reading files (importing/files.py): number cells of XLSX files as the number the file stores, in files written by
openpyxl and in files built the way Excel and LibreOffice write them, and the line count of the preview.
"""
import io
import zipfile
from datetime import datetime

import pytest

from pretix_secrets_import.importing.files import (
    FileFormat, count_lines, counts_exactly, read_rows, sniff,
)
from pretix_secrets_import.importing.numbers import (
    NOT_WHOLE, ROUNDED, SpreadsheetNumber,
)
from tests.importing.test_importer import xlsx

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
TYPES = "application/vnd.openxmlformats-officedocument.spreadsheetml"

# Cell styles (the s attribute of a cell): General, "0" and "@" (text) as Excel refers to them by built-in number,
# a date, and "General", "0" and "@" as LibreOffice writes them, as formats of the file's own.
STYLES = {"general": 0, "0": 1, "@": 2, "date": 3, "lo-general": 4, "lo-0": 5, "lo-@": 6}
STYLES_XML = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="{MAIN}">
<numFmts count="3"><numFmt numFmtId="164" formatCode="General"/><numFmt numFmtId="165" formatCode="0"/>
<numFmt numFmtId="166" formatCode="@"/></numFmts>
<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="7">
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="1" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
</cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


def spreadsheet(rows, strings=(), dimension=None) -> bytes:
    """
    An XLSX file as Excel and LibreOffice write it: ``rows`` are lists of the XML of their cells (``<c>`` elements
    with their ``<v>`` as the program stored it), ``strings`` the shared strings table, as ``<si>`` contents.
    """
    sheet_rows = "".join(f'<row r="{number}">{"".join(cells)}</row>' for number, cells in enumerate(rows, start=1))
    parts = {
        "[Content_Types].xml": f"""<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="{TYPES}.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{TYPES}.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="{TYPES}.styles+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="{TYPES}.sharedStrings+xml"/></Types>""",
        "_rels/.rels": f"""<Relationships xmlns="{PACKAGE}">
<Relationship Id="rId1" Type="{RELATIONSHIPS}/officeDocument" Target="xl/workbook.xml"/></Relationships>""",
        "xl/workbook.xml": f"""<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">
<sheets><sheet name="Tabelle1" sheetId="1" r:id="rId1"/></sheets></workbook>""",
        "xl/_rels/workbook.xml.rels": f"""<Relationships xmlns="{PACKAGE}">
<Relationship Id="rId1" Type="{RELATIONSHIPS}/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="{RELATIONSHIPS}/styles" Target="styles.xml"/>
<Relationship Id="rId3" Type="{RELATIONSHIPS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>""",
        "xl/styles.xml": STYLES_XML,
        "xl/sharedStrings.xml": f"""<sst xmlns="{MAIN}" count="{len(strings)}" uniqueCount="{len(strings)}">
{"".join(f"<si>{s}</si>" for s in strings)}</sst>""",
        "xl/worksheets/sheet1.xml": f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}"><dimension ref="{dimension or f"A1:C{len(rows)}"}"/>
<sheetData>{sheet_rows}</sheetData></worksheet>""",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, xml in parts.items():
            package.writestr(name, xml)
    return out.getvalue()


def number(ref, stored, style="general", libreoffice=False):
    """A number cell: Excel leaves out ``t="n"``, LibreOffice writes it."""
    kind = ' t="n"' if libreoffice else ""
    return f'<c r="{ref}" s="{STYLES[style]}"{kind}><v>{stored}</v></c>'


def cells_of(data: bytes):
    f = io.BytesIO(data)
    fmt = sniff(f, "codes.xlsx")
    fmt.has_header = False
    return [cells for _line, cells in read_rows(f, fmt)]


def reason(cell):
    return cell.reason if isinstance(cell, SpreadsheetNumber) else None


def test_openpyxl_writes_a_long_integer_through_floating_point():
    # Why a 16-digit code changed: openpyxl writes every number as "%.16g" of a float, so the file itself stores
    # 2**53 (its reader then takes the stored digits exactly). The number is refused rather than taken as a code.
    data = xlsx([[2 ** 53 + 1], [1234567890123], [1234567890123.0], [999999999999999], [12345678901234567]])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<v>9007199254740992</v>" in sheet and "<v>1.234567890123457e+16</v>" in sheet
    cells = [row[0] for row in cells_of(data)]
    assert cells == ["9007199254740992", "1234567890123", "1234567890123", "999999999999999", "12345678901234570"]
    assert [reason(c) for c in cells] == [ROUNDED, None, None, None, ROUNDED]


@pytest.mark.parametrize("style,libreoffice", [
    ("general", False), ("0", False), ("@", False), ("lo-general", True), ("lo-0", True), ("lo-@", True),
])
@pytest.mark.parametrize("stored,text,refused", [
    ("9007199254740993", "9007199254740993", ROUNDED),  # digits beyond floating point, taken exactly
    ("9.0071992547409920E+15", "9007199254740992", ROUNDED),  # Excel's way of writing some numbers
    ("9007199254740990", "9007199254740990", ROUNDED),  # what Excel keeps of 9007199254740993 typed in
    ("1000000000000000", "1000000000000000", ROUNDED),  # 16 digits: Excel may have made the last ones zeros
    ("123456789012345678901234567890", "123456789012345678901234567890", ROUNDED),
    ("999999999999999", "999999999999999", None),
    ("1234567890123", "1234567890123", None),
    ("1234567890123.0", "1234567890123", None),
    ("1.234567890123E+12", "1234567890123", None),
    ("-42", "-42", None),
    ("1.5", "1.5", NOT_WHOLE),
    ("1E-3", "0.001", NOT_WHOLE),
    ("1.0000000000000001E-5", "0.00001", NOT_WHOLE),  # Excel writes 17 digits for 0.00001
    ("0.30000000000000004", "0.30000000000000004", ROUNDED),  # more than 15 significant digits
])
def test_number_cells_are_the_number_the_file_stores(stored, text, refused, style, libreoffice):
    # a number cell stays one whatever its format, also "@": Excel formats only the codes typed in afterwards as text
    [[cell]] = cells_of(spreadsheet([[number("A1", stored, style, libreoffice)]]))
    assert (cell, reason(cell)) == (text, refused)


def test_text_dates_booleans_and_formula_results():
    data = spreadsheet([
        ['<c r="A1" t="s"><v>0</v></c>', '<c r="B1" t="s"><v>1</v></c>'],
        ['<c r="A2" t="inlineStr"><is><t>9007199254740993</t></is></c>', '<c r="B2" t="b"><v>1</v></c>'],
        ['<c r="A3" s="2" t="s"><v>2</v></c>', number("B3", "45658", "date")],
        ['<c r="A4"><f>1+1</f><v>2</v></c>', '<c r="B4" t="str"><f>"X-"&amp;1</f><v>X-1</v></c>'],
        ['<c r="A5" t="e"><v>#N/A</v></c>', '<c r="B5"><f>2^60</f><v>1.152921504606847E+18</v></c>'],
        ['<c r="A6" t="s"><v>3</v></c>', number("B6", "45658.5", "date")],
    ], strings=["<t>Code</t>", "<t>9.00719925474099E+15</t>", '<t xml:space="preserve">0012345678901234567</t>',
                "<r><t>AB</t></r><r><rPr><b/></rPr><t>C-1</t></r>"])
    rows = cells_of(data)
    assert rows == [
        ["Code", "9.00719925474099E+15"],
        ["9007199254740993", "TRUE"],
        ["0012345678901234567", "2025-01-01"],
        ["2", "X-1"],
        ["#N/A", "1152921504606847000"],
        ["ABC-1", "2025-01-01 12:00"],
    ]
    # text is text, however long or number-like: only number cells are SpreadsheetNumbers
    assert [[reason(cell) for cell in row] for row in rows] == [[None] * 2] * 4 + [[None, ROUNDED], [None, None]]


def test_openpyxl_dates_and_booleans_keep_their_text():
    rows = cells_of(xlsx([[datetime(2030, 1, 2), datetime(2030, 1, 2, 9, 30), True, False, None, "A"]]))
    assert rows == [["2030-01-02", "2030-01-02 09:30", "TRUE", "FALSE", "", "A"]]


@pytest.mark.parametrize("content,encoding,lines", [
    (b"", "utf-8", 0),
    (b"A\nB\nC\n", "utf-8", 3),
    (b"A\nB\nC", "utf-8", 3),  # the last line without a line break counts
    (b"A\r\nB\r\n\r\nC\r\n", "utf-8", 4),  # a blank line counts: the preview numbers lines as in the file
    (b"A\rB\rC\r", "utf-8", 3),  # an old Mac file
    (b'"A\nstill A",x\nB,y\n', "utf-8", 3),  # a quoted line break: the csv module counts it as a line too
    ("A\r\nÄ\r\nC".encode("utf-16"), "utf-16", 3),
    ("A\nÄ\n".encode("cp1252"), "cp1252", 2),
])
def test_a_csv_files_lines_are_counted_exactly(content, encoding, lines):
    fmt = FileFormat(encoding=encoding)
    assert counts_exactly(fmt)
    assert count_lines(io.BytesIO(content), fmt) == lines
    read = list(read_rows(io.BytesIO(content), fmt))
    assert not read or read[-1][0] == lines


def test_a_csv_line_break_across_blocks_counts_once():
    content = b"A" * (1024 * 1024 - 1) + b"\r\nB\r\n"  # "\r" ends the first block read, "\n" starts the next
    assert count_lines(io.BytesIO(content), FileFormat()) == 2


def test_a_file_that_is_not_the_chosen_encoding_is_left_to_the_import():
    assert count_lines(io.BytesIO(b"A\nB\n"), FileFormat(encoding="utf-16")) == 0  # no byte order mark


def test_an_excel_file_states_its_size():
    data = spreadsheet([['<c r="A1" t="inlineStr"><is><t>A</t></is></c>']] * 3, dimension="A1:A40")
    fmt = sniff(io.BytesIO(data), "codes.xlsx")
    assert not counts_exactly(fmt)
    assert count_lines(io.BytesIO(data), fmt) == 40
    assert len(cells_of(data)) == 3
