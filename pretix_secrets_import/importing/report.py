"""
The error report of a refused file import: every invalid line as a CSV file, written by the import task and read by
the report page. Its columns are defined here only.
"""
import csv
import io
import os
import re
from contextlib import contextmanager

from django.utils.translation import gettext as _

TYPE = "application/x-pretix-secrets-import-report"  # marks our error reports among pretix' cached files
COLUMNS = ("line", "column", "value", "message")  # the attributes of importing.pipeline.LineError


def _headers():
    return [_("Line"), _("Column"), _("Value"), _("Problem")]


def filename(upload_name: str) -> str:
    """The error report's download name, after the file it reports on: ``codes.csv`` → ``codes-errors.csv``."""
    stem = re.sub(r"[^\w.-]+", "_", os.path.splitext(os.path.basename(upload_name or ""))[0]).strip("._")[:100]
    return f"{stem or 'secrets-import'}-errors.csv"


def neutralize(value: str) -> str:
    """Spreadsheet programs run cells starting with these characters as formulas; make them plain text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


@contextmanager
def writing(raw):
    """A function that writes one ``LineError`` to the binary file ``raw``, in the headers' language."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(_headers())

    def write(error):
        row = {name: getattr(error, name) for name in COLUMNS}
        writer.writerow([neutralize(row[name]) if name == "value" else row[name] for name in COLUMNS])

    try:
        yield write
    finally:
        text.flush()
        text.detach()


def read(raw, shown: int):
    """The first ``shown`` errors of a report as dicts of ``COLUMNS``, and how many it holds."""
    errors, count = [], 0
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    rows = csv.reader(text)
    next(rows, None)  # the header
    for row in rows:
        count += 1
        if len(errors) < shown:
            errors.append(dict(zip(COLUMNS, row)))
    text.detach()
    return errors, count
