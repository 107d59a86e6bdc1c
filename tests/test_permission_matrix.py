"""
Who may do what with the pool, as one table: every REST endpoint, the plugin's fields in pretix' event settings API,
every backend page, the export (backend and exporter API) and the dashboard widget, against every kind of credential
pretix knows. Each cell is the exact answer pretix gives; a denied answer never contains a secret, and a denied write
changes nothing. Below the table: secrets never reach the log, notifications or error messages.

Cells: a status code means "allowed, with this status"; ``L`` is pretix' redirect to the backend login (the backend
ignores API credentials); a status with ``-`` is pretix' answer for a denied request that is not an error status
(the export is not offered, the widget is not shown, the export page is shown again instead of the file).
"""
import io
import json
from dataclasses import asdict, dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Callable, Optional

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix.api.auth.devicesecurity import get_all_security_profiles
from pretix.api.models import OAuthAccessToken
from pretix.base.models import (
    CachedFile, Device, Event, LogEntry, Organizer, User,
)

from pretix_secrets_import.control.views.imports import (
    SESSION_SALT, UPLOAD_TYPE,
)
from pretix_secrets_import.importing.columns import ColumnMapping
from pretix_secrets_import.importing.files import FileFormat
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.importing.tasks import import_secrets
from pretix_secrets_import.models import ImportedSecret
from tests.helpers import (
    add_secret, add_ticket, device_client_for, make_event, make_team,
    oauth_client_for, token_client_for, url,
)

# Who may do what is decided by pretix' authentication and permission code above the ORM, the same on every database:
# the table runs once per .ci/run, on SQLite (make test), not again in make test-pg.
pytestmark = [pytest.mark.django_db, pytest.mark.db_independent]

SETTINGS_PERMISSIONS = ["event.settings.general:write", "event.settings.payment:write", "event.settings.tax:write",
                        "event.settings.invoicing:write"]
POOL = {"free1": "PM-FREE-1", "free2": "PM-FREE-2", "item1": "PM-ITEM-1", "used1": "PM-USED-1"}
EVENT2_SECRET, FOREIGN_SECRET = "PM-EVENT2-1", "PM-FOREIGN-1"  # must never show up in answers about the event
UPLOADED = ["PM-IMP-1", "PM-IMP-2"]  # the content of an uploaded file is as secret as the pool
WRITTEN = ["PM-NEW-1", "PM-PUT-1", "PM-BULK-1", "PM-BULK-2", "PM-ADD-1"]
SECRETS = list(POOL.values()) + UPLOADED + WRITTEN
PROFILES = sorted(get_all_security_profiles())


# --- the table ------------------------------------------------------------------------------------------------------

API_POOL = """
credential                         list   get    create put    patch  delete bulk   summary
anonymous                          401    401    401    401    401    401    401    401
token_invalid                      401    401    401    401    401    401    401    401
token_inactive                     401    401    401    401    401    401    401    401
token_no_permission                403    403    403    403    403    403    403    403
token_checkin                      403    403    403    403    403    403    403    403
token_orders_read                  200    200    403    403    403    403    403    200
token_orders_read_write            200    200    201    200    200    204    201    200
token_settings                     403    403    403    403    403    403    403    403
token_vouchers_items               403    403    403    403    403    403    403    403
token_all                          200    200    201    200    200    204    201    200
token_this_event                   200    200    201    200    200    204    201    200
token_other_event                  403    403    403    403    403    403    403    403
token_other_organizer              403    403    403    403    403    403    403    403
device:full                        200    200    201    200    200    204    201    200
device:pretixscan                  403    403    403    403    403    403    403    403
device:pretixscan_online_kiosk     403    403    403    403    403    403    403    403
device:pretixscan_online_noorders  403    403    403    403    403    403    403    403
device_other_organizer             403    403    403    403    403    403    403    403
device_revoked                     401    401    401    401    401    401    401    401
oauth_read                         200    200    403    403    403    403    403    200
oauth_write                        403    403    201    200    200    204    201    403
oauth_read_write                   200    200    201    200    200    204    201    200
oauth_orders_read                  200    200    403    403    403    403    403    200
oauth_other_organizer              403    403    403    403    403    403    403    403
oauth_no_team                      403    403    403    403    403    403    403    403
oauth_expired                      401    401    401    401    401    401    401    401
user_all                           200    200    201    200    200    204    201    200
user_orders_read                   200    200    403    403    403    403    403    200
user_settings                      403    403    403    403    403    403    403    403
user_other_event                   403    403    403    403    403    403    403    403
user_no_team                       403    403    403    403    403    403    403    403
user_all_without_csrf_token        200    200    403    403    403    403    403    200
"""

