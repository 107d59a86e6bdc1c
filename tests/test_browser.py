"""
The backend pages in a real browser: headless Chromium (Debian's ``chromium`` and ``chromedriver``, which
``make browser`` installs and ``make test`` depends on) drives pretix, served by pytest-django's live server, with
its real CSS and JavaScript. Celery runs eagerly in the test settings, so the import and the export finish within
their request.

Without Chromium this test fails instead of being skipped, so that CI cannot silently lose it; set
``SKIP_BROWSER_TESTS=1`` to skip it on purpose. With ``SCREENSHOT_DIR`` set, it saves the screenshots used in
README.md and the manual (docs/) there (``make screenshots``).
"""
import csv
import os
import pathlib
from datetime import datetime, timezone

import pytest
from django.db.models import Q
from django.utils.timezone import now
from django_scopes import scopes_disabled
from rest_framework.test import APIClient
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from pretix.base.models import Organizer, User

from demo import setup_demo
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool.rules import SECRET_MAX_LENGTH
from tests.helpers import PLUGINS, make_team

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 30  # seconds; the first page compiles pretix' SCSS
EMAIL, PASSWORD = "anna.berger@riverside-festivals.example", "correct horse battery staple"

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the live server thread must see the test's data
    pytest.mark.heavy,
]


@pytest.fixture
def browser(settings, live_server, tmp_path):
    if os.environ.get("SKIP_BROWSER_TESTS", "") not in ("", "0"):
        pytest.skip("SKIP_BROWSER_TESTS is set")
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found. Install Debian's chromium and chromium-driver with `make browser` "
            "(as root: apt-get install chromium chromium-driver), or set SKIP_BROWSER_TESTS=1 to skip this test.",
            pytrace=False,
        )
    # pretix blocks HTTP requests to local addresses, and selenium talks to chromedriver on 127.0.0.1.
    settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS = True
    # pretix' test settings skip the SCSS compiler; real pages need their stylesheets.
    settings.COMPRESS_PRECOMPILERS = settings.COMPRESS_PRECOMPILERS_ORIGINAL
    settings.SITE_URL = live_server.url
    settings.PRETIX_INSTANCE_NAME = "pretix"

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.downloads = downloads
    driver.base_url = live_server.url
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, what):
    """Wait explicitly; on timeout, say what was expected and where the browser is."""
    try:
        return WebDriverWait(driver, WAIT).until(condition)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text[:2000]
        raise AssertionError(f"Timed out waiting for {what} at {driver.current_url}:\n{body}") from None


def wait_for_id(driver, element_id):
    return wait_for(driver, EC.visibility_of_element_located((By.ID, element_id)), f"#{element_id}")


def click(driver, css):
    wait_for(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, css)), css).click()


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def screenshot(driver, name, height=None):
    """With ``SCREENSHOT_DIR`` set, save the page there: ``height`` pixels of it, or all of it."""
    directory = os.environ.get("SCREENSHOT_DIR")
    if not directory:
        return
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    chrome = size["height"] - driver.execute_script("return window.innerHeight")
    height = height or driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], height + chrome)
    try:
        driver.save_screenshot(os.path.join(directory, name))
    finally:
        driver.set_window_size(size["width"], size["height"])


@pytest.fixture
def festival():
    """An organizer with a three-day festival: festival passes and day tickets (one variation per day)."""
    with scopes_disabled():
        organizer = Organizer.objects.create(name="Riverside Festivals", slug="riverside")
        event = organizer.events.create(
            name="Riverside Open Air", slug="openair2030", plugins=PLUGINS, currency="EUR",
            date_from=datetime(2030, 7, 19, 14, tzinfo=timezone.utc),
            date_to=datetime(2030, 7, 21, 22, tzinfo=timezone.utc),
        )
        event.settings.ticket_secret_generator = "imported_secrets"
        festival_pass = event.items.create(name="Festival pass", default_price=149, admission=True)
        day_ticket = event.items.create(name="Day ticket", default_price=59, admission=True)
        days = {day: day_ticket.variations.create(value=day) for day in ("Friday", "Saturday", "Sunday")}
        quota = event.quotas.create(name="Tickets", size=None)
        quota.items.set([festival_pass, day_ticket])
        quota.variations.set(days.values())
        user = User.objects.create_user(EMAIL, PASSWORD, fullname="Anna Berger")
        team = make_team(organizer)
        team.members.add(user)
        token = team.tokens.create(name="Box office")
    return event, festival_pass, day_ticket, days, token


