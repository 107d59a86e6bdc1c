"""
Importing a file of secrets (CSV or XLSX) into an event's pool; shared by the backend import and the
``import_secrets`` management command.

The file is streamed: it is read, validated and stored chunk by chunk inside one transaction, so memory stays flat
for a million lines. Every invalid line is reported; if there is any, the transaction is rolled back and nothing is
imported. The rules for a secret are those of ``ImportedSecret.clean_rows``; this module only turns lines into rows.
"""
import codecs
import csv
import io
import logging
import re
import zipfile
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import islice
from time import monotonic

from django.db import transaction
from django.utils.translation import gettext as _, ngettext, pgettext

from pretix.base.i18n import LazyI18nString
from pretix.base.modelimport import DataImportError
from pretix.base.models import Event_SettingsStore, ItemVariation

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import codeformat, store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.pool.rules import (
    ALREADY_IMPORTED, REPEATED, RESTRICTIONS, WHITESPACE, restriction_warnings,
    trim_secrets,
)
from pretix_secrets_import.sales import alerts

CHUNK_SIZE = 5000
MAX_UPLOAD_SIZE = 200 * 1024 * 1024  # a million 64-character secrets with product and date columns
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "iso-8859-1", "iso-8859-15", "cp1250",
             "iso-8859-2", "cp1251", "mac-roman")
# Column names that say what a column holds, in the plugin's languages (English and German), compared as
# ``_header_key`` writes them; for each column the earliest name of a list wins (a "Code" column over a "Ticket" one).
# The backend and the command map such columns without being told.
HEADER_NAMES = {
    "secret": (
        "secret", "secrets", "ticket secret", "code", "codes", "barcode", "barcodes", "qr", "qr code", "qrcode",
        "ticket code", "ticketcode", "access code", "entry code", "gate code", "scan code", "ticket number",
        "ticket no", "ticket nr", "ticketnummer", "ticket nummer", "ticketnr", "kartennummer", "zugangscode",
        "einlasscode", "eintrittscode", "strichcode", "ticket", "tickets",
    ),
    "item": (
        "product", "products", "item", "items", "product name", "product id", "ticket type", "ticket types",
        "ticket category", "category", "produkt", "produkte", "produktname", "artikel", "ticketart", "ticket art",
        "tickettyp", "ticket typ", "ticketkategorie", "ticket kategorie", "kategorie", "kartenart",
    ),
    "variation": ("variation", "variations", "variant", "product variation", "variante", "varianten",
                  "produktvariante"),
    "subevent": ("date", "dates", "subevent", "event date", "time slot", "timeslot", "datum", "termin", "termine",
                 "veranstaltungsdatum", "veranstaltungstermin", "zeitfenster"),
}
# A first line with any of these cells is a header.
HEADER_WORDS = {word for words in HEADER_NAMES.values() for word in words} | {
    "id", "#", "no", "nr", "number", "nummer", "name", "status", "comment", "note", "kommentar", "bemerkung",
}
HEADER_SAMPLE = 10  # lines below the first that header detection compares it with
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
logger = logging.getLogger(__name__)


@dataclass
class FileFormat:
    kind: str = "csv"  # "csv" or "xlsx"
    encoding: str = "utf-8"
    delimiter: str = ","
    has_header: bool = False


@dataclass(frozen=True)
class Source:
    """Where every line's product, variation or date comes from: a column (0-based) or one ID for all lines."""
    kind: str  # "column" (the column holds an ID or a name) or "fixed"
    value: int

    @classmethod
    def column(cls, index: int) -> "Source":
        return cls("column", index)

    @classmethod
    def fixed(cls, pk: int) -> "Source":
        return cls("fixed", pk)

    @classmethod
    def parse(cls, text: str) -> "Source":
        """From the form value, as ``str()`` writes it: ``column:2`` or ``fixed:17``."""
        kind, value = text.split(":")
        return cls(kind, int(value))

    def __str__(self):
        return f"{self.kind}:{self.value}"