# settings/: pretix lets everyone with access to the event read the event settings ("View: API only" in the team
# form, and on pretixSCAN's allowlist), the plugin's fields included; none of them holds a secret.
API_OTHER = """
credential                         s.get  s.patch x.list x.run  x.other
anonymous                          401    401     401    401    401
token_invalid                      401    401     401    401    401
token_inactive                     401    401     401    401    401
token_no_permission                200    403     200-   404    410
token_checkin                      200    403     200-   404    410
token_orders_read                  200    403     200    202    410
token_orders_read_write            200    403     200    202    410
token_settings                     200    200     200-   404    410
token_vouchers_items               200    403     200-   404    410
token_all                          200    200     200    202    410
token_this_event                   200    200     200    202    410
token_other_event                  403    403     403    403    403
token_other_organizer              403    403     403    403    403
device:full                        200    403     200    202    410
device:pretixscan                  200    403     403    403    403
device:pretixscan_online_kiosk     200    403     403    403    403
device:pretixscan_online_noorders  200    403     403    403    403
device_other_organizer             403    403     403    403    403
device_revoked                     401    401     401    401    401
oauth_read                         200    403     200    403    410
oauth_write                        403    200     403    202    403
oauth_read_write                   200    200     200    202    410
oauth_orders_read                  200    403     200    202    410
oauth_other_organizer              403    403     403    403    403
oauth_no_team                      403    403     403    403    403
oauth_expired                      401    401     401    401    401
user_all                           200    200     200    202    410
user_orders_read                   200    403     200    202    410
user_settings                      200    200     200-   404    410
user_other_event                   403    403     403    403    403
user_no_team                       403    403     403    403    403
user_all_without_csrf_token        200    403     200    403    410
"""

BACKEND = """
credential                         c.exp  c.exp+ c.dash set    set+   pool   add    add+   del+   unus   unus+
anonymous                          L      L      L      L      L      L      L      L      L      L      L
token_invalid                      L      L      L      L      L      L      L      L      L      L      L
token_inactive                     L      L      L      L      L      L      L      L      L      L      L
token_no_permission                L      L      L      L      L      L      L      L      L      L      L
token_checkin                      L      L      L      L      L      L      L      L      L      L      L
token_orders_read                  L      L      L      L      L      L      L      L      L      L      L
token_orders_read_write            L      L      L      L      L      L      L      L      L      L      L
token_settings                     L      L      L      L      L      L      L      L      L      L      L
token_vouchers_items               L      L      L      L      L      L      L      L      L      L      L
token_all                          L      L      L      L      L      L      L      L      L      L      L
token_this_event                   L      L      L      L      L      L      L      L      L      L      L
token_other_event                  L      L      L      L      L      L      L      L      L      L      L
token_other_organizer              L      L      L      L      L      L      L      L      L      L      L
device:full                        L      L      L      L      L      L      L      L      L      L      L
device:pretixscan                  L      L      L      L      L      L      L      L      L      L      L
device:pretixscan_online_kiosk     L      L      L      L      L      L      L      L      L      L      L
device:pretixscan_online_noorders  L      L      L      L      L      L      L      L      L      L      L
device_other_organizer             L      L      L      L      L      L      L      L      L      L      L
device_revoked                     L      L      L      L      L      L      L      L      L      L      L
oauth_read                         L      L      L      L      L      L      L      L      L      L      L
oauth_write                        L      L      L      L      L      L      L      L      L      L      L
oauth_read_write                   L      L      L      L      L      L      L      L      L      L      L
oauth_orders_read                  L      L      L      L      L      L      L      L      L      L      L
oauth_other_organizer              L      L      L      L      L      L      L      L      L      L      L
oauth_no_team                      L      L      L      L      L      L      L      L      L      L      L
oauth_expired                      L      L      L      L      L      L      L      L      L      L      L
user_all                           200    302    200    200    302    200    200    302    302    200    302
user_orders_read                   200    302    200    403    403    200    403    403    403    403    403
user_settings                      200-   302-   200-   200    302    403    403    403    403    403    403
user_other_event                   404    404    404    404    404    404    404    404    404    404    404
user_no_team                       404    404    404    404    404    404    404    404    404    404    404
user_all_without_csrf_token        200    403    200    200    403    200    200    403    403    200    403
"""

