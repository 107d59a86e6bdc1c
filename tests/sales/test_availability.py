"""
What pretix shows as available while tickets draw from the pool: quotas, products and variations (per date) capped
at the secrets that fit them, through pretix' own shop, widget and quota code; and the patch of pretix this needs.
"""
import html
import inspect
import logging
import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

import pretix
from pretix.base.models import CartPosition, Item, ItemVariation
from pretix.base.models.waitinglist import WaitingListException

from demo import setup_demo
from pretix_secrets_import.models import ImportedSecret, PoolCount
from pretix_secrets_import.sales import availability
from tests.helpers import add_secret
from tests.sales.test_generator import use_generator

pytestmark = pytest.mark.django_db

OK, GONE = 100, 0


# --- the patch of pretix' check_quotas ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Item, ItemVariation], ids=lambda model: model.__name__)
def test_patched_code_is_the_reviewed_one(model):
    found = availability.fingerprint(model.check_quotas)
    assert found == availability.REVIEWED_FINGERPRINTS[model], (
        f"pretix changed {model.__name__}.check_quotas, which pretix_secrets_import/sales/availability.py wraps. "
        "Review availability.py against the new code (does the shop still ask check_quotas for each product and "
        "variation, with the date, the quota cache and include_bundled, and does the answer still mean (state, "
        f"number)?), adapt it, then set REVIEWED_FINGERPRINTS[{model.__name__}] to {found!r}."
    )


def test_installed_pretix_is_the_reviewed_release():
    assert pretix.__version__.startswith(availability.REVIEWED_PRETIX + "."), (
        f"pretix {pretix.__version__} is installed, but pretix_secrets_import/sales/availability.py was reviewed for "
        f"pretix {availability.REVIEWED_PRETIX}. Review it against this release, then set REVIEWED_PRETIX."
    )


def test_patch_is_installed_once():
    methods = Item.check_quotas, ItemVariation.check_quotas
    assert all(method.secrets_import_capped for method in methods)
    availability.install()
    assert (Item.check_quotas, ItemVariation.check_quotas) == methods


@pytest.mark.parametrize("target, name, value, logged", [
    (pretix, "__version__", "2026.9.0", "this is pretix 2026.9.0"),
    (availability, "REVIEWED_FINGERPRINTS", {Item: "0" * 64, ItemVariation: "0" * 64},
     "the source of Item.check_quotas is not the reviewed one"),
], ids=["other release", "changed code"])
def test_unreviewed_pretix_gets_the_patch_and_a_warning(monkeypatch, caplog, target, name, value, logged):
    monkeypatch.setattr(Item, "check_quotas", inspect.unwrap(Item.check_quotas))
    monkeypatch.setattr(target, name, value)
    with caplog.at_level(logging.WARNING, logger=availability.__name__):
        availability.install()
    assert Item.check_quotas.secrets_import_capped
    [record] = caplog.records
    assert "Item.check_quotas at the pool's secrets was written for pretix 2026.8 and needs a review (" + logged \
        in record.getMessage()
    assert record.getMessage().endswith("It is installed anyway.")


def test_patch_stays_off_when_pretix_renamed_an_argument_it_reads(monkeypatch, caplog):
    def check_quotas(self, ignored_quotas=None, count_waitinglist=True, date=None, _cache=None,
                     include_bundled=False, trust_parameters=False, fail_on_no_quotas=False):
        return OK, None

    monkeypatch.setattr(Item, "check_quotas", check_quotas)
    with caplog.at_level(logging.WARNING, logger=availability.__name__):
        availability.install()
    assert Item.check_quotas is check_quotas
    assert "It is not installed: the method has no argument subevent." in caplog.text


# --- quotas ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def shop(event):
    """Tickets and a workshop in the morning and in the afternoon, all in one quota with a T-shirt."""
    use_generator(event)
    ticket = event.items.create(name="Ticket", default_price=10, admission=True)
    workshop = event.items.create(name="Workshop", default_price=10, admission=True)
    morning = workshop.variations.create(value="Morning")
    afternoon = workshop.variations.create(value="Afternoon")
    shirt = event.items.create(name="Shirt", default_price=10, admission=False)
    quota = event.quotas.create(name="All", size=None)
    quota.items.add(ticket, workshop, shirt)
    quota.variations.add(morning, afternoon)
    return SimpleNamespace(event=event, ticket=ticket, workshop=workshop, morning=morning, afternoon=afternoon,
                           shirt=shirt, quota=quota)


@scopes_disabled()
def quota_for(shop, name, item, *variations):
    quota = shop.event.quotas.create(name=name, size=None)
    quota.items.add(item)
    quota.variations.add(*variations)
    return quota


