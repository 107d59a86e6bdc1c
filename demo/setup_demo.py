"""
`make demo` after the database snapshot is restored: bring the database up to date, create the demo data once
(later runs reuse it and only print the access details again), and serve. All in one process, as each start of
pretix costs seconds (several on a busy machine).

Run with PRETIX_CONFIG_FILE pointing at the demo configuration (the Makefile does this); with ``--serve ADDRESS:PORT``
it migrates first and serves after. tests/test_browser.py imports this module and calls ``create_demo_data`` against
the test database.
"""
import os
import sys
from datetime import timedelta
from decimal import Decimal

import django

if __name__ == "__main__":  # an importing test has set Django up already, with its own settings
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_settings")
    django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils.timezone import now  # noqa: E402
from django_scopes import scopes_disabled  # noqa: E402

from pretix.base.models import Event, Organizer, Team, User  # noqa: E402

from pretix_secrets_import.models import ImportedSecret

ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "admin"
BANKTRANSFER = "pretix.plugins.banktransfer"
PLUGINS = f"{BANKTRANSFER},pretix.plugins.ticketoutputpdf,pretix_secrets_import"
# Made-up account details for the bank transfer instructions; the IBAN is a well-known example with a valid checksum.
BANK_DETAILS = {
    "bank_details_type": "sepa",
    "bank_details_sepa_name": "Big Events Inc.",
    "bank_details_sepa_iban": "DE02120300000000202051",
    "bank_details_sepa_bic": "BYLADEM1001",
    "bank_details_sepa_bank": "Demo Bank",
}


def make_event(organizer, slug, name, has_subevents=False):
    event = Event.objects.create(
        organizer=organizer, slug=slug, name=name, currency="EUR", plugins=PLUGINS, live=True,
        date_from=now().replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=60),
        has_subevents=has_subevents,
    )
    event.settings.timezone = "Europe/Berlin"
    event.settings.payment_banktransfer__enabled = True
    for key, value in BANK_DETAILS.items():
        event.settings.set(f"payment_banktransfer_{key}", value)
    # The customer downloads the PDF ticket, with its pool secret in the QR code, right after ordering, without
    # waiting for a bank transfer that never comes in a demo.
    event.settings.ticketoutput_pdf__enabled = True
    event.settings.ticket_download = True
    event.settings.ticket_download_pending = True
    event.checkin_lists.create(name="Entrance", all_products=True)
    return event


def add_secrets(event, prefix, count, **restriction):
    ImportedSecret.objects.bulk_create(
        ImportedSecret(event=event, organizer=event.organizer, secret=f"{prefix}-{i:04d}", **restriction)
        for i in range(1, count + 1)
    )