BACKEND_IMPORT = """
credential                         imp    imp+   proc   proc+  rep    rep.csv
anonymous                          L      L      L      L      L      L
token_invalid                      L      L      L      L      L      L
token_inactive                     L      L      L      L      L      L
token_no_permission                L      L      L      L      L      L
token_checkin                      L      L      L      L      L      L
token_orders_read                  L      L      L      L      L      L
token_orders_read_write            L      L      L      L      L      L
token_settings                     L      L      L      L      L      L
token_vouchers_items               L      L      L      L      L      L
token_all                          L      L      L      L      L      L
token_this_event                   L      L      L      L      L      L
token_other_event                  L      L      L      L      L      L
token_other_organizer              L      L      L      L      L      L
device:full                        L      L      L      L      L      L
device:pretixscan                  L      L      L      L      L      L
device:pretixscan_online_kiosk     L      L      L      L      L      L
device:pretixscan_online_noorders  L      L      L      L      L      L
device_other_organizer             L      L      L      L      L      L
device_revoked                     L      L      L      L      L      L
oauth_read                         L      L      L      L      L      L
oauth_write                        L      L      L      L      L      L
oauth_read_write                   L      L      L      L      L      L
oauth_orders_read                  L      L      L      L      L      L
oauth_other_organizer              L      L      L      L      L      L
oauth_no_team                      L      L      L      L      L      L
oauth_expired                      L      L      L      L      L      L
user_all                           200    302    200    302    200    200
user_orders_read                   403    403    403    403    403    403
user_settings                      403    403    403    403    403    403
user_other_event                   404    404    404    404    404    404
user_no_team                       404    404    404    404    404    404
user_all_without_csrf_token        200    403    200    403    200    200
"""


def parse(*tables):
    cells = {}
    for table in tables:
        header, *rows = [line.split() for line in table.strip().splitlines()]
        for row in rows:
            assert len(row) == len(header), row
            for target, cell in zip(header[1:], row[1:]):
                cells[target, row[0]] = cell
    return cells


EXPECTED = parse(API_POOL, API_OTHER, BACKEND, BACKEND_IMPORT)


# --- the world every credential is tried on --------------------------------------------------------------------------

def build_world(monkeypatch):
    # The export task closes the connection after a long export, which would end the test's transaction.
    monkeypatch.setattr("pretix.base.services.export.close_old_connections", lambda: None)
    w = SimpleNamespace()
    with scopes_disabled():
        w.organizer = Organizer.objects.create(name="Big Events", slug="bigevents")
        w.other_organizer = Organizer.objects.create(name="Other Org", slug="otherorg")
        w.event = make_event(w.organizer, "sampleconf")
        w.event2 = make_event(w.organizer, "otherconf")
        w.foreign_event = make_event(w.other_organizer, "foreign")
        w.item = w.event.items.create(name="Ticket", default_price=10, admission=True)
        w.admin = User.objects.create_user("admin@example.org", "dummy")
        make_team(w.organizer).members.add(w.admin)
    add_secret(w.event2, EVENT2_SECRET)
    add_secret(w.foreign_event, FOREIGN_SECRET)
    # An export file of someone else: nobody else may download it, whatever their rights.
    reset(w)
    resp = token_client_for(make_team(w.organizer)).post(
        exporters_url(w) + "imported_secrets/run/", {"_format": "default"}, format="json")
    assert resp.status_code == 202
    w.foreign_download = resp.data["download"]
    return w


def reset(w):
    """The pool and settings every target starts from."""
    with scopes_disabled():
        ImportedSecret.objects.filter(event=w.event).delete()
    w.pool = {
        "free1": add_secret(w.event, POOL["free1"]),
        "free2": add_secret(w.event, POOL["free2"]),
        "item1": add_secret(w.event, POOL["item1"], item=w.item),
        "used1": add_secret(w.event, POOL["used1"], used=True, used_at=now()),
    }
    with scopes_disabled():
        settings = Event.objects.get(pk=w.event.pk).settings
        settings.ticket_secret_generator = "imported_secrets"
        settings.secrets_import_low_threshold = 5  # the 2 unrestricted unused secrets are below it: dashboard warning
        settings.secrets_import_when_empty = "refuse"


def state(w):
    """Everything a write could change: the organizers' pools, the event's settings, files."""
    with scopes_disabled():
        pool = sorted(ImportedSecret.objects.values_list("event_id", "secret", "used", "item_id"))
        settings = Event.objects.get(pk=w.event.pk).settings
        return (pool, settings.ticket_secret_generator, settings.secrets_import_low_threshold,
                settings.secrets_import_when_empty, CachedFile.objects.count())


# --- credentials -----------------------------------------------------------------------------------------------------

def _user(w, name, team=None):
    with scopes_disabled():
        user = User.objects.create_user(f"{name}@example.org", "dummy")
        if team is not None:
            team.members.add(user)
    return user