def quota_availability(quota):
    with scopes_disabled():
        return quota.availability()


def test_quota_of_pool_products_is_sold_out_when_pool_is_empty(shop):
    tickets = quota_for(shop, "Tickets", shop.ticket)
    assert quota_availability(tickets) == (GONE, 0)
    add_secret(shop.event, "A")
    add_secret(shop.event, "B", item=shop.ticket)
    add_secret(shop.event, "C", item=shop.workshop)
    add_secret(shop.event, "D", used=True)
    assert quota_availability(tickets) == (OK, 2)
    tickets.size = 1
    tickets.save()
    assert quota_availability(tickets) == (OK, 1)


def test_cart_refuses_a_product_whose_quota_has_no_secret_left(shop):
    """Adding to the cart asks the quotas only: a quota of pool products is capped for it too."""
    with scopes_disabled():
        shop.quota.items.remove(shop.ticket)
    quota_for(shop, "Tickets", shop.ticket)
    client = Client()
    assert "SOLD OUT" in client.get(f"/{shop.event.organizer.slug}/{shop.event.slug}/").content.decode()
    resp = client.post(f"/{shop.event.organizer.slug}/{shop.event.slug}/cart/add", {f"item_{shop.ticket.pk}": "1"},
                       follow=True)
    assert "no longer available" in resp.content.decode()
    with scopes_disabled():
        assert not CartPosition.objects.filter(event=shop.event).exists()


def test_quota_of_one_variation_counts_only_the_secrets_that_fit_it(shop):
    """The report of issue 25: the afternoon's own secrets kept the morning's quota on sale."""
    morning = quota_for(shop, "Morning", shop.workshop, shop.morning)
    afternoon = quota_for(shop, "Afternoon", shop.workshop, shop.afternoon)
    both = quota_for(shop, "Both", shop.workshop, shop.morning, shop.afternoon)
    add_secret(shop.event, "PM-1", item=shop.workshop, variation=shop.afternoon)
    add_secret(shop.event, "PM-2", item=shop.workshop, variation=shop.afternoon)
    assert quota_availability(morning) == (GONE, 0)
    assert quota_availability(afternoon) == (OK, 2)
    assert quota_availability(both) == (OK, 2)
    add_secret(shop.event, "WS-1", item=shop.workshop)  # fits both, counted once in the quota of both
    assert [quota_availability(q) for q in (morning, afternoon, both)] == [(OK, 1), (OK, 3), (OK, 3)]


@pytest.fixture
def day_pass(series, subevent, subevent2):
    """A series whose day pass has a quota of 100 on each of its two dates."""
    use_generator(series)
    ticket = series.items.create(name="Day pass", default_price=0, admission=True)
    for se in (subevent, subevent2):
        series.quotas.create(name=str(se.name), size=100, subevent=se).items.add(ticket)
    return ticket


def test_quota_of_dated_pool_products_counts_secrets_of_its_date(series, subevent2, day_pass):
    with scopes_disabled():
        quotas = list(series.quotas.order_by("subevent__date_from"))
    add_secret(series, "DAY2", subevent=subevent2)
    add_secret(series, "ANY")
    assert [quota_availability(q) for q in quotas] == [(OK, 1), (OK, 2)]


def test_series_calendar_shows_a_date_sold_out_without_fitting_secrets(token_client, series, subevent, subevent2,
                                                                       day_pass):
    """
    pretix' event list, calendar and widget ask the dates' quotas (``best_availability_state``); a date with an
    unlimited quota counts as available there whatever its quota says.
    """
    add_secret(series, "DAY2", subevent=subevent2)
    resp = token_client.get(f"/api/v1/organizers/{series.organizer.slug}/events/{series.slug}/subevents/",
                            {"with_availability_for": "web"})
    states = {date["id"]: date["best_availability_state"] for date in resp.data["results"]}
    assert states == {subevent.pk: GONE, subevent2.pk: OK}


def test_quota_with_other_products_is_not_limited(shop):
    assert quota_availability(shop.quota) == (OK, None)


@pytest.mark.parametrize("setting,value", [
    ("secrets_import_when_empty", "random"),
    ("ticket_secret_generator", "random"),
])
def test_quota_is_not_limited_without_refusing_generator(shop, setting, value):
    tickets = quota_for(shop, "Tickets", shop.ticket)
    shop.event.settings.set(setting, value)
    assert quota_availability(tickets) == (OK, None)


# --- products and variations ----------------------------------------------------------------------------------------


def available(product, **kwargs):
    with scopes_disabled():
        return tuple(product.check_quotas(**kwargs))


