"""
The benchmark's file import scenarios: the importer against a raw insert and the management command, a file whose
secrets are all in the pool already, and a code format's cost on the import and on a format change.
"""
import csv
import os
import time

from harness import ORGA, Harness, interleaved, median
from stack import log


class ImportScenarios(Harness):
    """import-time, import-copy, import-time command, import-rss, import-duplicates, import-format, format-change."""

    def bench_import(self):
        from django.db import connection, transaction
        from django_scopes import scopes_disabled

        from pretix_secrets_import.importing.columns import ColumnMapping
        from pretix_secrets_import.importing.files import FileFormat
        from pretix_secrets_import.importing.pipeline import import_file
        from pretix_secrets_import.models import ImportedSecret
        lines = self.p["import_lines"]
        tmp = os.path.join(self.datadir, "import")
        os.makedirs(tmp, exist_ok=True)
        noop_s, noop_rss, _ = self.pretix.command("noop")
        self.context["noop_s"], self.context["noop_rss_mb"] = noop_s, noop_rss
        log(f"python -m pretix noop: {noop_s:.1f} s, peak RSS {noop_rss} MB")
        times = {"raw": [], "importer": [], "command": []}
        rss = []
        for rep in range(self.p["import_reps"]):
            kinds = ["raw", "importer", "command"]
            for kind in kinds[rep % 3:] + kinds[:rep % 3]:  # each kind goes first in turn
                event = self.make_event(f"import-{kind}-{rep}", "imported_secrets")
                path = os.path.join(tmp, f"{kind}-{rep}.csv")
                with open(path, "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerows([f"I{rep}{kind[0].upper()}-{i:08d}"] for i in range(lines))
                connection.close()
                t = time.perf_counter()
                if kind == "raw":
                    with open(path, newline="") as f, transaction.atomic():
                        self.raw_insert(event, (row[0].strip() for row in csv.reader(f)))
                elif kind == "importer":
                    with open(path, "rb") as f, scopes_disabled():
                        result = import_file(event, f, FileFormat(), ColumnMapping(secret=0))
                    if result.error_count:
                        raise RuntimeError(f"import_file reported {result.error_count} errors: {result.errors[:3]}")
                else:
                    _elapsed, peak, out = self.pretix.command("import_secrets", ORGA, event.slug, path,
                                                              "--no-header")
                    rss.append(peak)
                times[kind].append(time.perf_counter() - t)
                log(f"{kind} import of {lines} lines: {times[kind][-1]:.1f} s"
                    + (f", peak RSS {peak:.0f} MB: {out.strip()}" if kind == "command" else ""))
                with scopes_disabled():
                    stored = ImportedSecret.objects.filter(event=event).count()
                if stored != lines:
                    raise RuntimeError(f"{kind}: {stored} rows stored, expected {lines}")
                os.unlink(path)
        a, b, c = (median(times[k]) for k in ("raw", "importer", "command"))
        self.add("import-time", a, b, b / a, dict(lines=lines, times=times))
        if self.db == "postgresql":  # the same measurements: the raw insert is a COPY there
            self.add("import-copy", a, b, b / a, dict(lines=lines, times=times))
        else:
            self.skip("import-copy", "COPY is PostgreSQL's; the raw insert here is executemany")
        self.add("import-time command", a, c, c / a, dict(
            lines=lines, times=times, noop_s=noop_s, ratio_without_startup=(c - noop_s) / a,
            note="wall time of the `python -m pretix import_secrets` process, pretix' start-up included",
        ))
        peak = max(rss) if all(rss) else float("nan")
        self.add("import-rss", 300.0, peak, peak, dict(peak_rss_mb=rss, noop_rss_mb=noop_rss))

    def bench_duplicates(self):
        """Importing a file, then the same file again: every line already imported, so all of it is refused."""
        from django.db import connection
        from django_scopes import scopes_disabled

        from pretix_secrets_import.importing.columns import ColumnMapping
        from pretix_secrets_import.importing.files import FileFormat
        from pretix_secrets_import.importing.pipeline import import_file
        lines = self.p["import_lines"]
        path = os.path.join(self.datadir, "duplicates.csv")
        times = {"new": [], "again": []}
        for rep in range(self.p["import_reps"]):
            event = self.make_event(f"duplicates-{rep}", "imported_secrets")
            with open(path, "w") as f:
                f.writelines(f"D{rep}-{i:08d}\n" for i in range(lines))
            for kind in ("new", "again"):  # the second import needs the first one's secrets in the pool
                connection.close()
                t = time.perf_counter()
                with open(path, "rb") as f, scopes_disabled():
                    result = import_file(event, f, FileFormat(), ColumnMapping(secret=0), keep_errors=0)
                times[kind].append(time.perf_counter() - t)
                expected = (lines, 0) if kind == "new" else (0, lines)
                if (result.imported, result.error_count) != expected:
                    raise RuntimeError(f"{kind}: imported {result.imported}, {result.error_count} errors")
                log(f"import of {lines} lines, {kind}: {times[kind][-1]:.1f} s")
        os.unlink(path)
        a, b = median(times["new"]), median(times["again"])
        self.add("import-duplicates", a, b, b / a, dict(lines=lines, times=times))

    def bench_format(self):
        """
        A file import into an event with a code format (a regular expression, a length and Code 128 on the tickets)
        against one without; then the check of that whole pool when the format changes and all of it still fits.
        """
        from django.db import connection
        from django_scopes import scopes_disabled

        from pretix_secrets_import.importing.columns import ColumnMapping
        from pretix_secrets_import.importing.files import FileFormat
        from pretix_secrets_import.importing.pipeline import import_file
        from pretix_secrets_import.pool import codeformat, format_change
        from pretix_secrets_import.tickets import barcodes
        lines = self.p["import_lines"]
        path = os.path.join(self.datadir, "format.csv")
        rule = {codeformat.FORMAT: codeformat.PATTERN, codeformat.REGEX: "F[0-9]+[ab]-[0-9]{8}",
                codeformat.LENGTH_MAX: 20, barcodes.SETTING: "code128"}
        times = {"free": [], "format": []}
        for rep, pair in interleaved(self.p["import_reps"], "free", "format"):
            for kind in pair:
                event = self.make_event(f"format-{kind}-{rep}", "imported_secrets")
                if kind == "format":
                    for key, value in rule.items():
                        event.settings.set(key, value)
                    checked = event
                with open(path, "w") as f:
                    f.writelines(f"F{rep}{'ab'[kind == 'format']}-{i:08d}\n" for i in range(lines))
                connection.close()
                t = time.perf_counter()
                with open(path, "rb") as f, scopes_disabled():
                    result = import_file(event, f, FileFormat(), ColumnMapping(secret=0), keep_errors=3)
                times[kind].append(time.perf_counter() - t)
                if (result.imported, result.error_count) != (lines, 0):
                    raise RuntimeError(f"{kind}: imported {result.imported}, errors {result.errors}")
                log(f"import of {lines} lines, {kind}: {times[kind][-1]:.1f} s")
        os.unlink(path)
        a, b = median(times["free"]), median(times["format"])
        self.add("import-format", a, b, b / a, dict(lines=lines, times=times, rule=rule))
        connection.close()
        t = time.perf_counter()
        format_change.check_change(checked, {**checked.settings.freeze(), codeformat.LENGTH_MIN: 10})
        change = time.perf_counter() - t
        log(f"format change checked against {lines} unused secrets: {change:.1f} s")
        self.add("format-change", 10.0, change, change, dict(unused_secrets=lines),
                 labels=("limit", f"check of {lines} unused secrets"))