@transaction.atomic
@scopes_disabled()
def create_demo_data():
    """The demo organizer with its events, pools, admin user and API token; returns the organizer."""
    organizer = Organizer.objects.create(slug="bigevents", name="Big Events Inc.")
    # Bank transfer is an event and organizer plugin: pretix offers it in an event's checkout only if it is enabled
    # for the organizer too.
    organizer.enable_plugin(BANKTRANSFER)
    organizer.save()
    user = User.objects.filter(email=ADMIN_EMAIL).first() or User.objects.create_user(ADMIN_EMAIL, ADMIN_PASSWORD)
    team = Team.objects.create(
        organizer=organizer, name="Administrators", all_events=True,
        all_event_permissions=True, all_organizer_permissions=True,
    )
    team.members.add(user)
    team.tokens.create(name="Demo token")

    conf = make_event(organizer, "sampleconf", "Sample Conference")
    regular = conf.items.create(name="Regular ticket", default_price=Decimal("35.00"), admission=True)
    workshop = conf.items.create(name="Workshop ticket", default_price=Decimal("50.00"), admission=True)
    morning = workshop.variations.create(value="Morning")
    afternoon = workshop.variations.create(value="Afternoon")
    shirt = conf.items.create(name="T-Shirt", default_price=Decimal("15.00"), admission=False)
    for size in ("S", "M", "L"):
        shirt.variations.create(value=size)
    # A quota per kind of ticket and one for the merchandise: the plugin caps a quota's availability at the pool's
    # secrets only where all its products draw from the pool, so a shirt in a ticket quota would keep the tickets
    # on sale in the shop when their pool is empty.
    conf.quotas.create(name="Regular tickets", size=400).items.add(regular)
    for variation, name in ((morning, "Workshop morning"), (afternoon, "Workshop afternoon")):
        quota = conf.quotas.create(name=name, size=30)
        quota.items.add(workshop)
        quota.variations.add(variation)
    merchandise = conf.quotas.create(name="T-Shirts", size=200)
    merchandise.items.add(shirt)
    merchandise.variations.add(*shirt.variations.all())
    add_secrets(conf, "CONF", 10)
    add_secrets(conf, "REG", 5, item=regular)
    add_secrets(conf, "WSM", 3, item=workshop, variation=morning)

    series = make_event(organizer, "series", "Sample Series", has_subevents=True)
    day_pass = series.items.create(name="Day pass", default_price=Decimal("20.00"), admission=True)
    dates = []
    for day in (1, 2):
        subevent = series.subevents.create(
            name=f"Day {day}", active=True, date_from=series.date_from + timedelta(days=day - 1),
        )
        q = series.quotas.create(name=f"Day {day}", size=100, subevent=subevent)
        q.items.add(day_pass)
        dates.append(subevent)
    add_secrets(series, "DAY1", 5, subevent=dates[0])
    add_secrets(series, "SERIES", 5)
    # Its PDF tickets show Code 128 barcodes with the secret below (docs/organizer/barcodes.rst), and its pool takes
    # only the vendor's format of codes.
    series.settings.set("secrets_import_symbology", "code128")
    series.settings.set("secrets_import_barcode_text", True)
    series.settings.set("secrets_import_format", "regex")
    series.settings.set("secrets_import_regex", "(DAY[0-9]+|SERIES)-[0-9]{4}")
    # Only now that the pools are filled, as an organizer should (docs/operator/installation.rst): with an empty pool,
    # sales stop.
    for event in (conf, series):
        event.settings.ticket_secret_generator = "imported_secrets"
    return organizer


def main(serve=None):
    if serve:
        call_command("migrate", interactive=False, verbosity=0)
    with scopes_disabled():
        if not Organizer.objects.filter(slug="bigevents").exists():
            print("creating demo data …", flush=True)
            create_demo_data()
            print("Created the demo organizer 'bigevents' with events 'sampleconf' and 'series'.")
        else:
            print("Reusing the demo data in the existing database.")
        team = Team.objects.get(organizer__slug="bigevents", name="Administrators")
        token = team.tokens.filter(active=True).first() or team.tokens.create(name="Demo token")

    token_file = os.path.join(settings.DATA_DIR, "demo-token")
    with open(token_file, "w") as f:
        f.write(token.token + "\n")

    port = os.environ.get("PORT", "8000")
    base = f"http://127.0.0.1:{port}"
    print(f"""
Shop:    {base}/bigevents/sampleconf/  (pay by bank transfer; emails go to {os.path.relpath(settings.EMAIL_FILE_PATH)}/)
Backend: {base}/control/  (log in as {ADMIN_EMAIL} / {ADMIN_PASSWORD})
API token (also in {os.path.relpath(token_file)}): {token.token}
  curl -H "Authorization: Token {token.token}" {base}/api/v1/organizers/bigevents/events/sampleconf/imported_secrets/
""", flush=True)
    if serve:
        print(f"serving at {base}/bigevents/sampleconf/ (Ctrl-C stops the server) …", flush=True)
        # migrate has checked the project already
        call_command("runserver", serve, use_reloader=False, skip_checks=True)


if __name__ == "__main__":
    main(serve=sys.argv[2] if sys.argv[1:2] == ["--serve"] else None)
