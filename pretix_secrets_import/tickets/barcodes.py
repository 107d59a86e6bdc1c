"""
The symbologies a ticket's secret can be printed in, which secrets each can encode, and drawing them into pretix' PDF
tickets.

pretix draws every barcode area as a QR code (``pretix.base.pdf.Renderer._draw_barcodearea``). With another
symbology chosen for the event (``secrets_import_symbology``), ``install`` makes the areas that show the ticket's
secret draw it in that symbology instead, for every layout, pretix' default one included. The symbol comes from
zxing-cpp (zint) as a matrix of modules and goes into the PDF as filled rectangles, one per run of dark modules:
vector graphics, sharp at any size, with the quiet zones kept free. A secret the symbology cannot encode (a random
secret of a non-pool ticket, say) stays a QR code.
"""
import json
import re
from typing import NamedTuple

import zxingcpp
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from reportlab.lib.colors import Color
from reportlab.lib.units import mm

from pretix_secrets_import.plugin import enabled_for

SETTING = "secrets_import_symbology"
TEXT_SETTING = "secrets_import_barcode_text"  # print the secret under a linear code
QR = "qr"
# pretix' preview orders (the layout editor, the ticket preview) have this code; real ones never do, as pretix' order
# codes have no I and no 1, 2 or 4. Their random secret fits no linear code, so the preview shows one of these.
PREVIEW_ORDER_CODE = "PREVIEW1234"
SAMPLES = {"code128": "SAMPLE-CODE-128", "code39": "SAMPLE-CODE-39", "ean13": "4006381333931",
           "itf": "0123456789012345"}


class Symbology(NamedTuple):
    label: str
    zxing: str  # the name of zxing-cpp's BarcodeFormat
    linear: bool
    # What it encodes exactly, without adding characters the secret does not contain; None: any text
    pattern: "re.Pattern | None"
    quiet: int  # modules kept free on each side (its standard's quiet zone)
    # The narrowest module of a linear code, in mm: EAN-13's nominal 0.33 mm stays two pixels wide at 150 dpi; Code 39
    # tells wide from narrow bars only, and needs wider ones to survive a 150 dpi scan.
    min_module: float = 0.33
    # The longest secret printed on a ticket: for a linear code, the most characters whose widest symbol (narrowest
    # modules, quiet zones) stays within PRINT_WIDTH; a 2D code takes any secret of the pool.
    max_length: int = 255
    rule: str = ""  # what it encodes, for messages


PRINT_WIDTH = 190  # mm: an A4 page less 10 mm margins
SYMBOLOGIES = {
    QR: Symbology(_("QR code (pretix' default)"), "QRCode", False, None, 4),
    "code128": Symbology(_("Code 128"), "Code128", True, re.compile(r"[\x21-\x7e]+"), 10, max_length=47,
                         rule=_("letters A–Z and a–z, digits and the ASCII punctuation characters")),
    "code39": Symbology(_("Code 39"), "Code39", True, re.compile(r"[0-9A-Z\-. $/+%]+"), 10, 0.5, max_length=25,
                        rule=_("capital letters A–Z, digits and the characters - . $ / + %")),
    "ean13": Symbology(_("EAN-13"), "EAN13", True, re.compile(r"[0-9]{13}"), 11, max_length=13,
                       rule=_("13 digits, the last of them the check digit")),
    "itf": Symbology(_("Interleaved 2 of 5"), "ITF", True, re.compile(r"(?:[0-9]{2})+"), 10, max_length=60,
                     rule=_("an even number of digits")),
    "pdf417": Symbology(_("PDF417"), "PDF417", False, None, 2),
    "datamatrix": Symbology(_("Data Matrix"), "DataMatrix", False, None, 1),
    "aztec": Symbology(_("Aztec"), "Aztec", False, None, 0),
}
CHOICES = [(key, symbology.label) for key, symbology in SYMBOLOGIES.items()]


def can_encode(symbology: str, secret: str) -> bool:
    """Whether ``symbology`` encodes ``secret`` exactly (for EAN-13: 13 digits whose last is the right check digit)."""
    pattern = SYMBOLOGIES[symbology].pattern
    if pattern is not None and not pattern.fullmatch(secret):
        return False
    return symbology != "ean13" or ean13_check_digit(secret) == int(secret[12])


def ean13_check_digit(value: str) -> int:
    """The check digit of the first 12 digits of ``value``."""
    digits = [int(c) for c in value[:12]]
    return -(sum(digits[0::2]) + 3 * sum(digits[1::2])) % 10


def refusal(symbology: str, secret: str):
    """Why the pool cannot take ``secret`` for tickets in ``symbology`` (a message), or ``None``."""
    spec = SYMBOLOGIES[symbology]
    if not spec.linear:
        return None
    if not can_encode(symbology, secret):
        if symbology == "ean13" and spec.pattern.fullmatch(secret):
            return _("{secret} has a wrong EAN-13 check digit: the last digit must be {digit}.").format(
                secret=secret, digit=ean13_check_digit(secret))
        return _("{secret} cannot be printed as {symbology}, which encodes {rule}.").format(
            secret=secret, symbology=spec.label, rule=spec.rule)
    if len(secret) > spec.max_length:
        return _("{secret} is too long to be printed as {symbology} on a ticket: at most {max} characters.").format(
            secret=secret, symbology=spec.label, max=spec.max_length)
    return None


