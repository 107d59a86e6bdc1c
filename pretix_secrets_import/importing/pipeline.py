"""
Importing a file of secrets (CSV or XLSX) into an event's pool; shared by the backend import and the
``import_secrets`` management command.

The file is streamed: it is read, validated and stored chunk by chunk inside one transaction, so memory stays flat
for a million lines. Every invalid line is reported; if there is any, the transaction is rolled back and nothing is
imported. The rules for a secret are those of ``validation.clean_rows``; this module only turns lines into rows.

With ``skip_existing``, lines whose secret the event's pool holds with the same restriction are passed over and
counted (a vendor's list sent again with new codes added); everything else is imported or refused as without it.
The line of each secret passed over is kept (about 100 bytes each), to find it repeated further down the file.
"""
import logging
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from operator import lt
from time import monotonic

from django.db import transaction
from django.utils.translation import (
    gettext as _, gettext_lazy, ngettext, pgettext,
)

from pretix.base.modelimport import DataImportError
from pretix.base.models import Event_SettingsStore

from pretix_secrets_import.importing import copying, files, numbers
from pretix_secrets_import.importing.columns import ColumnMapping
from pretix_secrets_import.importing.files import FileFormat, read_rows
from pretix_secrets_import.importing.resolver import Resolver
from pretix_secrets_import.pool import codeformat, store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.pool.rules import (
    ALREADY_IMPORTED, REPEATED, RESTRICTIONS, trim_secrets,
)
from pretix_secrets_import.pool.validation import all_clean, clean_rows
from pretix_secrets_import.sales import alerts
from pretix_secrets_import.sales.sellable import restriction_warnings

logger = logging.getLogger(__name__)
NO_SECRETS = gettext_lazy("The file does not contain any secrets.")


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
    passed_over: int = 0  # lines whose secret the pool held with the same restriction (``skip_existing``)
    restricted: dict = field(default_factory=dict)  # product → number of valid secrets restricted to it
    warnings: list = field(default_factory=list)  # what the organizer should know, though the lines are valid


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

    def add(self, pks, lines):
        """The IDs of a chunk's stored rows and their lines; the IDs of a later chunk are higher."""
        if not all(map(lt, pks, islice(pks, 1, None))):  # in order as inserted, nearly always
            pks, lines = zip(*sorted(zip(pks, lines)))
        self.ids.extend(pks)
        self.lines.extend(lines)

    def line_of(self, pk):
        if not self.ids:  # a file refused from its start stored nothing: spare a search per line
            return None
        index = bisect_left(self.ids, pk)
        if index < len(self.ids) and self.ids[index] == pk:
            return self.lines[index]
        return None