def secrets_file():
    """Rows of the gate vendor's list: passes, day tickets per day, and a few codes for any ticket."""
    rows = [["Code", "Product", "Variation"]]
    rows += [[f"RF30-P-{n:04d}", "Festival pass", ""] for n in range(1, 9)]
    for day in ("Friday", "Saturday", "Sunday"):
        rows += [[f"RF30-{day[:2].upper()}-{n:03d}", "Day ticket", day] for n in range(1, 5)]
    rows += [[f"RF30-X-{n:03d}", "", ""] for n in range(1, 4)]
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def sell(event, token, positions):
    """A paid order through pretix' order API: the ticket secret generator takes the secrets from the pool."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + token.token)
    resp = client.post(f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/orders/", {
        "email": "guest@example.org", "locale": "en", "status": "p", "payment_provider": "manual",
        "positions": positions,
    }, format="json")
    assert resp.status_code == 201, resp.content.decode()
    return [p["secret"] for p in resp.json()["positions"]]


def preview_header(preview):
    return [cell.text for cell in preview.find_elements(By.CSS_SELECTOR, "thead th")]


def upload(driver, path):
    click(driver, "#pool-import")
    wait_for(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")), "the file input")
    driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(path)
    click(driver, "#upload-submit")
    return wait_for_id(driver, "import-preview")


def test_import_fix_and_export_in_the_browser(browser, festival, tmp_path):
    event, festival_pass, day_ticket, days, token = festival
    pool_path = f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/"

    # log in through pretix' login form
    browser.get(browser.base_url + "/control/login")
    wait_for_id(browser, "id_email").send_keys(EMAIL)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.form-signin button[type=submit]").click()
    wait_for(browser, lambda d: "/control/login" not in d.current_url, "the login")

    # the pool, reached through the event's navigation; pretix' stylesheet is applied
    browser.get(browser.base_url + f"/control/event/{event.organizer.slug}/{event.slug}/")
    click(browser, f'#side-menu a[href="{pool_path}"]')
    wait_for_id(browser, "pool-total")
    assert (text_of(browser, "pool-total"), text_of(browser, "pool-used"), text_of(browser, "pool-unused")) == (
        "0", "0", "0")
    assert browser.find_element(By.ID, "pool-import").value_of_css_property("display") == "inline-block"

    # a file with a typo in line 5: the preview shows it, the import refuses the whole file and names the line
    rows = secrets_file()
    broken = [list(row) for row in rows]
    broken[4][0] = "RF30-P 0004"
    preview = upload(browser, write_csv(tmp_path / "gate-codes-v1.csv", broken))
    assert "RF30-P 0004" in preview.text
    assert preview_header(preview) == ["Line", "Code", "Product", "Variation"]

    # "Update preview" reads the file again with another delimiter and keeps the choice, without errors
    for delimiter, header in ((";", ["Line", "Code,Product,Variation"]),
                              (",", ["Line", "Code", "Product", "Variation"])):
        Select(browser.find_element(By.NAME, "delimiter")).select_by_value(delimiter)
        click(browser, "#import-refresh")
        wait_for(browser, EC.staleness_of(preview), "the updated preview")
        preview = wait_for_id(browser, "import-preview")
        assert preview_header(preview) == header
        assert Select(browser.find_element(By.NAME, "delimiter")).first_selected_option.get_attribute("value") == (
            delimiter)
        assert not browser.find_elements(By.CSS_SELECTOR, ".has-error, .alert-danger")

    click(browser, "#import-submit")
    failed = wait_for_id(browser, "import-failed")
    assert "1 problem" in failed.text
    errors = browser.find_elements(By.CSS_SELECTOR, "#import-errors tbody tr")
    assert [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in errors] == [
        ["5", "Secret", "RF30-P 0004", "The secret must not contain whitespace."],
    ]
    with scopes_disabled():
        assert not ImportedSecret.objects.filter(event=event).exists()

    # the corrected file: the columns are recognised by their names, the import fills the pool
    browser.get(browser.base_url + pool_path)
    preview = upload(browser, write_csv(tmp_path / "gate-codes.csv", rows))
    assert preview_header(preview) == ["Line", "Code", "Product", "Variation"]
    assert Select(browser.find_element(By.NAME, "item")).first_selected_option.text == "Product"
    assert Select(browser.find_element(By.NAME, "variation")).first_selected_option.text == "Variation"
    screenshot(browser, "import-preview.png")
    click(browser, "#import-submit")
    wait_for_id(browser, "pool-total")
    assert "23 secrets have been imported." in browser.find_element(By.CSS_SELECTOR, ".alert-success").text
    assert (text_of(browser, "pool-total"), text_of(browser, "pool-used"), text_of(browser, "pool-unused")) == (
        "23", "0", "23")

    # tickets sold through the API take their secrets from the pool; the page counts them per product and day
    sold = sell(event, token, [
        {"item": festival_pass.pk, "price": "149.00"},
        {"item": festival_pass.pk, "price": "149.00"},
        {"item": festival_pass.pk, "price": "149.00"},
        {"item": day_ticket.pk, "variation": days["Friday"].pk, "price": "59.00"},
        {"item": day_ticket.pk, "variation": days["Friday"].pk, "price": "59.00"},
        {"item": day_ticket.pk, "variation": days["Saturday"].pk, "price": "59.00"},
    ])
    assert sold == ["RF30-P-0001", "RF30-P-0002", "RF30-P-0003", "RF30-FR-001", "RF30-FR-002", "RF30-SA-001"]
    browser.get(browser.base_url + pool_path)
    wait_for_id(browser, "pool-summary")
    assert (text_of(browser, "pool-total"), text_of(browser, "pool-used"), text_of(browser, "pool-unused")) == (
        "23", "6", "17")
    summary = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
               for row in browser.find_elements(By.CSS_SELECTOR, "#pool-summary tbody tr")]
    assert sorted(summary) == sorted([
        ["Any product", "", "3", "0", "3"],
        ["Festival pass", "Any variation", "8", "3", "5"],
        ["Day ticket", "Friday", "4", "2", "2"],
        ["Day ticket", "Saturday", "4", "1", "3"],
        ["Day ticket", "Sunday", "4", "0", "4"],
    ])
    # the page down to the tenth secret of the list
    screenshot(browser, "pool.png", height=browser.execute_script(
        "return Math.ceil(document.querySelectorAll('#pool-list tbody tr')[9].getBoundingClientRect().bottom"
        " + window.scrollY)"))

    # the export, as CSV, downloaded by the browser
    click(browser, "#pool-export")
    wait_for(browser, EC.presence_of_element_located((By.NAME, "imported_secrets-_format")), "the export form")
    Select(browser.find_element(By.NAME, "imported_secrets-_format")).select_by_value("default")
    click(browser, "form[data-asynctask] button.btn-save")
    exported = browser.downloads / f"{event.slug}_imported_secrets.csv"
    wait_for(browser, lambda d: exported.exists() and not list(d.downloads.glob("*.crdownload")), "the download")
    with open(exported, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0][:3] == ["Secret", "Used", "Used at"]
    assert [line[0] for line in lines[1:]] == [row[0] for row in rows[1:]]
    with scopes_disabled():
        order_code = event.orders.get().code
    assert lines[1][1] == "Yes" and lines[1][5] == order_code and lines[1][-1] == "paid"
    assert lines[-1][1] == "No" and lines[-1][5] == "" and lines[-1][-1] == ""
    assert datetime.fromisoformat(lines[1][2]) <= now()

    # no page had a JavaScript error, a blocked resource (Content Security Policy) or a file that failed to load
    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []


def test_pool_page_fits_a_narrow_screen_and_the_longest_secret(browser, festival):
    event, festival_pass, day_ticket, days, token = festival
    longest = "RF30-" + "7" * (SECRET_MAX_LENGTH - 5)
    with scopes_disabled():
        for n, (item, variation) in enumerate([(festival_pass, None), (None, None)] + [
                (day_ticket, variation) for variation in days.values()]):
            ImportedSecret.objects.create(event=event, organizer=event.organizer, secret=f"RF30-{n}", item=item,
                                          variation=variation)
        ImportedSecret.objects.create(event=event, organizer=event.organizer, secret=longest, item=festival_pass)
    browser.get(browser.base_url + "/control/login")
    wait_for_id(browser, "id_email").send_keys(EMAIL)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.form-signin button[type=submit]").click()
    wait_for(browser, lambda d: "/control/login" not in d.current_url, "the login")
    pool_url = browser.base_url + f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/"

    def right_edge(css):
        """How far ``css`` reaches beyond the viewport's right edge (rects count what a scrolling box hides too)."""
        return browser.execute_script(
            "return arguments[0].getBoundingClientRect().right - document.documentElement.clientWidth",
            browser.find_element(By.CSS_SELECTOR, css))

    # a phone: the summary's last column, the secrets left, is on the screen
    browser.set_window_size(400, 900)
    browser.get(pool_url)
    wait_for_id(browser, "pool-summary")
    assert browser.execute_script("return document.documentElement.clientWidth") <= 400
    assert browser.find_element(By.CSS_SELECTOR, "#pool-summary thead th:last-child").text == "Left"
    assert right_edge("#pool-summary thead th:last-child") <= 0
    assert right_edge("#pool-summary tbody tr:last-child td:last-child") <= 0

    # a desktop: a secret of 255 characters wraps, the columns after it stay on the screen
    browser.set_window_size(1280, 900)
    browser.get(pool_url)
    wait_for_id(browser, "pool-list")
    headers = browser.find_elements(By.CSS_SELECTOR, "#pool-list thead th")
    assert [th.text for th in headers][-4:] == ["Secret", "Product", "Status", "Ticket"]
    assert right_edge("#pool-list thead th:nth-last-child(2)") <= 0  # Status
    assert right_edge("#pool-list thead th:last-child") <= 0  # Ticket
    code = browser.find_element(By.XPATH, f"//table[@id='pool-list']//code[text()='{longest}']")
    assert code.size["height"] > 2 * browser.find_element(By.CSS_SELECTOR, "#pool-list tbody code").size["height"]

    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []


def log_in(driver):
    driver.get(driver.base_url + "/control/login")
    wait_for_id(driver, "id_email").send_keys(EMAIL)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.form-signin button[type=submit]").click()
    wait_for(driver, lambda d: "/control/login" not in d.current_url, "the login")


def test_misfits_are_deleted_at_once_and_the_format_change_goes_through(browser, festival):
    """A refused format change: its misfits counted, all deleted after one confirmation, the change filled in again."""
    event, festival_pass, day_ticket, days, token = festival
    with scopes_disabled():
        ImportedSecret.objects.bulk_create(
            [ImportedSecret(event=event, organizer=event.organizer, secret=f"RF30-{n:03d}") for n in range(55)]
            + [ImportedSecret(event=event, organizer=event.organizer, secret=f"3000{n:03d}") for n in range(5)]
            + [ImportedSecret(event=event, organizer=event.organizer, secret="RF30-SOLD", used=True)])
    log_in(browser)
    browser.get(browser.base_url + f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/settings")
    click(browser, "input[name=secrets_import_format][value=digits]")
    click(browser, "form.form-horizontal button.btn-save")
    click(browser, 'a[href*="/secrets_import/misfits?"]')  # "Show them"

    counted = wait_for_id(browser, "misfits-count").text
    assert counted.startswith(
        '55 unused secrets of the pool do not fit the format "Digits only". This page shows numbers 1 to 50.')
    assert len(browser.find_elements(By.CSS_SELECTOR, "#pool-misfits tbody tr")) == 50
    click(browser, "#misfits-delete-all")
    assert wait_for_id(browser, "misfits-delete-question").text == (
        'Do you really want to delete all 55 unused secrets that do not fit the format "Digits only"? This cannot be '
        'undone.')
    click(browser, "#misfits-delete-confirm")

    # back on the settings page, with the format filled in again: one click saves it
    wait_for(browser, EC.url_contains("/secrets_import/settings"), "the settings page")
    messages = browser.find_element(By.TAG_NAME, "body").text
    assert "55 secrets that did not fit have been deleted." in messages
    assert "The code format you wanted is filled in again. Save to change the settings." in messages
    assert browser.find_element(By.CSS_SELECTOR, "input[name=secrets_import_format][value=digits]").is_selected()
    click(browser, "form.form-horizontal button.btn-save")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".alert-success"),
                                                       "Your changes have been saved."), "the saved settings")
    event.settings.flush()
    assert event.settings.secrets_import_format == "digits"
    with scopes_disabled():
        assert sorted(ImportedSecret.objects.filter(event=event).values_list("secret", flat=True)) == [
            "3000000", "3000001", "3000002", "3000003", "3000004", "RF30-SOLD"]

    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []


def test_every_secret_that_matches_a_filter_is_selected_and_deleted(browser, festival):
    """Ticking the page offers every secret the filter matches; the confirmation counts them and the used ones."""
    event, festival_pass, day_ticket, days, token = festival
    with scopes_disabled():
        ImportedSecret.objects.bulk_create(
            [ImportedSecret(event=event, organizer=event.organizer, secret=f"RF30-P-{n:03d}", item=festival_pass)
             for n in range(60)]
            + [ImportedSecret(event=event, organizer=event.organizer, secret=f"RF30-P-SOLD-{n}", item=festival_pass,
                              used=True) for n in range(2)]
            + [ImportedSecret(event=event, organizer=event.organizer, secret=f"RF30-D-{n}", item=day_ticket)
               for n in range(5)])
    log_in(browser)
    pool_path = f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/"
    browser.get(browser.base_url + pool_path)
    Select(wait_for(browser, EC.presence_of_element_located((By.NAME, "item")), "the product filter")
           ).select_by_visible_text("Festival pass")
    click(browser, ".filter-form button[type=submit]")
    wait_for_id(browser, "pool-filtered")
    assert (text_of(browser, "pool-total"), text_of(browser, "pool-used"), text_of(browser, "pool-unused")) == (
        "62", "2", "60")

    assert not browser.find_element(By.ID, "pool-select-all").is_displayed()
    click(browser, "input[data-toggle-table]")
    assert text_of(browser, "pool-select-all") == "Select all 62 secrets that match this search and filter"
    click(browser, "#pool-select-all")
    assert text_of(browser, "pool-delete").endswith("(62)")
    click(browser, "#pool-delete")
    assert wait_for_id(browser, "pool-delete-question").text == (
        "Do you really want to delete the 60 selected secrets? This cannot be undone.")
    assert "2 more selected secrets are already on tickets and will be kept." in browser.find_element(
        By.TAG_NAME, "body").text
    click(browser, "button[name=confirm]")

    # the whole pool, unfiltered, with the result
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".alert-success"),
                                                       "60 secrets have been deleted."), "the deletion")
    assert browser.current_url == browser.base_url + pool_path
    assert not browser.find_elements(By.ID, "pool-filtered")
    assert (text_of(browser, "pool-total"), text_of(browser, "pool-used"), text_of(browser, "pool-unused")) == (
        "7", "2", "5")

    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []


@pytest.fixture
def demo_shop():
    """The shop of `make demo`, built by the same code: the event `sampleconf` of demo/setup_demo.py."""
    return setup_demo.create_demo_data().events.get(slug="sampleconf")


def shop_url(browser, event):
    return f"{browser.base_url}/{event.organizer.slug}/{event.slug}/"


def test_demo_shop_sells_a_ticket_with_a_pool_secret(browser, demo_shop):
    event = demo_shop
    with scopes_disabled():
        regular = event.items.get(name="Regular ticket")
        pool = set(ImportedSecret.objects.filter(event=event).values_list("secret", flat=True))

    # the product list: one regular ticket into the cart, then through pretix' checkout
    browser.get(shop_url(browser, event))
    wait_for_id(browser, f"item_{regular.pk}").send_keys("1")
    click(browser, "#btn-add-to-cart")
    click(browser, ".checkout-button-primary button[type=submit]")
    wait_for_id(browser, "id_email").send_keys("guest@example.org")
    click(browser, "button.btn-primary.btn-lg[type=submit]")
    click(browser, 'input[name="payment"][value="banktransfer"]')
    click(browser, "button.btn-primary.btn-lg[type=submit]")
    wait_for(browser, EC.url_contains("/checkout/confirm/"), "the confirmation step")
    click(browser, "button.btn-primary.btn-lg[type=submit]")

    # the order page thanks the customer and tells them where to transfer the money
    wait_for(browser, EC.visibility_of_element_located((By.CSS_SELECTOR, ".thank-you")), "the placed order")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert setup_demo.BANK_DETAILS["bank_details_sepa_name"] in page and "DE02 1203 0000 0000 2020 51" in page
    screenshot(browser, "shop-order.png")

    # the ticket got the first secret of the pool restricted to its product, now marked as used
    with scopes_disabled():
        order = event.orders.get()
        secret = order.positions.get().secret
        assert order.code in browser.current_url and order.status == order.STATUS_PENDING
        assert secret in pool and secret == "REG-0001"
        assert ImportedSecret.objects.get(event=event, secret=secret).used

    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []


def test_demo_shop_shows_a_product_and_a_variation_sold_out_when_no_secret_fits(browser, demo_shop):
    """
    As issue 25 reported it: no secret left for regular tickets and for the morning workshop (their own and the
    unrestricted ones gone), one of its own for the afternoon workshop. Both are sold out; the afternoon sells.
    """
    event = demo_shop
    with scopes_disabled():
        regular = event.items.get(name="Regular ticket")
        workshop = event.items.get(name="Workshop ticket")
        morning, afternoon = workshop.variations.get(value="Morning"), workshop.variations.get(value="Afternoon")
        shirt = event.items.get(name="T-Shirt")
        ImportedSecret.objects.filter(Q(item=regular) | Q(variation=morning) | Q(item__isnull=True), event=event,
                                      used=False).delete()
        ImportedSecret.objects.create(event=event, organizer=event.organizer, secret="WSA-0001", item=workshop,
                                      variation=afternoon)

    browser.get(shop_url(browser, event))
    regular_row = wait_for_id(browser, f"item-{regular.pk}")
    assert regular_row.find_element(By.CSS_SELECTOR, ".availability-box.gone").text == "SOLD OUT"
    assert not regular_row.find_elements(By.CSS_SELECTOR, "input")
    # the workshop is on sale as a whole: its variants show sold out the morning and offer the afternoon
    workshop_row = browser.find_element(By.ID, f"item-{workshop.pk}")
    assert "SOLD OUT" not in workshop_row.find_element(By.CSS_SELECTOR, ".headline").text
    click(browser, f"#item-{workshop.pk} button[data-toggle=variations]")
    morning_box = f"#item-{workshop.pk}-{morning.pk} .availability-box.gone"
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, morning_box), "SOLD OUT"), "the variants")
    assert not browser.find_elements(By.CSS_SELECTOR, f"#item-{workshop.pk}-{morning.pk} input")
    # the shirt draws no secret from the pool: it stays on sale
    shirt_row = browser.find_element(By.ID, f"item-{shirt.pk}")
    assert not shirt_row.find_elements(By.CSS_SELECTOR, ".availability-box.gone")
    assert shirt_row.find_elements(By.CSS_SELECTOR, ".availability-box.available")
    browser.execute_script("document.activeElement.blur()")  # no focus ring on the screenshot
    screenshot(browser, "shop-sold-out.png")

    # the afternoon workshop goes into the cart and past the check at the start of the checkout
    click(browser, f"#item-{workshop.pk}-{afternoon.pk} label.btn-checkbox")
    click(browser, "#btn-add-to-cart")
    click(browser, ".checkout-button-primary button[type=submit]")
    wait_for_id(browser, "id_email")
    assert "no ticket code left" not in browser.find_element(By.TAG_NAME, "body").text
