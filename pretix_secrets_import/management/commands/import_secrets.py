import sys

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scope

from pretix.base.modelimport import DataImportError
from pretix.base.models import Event, Organizer

from pretix_secrets_import.importing.columns import (
    Source, column_index, guess_mapping,
)
from pretix_secrets_import.importing.files import (
    detect_header, read_rows, sniff,
)
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.importing.resolver import Resolver
from pretix_secrets_import.plugin import enabled_for
from pretix_secrets_import.pool.rules import RESTRICTIONS


class Command(BaseCommand):
    help = (
        "Import a CSV or XLSX file of ticket secrets into an event's pool. Either every line is imported, or, if any "
        "line is invalid, nothing: every invalid line is then listed and the command exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("organizer", help="organizer short form (slug)")
        parser.add_argument("event", help="event short form (slug)")
        parser.add_argument("file", help="CSV or XLSX file")
        parser.add_argument("--secret-column",
                            help="column holding the secrets: number (from 1) or header name; default: the column "
                                 "whose header names it (secret, code, barcode, ...), else 1")
        for name, what in (("item", "product"), ("variation", "variation"), ("subevent", "date")):
            group = parser.add_mutually_exclusive_group()
            group.add_argument(f"--{name}", metavar="ID_OR_NAME",
                               help=f"restrict every secret of the file to this {what}")
            group.add_argument(f"--{name}-column", metavar="COLUMN",
                               help=f"column holding each secret's {what} (ID or name); default: the column "
                                    f"whose header says {name if name != 'item' else 'product'}, if any")
        parser.add_argument("--encoding", help="character encoding of a CSV file; detected if omitted")
        parser.add_argument("--delimiter", help="column delimiter of a CSV file; detected if omitted")
        header = parser.add_mutually_exclusive_group()
        header.add_argument("--header", dest="header", action="store_true", default=None,
                            help="the first line holds column names")
        header.add_argument("--no-header", dest="header", action="store_false",
                            help="the first line holds a secret")
        parser.add_argument("--dry-run", action="store_true", help="check the file, import nothing")
        parser.add_argument("--skip-existing", action="store_true",
                            help="pass over the secrets that the event's pool holds with the same product, variation "
                                 "and date (a list imported before, grown since), and count them")

    def handle(self, *args, **options):
        try:
            organizer = Organizer.objects.get(slug=options["organizer"])
        except Organizer.DoesNotExist:
            raise CommandError("Organizer not found.")
        with scope(organizer=organizer):
            try:
                event = organizer.events.get(slug=options["event"])
            except Event.DoesNotExist:
                raise CommandError("Event not found.")
            if not enabled_for(event):
                raise CommandError("The Secrets Import plugin is not enabled for this event.")
            try:
                with open(options["file"], "rb") as f:
                    self._import(event, f, options)
            except OSError as e:
                raise CommandError(str(e))
            except DataImportError as e:
                raise CommandError(str(e))

    def _import(self, event, f, options):
        fmt = sniff(f, options["file"])
        if options["encoding"]:
            fmt.encoding = options["encoding"]
        if options["delimiter"]:
            fmt.delimiter = options["delimiter"].replace("\\t", "\t")
            if len(fmt.delimiter) != 1:
                raise CommandError("The delimiter must be a single character (\\t for tab).")
        # detected again: sniff() compared the lines as split with its own guess of the encoding and delimiter
        detected = detect_header(f, fmt)
        fmt.has_header = detected if options["header"] is None else options["header"]
        first = next(read_rows(f, fmt), (None, []))[1]
        first_line = ", ".join(f'"{cell}"' for cell in first)
        if detected and not fmt.has_header:
            self.stderr.write(f"Warning: the first line ({first_line}) looks like column names, but --no-header "
                              f"imports it as a secret.", style_func=self.style.WARNING)
        elif fmt.has_header and options["header"] is None:
            self.stdout.write(f"The first line is read as column names: {first_line} (--no-header imports it as a "
                              f"secret).")
        header = first if fmt.has_header else None
        mapping = self._mapping(event, header, options)

        def print_error(error):
            self.stderr.write(f"line {error.line}: {error.column} \"{error.value}\": {error.message}")

        result = import_file(event, f, fmt, mapping, on_error=print_error, keep_errors=0,
                             dry_run=options["dry_run"], skip_existing=options["skip_existing"],
                             filename=options["file"])
        for warning in result.warnings:
            self.stderr.write(f"Warning: {warning}", style_func=self.style.WARNING)
        if result.error_count:
            self.stderr.write(self.style.ERROR(
                f"{result.error_count} error(s) in {result.lines} line(s); nothing was imported."))
            sys.exit(1)
        if options["dry_run"]:
            self.stdout.write(f"All {result.lines} line(s) are valid; nothing was imported (dry run).")
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported {result.imported} secret(s)."))
        if options["skip_existing"] and options["dry_run"]:
            self.stdout.write(f"{result.passed_over} secret(s) are in the pool already and would be passed over.")
        elif options["skip_existing"]:
            self.stdout.write(f"Passed over {result.passed_over} secret(s) that were in the pool already.")

    @staticmethod
    def _mapping(event, header, options):
        """The columns and fixed values the options choose; what they leave open is guessed from the header."""
        mapping = guess_mapping(header, event.has_subevents)
        if options["secret_column"]:
            mapping.secret = column_index(options["secret_column"], header)
        resolver = Resolver(event)
        for name in RESTRICTIONS:
            if options[f"{name}_column"]:
                setattr(mapping, name, Source.column(column_index(options[f"{name}_column"], header)))
            elif options[name]:
                item = mapping.item.value if mapping.item and mapping.item.kind == "fixed" else None
                try:
                    setattr(mapping, name, Source.fixed(resolver.resolve(name, options[name], item)))
                except ValueError as e:
                    raise CommandError(str(e))
        return mapping
