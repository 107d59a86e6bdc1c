"""
Reading a file of secrets: its kind, encoding and delimiter (``sniff``), whether its first line is a header, and
its lines as lists of cell texts, streamed (CSV) or row by row (XLSX), with a number cell as the number the file
stores (``numbers.cell_text``).
"""
import codecs
import csv
import io
import logging
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import islice

from django.utils.translation import gettext as _

from pretix.base.modelimport import DataImportError

from pretix_secrets_import.importing import numbers
from pretix_secrets_import.importing.columns import (
    HEADER_SAMPLE, first_line_is_header,
)

CHUNK_SIZE = 5000


MAX_UPLOAD_SIZE = 200 * 1024 * 1024  # a million 64-character secrets with product and date columns


SNIFF_BYTES = 64 * 1024


DELIMITERS = ",;\t|"


ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "iso-8859-1", "iso-8859-15", "cp1250",
             "iso-8859-2", "cp1251", "mac-roman")


BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass
class FileFormat:
    kind: str = "csv"  # "csv" or "xlsx"
    encoding: str = "utf-8"
    delimiter: str = ","
    has_header: bool = False


def sniff(fileobj, filename="") -> FileFormat:
    """Guess kind, encoding, delimiter and header from the start of the file."""
    fileobj.seek(0)
    head = fileobj.read(SNIFF_BYTES)
    fileobj.seek(0)
    if head.startswith(b"PK\x03\x04") or filename.lower().endswith(".xlsx"):
        fmt = FileFormat(kind="xlsx")
        fmt.has_header = detect_header(fileobj, fmt)
        return fmt
    encoding = _guess_encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    sample = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = next((d for d in DELIMITERS if d in sample.split("\n", 1)[0]), ",")
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    try:
        lines = list(islice((cells for cells in reader if any(c.strip() for c in cells)), HEADER_SAMPLE + 1))
    except csv.Error:  # the import reports it, with the line
        lines = []
    return FileFormat(kind="csv", encoding=encoding, delimiter=delimiter, has_header=first_line_is_header(lines))


def detect_header(fileobj, fmt: FileFormat) -> bool:
    """Whether the file, read as ``fmt`` says, starts with a header line (``first_line_is_header``)."""
    return first_line_is_header([cells for _line, cells in islice(read_rows(fileobj, fmt), HEADER_SAMPLE + 1)])


def _guess_encoding(head: bytes) -> str:
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # It reports its reasoning at DEBUG level, which pretix' console logging prints into the command's output.
    detector = logging.getLogger("charset_normalizer")
    level = detector.level
    detector.setLevel(logging.WARNING)
    try:
        best = from_bytes(head).best()
    finally:
        detector.setLevel(level)
    return codecs.lookup(best.encoding).name if best else "cp1252"


