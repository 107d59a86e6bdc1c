"""Ticket PDFs rendered by pretix, rasterised like a scan and read by a standard barcode decoder (zxing-cpp)."""
import json
import os
import pathlib

import pypdfium2
import pytest
import zxingcpp
from django_scopes import scope, scopes_disabled

from pretix.base.pdf import Renderer
from pretix.plugins.ticketoutputpdf.ticketoutput import PdfTicketOutput

from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.tickets import barcodes
from tests.gate.test_states import order_of, place
from tests.helpers import add_secret, token_client_for
from tests.sales import test_generator
from tests.sales.test_generator import api_order

pytestmark = pytest.mark.django_db
shop = test_generator.shop

# Per symbology a secret of the longest kind the pool takes for it (barcodes.Symbology.max_length): for the linear
# codes the characters that make the widest symbol, all printed with their narrowest modules
SECRETS = {
    "qr": "QR-" + "x" * 252,
    "code128": ("GATE/abc+XYZ=~" * 4)[:47],
    "code39": ("GATE-$/+%.XYZ" * 2)[:25],
    "ean13": "4006381333931",
    "itf": "1234567890" * 6,
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


def wide_layout(event):
    """
    The event's default ticket layout with a barcode area across the page, as an organizer lays out tickets for the
    longest linear codes (up to 190 mm wide): on pretix' default layout they reach over its text and lines.
    """
    layout = [
        {"type": "barcodearea", "page": 1, "left": "10.00", "bottom": "100.00", "size": "190.00",
         "content": "secret", "color": [0, 0, 0, 1]},
        {"type": "textarea", "page": 1, "left": "10.00", "bottom": "280.00", "fontsize": "14.0", "color": [0, 0, 0, 1],
         "fontfamily": "Open Sans", "bold": False, "italic": False, "width": "190.00", "content": "event_name",
         "text": "", "align": "left", "rotation": 0, "locale": "", "downward": False, "lineheight": "1"},
    ]
    with scopes_disabled():
        event.ticket_layouts.update(default=False)
        event.ticket_layouts.create(name="Wide barcode", default=True, layout=json.dumps(layout))


@pytest.fixture
def pdf_shop(shop, token_client, committed):
    shop.event.enable_plugin("pretix.plugins.ticketoutputpdf")
    shop.event.save()
    return shop


@pytest.mark.parametrize("symbology", list(barcodes.SYMBOLOGIES))
def test_the_ticket_pdf_decodes_to_its_secret(pdf_shop, token_client, committed, symbology):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, symbology)
    assert CodeFormat(symbology=symbology).checker()(SECRETS[symbology]) is None
    if barcodes.SYMBOLOGIES[symbology].linear:
        wide_layout(event)
    add_secret(event, SECRETS[symbology])
    code = place(token_client, pdf_shop, committed)
    pdf = ticket_pdf(event, code)
    for dpi in (300, 150):
        assert (FORMATS[symbology], SECRETS[symbology]) in decoded(pdf, dpi), dpi


def test_a_secret_the_symbology_cannot_encode_stays_a_qr_code(pdf_shop, token_client, committed):
    """The pool refuses such secrets; pretix' random ones (products without pool secrets) can be anything."""
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "ean13")
    add_secret(event, "NOT-DIGITS")
    pdf = ticket_pdf(event, place(token_client, pdf_shop, committed))
    assert decoded(pdf, 300) == [(QR, "NOT-DIGITS")]


def test_a_secret_too_long_for_a_linear_code_stays_a_qr_code(pdf_shop, token_client, committed):
    """Longer than the pool takes for Code 39 (25): the code would not fit the page."""
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "code39")
    add_secret(event, "A" * 26)
    pdf = ticket_pdf(event, place(token_client, pdf_shop, committed))
    assert decoded(pdf, 300) == [(QR, "A" * 26)]


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