def _session(user, csrf=False):
    client = Client(enforce_csrf_checks=csrf)
    assert client.login(email=user.email, password="dummy")
    return client


def _header(value):
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = value
    return client


def _inactive_token(w):
    team = make_team(w.organizer)
    client = token_client_for(team)
    with scopes_disabled():
        team.tokens.update(active=False)
    return client


def _device(organizer, profile="full", revoked=False):
    client = device_client_for(organizer, profile)
    if revoked:
        with scopes_disabled():
            Device.objects.filter(organizer=organizer).update(revoked=True)
    return client


def _oauth(w, scope, organizer=None, expired=False, team=True, permissions=None):
    """An OAuth token of a member of a team with ``permissions`` (all by default), or of a user without a team."""
    user = _user(w, f"oauth-{scope.replace(' ', '-')}-{expired}-{organizer is not None}",
                 make_team(w.organizer, permissions) if team else None)
    client = oauth_client_for(user, [organizer or w.organizer], scope)
    if expired:
        with scopes_disabled():
            OAuthAccessToken.objects.filter(user=user).update(expires=now() - timedelta(minutes=1))
    return client


CREDENTIALS = {
    "anonymous": lambda w: Client(),
    "token_invalid": lambda w: _header("Token doesnotexist"),
    "token_inactive": _inactive_token,
    "token_no_permission": lambda w: token_client_for(make_team(w.organizer, [])),
    "token_checkin": lambda w: token_client_for(make_team(w.organizer, ["event.orders:checkin"])),
    "token_orders_read": lambda w: token_client_for(make_team(w.organizer, ["event.orders:read"])),
    "token_orders_read_write": lambda w: token_client_for(
        make_team(w.organizer, ["event.orders:read", "event.orders:write"])),
    "token_settings": lambda w: token_client_for(make_team(w.organizer, SETTINGS_PERMISSIONS)),
    # vouchers are the closest thing pretix has to a pool of codes, yet their permissions do not reach the pool
    "token_vouchers_items": lambda w: token_client_for(
        make_team(w.organizer, ["event.vouchers:read", "event.vouchers:write", "event.items:write"])),
    "token_all": lambda w: token_client_for(make_team(w.organizer)),
    "token_this_event": lambda w: token_client_for(make_team(w.organizer, events=[w.event])),
    "token_other_event": lambda w: token_client_for(make_team(w.organizer, events=[w.event2])),
    "token_other_organizer": lambda w: token_client_for(make_team(w.other_organizer)),
    **{f"device:{profile}": (lambda w, p=profile: _device(w.organizer, p)) for profile in PROFILES},
    "device_other_organizer": lambda w: _device(w.other_organizer),
    "device_revoked": lambda w: _device(w.organizer, revoked=True),
    "oauth_read": lambda w: _oauth(w, "read"),
    "oauth_write": lambda w: _oauth(w, "write"),
    "oauth_read_write": lambda w: _oauth(w, "read write"),
    # the token's scopes cannot give more than the user's team has
    "oauth_orders_read": lambda w: _oauth(w, "read write", permissions=["event.orders:read"]),
    "oauth_other_organizer": lambda w: _oauth(w, "read write", organizer=w.other_organizer),
    "oauth_no_team": lambda w: _oauth(w, "read write", team=False),
    "oauth_expired": lambda w: _oauth(w, "read write", expired=True),
    "user_all": lambda w: _session(_user(w, "all", make_team(w.organizer))),
    "user_orders_read": lambda w: _session(_user(w, "read", make_team(w.organizer, ["event.orders:read"]))),
    "user_settings": lambda w: _session(_user(w, "settings", make_team(w.organizer, SETTINGS_PERMISSIONS))),
    "user_other_event": lambda w: _session(_user(w, "other", make_team(w.organizer, events=[w.event2]))),
    "user_no_team": lambda w: _session(_user(w, "noteam")),
    # The test client skips CSRF checks unless asked to: a browser session without the token.
    "user_all_without_csrf_token": lambda w: _session(_user(w, "nocsrf", make_team(w.organizer)), csrf=True),
}


# --- requests --------------------------------------------------------------------------------------------------------

def body(resp):
    if not hasattr(resp, "_matrix_body"):
        resp._matrix_body = b"".join(resp.streaming_content) if resp.streaming else resp.content
    return resp._matrix_body


def text(resp):
    return body(resp).decode("utf-8", "replace")


def send_json(client, method, path, payload=None):
    data = "" if payload is None else json.dumps(payload)
    return client.generic(method, path, data, content_type="application/json")


def send_form(client, path, data):
    return client.generic("POST", path, encode_multipart(BOUNDARY, data), content_type=MULTIPART_CONTENT)


