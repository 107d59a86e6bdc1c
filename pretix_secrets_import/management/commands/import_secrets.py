import sys

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scope

from pretix.base.models import Event, Organizer

from ...importer import (
    DataImportError, Mapping, Resolver, column_index, import_file, preview,
    sniff,
)


class Command(BaseCommand):
    help = (
        "Import a CSV or XLSX file of ticket secrets into an event's pool. Either every line is imported, or, if any "
        "line is invalid, nothing: every invalid line is then listed and the command exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("organizer", help="organizer short form (slug)")
        parser.add_argument("event", help="event short form (slug)")
        parser.add_argument("file", help="CSV or XLSX file")
        parser.add_argument("--secret-column", default="1",
                            help="column holding the secrets: number (from 1) or header name; default 1")
        for name, what in (("item", "product"), ("variation", "variation"), ("subevent", "date")):
            group = parser.add_mutually_exclusive_group()
            group.add_argument(f"--{name}", metavar="ID_OR_NAME",
                               help=f"restrict every secret of the file to this {what}")
            group.add_argument(f"--{name}-column", metavar="COLUMN",
                               help=f"column holding each secret's {what} (ID or name)")
        parser.add_argument("--encoding", help="character encoding of a CSV file; detected if omitted")
        parser.add_argument("--delimiter", help="column delimiter of a CSV file; detected if omitted")
        header = parser.add_mutually_exclusive_group()
        header.add_argument("--header", dest="header", action="store_true", default=None,
                            help="the first line holds column names")
        header.add_argument("--no-header", dest="header", action="store_false",
                            help="the first line holds a secret")
        parser.add_argument("--dry-run", action="store_true", help="check the file, import nothing")

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
            if "pretix_secrets_import" not in event.get_plugins():
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
        if options["header"] is not None:
            fmt.has_header = options["header"]
        header = preview(f, fmt, lines=0)[0] if fmt.has_header else None

        resolver = Resolver(event)
        mapping = Mapping(secret=column_index(options["secret_column"], header))
        for name in ("item", "variation", "subevent"):
            if options[f"{name}_column"]:
                setattr(mapping, name, ("column", column_index(options[f"{name}_column"], header)))
            elif options[name]:
                fixed_item = mapping.item[1] if mapping.item and mapping.item[0] == "fixed" else None
                try:
                    if name == "variation":
                        fixed = resolver.variation(options[name], fixed_item)
                    else:
                        fixed = getattr(resolver, name)(options[name])
                except ValueError as e:
                    raise CommandError(str(e))
                setattr(mapping, name, ("fixed", fixed))

        def print_error(error):
            self.stderr.write(f"line {error.line}: {error.column} \"{error.value}\": {error.message}")

        result = import_file(event, f, fmt, mapping, on_error=print_error, keep_errors=0,
                             dry_run=options["dry_run"], filename=options["file"])
        if result.error_count:
            self.stderr.write(self.style.ERROR(
                f"{result.error_count} error(s) in {result.lines} line(s); nothing was imported."))
            sys.exit(1)
        if options["dry_run"]:
            self.stdout.write(f"All {result.lines} line(s) are valid; nothing was imported (dry run).")
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported {result.imported} secret(s)."))