@dataclass
class ColumnMapping:
    """The column (0-based) that holds the secrets, and where each line's product, variation and date come from."""
    secret: int = 0
    item: Source = None
    variation: Source = None
    subevent: Source = None

    def as_dict(self) -> dict:
        """As JSON for the import task and the record of the import: ``{"item": ["column", 1], ...}``."""
        return {"secret": self.secret,
                **{name: [source.kind, source.value] if source else None for name, source in self.restrictions()}}

    @classmethod
    def from_dict(cls, data: dict) -> "ColumnMapping":
        return cls(secret=data.get("secret", 0),
                   **{name: Source(*data[name]) if data.get(name) else None for name in RESTRICTIONS})

    def restrictions(self):
        return [(name, getattr(self, name)) for name in RESTRICTIONS]


def guess_mapping(header, has_subevents=True) -> ColumnMapping:
    """
    The mapping that the column names of a header line suggest (the first column for the secrets otherwise). A date
    column only counts for an event series: elsewhere a "date" column means something else.
    """
    mapping, ranks = ColumnMapping(), {}
    for index, name in enumerate(header or []):
        key = _header_key(name)
        for target, words in HEADER_NAMES.items():
            if key in words and words.index(key) < ranks.get(target, len(words)) and (
                    target != "subevent" or has_subevents):
                ranks[target] = words.index(key)
                setattr(mapping, target, index if target == "secret" else Source.column(index))
    return mapping


def _header_key(cell) -> str:
    """A cell as compared with column names: "Ticket-Nr." and "ticket_nr" read as "ticket nr"."""
    return " ".join(re.sub(r"[-_.:]", " ", str(cell).casefold()).split())


def first_line_is_header(lines) -> bool:
    """
    Whether the first of ``lines`` (the cells of the file's first non-blank lines) holds column names rather than
    data. It does if one of its cells is a known column name (``HEADER_WORDS``) and none has a digit (a line of data
    nearly always has one, in a code, an ID or a date, and its product may well be called "Ticket"), or if it does not
    look like the lines below it in a column of codes: a column whose values below (at least 2 of the next
    ``HEADER_SAMPLE`` lines) are all different and contain no whitespace, as secrets do and product names or dates,
    which repeat, do not. In such a column the first line's cell is a name if

    - it contains whitespace while every value below contains a digit ("Ticket ID" above "A1B2C3"; no secret has
      whitespace), or
    - it contains a letter while every value below is a number ("EAN" above "4006381333931"), or
    - it differs from the values below in two of: no digit while each of them has one, lower case letters while none
      of them has any, another length than the one they all share ("Ticket" above "REG-0001"). Random codes differ
      from each other in one of these now and then, but hardly ever in two.

    Words alone are not enough for files in other languages, the shape alone not for short files or names that look
    like codes; a code in the first line (of the shape of the others) is never taken for a header.
    """
    if not lines:
        return False
    first, below = lines[0], lines[1:HEADER_SAMPLE + 1]
    if any(_header_key(cell) in HEADER_WORDS for cell in first) and not any(_has_digit(str(c)) for c in first):
        return True
    for index, cell in enumerate(first):
        cell = str(cell).strip()
        values = [str(line[index]).strip() for line in below if index < len(line) and str(line[index]).strip()]
        code_column = len(values) >= 2 and len(set(values)) == len(values) and not any(map(_has_space, values))
        if cell and code_column and _is_column_name(cell, values):
            return True
    return False


def _has_space(text) -> bool:
    return bool(WHITESPACE.search(text))


def _has_digit(text) -> bool:
    return any(c.isdigit() for c in text)


def _has_lower(text) -> bool:
    return any(c.islower() for c in text)


def _is_column_name(cell, values) -> bool:
    """Whether ``cell`` reads as the name of a column of codes ``values`` (see ``first_line_is_header``)."""
    all_digits = all(map(_has_digit, values))
    if _has_space(cell) and all_digits:
        return True
    if all(v.isdigit() for v in values) and any(c.isalpha() for c in cell):
        return True
    lengths = set(map(len, values))
    differences = (
        all_digits and not _has_digit(cell),
        _has_lower(cell) and not any(map(_has_lower, values)),
        len(lengths) == 1 and len(cell) not in lengths,
    )
    return sum(differences) >= 2