def exporters_url(w):
    return f"/api/v1/organizers/{w.organizer.slug}/events/{w.event.slug}/exporters/"


def settings_api_url(w):
    return f"/api/v1/organizers/{w.organizer.slug}/events/{w.event.slug}/settings/"


def control(w, suffix=""):
    return f"/control/event/{w.organizer.slug}/{w.event.slug}/{suffix}"


def plugin(w, suffix=""):
    return control(w, "secrets_import/" + suffix)


def session_key(client):
    key = client.session.session_key
    return f"{key}!{SESSION_SALT}" if key else f"nobody!{SESSION_SALT}"


def make_upload(client, content):
    """An upload as ImportUploadView stores it: bound to the browser session of ``client``."""
    with scopes_disabled():
        cf = CachedFile.objects.create(expires=now() + timedelta(days=1), date=now(), filename="codes.csv",
                                       type=UPLOAD_TYPE, web_download=False, session_key=session_key(client))
        cf.file.save("secrets-import", ContentFile(content))
    return cf


def make_report(w, client):
    """A failed import's error report, made by the import task as ImportProcessView runs it."""
    upload = make_upload(client, f"{POOL['free1']}\n{UPLOADED[0]}\n".encode())
    result = import_secrets.apply(args=(
        w.event.pk, str(upload.id), asdict(FileFormat()), ColumnMapping().as_dict(), "en", w.admin.pk,
        upload.session_key,
    )).get()
    assert result["error_count"] == 1
    return plugin(w, f"import/{upload.id}/report/{result['report']}/")


@dataclass
class Target:
    name: str
    send: Callable  # (world, client, prepared) -> response
    write: bool = False
    reveals: tuple = ()  # secrets an allowed answer shows
    prepare: Optional[Callable] = None  # (world, client) -> prepared; runs before the state is taken
    check: Optional[Callable] = None  # (world, client, response, allowed) -> None, target-specific


def _summary(w, client, resp, allowed):
    if allowed:
        assert (resp.json()["total"], resp.json()["used"]) == (4, 1)


def _listed(exporter_list, allowed):
    ids = [e["identifier"] for e in exporter_list.json()["results"]]
    assert ("imported_secrets" in ids) == allowed


def _settings_fields(w, client, resp, allowed):
    if allowed:
        data = resp.json()
        assert data["ticket_secret_generator"] == "imported_secrets"
        assert data["secrets_import_low_threshold"] == 5


def _run_export_check(w, client, resp, allowed):
    if allowed:
        download = client.get(resp.json()["download"])
        # Downloading is a GET: an OAuth token with only the write scope may run an export but not fetch it.
        can_read = EXPECTED["x.list", w.cred] != "403"
        assert download.status_code == (200 if can_read else 403)
        if can_read:
            assert all(s in text(download) for s in POOL.values())


def _control_export_check(w, client, resp, allowed):
    if allowed:
        assert resp["Location"].startswith("/download/")
        download = client.get(resp["Location"])
        assert download.status_code == 200
        assert all(s in text(download) for s in POOL.values())
    elif resp.status_code == 302 and not resp["Location"].startswith("/control/login"):
        assert resp["Location"].startswith(control(w, "orders/export/"))


def _contains(marker):
    def check(w, client, resp, allowed):
        if resp.status_code == 200:
            assert (marker in text(resp)) == allowed
    return check


