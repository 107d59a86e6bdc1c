"""
Numbers from spreadsheets as codes: which ones can be taken, and why the others cannot. One rule for the column of
codes of the backend import and the ``import_secrets`` command (Excel and CSV files) and for the ticket codes of
pretix' order import (CSV files).

Excel and LibreOffice hold a number as binary floating point and keep 15 significant digits of what is typed or
pasted into a number cell: the digits of a longer code after the 15th come back changed, and programs that write
files from code round through floating point as well (openpyxl writes 2**53 + 1 as 9007199254740992). Nothing in the
file tells whether that happened, so a number of more than 15 digits is refused, and so is a number that is not whole,
whose digits depend on how it was entered and formatted. Saved as CSV, a long number often shows in scientific
notation with its first digits only (``9.00719925474099E+15``): such a text is refused as well.
"""
import re
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

EXACT_DIGITS = 15  # what Excel and LibreOffice keep of a number

ROUNDED = _(
    "The cell holds the number {number}, which has more than 15 digits. Spreadsheet programs such as Excel keep only "
    "the first 15 digits of a number, so this may not be the code that was entered. Format the column as text (in "
    "Excel: Format Cells → Number → Text), then enter or paste the codes again and save the file."
)
NOT_WHOLE = _(
    "The cell holds the number {number}, which is not a whole number. A spreadsheet program may store and show such a "
    "number differently from how it was entered, so it is not taken as a code. If it is one, format the column as "
    "text (in Excel: Format Cells → Number → Text), then enter or paste the codes again and save the file."
)
SCIENTIFIC_NOTATION = _(
    'The code "{text}" is a long number as a spreadsheet program shows it, in scientific notation with only its first '
    "digits: the others are lost. Format the column as text (in Excel: Format Cells → Number → Text), then enter or "
    "paste the codes again and save the file."
)

# A number as Excel and LibreOffice show it when it does not fit (with "." or "," for decimals), or as Python and
# pandas write a float; the exponent is large: such a text stands for a number with more digits than it shows.
SCIENTIFIC = re.compile(r"[+-]?[0-9](?:[.,][0-9]+)?[Ee]\+[0-9]{2,3}")


class SpreadsheetNumber(str):
    """The text of a number cell that cannot be taken as a code; ``reason`` says why (see ``refusal``)."""

    def __new__(cls, text, reason):
        number = super().__new__(cls, text)
        number.reason = reason
        return number


def cell_text(number) -> str:
    """
    A number cell, as openpyxl reads it (``int`` or ``float``), as the number the file stores: an integer as its
    digits, any other number as a decimal; a ``SpreadsheetNumber`` if it cannot be taken as a code.
    """
    if isinstance(number, float):
        # openpyxl reads a stored value of digits only as an exact int, any other (1.5, 9.0071992547409920E+15) as a
        # float. The float's shortest representation is the stored number whenever that has at most 15 significant
        # digits (and it undoes the 17 digits Excel writes for some numbers, such as 1.0000000000000001E-5).
        number = Decimal(repr(number))
        if not number.is_finite() or number != number.to_integral_value():
            digits = len(number.normalize().as_tuple().digits) if number.is_finite() else 0
            return SpreadsheetNumber(str(number), ROUNDED if digits > EXACT_DIGITS else NOT_WHOLE)
        number = int(number)
    text = str(number)
    return SpreadsheetNumber(text, ROUNDED) if len(text.lstrip("-")) > EXACT_DIGITS else text


def refusal(cell: str):
    """Why ``cell``, a cell's text as read, cannot be taken as a code, or ``None`` if it can."""
    if isinstance(cell, SpreadsheetNumber):
        return str(cell.reason).format(number=cell)
    text = cell.strip()
    if SCIENTIFIC.fullmatch(text):
        return str(SCIENTIFIC_NOTATION).format(text=text)
    return None


def refusals(cells) -> dict:
    """The ``refusal`` of each of ``cells`` (a column's texts, as read) that cannot be taken as a code, by index."""
    joined = "".join(cells)
    # checked in C first: an import checks a million cells, and nearly always every one of them is fine
    if SpreadsheetNumber not in set(map(type, cells)) and "E+" not in joined and "e+" not in joined:
        return {}
    return {index: reason for index, reason in enumerate(map(refusal, cells)) if reason}