def test_variation_without_secrets_is_sold_out_while_its_sibling_sells(shop):
    add_secret(shop.event, "PM-1", item=shop.workshop, variation=shop.afternoon)
    assert available(shop.morning) == (GONE, 0)
    assert available(shop.afternoon) == (OK, 1)
    assert available(shop.ticket) == (GONE, 0)
    assert available(shop.shirt) == (OK, None)  # no pool secrets: pretix' own answer
    add_secret(shop.event, "ANY")
    assert [available(p) for p in (shop.morning, shop.afternoon, shop.ticket)] == [(OK, 1), (OK, 2), (OK, 1)]
    shop.quota.size = 1
    shop.quota.save()
    assert available(shop.afternoon) == (OK, 1)  # the smaller of the quota and the pool


def test_dated_products_count_the_secrets_of_their_date(series, subevent, subevent2, day_pass):
    add_secret(series, "DAY2", item=day_pass, subevent=subevent2)
    assert available(day_pass, subevent=subevent) == (GONE, 0)
    assert available(day_pass, subevent=subevent2) == (OK, 1)


def test_a_bundle_needs_secrets_for_the_tickets_it_bundles(shop):
    with scopes_disabled():
        package = shop.event.items.create(name="Package", default_price=10, admission=False)
        shop.quota.items.add(package)
        package.bundles.create(bundled_item=shop.ticket, count=2, designated_price=0)
    add_secret(shop.event, "T-1", item=shop.ticket)
    assert available(package) == (OK, None)  # pretix' own question without bundles
    assert available(package, include_bundled=True) == (GONE, 0)
    add_secret(shop.event, "T-2", item=shop.ticket)
    add_secret(shop.event, "T-3", item=shop.ticket)
    assert available(package, include_bundled=True) == (OK, 1)


@pytest.mark.parametrize("change", ["generator", "when_empty", "plugin"])
def test_nothing_changes_for_events_without_the_refusing_pool(shop, change):
    if change == "generator":
        shop.event.settings.ticket_secret_generator = "random"
    elif change == "when_empty":
        shop.event.settings.secrets_import_when_empty = "random"
    else:
        shop.event.disable_plugin("pretix_secrets_import")
        shop.event.save()
    shop.quota.size = 5
    shop.quota.save()
    for product in (shop.ticket, shop.morning, shop.afternoon, shop.shirt):
        with scopes_disabled():
            pretix_answer = tuple(inspect.unwrap(type(product).check_quotas)(product))
        assert available(product) == pretix_answer == (OK, 5)


def test_the_pool_is_read_once_per_quota_cache(shop):
    add_secret(shop.event, "ANY")
    cache = {}
    with CaptureQueriesContext(connection) as queries:
        for product in (shop.ticket, shop.morning, shop.afternoon):
            assert available(product, _cache=cache) == (OK, 1)
    assert sum(PoolCount._meta.db_table in query["sql"] for query in queries.captured_queries) == 1


# --- pretix' shop and widget on the demo data -----------------------------------------------------------------------


@pytest.fixture
def demo_shop():
    """
    The demo's Sample Conference as issue 25 reported it: no secret left for regular tickets and the morning workshop
    (their own and the unrestricted ones gone), one of its own for the afternoon workshop.
    """
    with scopes_disabled():
        event = setup_demo.create_demo_data().events.get(slug="sampleconf")
        regular, workshop = event.items.get(name="Regular ticket"), event.items.get(name="Workshop ticket")
        morning, afternoon = workshop.variations.get(value="Morning"), workshop.variations.get(value="Afternoon")
        ImportedSecret.objects.filter(Q(item=regular) | Q(variation=morning) | Q(item__isnull=True),
                                      event=event).delete()
    add_secret(event, "WSA-0001", item=workshop, variation=afternoon)
    return SimpleNamespace(event=event, regular=regular, workshop=workshop, morning=morning, afternoon=afternoon)


def product_rows(page) -> dict:
    """The shop's product list: the HTML of each product's and each variation's row, by its element ID."""
    return {match.group(1): match.group(2) for match in re.finditer(
        r'<article[^>]* id="(item-[0-9-]+)"(.*?)(?=<article|</section>|$)', page, re.S)}


def shop_page(event, **settings):
    event.settings.set("hide_sold_out", settings.get("hide_sold_out", False))
    return Client().get(f"/{event.organizer.slug}/{event.slug}/").content.decode()