@pytest.mark.parametrize("symbology", ["code39", "ean13", "itf", "code128"])
def test_the_layout_editor_preview_shows_the_symbology(pdf_shop, backend_client, symbology):
    """pretix' preview ticket has a random secret that most linear codes do not take: the preview prints a sample."""
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, symbology)
    wide_layout(event)
    with scopes_disabled():
        layout = event.ticket_layouts.get(default=True)
    url = f"/control/event/{event.organizer.slug}/{event.slug}/pdfoutput/{layout.pk}/editor"
    resp = backend_client.post(url, {"preview": "1", "data": layout.layout})
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    [(found, text)] = decoded(resp.content, 150)
    # Code 128 takes the random secret itself
    assert found == FORMATS[symbology] and text == (barcodes.SAMPLES[symbology] if symbology != "code128" else text)


def test_pretix_preview_orders_still_have_a_code_no_real_order_has():
    """barcodes.PREVIEW_ORDER_CODE marks pretix' preview tickets: fail if pretix changes its previews or order codes."""
    import inspect

    from pretix.base.models import Order
    from pretix.base.services import tickets
    from pretix.control.views import pdf

    for source in (inspect.getsource(pdf.BaseEditorView._get_preview_position), inspect.getsource(tickets.preview)):
        assert f'code="{barcodes.PREVIEW_ORDER_CODE}"' in source
    charset = inspect.getsource(Order.assign_code).split("charset = list('")[1].split("'")[0]
    assert not set(barcodes.PREVIEW_ORDER_CODE) <= set(charset)
    assert all(barcodes.can_encode(symbology, sample) for symbology, sample in barcodes.SAMPLES.items())


def test_the_secret_as_text_under_a_linear_code(pdf_shop, token_client, committed):
    event = pdf_shop.event
    event.settings.set(barcodes.SETTING, "code128")
    event.settings.set(barcodes.TEXT_SETTING, True)
    add_secret(event, "GATE-TEXT-1")
    pdf = ticket_pdf(event, place(token_client, pdf_shop, committed))
    assert decoded(pdf, 150) == [(FORMATS["code128"], "GATE-TEXT-1")]
    page = pypdfium2.PdfDocument(pdf)[0]
    assert "GATE-TEXT-1" in page.get_textpage().get_text_range()


def test_the_barcode_text_through_pretix_settings_api(token_client, shop):
    url = f"/api/v1/organizers/{shop.event.organizer.slug}/events/{shop.event.slug}/settings/"
    assert token_client.get(url).data[barcodes.TEXT_SETTING] is False
    assert token_client.patch(url, {barcodes.TEXT_SETTING: True}, format="json").status_code == 200
    assert token_client.get(url).data[barcodes.TEXT_SETTING] is True


def save_screenshot(pdf: bytes, name: str):
    """With ``SCREENSHOT_DIR`` set (``make screenshots``), save the top of the ticket's page as the manual shows it
    (docs/organizer/barcodes.rst)."""
    directory = os.environ.get("SCREENSHOT_DIR")
    if not directory:
        return
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=100 / 72).to_pil()
    image.crop((0, 0, image.width, image.height * 2 // 5)).save(os.path.join(directory, name))


def test_the_demo_series_prints_code_128(committed):
    """`make demo`: a day pass of the series event has a Code 128 barcode with the secret as text below it."""
    from demo import setup_demo

    organizer = setup_demo.create_demo_data()
    with scopes_disabled():
        series = organizer.events.get(slug="series")
        day_pass = series.items.get(name="Day pass")
        day = series.subevents.get(name="Day 1")
        client = token_client_for(organizer.teams.get(name="Administrators"))
    with committed():
        resp = api_order(client, series, {"item": day_pass.pk, "subevent": day.pk})
    assert resp.status_code == 201, resp.content
    secret = resp.data["positions"][0]["secret"]
    assert secret == "DAY1-0001"
    pdf = ticket_pdf(series, resp.data["code"])
    for dpi in (300, 150):
        assert decoded(pdf, dpi) == [(FORMATS["code128"], secret)]
    assert secret in pypdfium2.PdfDocument(pdf)[0].get_textpage().get_text_range()
    save_screenshot(pdf, "ticket-code128.png")
    # the 2D group, for the manual: the same ticket as PDF417
    series.settings.set(barcodes.SETTING, "pdf417")
    pdf = ticket_pdf(series, resp.data["code"])
    assert decoded(pdf, 150) == [(FORMATS["pdf417"], secret)]
    save_screenshot(pdf, "ticket-pdf417.png")
