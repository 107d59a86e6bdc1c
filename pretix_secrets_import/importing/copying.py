"""
A large file import on PostgreSQL, stored with one streamed ``COPY`` (``pool.copy_rows``) instead of the chunked
``INSERT ... RETURNING`` statements: it costs the database a third less, and the file's next chunk is read and checked
while the database stores the last one, so that an import takes about as long as PostgreSQL's own ``COPY`` of its rows.

It only works for a file that is imported as it is: every line valid, no secret that the organizer's pool holds
(``skip_existing`` has nothing to pass over), none on a ticket. Anything else is found by the database (the unique
index fails the ``COPY``, ``pool.on_tickets_after`` looks for tickets) or by the checks of the chunks, without the
line; then the ``COPY`` is rolled back to its savepoint, and the chunked import reads the file again and says which
lines are wrong, passes over what is to be passed over, and stores the others.
"""
import itertools
import logging

from django.db import (
    IntegrityError, OperationalError, connections, router, transaction,
)

from pretix_secrets_import.importing import files
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import rules, store as pool

logger = logging.getLogger(__name__)

# Smaller files go through the chunked import directly: they take seconds either way, and are more often the ones
# with mistakes, which the chunked import would read a second time.
COPY_FROM_LINES = 50_000

# The share of the import's time that has passed when the COPY has been sent the whole file: the database is still
# storing the last rows then, and checks the foreign keys of all of them at the commit. The progress shows reading
# within it.
READ_SHARE = 0.7


class _Chunked(Exception):
    """The file needs the chunked import."""


def worth_it(event, fileobj, fmt) -> bool:
    """Whether to try ``store`` on this file: on PostgreSQL, for a file of ``COPY_FROM_LINES`` lines or more."""
    if connections[router.db_for_write(ImportedSecret)].vendor != "postgresql":
        return False
    return files.count_lines(fileobj, fmt) >= COPY_FROM_LINES


class Forward:
    """A progress callback that never goes back: the chunked import reads the file again from its start."""

    def __init__(self, progress):
        self.progress, self.done = progress, 0.0

    def __call__(self, fraction):
        if fraction > self.done:
            self.done = fraction
            if self.progress:
                self.progress(fraction)


def store(run, fileobj, fmt, progress) -> bool:
    """
    Check and store every line of the file for ``run`` (the import's ``_FileImport``) with one ``COPY``, inside a
    savepoint; ``False``, with nothing stored, if the file needs the chunked import.
    """
    # Nothing may read the database while the COPY streams on its connection: the restrictions are read up front,
    # the tickets are looked up set-based afterwards, and a secret in the pool fails the COPY.
    run.clean_options = {"check_tickets": False, "restrictions": _restrictions(run)}
    after = pool.last_id()
    rows = _ValidRows(run, fileobj, fmt, progress)
    chunks = iter(rows)
    try:
        first = next(chunks, None)
        # A file imported again, or a grown list to pass over, has secrets of the pool from its start: one look at the
        # first chunk spares sending all of it for the unique index to fail the COPY at the end.
        if first is not None and pool.ids_of(run.event.organizer_id, first[0]):
            raise _Chunked("a secret in the pool")
        with transaction.atomic():
            stored = pool.copy_rows(run.event, itertools.chain([first] if first else [], chunks))
            if stored and pool.on_tickets_after(run.event, after, stored):
                raise _Chunked("a secret on a ticket")
    except (_Chunked, IntegrityError, OperationalError) as e:
        # psycopg2 ends the COPY with an error of its own when reading the rows raised one (an invalid line, a file
        # that cannot be read, the task's time limit): that one counts
        reason = rows.error or e
        if not isinstance(reason, (_Chunked, IntegrityError)):
            raise reason
        logger.info("Secrets import into %s/%s goes on chunk by chunk, to find the lines in question: %s",
                    run.event.organizer.slug, run.event.slug,
                    reason if isinstance(reason, _Chunked) else type(reason).__name__)
        return False
    finally:
        chunks.close()  # the file's reader lets go of it now, before the chunked import reads it again
    run.result.imported = stored
    return True


class _ValidRows:
    """
    Each chunk's secrets and restrictions, as ``pool.copy_rows`` takes them, checked as the chunked import checks
    them except for the database's checks.
    """

    def __init__(self, run, fileobj, fmt, progress):
        self.run, self.fileobj, self.fmt, self.progress = run, fileobj, fmt, progress
        self.error = None  # what ended the reading

    def reading(self, done):
        self.progress(done * READ_SHARE)

    def __iter__(self):
        try:
            yield from self.chunks()
        except Exception as e:
            self.error = e
            raise

    def chunks(self):
        for chunk in self.run.chunks(self.fileobj, self.fmt, self.reading):
            column = None if self.run.from_columns else self.run.check_column(chunk)
            if column is not None:
                yield column
                continue
            valid = self.run.check(chunk)  # what is wrong, or the rows of the restriction columns
            if self.run.chunk_errors:
                raise _Chunked("an invalid line")
            yield [row["secret"] for _line, row in valid], [row for _line, row in valid]


def _restrictions(run):
    """What ``clean_rows`` needs to check every line's product, variation and date without reading the database."""
    rows = [run.fixed]
    if run.from_columns:
        rows += run.resolver.as_rows()
    return rules.Restrictions(run.event, rows)