def test_shop_sells_the_afternoon_while_the_morning_is_sold_out(demo_shop):
    rows = product_rows(shop_page(demo_shop.event))
    morning = rows[f"item-{demo_shop.workshop.pk}-{demo_shop.morning.pk}"]
    afternoon = rows[f"item-{demo_shop.workshop.pk}-{demo_shop.afternoon.pk}"]
    assert "availability-box gone" in morning and "SOLD OUT" in morning and "<input" not in morning
    assert f'name="variation_{demo_shop.workshop.pk}_{demo_shop.afternoon.pk}"' in afternoon
    assert "SOLD OUT" not in rows[f"item-{demo_shop.workshop.pk}"]  # the product itself still sells
    assert "SOLD OUT" in rows[f"item-{demo_shop.regular.pk}"]  # no secret left: its own and the unrestricted gone


def test_shop_caps_each_product_of_a_quota_it_shares_with_a_t_shirt(shop):
    add_secret(shop.event, "PM-1", item=shop.workshop, variation=shop.afternoon)
    rows = product_rows(shop_page(shop.event))
    assert "SOLD OUT" in rows[f"item-{shop.workshop.pk}-{shop.morning.pk}"]
    assert f'name="variation_{shop.workshop.pk}_{shop.afternoon.pk}"' in \
        rows[f"item-{shop.workshop.pk}-{shop.afternoon.pk}"]
    assert "SOLD OUT" in rows[f"item-{shop.ticket.pk}"]
    assert f'name="item_{shop.shirt.pk}"' in rows[f"item-{shop.shirt.pk}"]


def test_shop_shows_a_product_sold_out_when_all_its_variations_are(demo_shop):
    with scopes_disabled():
        ImportedSecret.objects.filter(event=demo_shop.event, secret="WSA-0001").delete()
    rows = product_rows(shop_page(demo_shop.event))
    assert '<strong class="gone">SOLD OUT</strong>' in rows[f"item-{demo_shop.workshop.pk}"]
    page = shop_page(demo_shop.event, hide_sold_out=True)
    assert f'id="item-{demo_shop.workshop.pk}"' not in page and "T-Shirt" in page


def test_hide_sold_out_hides_the_variation_without_secrets(demo_shop):
    rows = product_rows(shop_page(demo_shop.event, hide_sold_out=True))
    assert f"item-{demo_shop.workshop.pk}-{demo_shop.morning.pk}" not in rows
    assert f"item-{demo_shop.workshop.pk}-{demo_shop.afternoon.pk}" in rows
    assert f"item-{demo_shop.regular.pk}" not in rows


def test_widget_reports_each_variation(demo_shop):
    event = demo_shop.event
    data = Client().get(f"/{event.organizer.slug}/{event.slug}/widget/product_list").json()
    items = {item["id"]: item for category in data["items_by_category"] for item in category["items"]}
    variations = {v["id"]: v["avail"][0] for v in items[demo_shop.workshop.pk]["variations"]}
    assert variations == {demo_shop.morning.pk: GONE, demo_shop.afternoon.pk: OK}
    assert items[demo_shop.regular.pk]["avail"][0] == GONE


def test_waiting_list_takes_a_variation_without_secrets_and_waits_for_new_ones(demo_shop):
    event, workshop = demo_shop.event, demo_shop.workshop
    event.settings.waiting_list_enabled = True
    client, url = Client(), f"/{event.organizer.slug}/{event.slug}/waitinglist/"
    form = client.get(url).content.decode()  # offers what is sold out only
    assert f'value="{workshop.pk}-{demo_shop.morning.pk}"' in form
    assert f'value="{workshop.pk}-{demo_shop.afternoon.pk}"' not in form
    resp = client.post(url, {"itemvar": f"{workshop.pk}-{demo_shop.morning.pk}", "email": "guest@example.org"},
                       follow=True)
    assert "We've added you to the waiting list." in html.unescape(resp.content.decode())
    with scopes_disabled():
        entry = event.waitinglistentries.get()
        assert entry.variation == demo_shop.morning
        with pytest.raises(WaitingListException, match="not available"):  # no voucher for a ticket without a secret
            entry.send_voucher()
    add_secret(event, "WSM-NEW", item=workshop, variation=demo_shop.morning)
    with scopes_disabled():
        entry.send_voucher()
        assert entry.voucher is not None


def test_shop_without_the_pool_offers_what_pretix_offers(demo_shop):
    demo_shop.event.settings.ticket_secret_generator = "random"
    rows = product_rows(shop_page(demo_shop.event))
    assert "SOLD OUT" not in "".join(rows.values())
    assert f'name="variation_{demo_shop.workshop.pk}_{demo_shop.morning.pk}"' in \
        rows[f"item-{demo_shop.workshop.pk}-{demo_shop.morning.pk}"]