TARGETS = [
    Target("list", lambda w, c, p: c.get(url(w.event)), reveals=tuple(POOL.values())),
    Target("get", lambda w, c, p: c.get(url(w.event, w.pool["free1"].pk)), reveals=(POOL["free1"],)),
    Target("create", lambda w, c, p: send_json(c, "POST", url(w.event), {"secret": "PM-NEW-1"}), write=True),
    Target("put", lambda w, c, p: send_json(c, "PUT", url(w.event, w.pool["free1"].pk), {"secret": "PM-PUT-1"}),
           write=True),
    Target("patch", lambda w, c, p: send_json(c, "PATCH", url(w.event, w.pool["free1"].pk), {"item": w.item.pk}),
           write=True),
    Target("delete", lambda w, c, p: send_json(c, "DELETE", url(w.event, w.pool["free1"].pk)), write=True),
    Target("bulk", lambda w, c, p: send_json(c, "POST", url(w.event, suffix="bulk_create/"),
                                             [{"secret": "PM-BULK-1"}, {"secret": "PM-BULK-2"}]), write=True),
    Target("summary", lambda w, c, p: c.get(url(w.event, suffix="summary/")), check=_summary),
    Target("s.get", lambda w, c, p: c.get(settings_api_url(w)), check=_settings_fields),
    Target("s.patch", lambda w, c, p: send_json(c, "PATCH", settings_api_url(w), {
        "secrets_import_low_threshold": 9, "ticket_secret_generator": "random",
    }), write=True),
    Target("x.list", lambda w, c, p: c.get(exporters_url(w)),
           check=lambda w, c, r, allowed: r.status_code != 200 or _listed(r, allowed)),
    Target("x.run", lambda w, c, p: send_json(c, "POST", exporters_url(w) + "imported_secrets/run/",
                                              {"_format": "default"}), write=True, check=_run_export_check),
    Target("x.other", lambda w, c, p: c.get(w.foreign_download)),
    Target("c.exp", lambda w, c, p: c.get(control(w, "orders/export/?identifier=imported_secrets")),
           check=_contains("Imported ticket secrets")),
    Target("c.exp+", lambda w, c, p: send_form(c, control(w, "orders/export/do"), {
        "exporter": "imported_secrets", "imported_secrets-_format": "default",
    }), write=True, check=_control_export_check),
    Target("c.dash", lambda w, c, p: c.get(control(w)), check=_contains("secrets-import-low")),
    Target("set", lambda w, c, p: c.get(plugin(w, "settings")), check=_contains("secrets_import_low_threshold")),
    Target("set+", lambda w, c, p: send_form(c, plugin(w, "settings"), {
        "secrets_import_when_empty": "random", "secrets_import_low_threshold": "9",
    }), write=True),
    Target("pool", lambda w, c, p: c.get(plugin(w)), reveals=tuple(POOL.values())),
    Target("add", lambda w, c, p: c.get(plugin(w, "add"))),
    Target("add+", lambda w, c, p: send_form(c, plugin(w, "add"), {"secret": "PM-ADD-1"}), write=True),
    Target("del+", lambda w, c, p: send_form(c, plugin(w, "delete"), {"secret": [w.pool["free1"].pk], "confirm": "1"}),
           write=True),
    Target("unus", lambda w, c, p: c.get(plugin(w, "delete_unused"))),
    Target("unus+", lambda w, c, p: send_form(c, plugin(w, "delete_unused"), {}), write=True),
    Target("imp", lambda w, c, p: c.get(plugin(w, "import/"))),
    Target("imp+", lambda w, c, p: send_form(c, plugin(w, "import/"), {
        "file": SimpleUploadedFile("codes.csv", "\n".join(UPLOADED).encode()),
    }), write=True),
    Target("proc", lambda w, c, p: c.get(plugin(w, f"import/{p.id}/")), reveals=tuple(UPLOADED),
           prepare=lambda w, c: make_upload(c, "\n".join(UPLOADED).encode())),
    Target("proc+", lambda w, c, p: send_form(c, plugin(w, f"import/{p.id}/"), {
        "format_set": "1", "encoding": "utf-8", "delimiter": ",", "secret": "column:0",
    }), write=True, prepare=lambda w, c: make_upload(c, "\n".join(UPLOADED).encode())),
    Target("rep", lambda w, c, p: c.get(p), reveals=(POOL["free1"],), prepare=make_report),
    Target("rep.csv", lambda w, c, p: c.get(p + "?download=1"), reveals=(POOL["free1"],), prepare=make_report),
]


def test_every_cell_has_an_expectation():
    targets = [t.name for t in TARGETS]
    assert len(set(targets)) == len(targets)
    assert set(EXPECTED) == {(t, c) for t in targets for c in CREDENTIALS}, "a target or credential lacks its cells"


def run_cell(w, client, target, cell):
    prepared = target.prepare(w, client) if target.prepare else None
    before = state(w)
    resp = target.send(w, client, prepared)
    after = state(w)
    code = int(cell[:3]) if cell != "L" else 302
    allowed = cell[0] != "L" and "-" not in cell and code < 400
    assert resp.status_code == code, (resp.status_code, text(resp)[:300])
    if cell == "L":
        assert resp["Location"].startswith("/control/login"), resp["Location"]

    answer = text(resp) + "\n".join(f"{k}: {v}" for k, v in resp.items())
    # Nothing about another event or organizer, allowed or not.
    assert EVENT2_SECRET not in answer and FOREIGN_SECRET not in answer
    if allowed:
        missing = [s for s in target.reveals if s not in answer]
        assert not missing, f"allowed answer lacks {missing}"
    else:
        leaked = [s for s in SECRETS if s in answer]
        assert not leaked, f"denied answer shows {leaked}"
    if target.write and allowed:
        assert after != before, "an allowed write changed nothing"
    else:
        assert after == before, "a denied write or a read changed something"
    if target.check:
        target.check(w, client, resp, allowed)