def _cell_text(value) -> str:
    """A spreadsheet cell as text: a number as the file stores it, a date as ISO 8601, a boolean as Excel shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, (int, float)):
        return numbers.cell_text(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes") if value.time() != time(0) else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def read_rows(fileobj, fmt: FileFormat, progress=None):
    """
    Yield ``(line_number, cells)`` for every non-blank line of the file, streaming. ``progress`` is called now and
    then with the fraction of the file read so far.
    """
    fileobj.seek(0)
    if fmt.kind == "xlsx":
        yield from _read_xlsx(fileobj, progress)
        return
    try:
        codecs.lookup(fmt.encoding)
    except LookupError:
        raise DataImportError(_("Unknown character encoding: {encoding}").format(encoding=fmt.encoding))
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(0)
    text = io.TextIOWrapper(fileobj, encoding=fmt.encoding, newline="")
    reader = csv.reader(text, delimiter=fmt.delimiter, strict=False)
    try:
        for cells in reader:
            if "".join(cells).strip():  # not blank; in C, for a million lines
                yield reader.line_num, cells
            if progress and size and reader.line_num % CHUNK_SIZE == 0:
                progress(min(fileobj.tell() / size, 1.0))
    except UnicodeError:  # UnicodeDecodeError, and e.g. UTF-16/32 without a byte order mark
        raise DataImportError(_(
            "The file is not valid {encoding} text (near line {line}). Please choose the character encoding it "
            "was saved with."
        ).format(encoding=fmt.encoding, line=reader.line_num + 1))
    except csv.Error as e:
        raise DataImportError(_("The file could not be read as CSV near line {line}: {error}").format(
            line=reader.line_num, error=e))
    finally:
        text.detach()  # leave the underlying file open for the caller


# What openpyxl raises for a damaged file. SyntaxError covers the XML parse errors of both xml.etree and lxml, which
# openpyxl uses for different parts of the file.
XLSX_ERRORS = (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError)


def _read_xlsx(fileobj, progress):
    from openpyxl import load_workbook
    try:
        workbook = load_workbook(fileobj, read_only=True, data_only=True)
    except XLSX_ERRORS as e:
        raise DataImportError(_("The file could not be read as an Excel (XLSX) file: {error}").format(error=e))
    try:
        if not workbook.worksheets:
            raise DataImportError(_("The Excel file does not contain any sheet."))
        sheet = workbook.worksheets[0]
        total = sheet.max_row or 0  # as the file states it: good enough for the progress bar
        # Some programs store a wrong sheet size, and read-only mode would stop reading there.
        sheet.reset_dimensions()
        number = 0
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = [_cell_text(v) for v in values]
                if any(c.strip() for c in cells):
                    yield number, cells
                if progress and total and number % CHUNK_SIZE == 0:
                    progress(min(number / total, 1.0))
        except XLSX_ERRORS as e:
            raise DataImportError(_("The Excel file is damaged after line {line}: {error}").format(
                line=number, error=e))
    finally:
        workbook.close()


def count_lines(fileobj, fmt: FileFormat) -> int:
    """
    How many lines the file has, fast: for a CSV file exactly, counted as the import numbers them (blank lines too),
    for an Excel file about as many, the size its sheet states. Enough to decide whether an import fits into a web
    request.
    """
    if fmt.kind == "xlsx":
        from openpyxl import load_workbook
        try:
            workbook = load_workbook(fileobj, read_only=True)
            return (workbook.worksheets[0].max_row or 0) if workbook.worksheets else 0
        except XLSX_ERRORS:
            return 0  # the import itself reports what is wrong with the file
    # "\n", "\r" and "\r\n" end a line, as for the csv module. Every encoding we read but UTF-16 and UTF-32 writes
    # them as single bytes that are never part of another character: those are counted undecoded, a lot faster.
    wide = codecs.lookup(fmt.encoding).name.startswith(("utf-16", "utf-32"))
    decode = codecs.getincrementaldecoder(fmt.encoding)(errors="replace").decode if wide else bytes
    nl, cr, crlf = ("\n", "\r", "\r\n") if wide else (b"\n", b"\r", b"\r\n")
    fileobj.seek(0)
    lines, tail = 0, nl  # tail: the last character read, as if a line had just ended
    try:
        for block in iter(lambda: fileobj.read(1024 * 1024), b""):
            text = decode(block)
            if text:
                returns = text.count(cr)  # "\r" alone ends a line too; none in most files, then "\r\n" is not sought
                lines += text.count(nl) + (returns and returns - text.count(crlf)) - (tail == cr and text[:1] == nl)
                tail = text[-1:]
    except UnicodeError:  # UTF-16 or UTF-32 without a byte order mark: the import reports it
        pass
    return lines + (tail not in (nl, cr))  # a last line without a line break


def counts_exactly(fmt: FileFormat) -> bool:
    """Whether ``count_lines`` counts the lines of such a file, rather than taking what the file states."""
    return fmt.kind == "csv"


def preview(fileobj, fmt: FileFormat, lines=10):
    """The header (or ``None``) and the first lines of the file, for the column mapping."""
    header, rows = None, []
    for number, cells in read_rows(fileobj, fmt):
        if header is None and fmt.has_header and not rows:
            header = cells
            continue
        rows.append((number, cells))
        if len(rows) >= lines:
            break
    return header, rows