@dataclass
class LineError:
    """An invalid line of the file, as the report and the command show it."""
    line: int
    column: str
    value: str
    message: str


@dataclass
class ImportResult:
    lines: int = 0
    imported: int = 0
    error_count: int = 0
    errors: list = field(default_factory=list)  # the first ``keep_errors`` errors
    trimmed: int = 0  # secrets that had whitespace around them, which was removed
    restricted: dict = field(default_factory=dict)  # product → number of valid secrets restricted to it
    warnings: list = field(default_factory=list)  # what the organizer should know, though the lines are valid


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


class RoundedNumber(str):
    """
    A spreadsheet number of 16 or more digits. Excel keeps 15 significant digits, so the digits after the 15th may
    have been replaced by zeros when the code was typed or pasted, and a file's number cells are read as binary
    floating point, which is exact only to about 15 digits too.
    """


def _cell_text(value) -> str:
    """A spreadsheet cell as the text the organizer sees in it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        if abs(value) >= 1e15:  # as Excel shows it: 15 significant digits
            return RoundedNumber(format(Decimal(format(value, ".15g")), "f"))
        return str(int(value))
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
            if any(c.strip() for c in cells):
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
    About how many lines the file has, fast: for a CSV file its line breaks, for an Excel file the size its sheet
    states. Enough to decide whether an import fits into a web request.
    """
    if fmt.kind == "xlsx":
        from openpyxl import load_workbook
        try:
            workbook = load_workbook(fileobj, read_only=True)
            return (workbook.worksheets[0].max_row or 0) if workbook.worksheets else 0
        except XLSX_ERRORS:
            return 0  # the import itself reports what is wrong with the file
    # Every encoding we read writes a line break with one 0x0A byte (UTF-16 and UTF-32 pad it with zero bytes).
    fileobj.seek(0)
    return sum(block.count(b"\n") for block in iter(lambda: fileobj.read(1024 * 1024), b""))


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


def column_index(spec, header) -> int:
    """A column given as its 1-based number or, for files with a header line, its name; as a 0-based index."""
    spec = str(spec).strip()
    if spec.isdigit() and int(spec) >= 1:
        return int(spec) - 1
    names = [str(h).strip().casefold() for h in header or []]
    if spec.casefold() in names:
        return names.index(spec.casefold())
    raise DataImportError(_('There is no column "{column}" in the file.').format(column=spec))


def _names(value):
    """Every translation of a (possibly multilingual) name, normalised for matching."""
    if isinstance(value, LazyI18nString):
        data = value.data
        texts = data.values() if isinstance(data, dict) else [data]
    else:
        texts = [value]
    return {str(t).strip().casefold() for t in texts if t}