def shown_in_log(entry):
    """
    What a log entry shows: its data and its text in the backend, apart from the secrets that a deletion names in its
    data under "codes", which say what it deleted.
    """
    return json.dumps({**entry.parsed_data, "codes": None}) + str(entry.display())


def assert_no_secret_logged(secrets):
    with scopes_disabled():
        for entry in LogEntry.all.all():
            shown = shown_in_log(entry)
            leaked = [s for s in secrets if s in shown]
            assert not leaked, (entry.action_type, leaked)


@pytest.mark.parametrize("cred", list(CREDENTIALS))
def test_matrix(cred, monkeypatch):
    w = build_world(monkeypatch)
    w.cred = cred
    client = CREDENTIALS[cred](w)
    failures = []
    for target in TARGETS:
        reset(w)
        try:
            run_cell(w, client, target, EXPECTED[target.name, cred])
        except AssertionError as e:
            failures.append(f"{target.name} [{EXPECTED[target.name, cred]}]: {e}")
    if failures:
        pytest.fail(f"{cred}, {len(failures)} cells differ:\n" + "\n".join(failures), pytrace=False)
    # The allowed writes above went through every write path of the API and the backend (file import included).
    assert_no_secret_logged(SECRETS + [EVENT2_SECRET, FOREIGN_SECRET])


# --- secrets stay secret ---------------------------------------------------------------------------------------------

def logged_secrets(event, secrets):
    """Secrets that any log entry of ``event`` shows (``shown_in_log``)."""
    with scopes_disabled():
        entries = list(LogEntry.all.filter(event=event))
        return {s for e in entries for s in secrets if s in shown_in_log(e)}


def logged_actions(event):
    with scopes_disabled():
        return set(LogEntry.all.filter(event=event).values_list("action_type", flat=True))


def test_no_write_path_logs_a_secret(organizer, event, item, user, token_client, backend_client, mailoutbox,
                                     django_capture_on_commit_callbacks):
    """Every write path, the running-low alert and its email included: the log and the email mask the secrets."""
    secrets = [f"LOG-{i}" for i in range(12)]
    # REST API
    assert token_client.post(url(event), {"secret": secrets[0]}, format="json").status_code == 201
    changed = add_secret(event, secrets[1])
    assert token_client.put(url(event, changed.pk), {"secret": secrets[2]}, format="json").status_code == 200
    assert token_client.patch(url(event, changed.pk), {"secret": secrets[3]}, format="json").status_code == 200
    assert token_client.delete(url(event, changed.pk)).status_code == 204
    assert token_client.post(url(event, suffix="bulk_create/"), [{"secret": secrets[4]}, {"secret": secrets[5]}],
                             format="json").status_code == 201
    # backend
    assert backend_client.post(plugin_url(event, "add"), {"secret": secrets[6]}).status_code == 302
    selected = add_secret(event, secrets[7])
    confirmed = {"secret": [selected.pk], "confirm": "1"}
    assert backend_client.post(plugin_url(event, "delete"), confirmed).status_code == 302
    assert backend_client.post(plugin_url(event, "delete_unused")).status_code == 302
    # file import, as the backend's task and the command run it
    with scopes_disabled():
        result = import_file(event, io.BytesIO("\n".join(secrets[8:11]).encode()), FileFormat(), ColumnMapping(),
                             user=user)
    assert result.imported == 3
    # running-low alert after a sale, with its notification email
    with scopes_disabled():
        subscriber = User.objects.create_user("alerts@example.org", "dummy")
        make_team(organizer, ["event.orders:read"]).members.add(subscriber)
        subscriber.notification_settings.create(
            action_type="pretix_secrets_import.pool.running_low", method="mail", enabled=True, event=None)
        event.live = True
        event.save()
        event.settings.ticket_secret_generator = "imported_secrets"
        event.settings.secrets_import_low_threshold = 5
        event.quotas.create(name="All", size=None).items.add(item)
    with django_capture_on_commit_callbacks(execute=True):
        resp = token_client.post(f"/api/v1/organizers/{organizer.slug}/events/{event.slug}/orders/", {
            "email": "buyer@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
            "positions": [{"item": item.pk, "price": "0.00"}],
        }, format="json")
    assert resp.status_code == 201
    assert resp.data["positions"][0]["secret"] in secrets[8:11]

    assert logged_actions(event) >= {
        "pretix_secrets_import.secret.added", "pretix_secrets_import.secret.changed",
        "pretix_secrets_import.secret.deleted", "pretix_secrets_import.secrets.bulk_added",
        "pretix_secrets_import.secrets.deleted", "pretix_secrets_import.secrets.imported",
        "pretix_secrets_import.pool.running_low",
    }
    assert logged_secrets(event, secrets) == set()
    with scopes_disabled():
        assert {e.action_type for e in LogEntry.all.filter(event=event) if "codes" in e.parsed_data} == {
            "pretix_secrets_import.secret.deleted", "pretix_secrets_import.secrets.deleted"}
    alerts = [m for m in mailoutbox if m.to == [subscriber.email]]
    assert len(alerts) == 1
    mail = alerts[0].subject + alerts[0].body + "".join(str(a[0]) for a in getattr(alerts[0], "alternatives", []))
    assert [s for s in secrets if s in mail] == []