def modules(symbology: str, secret: str):
    """
    The symbol as rows of modules (True: dark), without quiet zones; one row for a linear code. ValueError if the
    secret is too long for the symbology (Code 39: 86 characters, Code 128: 102 symbol characters, ITF: 125 digits).
    """
    barcode = zxingcpp.create_barcode(secret, getattr(zxingcpp.BarcodeFormat, SYMBOLOGIES[symbology].zxing))
    image = memoryview(barcode.to_image(scale=1, add_quiet_zones=False, add_hrt=False)).tolist()
    rows = [[value < 128 for value in row] for row in image]
    return rows[:1] if SYMBOLOGIES[symbology].linear else rows


def draw(canvas, symbology: str, rows: list, x: float, y: float, size: float, color=None, text=None):
    """
    Draw the symbol ``rows`` (``modules``) of ``symbology`` into the square barcode area of side ``size`` (points)
    at ``x``, ``y`` (its lower left corner) on a reportlab ``canvas``. A linear code spans the area's width (wider
    when its modules would get narrower than its ``min_module``) and half its height, with ``text`` (if any) below
    it; a 2D code fills it keeping its proportions.
    """
    quiet = SYMBOLOGIES[symbology].quiet
    n_rows, n_cols = len(rows), len(rows[0])
    if SYMBOLOGIES[symbology].linear:
        module = max(size / (n_cols + 2 * quiet), SYMBOLOGIES[symbology].min_module * mm)
        width, height = module * n_cols, size / 2
        row_height = height
        top = y + size / 2 + height / 2
    else:
        # PDF417 fits the area's width (zint's rows are 3 modules high already); the square codes fit both sides
        module = size / ((n_cols if symbology == "pdf417" else max(n_rows, n_cols)) + 2 * quiet)
        width, row_height = module * n_cols, module
        top = y + size / 2 + row_height * n_rows / 2
    # centred on the area; a linear code wider than the area stays on the page with its quiet zones
    page_width = canvas._pagesize[0]
    left = min(max(x + (size - width) / 2, quiet * module), page_width - width - quiet * module)
    canvas.saveState()
    canvas.setFillColor(color or Color(0, 0, 0))
    path = canvas.beginPath()
    for r, row in enumerate(rows):
        c = 0
        while c < n_cols:
            if row[c]:
                start = c
                while c < n_cols and row[c]:
                    c += 1
                path.rect(left + start * module, top - (r + 1) * row_height, (c - start) * module, row_height)
            else:
                c += 1
    canvas.drawPath(path, stroke=0, fill=1)
    if text and SYMBOLOGIES[symbology].linear:
        # pretix registers Open Sans for its layouts; the text fits under the bars and stays legible
        font_size = min(max(size / 20, 6), 12)
        canvas.setFont("Open Sans", font_size)
        canvas.drawCentredString(left + width / 2, top - height - font_size * 1.2, text)
    canvas.restoreState()


def install():
    """Make pretix' PDF renderer draw the secret's barcode areas in the event's symbology (guarded by tests)."""
    from pretix.base.pdf import Renderer

    original = Renderer._draw_barcodearea
    if getattr(original, "secrets_import", False):
        return

    def _draw_barcodearea(self, canvas, op, order, o):
        symbology = chosen(self.event)
        secret = op.secret
        if symbology == QR or o.get("content", "secret") != "secret" or not secret:
            return original(self, canvas, op, order, o)
        # exactly the secrets the pool would take for the symbology; a random one may not fit it
        if refusal(symbology, secret) is not None and getattr(order, "code", None) == PREVIEW_ORDER_CODE:
            secret = SAMPLES[symbology]
        if refusal(symbology, secret) is not None:
            return original(self, canvas, op, order, o)
        try:
            rows = modules(symbology, secret)
        except ValueError:  # zint refuses it: a QR code rather than no ticket
            return original(self, canvas, op, order, o)
        color = Color(*(c / 255 for c in o["color"][:3])) if o.get("color") else None
        draw(canvas, symbology, rows, float(o["left"]) * mm, float(o["bottom"]) * mm, float(o["size"]) * mm,
             color, secret if self.event.settings.get(TEXT_SETTING, as_type=bool) else None)
        # as pretix does: the content and the issuer as invisible text, for third parties that process the PDF
        canvas.saveState()
        canvas.setFont("Open Sans", .01)
        canvas.setFillColorRGB(0, 0, 0, 0)
        canvas.drawString(0, 0, json.dumps({"issuer": settings.SITE_URL, "secret": secret}, sort_keys=True))
        canvas.restoreState()

    _draw_barcodearea.secrets_import = True
    Renderer._draw_barcodearea = _draw_barcodearea


def chosen(event) -> str:
    """The event's symbology; QR while the plugin is off for the event."""
    symbology = event.settings.get(SETTING, default=QR)
    return symbology if symbology in SYMBOLOGIES and enabled_for(event) else QR