class Resolver:
    """Turns a cell naming a product, variation or date (by ID or name) into its ID."""

    def __init__(self, event):
        self.event = event
        self.items, self.item_names = {}, {}
        for item in event.items.all():
            self.items[str(item.pk)] = item.pk
            for name in _names(item.name) | _names(item.internal_name or ""):
                self.item_names.setdefault(name, set()).add(item.pk)
        self.variations, self.variation_names = {}, {}
        for variation in ItemVariation.objects.filter(item__event=event):
            self.variations[str(variation.pk)] = (variation.pk, variation.item_id)
            for name in _names(variation.value):
                self.variation_names.setdefault(name, set()).add((variation.pk, variation.item_id))
        self.subevents, self.subevent_names = {}, {}
        if event.has_subevents:
            tz = event.timezone
            for subevent in event.subevents.all():
                self.subevents[str(subevent.pk)] = subevent.pk
                start = subevent.date_from.astimezone(tz)
                keys = {start.date().isoformat(), start.strftime("%Y-%m-%d %H:%M")} | _names(subevent.name)
                for key in keys:
                    self.subevent_names.setdefault(key, set()).add(subevent.pk)

    @staticmethod
    def _one(matches, value, unknown, ambiguous):
        # Whole sentences per kind: languages with grammatical gender cannot fill in a translated noun.
        if not matches:
            raise ValueError(unknown.format(value=value))
        if len(matches) > 1:
            raise ValueError(ambiguous.format(value=value))
        return next(iter(matches))

    def resolve(self, name, value, item_id=None):
        """
        The ID of the product, variation or date (``name``: "item", "variation", "subevent") that ``value`` names; a
        variation only among those of the product ``item_id``, if given. Raises ``ValueError`` with the message.
        """
        if name == "variation":
            return self.variation(value, item_id)
        return getattr(self, name)(value)

    def item(self, value):
        value = value.strip()
        if value in self.items:
            return self.items[value]
        return self._one(self.item_names.get(value.casefold(), ()), value, _('Unknown product "{value}".'),
                         _('"{value}" matches more than one product; please use the ID.'))

    def variation(self, value, item_id=None):
        value = value.strip()
        if value in self.variations:
            return self.variations[value][0]
        matches = self.variation_names.get(value.casefold(), set())
        if item_id is not None:
            matches = {m for m in matches if m[1] == item_id}
        return self._one({pk for pk, _item in matches}, value, _('Unknown variation "{value}".'),
                         _('"{value}" matches more than one variation; please use the ID.'))

    def subevent(self, value):
        value = value.strip()
        if value in self.subevents:
            return self.subevents[value]
        return self._one(self.subevent_names.get(value.casefold(), ()), value, _('Unknown date "{value}".'),
                         _('"{value}" matches more than one date; please use the ID.'))


class _Labels:
    """Names of lines in messages, formatted only for the few lines that get one."""

    def __init__(self, label, lines):
        self.label, self.lines = label, lines

    def __getitem__(self, index):
        return self.label.format(number=self.lines[index])


class _StoredRows:
    """Which line stored which pool secret in this import: IDs rise within one transaction, so two arrays suffice."""

    def __init__(self):
        self.ids = array("q")
        self.lines = array("q")

    def add(self, pk, line):
        self.ids.append(pk)
        self.lines.append(line)

    def line_of(self, pk):
        index = bisect_left(self.ids, pk)
        if index < len(self.ids) and self.ids[index] == pk:
            return self.lines[index]
        return None


def import_file(event, fileobj, fmt: FileFormat, mapping: ColumnMapping, *, on_error=None, progress=None,
                keep_errors=1000, dry_run=False, user=None, auth=None, filename="") -> ImportResult:
    """
    Import every line of the file into ``event``'s pool in one transaction, or nothing if any line is invalid.

    ``on_error(error)`` is called with a ``LineError`` for every invalid line as it is found; the first
    ``keep_errors`` errors are also returned. With ``dry_run`` everything is checked and nothing is stored.
    """
    started = monotonic()
    logger.info("Secrets import into %s/%s started (%s)%s", event.organizer.slug, event.slug, filename or "a file",
                " as a dry run" if dry_run else "")
    run = _FileImport(event, mapping, on_error=on_error, keep_errors=keep_errors)
    try:
        with transaction.atomic():
            result = run.read(fileobj, fmt, progress)
            result.warnings = import_warnings(event, result)
            if result.error_count or dry_run:
                transaction.set_rollback(True)
                result.imported = 0
            elif result.imported:
                event.log_action("pretix_secrets_import.secrets.imported", user=user, auth=auth, data={
                    "count": result.imported, "filename": filename,
                })
                alerts.pool_grew(event)
                run.check_format_kept()  # last, right before the commit
    except Exception as e:
        # our own messages name lines and columns, never a secret; other exceptions only by their type
        reason = f"DataImportError: {e}" if isinstance(e, DataImportError) else type(e).__name__
        logger.warning("Secrets import into %s/%s failed after %.1f s: %s; nothing was imported", event.organizer.slug,
                       event.slug, monotonic() - started, reason)
        raise
    outcome = "checked (dry run)" if dry_run and not result.error_count else \
        "refused for invalid lines" if result.error_count else "imported"
    logger.info("Secrets import into %s/%s %s: %d lines, %d imported, %d invalid lines, %.1f s", event.organizer.slug,
                event.slug, outcome, result.lines, result.imported, result.error_count, monotonic() - started)
    return result