def import_file(event, fileobj, fmt: FileFormat, mapping: ColumnMapping, *, on_error=None, progress=None,
                keep_errors=1000, dry_run=False, skip_existing=False, user=None, auth=None,
                filename="") -> ImportResult:
    """
    Import every line of the file into ``event``'s pool in one transaction, or nothing if any line is invalid.

    ``on_error(error)`` is called with a ``LineError`` for every invalid line as it is found; the first
    ``keep_errors`` errors are also returned. With ``dry_run`` everything is checked and nothing is stored. With
    ``skip_existing`` the lines whose secret the pool holds with the same restriction are passed over.
    """
    started = monotonic()
    logger.info("Secrets import into %s/%s started (%s)%s%s", event.organizer.slug, event.slug,
                filename or "a file", " as a dry run" if dry_run else "",
                ", passing over secrets in the pool" if skip_existing else "")
    run = _FileImport(event, mapping, on_error=on_error, keep_errors=keep_errors, skip_existing=skip_existing)
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
    logger.info("Secrets import into %s/%s %s: %d lines, %d imported, %s%d invalid lines, %.1f s",
                event.organizer.slug, event.slug, outcome, result.lines, result.imported,
                f"{result.passed_over} passed over, " if skip_existing else "", result.error_count,
                monotonic() - started)
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

    def __init__(self, event, mapping: ColumnMapping, on_error, keep_errors, skip_existing=False):
        self.event, self.mapping, self.on_error, self.keep_errors = event, mapping, on_error, keep_errors
        self.result = ImportResult()
        self.code_format = CodeFormat.of_event(event)  # every chunk is checked against this one
        self.resolver = Resolver(event)
        self.stored = _StoredRows()
        # pool secret ID → the line that passed it over, to find it repeated in a later chunk; a dict: the IDs come in
        # any order, and for 300,000 lines it takes about 30 MB
        self.passed = {} if skip_existing else None
        self.chunk_errors = []
        self.line_label = _("line {number}")
        self.repeated, self.already_imported = str(REPEATED), str(ALREADY_IMPORTED)  # translated once, not per line
        self.column_names = {"secret": pgettext("ticket_secret", "Secret"), "item": _("Product"),
                             "variation": _("Variation"), "subevent": pgettext("subevent", "Date")}
        self.fixed = {name: source.value if source and source.kind == "fixed" else None
                      for name, source in mapping.restrictions()}
        self.from_columns = [(name, source.value) for name, source in mapping.restrictions()
                             if source and source.kind == "column"]
        self.restricted = Counter()  # product → valid lines restricted to it (a variation implies its product)
        self.count_restricted = bool(mapping.item or mapping.variation)
        self.clean_options = {"pass_over": skip_existing}  # what else ``clean_rows`` is told (``copying.store``)

    def read(self, fileobj, fmt, progress) -> ImportResult:
        """Checks and stores every line, inside the caller's transaction."""
        if copying.worth_it(self.event, fileobj, fmt):
            progress = copying.Forward(progress)  # a second reading of the file keeps the bar where it was
            if copying.store(self, fileobj, fmt, progress):
                return self.finish()
            self.reset()
        for chunk in self.chunks(fileobj, fmt, progress):
            self.flush(chunk)
        return self.finish()

    def chunks(self, fileobj, fmt, progress):
        """The file's lines in chunks of ``(line, cells)``, without the header; counts them."""
        chunk = []
        header_skipped = not fmt.has_header
        for line, cells in read_rows(fileobj, fmt, progress=progress):
            if not header_skipped:
                header_skipped = True
                continue
            self.result.lines += 1
            chunk.append((line, cells))
            if len(chunk) >= files.CHUNK_SIZE:  # read through the module: tests shrink it
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def finish(self) -> ImportResult:
        if self.result.lines == 0:
            raise DataImportError(NO_SECRETS)
        self.result.restricted = dict(self.restricted)
        return self.result

    def reset(self):
        """Back to the start, after ``copying.store`` stored nothing."""
        self.result, self.restricted = ImportResult(), Counter()
        self.chunk_errors.clear()
        self.clean_options = {"pass_over": self.passed is not None}

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
        if self.passed is not None:
            valid = self.pass_over(valid)
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
        cells_read, secrets = self.secrets(chunk)
        self.count_trimmed(cells_read, secrets)
        item, variation, subevent = (self.fixed[name] for name in RESTRICTIONS)
        rows = [{"secret": secret, "item": item, "variation": variation, "subevent": subevent} for secret in secrets]
        texts, problems = {}, {}  # per row index, only for rows that have them
        for index, refusal in numbers.refusals(cells_read).items():  # a spreadsheet may have changed the code
            texts[index] = {"secret": rows[index]["secret"]}
            problems[index] = {"secret": refusal}
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

    def secrets(self, chunk):
        """The cells of the chunk's secret column as read, and trimmed."""
        secret_column = self.mapping.secret
        cells_read = [cells[secret_column] if secret_column < len(cells) else "" for _line, cells in chunk]
        return cells_read, trim_secrets(cells_read)

    def count_trimmed(self, cells_read, secrets):
        if sum(map(len, secrets)) != sum(map(len, cells_read)):  # counted one by one only when there is something
            self.result.trimmed += sum(1 for read, secret in zip(cells_read, secrets) if secret and read != secret)

    def check_column(self, chunk):
        """
        The chunk's secrets and their one restriction (cleaned) if every line is valid, as ``check`` finds it but
        without a row per line (``all_clean``), for a file without restriction columns; ``None`` otherwise.
        """
        cells_read, secrets = self.secrets(chunk)
        if numbers.refusals(cells_read):
            return None
        restriction = all_clean(self.event, secrets, self.fixed, self.code_format,
                                self.clean_options.get("restrictions"))
        if restriction is None:
            return None
        self.count_trimmed(cells_read, secrets)
        if self.count_restricted and restriction["item"] is not None:
            self.restricted[restriction["item"]] += len(secrets)
        return secrets, restriction

    def check(self, chunk) -> list:
        """Reports the chunk's invalid lines; returns ``(line, cleaned row)`` of the valid ones."""
        rows, texts, problems = self.rows(chunk)
        lines = [line for line, _cells in chunk]
        cleaned, errors = clean_rows(
            self.event, rows, labels=_Labels(self.line_label, lines), check_pool=False, code_format=self.code_format,
            **self.clean_options,
        )
        if self.count_restricted:
            self.restricted.update(row["item"] for row in cleaned
                                   if row is not None and row["item"] is not None and "known" not in row)
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

    def first_line(self, pk):
        """The line of the file that stored or passed over the pool secret ``pk``, if any."""
        line = self.stored.line_of(pk)
        return self.passed.get(pk) if line is None and self.passed else line

    def report_repeated(self, line, secret, first):
        self.report(line, "secret", secret, self.repeated.format(label=self.line_label.format(number=first)))

    def pass_over(self, valid):
        """Passes over the rows that ``clean_rows`` found in the pool (``known``), counting them; returns the others."""
        fresh = []
        for line, row in valid:
            pk = row.get("known")
            if pk is None:
                fresh.append((line, row))
                continue
            first = self.first_line(pk)
            if first is None:
                self.passed[pk] = line
                self.result.passed_over += 1
            else:  # in an earlier chunk; within the chunk, clean_rows finds a repeat
                self.report_repeated(line, row["secret"], first)
        return fresh

    def report_taken(self, valid, taken):
        """Reports the rows whose secret the pool holds (``taken``: ``{secret: id}``); returns the other rows."""
        free = []
        for line, row in valid:
            pk = taken.get(row["secret"])
            if pk is None:
                free.append((line, row))
                continue
            first = self.first_line(pk)
            if first is None:
                self.report(line, "secret", row["secret"], self.already_imported)
            else:
                self.report_repeated(line, row["secret"], first)
        return free

    def store(self, valid):
        # Valid rows are stored even after an error (and in a dry run), so that later repeats of them in the file
        # are found; the transaction is rolled back at the end in that case.
        ids = pool.insert_rows(self.event, [row for _line, row in valid], skip_existing=True)
        if len(ids) < len(valid):
            skipped = [(line, row) for line, row in valid if row["secret"] not in ids]
            taken = pool.ids_of(self.event.organizer_id, [row["secret"] for _line, row in skipped])
            # 0: taken by another transaction that has deleted it again since; still not stored by this import
            self.report_taken(skipped, {row["secret"]: taken.get(row["secret"], 0) for _line, row in skipped})
            valid = [(line, row) for line, row in valid if row["secret"] in ids]
        self.stored.add([ids[row["secret"]] for _line, row in valid], [line for line, _row in valid])
        self.result.imported += len(ids)