def plugin_url(event, suffix=""):
    return f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/{suffix}"


FOREIGN_NAMES = ("otherorg", "Other Org", "foreign", "Foreign")


def test_secret_of_another_organizer_imports_without_a_word_about_it(event, user, token_client, backend_client):
    # Uniqueness is per organizer: another organizer's pool secrets and ticket secrets are simply free here.
    with scopes_disabled():
        other = Organizer.objects.create(name="Other Org", slug="otherorg")
        foreign = make_event(other, "foreign")
    for name in ("X-API", "X-BULK", "X-ADD", "X-FILE"):
        add_secret(foreign, name + "-POOL")
        add_ticket(foreign, name + "-TICKET")

    for suffix in ("-POOL", "-TICKET"):
        resp = token_client.post(url(event), {"secret": "X-API" + suffix}, format="json")
        assert resp.status_code == 201
        resp2 = token_client.post(url(event, suffix="bulk_create/"), [{"secret": "X-BULK" + suffix}], format="json")
        assert resp2.status_code == 201
        resp3 = backend_client.post(plugin_url(event, "add"), {"secret": "X-ADD" + suffix}, follow=True)
        assert resp3.status_code == 200 and "The secret has been added." in resp3.content.decode()
        for r in (resp, resp2, resp3):
            assert not [n for n in FOREIGN_NAMES if n in r.content.decode()]
    with scopes_disabled():
        result = import_file(event, io.BytesIO(b"X-FILE-POOL\nX-FILE-TICKET\n"), FileFormat(), ColumnMapping(),
                             user=user)
    assert (result.imported, result.error_count) == (2, 0)
    with scopes_disabled():
        assert ImportedSecret.objects.filter(event=event).count() == 8


def test_duplicate_within_the_organizer_says_already_imported_and_no_more(organizer, event, event2, token_client,
                                                                          backend_client):
    add_secret(event2, "DUP-1")
    resp = token_client.post(url(event), {"secret": "DUP-1"}, format="json")
    assert resp.status_code == 400
    assert resp.json() == {"secret": ["This secret has already been imported for this organizer."]}
    resp = token_client.post(url(event, suffix="bulk_create/"), [{"secret": "OK-1"}, {"secret": "DUP-1"}],
                             format="json")
    assert resp.status_code == 400
    assert resp.json() == [{}, {"secret": ["This secret has already been imported for this organizer."]}]
    page = backend_client.post(plugin_url(event, "add"), {"secret": "DUP-1"}).content.decode()
    assert "already been imported" in page and "otherconf" not in page.lower()


def test_pool_entries_of_another_event_are_out_of_reach(organizer, event, event2, token_client):
    # An ID of another event's pool entry, used through this event's URL: not found, and nothing changes.
    other = add_secret(event2, "EV2-ONLY")
    for method, payload in (("get", None), ("put", {"secret": "EV2-NEW"}), ("patch", {"used": True}),
                            ("delete", None)):
        resp = getattr(token_client, method)(url(event, other.pk), payload, format="json")
        assert resp.status_code == 404 and "EV2-ONLY" not in resp.content.decode()
    with scopes_disabled():
        assert list(ImportedSecret.objects.filter(event=event2).values_list("secret", "used")) == [("EV2-ONLY", False)]


def test_unknown_organizer_or_event_is_403(token_client, event):
    # as pretix answers for its own endpoints: a missing organizer or event looks like one the token may not see
    for resp in (
        token_client.get("/api/v1/organizers/bigevents/events/nope/imported_secrets/"),
        token_client.get("/api/v1/organizers/nope/events/sampleconf/imported_secrets/"),
        token_client.post("/api/v1/organizers/nope/events/nope/imported_secrets/bulk_create/", [], format="json"),
    ):
        assert resp.status_code == 403
        assert resp.data["detail"].code == "permission_denied"