def import_warnings(event, result: ImportResult) -> list:
    """Warnings about an import's valid lines: whitespace removed, secrets that no ticket would get."""
    warnings = [ngettext(
        "Whitespace around {count} secret was removed.", "Whitespace around {count} secrets was removed.",
        result.trimmed,
    ).format(count=result.trimmed)] if result.trimmed else []
    return warnings + restriction_warnings(event, result.restricted)


class _FileImport:
    """One import of a file: reads it chunk by chunk, checks and stores each chunk, and reports the invalid lines."""

    def __init__(self, event, mapping: ColumnMapping, on_error, keep_errors):
        self.event, self.mapping, self.on_error, self.keep_errors = event, mapping, on_error, keep_errors
        self.result = ImportResult()
        self.code_format = CodeFormat.of_event(event)  # every chunk is checked against this one
        self.resolver = Resolver(event)
        self.stored = _StoredRows()
        self.chunk_errors = []
        self.line_label = _("line {number}")
        self.repeated, self.already_imported = str(REPEATED), str(ALREADY_IMPORTED)  # translated once, not per line
        self.rounded = _("This cell holds a number of more than 15 digits, of which Excel keeps only the first 15: "
                         "the code may have been rounded. Format the column as text in Excel and enter the codes "
                         "again.")
        self.spreadsheet = False
        self.column_names = {"secret": pgettext("ticket_secret", "Secret"), "item": _("Product"),
                             "variation": _("Variation"), "subevent": pgettext("subevent", "Date")}
        self.fixed = {name: source.value if source and source.kind == "fixed" else None
                      for name, source in mapping.restrictions()}
        self.from_columns = [(name, source.value) for name, source in mapping.restrictions()
                             if source and source.kind == "column"]
        self.restricted = Counter()  # product → valid lines restricted to it (a variation implies its product)
        self.count_restricted = bool(mapping.item or mapping.variation)

    def read(self, fileobj, fmt, progress) -> ImportResult:
        """Checks and stores every line, inside the caller's transaction."""
        self.spreadsheet = fmt.kind == "xlsx"
        chunk = []
        header_skipped = not fmt.has_header
        for line, cells in read_rows(fileobj, fmt, progress=progress):
            if not header_skipped:
                header_skipped = True
                continue
            self.result.lines += 1
            chunk.append((line, cells))
            if len(chunk) >= CHUNK_SIZE:
                self.flush(chunk)
                chunk = []
        if chunk:
            self.flush(chunk)
        if self.result.lines == 0:
            raise DataImportError(_("The file does not contain any secrets."))
        self.result.restricted = dict(self.restricted)
        return self.result

    def check_format_kept(self):
        """
        Refuse to store the import if the event's code format changed while it ran: the change checked the pool
        without this import's secrets, which only its commit shows to others, and they were checked against the old
        format.
        """
        # from the database: Django's cache may hold the old settings for a moment after the change committed
        stored = Event_SettingsStore.objects.filter(object=self.event, key__in=codeformat.SETTINGS)
        if CodeFormat.of(dict(stored.values_list("key", "value"))) != self.code_format:
            raise DataImportError(_("The code format of this event was changed while the file was imported, so "
                                    "nothing was imported. Please import the file again to check it against the "
                                    "new format."))

    def report(self, line, column, value, message):
        self.chunk_errors.append(LineError(line=line, column=str(self.column_names.get(column, column)), value=value,
                                           message=str(message)))

    def flush(self, chunk):
        valid = self.check(chunk)
        if self.result.error_count or self.chunk_errors:
            # The import fails anyway: look the chunk up before storing it, so that a file of secrets that are already
            # in the pool costs one index lookup per line, not an insert that conflicts and then a lookup.
            valid = self.report_taken(valid, pool.ids_of(self.event.organizer_id, [row["secret"] for _l, row in valid]))
        if valid:
            self.store(valid)
        # a chunk finds some errors only while storing it; list them all in line order
        for error in sorted(self.chunk_errors, key=lambda e: e.line):
            self.result.error_count += 1
            if len(self.result.errors) < self.keep_errors:
                self.result.errors.append(error)
            if self.on_error:
                self.on_error(error)
        self.chunk_errors.clear()

    def rows(self, chunk):
        """The chunk's lines as rows for ``clean_rows``, cell texts, and what is wrong before the pool's rules apply."""
        secret_column = self.mapping.secret
        cells_read = [cells[secret_column] if secret_column < len(cells) else "" for _line, cells in chunk]
        secrets = trim_secrets(cells_read)
        if sum(map(len, secrets)) != sum(map(len, cells_read)):  # counted one by one only when there is something
            self.result.trimmed += sum(1 for read, secret in zip(cells_read, secrets) if secret and read != secret)
        rows = [{"secret": secret, **self.fixed} for secret in secrets]
        texts, problems = {}, {}  # per row index, only for rows that have them
        if self.spreadsheet:
            for index, (_line, cells) in enumerate(chunk):
                if secret_column < len(cells) and type(cells[secret_column]) is RoundedNumber:
                    texts[index] = {"secret": rows[index]["secret"]}
                    problems[index] = {"secret": self.rounded}
        if self.from_columns:
            for index, (_line, cells) in enumerate(chunk):
                row = rows[index]
                texts.setdefault(index, {})
                for name, column in self.from_columns:
                    texts[index][name] = text = cells[column].strip() if column < len(cells) else ""
                    if text:
                        try:
                            row[name] = self.resolver.resolve(name, text, row["item"])
                        except ValueError as e:
                            problems.setdefault(index, {})[name] = str(e)
        return rows, texts, problems

    def check(self, chunk) -> list:
        """Reports the chunk's invalid lines; returns ``(line, cleaned row)`` of the valid ones."""
        rows, texts, problems = self.rows(chunk)
        lines = [line for line, _cells in chunk]
        cleaned, errors = ImportedSecret.clean_rows(
            self.event, rows, labels=_Labels(self.line_label, lines), check_pool=False, code_format=self.code_format,
        )
        if self.count_restricted:
            self.restricted.update(row["item"] for row in cleaned if row is not None and row["item"] is not None)
        if not problems and not any(errors):
            return list(zip(lines, cleaned))
        valid = []
        for index, (line, row, clean, row_errors) in enumerate(zip(lines, rows, cleaned, errors)):
            row_problems, row_texts = problems.get(index, {}), texts.get(index, {})
            for name, message in row_problems.items():
                self.report(line, name, row_texts[name], message)
            for name, messages in row_errors.items():
                if name not in row_problems:
                    for message in messages:
                        self.report(line, name, row["secret"] if name == "secret" else row_texts.get(name, ""),
                                    message)
            if clean is not None and not row_problems:
                valid.append((line, clean))
        return valid

    def report_taken(self, valid, taken):
        """Reports the rows whose secret the pool holds (``taken``: ``{secret: id}``); returns the other rows."""
        free = []
        for line, row in valid:
            pk = taken.get(row["secret"])
            if pk is None:
                free.append((line, row))
                continue
            first = self.stored.line_of(pk)
            self.report(line, "secret", row["secret"], self.already_imported if first is None else
                        self.repeated.format(label=self.line_label.format(number=first)))
        return free

    def store(self, valid):
        # Valid rows are stored even after an error (and in a dry run), so that later repeats of them in the file
        # are found; the transaction is rolled back at the end in that case.
        ids = pool.insert_rows(self.event, [row for _line, row in valid], skip_existing=True)
        skipped = [(line, row) for line, row in valid if row["secret"] not in ids]
        if skipped:
            taken = pool.ids_of(self.event.organizer_id, [row["secret"] for _line, row in skipped])
            # 0: taken by another transaction that has deleted it again since; still not stored by this import
            self.report_taken(skipped, {row["secret"]: taken.get(row["secret"], 0) for _line, row in skipped})
        for pk, line in sorted((ids[row["secret"]], line) for line, row in valid if row["secret"] in ids):
            self.stored.add(pk, line)
        self.result.imported += len(ids)
