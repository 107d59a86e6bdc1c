"""
Which column of a file holds what: the column names the plugin knows in English and German, header detection, and
the mapping of the secret and its restrictions to columns or fixed values (``ColumnMapping``).
"""
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from pretix.base.modelimport import DataImportError

from pretix_secrets_import.pool.rules import RESTRICTIONS, WHITESPACE

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


def column_index(spec, header) -> int:
    """A column given as its 1-based number or, for files with a header line, its name; as a 0-based index."""
    spec = str(spec).strip()
    if spec.isdigit() and int(spec) >= 1:
        return int(spec) - 1
    names = [str(h).strip().casefold() for h in header or []]
    if spec.casefold() in names:
        return names.index(spec.casefold())
    raise DataImportError(_('There is no column "{column}" in the file.').format(column=spec))
