"""Ticket PDFs rendered by pretix, rasterised like a scan and read by a standard barcode decoder (zxing-cpp)."""
import pypdfium2
import pytest
import zxingcpp
from django_scopes import scope, scopes_disabled

from pretix.base.pdf import Renderer
from pretix.plugins.ticketoutputpdf.ticketoutput import PdfTicketOutput

from pretix_secrets_import import barcodes

from . import test_generator
from .helpers import add_secret
from .test_gate import order_of, place

pytestmark = pytest.mark.django_db
shop = test_generator.shop

# Per symbology a secret of the longest kind the tests print: what a gate vendor's file holds
SECRETS = {
    "qr": "QR-" + "x" * 252,
    "code128": "GATE-2031/abc+XYZ=0123456789",
    "code39": "GATE-2031 $/+%.XYZ",
    "ean13": "4006381333931",
    "itf": "12345678901234567890",
    "pdf417": "P" * 255,
    "datamatrix": "D" * 255,
    "aztec": "A" * 255,
}
FORMATS = {key: getattr(zxingcpp.BarcodeFormat, symbology.zxing) for key, symbology in barcodes.SYMBOLOGIES.items()}
QR = zxingcpp.BarcodeFormat.QRCode


def decoded(pdf: bytes, dpi: int) -> list:
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=dpi / 72, grayscale=True).to_pil()
    return [(found.format, found.text) for found in zxingcpp.read_barcodes(image)]


def ticket_pdf(event, code) -> bytes:
    with scope(organizer=event.organizer):
        order = order_of(event, code)
        _name, _type, data = PdfTicketOutput(event).generate(order.positions.first())
    return data


def downloaded(token_client, committed, event, code) -> bytes:
    """The ticket PDF through the order API's download (pretix renders it in a task first: 409, then 200)."""
    with scopes_disabled():
        position = order_of(event, code).positions.first()
    url = f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/orderpositions/{position.pk}/download/pdf/"
    with committed():
        resp = token_client.get(url)
        if resp.status_code == 409:
            resp = token_client.get(url)
    assert resp.status_code == 200, resp.content
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


@pytest.fixture
def pdf_shop(shop, token_client, committed):
    shop.event.enable_plugin("pretix.plugins.ticketoutputpdf")
    shop.event.save()
    return shop


@pytest.mark.parametrize("symbology", list(barcodes.SYMBOLOGIES))
def test_the_ticket_pdf_decodes_to_its_secret(pdf_shop, token_client, committed, symbology):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, symbology)
    add_secret(event, SECRETS[symbology])
    code = place(token_client, pdf_shop, committed)
    pdf = ticket_pdf(event, code)
    for dpi in (300, 150):
        assert (FORMATS[symbology], SECRETS[symbology]) in decoded(pdf, dpi), dpi


def test_a_secret_the_symbology_cannot_encode_stays_a_qr_code(pdf_shop, token_client, committed):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "ean13")
    add_secret(event, "NOT-DIGITS")
    pdf = ticket_pdf(event, place(token_client, pdf_shop, committed))
    assert decoded(pdf, 300) == [(QR, "NOT-DIGITS")]


def test_a_secret_too_long_for_a_linear_code_stays_a_qr_code(pdf_shop, token_client, committed):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "code39")
    add_secret(event, "A" * 87)  # zint's Code 39 takes 86 characters at most
    pdf = ticket_pdf(event, place(token_client, pdf_shop, committed))
    assert decoded(pdf, 300) == [(QR, "A" * 87)]


def test_with_the_plugin_disabled_tickets_show_pretix_qr_code(pdf_shop, token_client, committed):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "code128")
    add_secret(event, "GATE-1")
    code = place(token_client, pdf_shop, committed)
    event.disable_plugin("pretix_secrets_import")
    event.save()
    assert decoded(ticket_pdf(event, code), 300) == [(QR, "GATE-1")]


@pytest.mark.parametrize("symbology, secret, fits", [
    ("ean13", "4006381333931", True), ("ean13", "4006381333932", False), ("ean13", "400638133393", False),
    ("itf", "1234", True), ("itf", "123", False), ("code39", "ABC-1", True), ("code39", "abc", False),
    ("code128", "abc~1", True), ("code128", "ä", False), ("datamatrix", "anything ä", True),
])
def test_what_each_symbology_encodes(symbology, secret, fits):
    assert barcodes.can_encode(symbology, secret) is fits


def test_pretix_renderer_still_has_the_method_the_plugin_replaces():
    """barcodes.install replaces pretix' Renderer._draw_barcodearea(canvas, op, order, o): fail if pretix changes."""
    import inspect
    assert getattr(Renderer._draw_barcodearea, "secrets_import", False)
    with scopes_disabled():
        original = inspect.getclosurevars(Renderer._draw_barcodearea).nonlocals["original"]
    assert list(inspect.signature(original).parameters) == ["self", "canvas", "op", "order", "o"]
    assert "QrCodeWidget" in inspect.getsource(original)


def test_the_setting_through_pretix_settings_api(token_client, shop):
    url = f"/api/v1/organizers/{shop.event.organizer.slug}/events/{shop.event.slug}/settings/"
    assert token_client.get(url).data[barcodes.SETTING] == "qr"
    resp = token_client.patch(url, {barcodes.SETTING: "code128"}, format="json")
    assert resp.status_code == 200, resp.content
    assert token_client.get(url).data[barcodes.SETTING] == "code128"
    resp = token_client.patch(url, {barcodes.SETTING: "barcode"}, format="json")
    assert resp.status_code == 400 and barcodes.SETTING in resp.data


def test_the_order_api_download_carries_the_symbology(pdf_shop, token_client, committed):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "code128")
    add_secret(event, "GATE-API-1")
    code = place(token_client, pdf_shop, committed)
    assert decoded(downloaded(token_client, committed, event, code), 150) == [(FORMATS["code128"], "GATE-API-1")]


def test_changing_the_symbology_renders_the_tickets_anew(pdf_shop, token_client, committed):
    """pretix keeps rendered PDFs (CachedTicket): the API download after a change shows the new symbology."""
    event = pdf_shop.event
    add_secret(event, "GATE-CACHE-1")
    code = place(token_client, pdf_shop, committed)
    settings = f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/settings/"
    assert decoded(downloaded(token_client, committed, event, code), 150) == [(QR, "GATE-CACHE-1")]
    with committed():
        assert token_client.patch(settings, {barcodes.SETTING: "code128"}, format="json").status_code == 200
    assert decoded(downloaded(token_client, committed, event, code), 150) == [(FORMATS["code128"], "GATE-CACHE-1")]
