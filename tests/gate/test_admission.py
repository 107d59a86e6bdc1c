"""admission.py restates pretix' check-in rules: these tests fail when pretix changes the code it restates."""
import hashlib
import inspect

import pytest

from pretix.api.views.checkin import (
    _checkin_list_position_queryset, _redeem_process,
)
from pretix.base.models import Order
from pretix.base.services.checkin import perform_checkin

from pretix_secrets_import.gate import admission
from pretix_secrets_import.gate.admission import Scope

# The sources of pretix 2026.8.0 that admission.py was written against and tests/gate/test_list_feed.py compares with.
REVIEWED = {
    perform_checkin: "d2443fb920c3ffc867419ba33288b15b6891af08ebda0b7358981950bcbd4c37",
    _redeem_process: "154bb296a8ba6356a8f3351e9d3850643fd12c0c4b90da416442e423686ee5e8",
    _checkin_list_position_queryset: "2344a3cb716668d51fc2fb7af16b98add12021e25e3135b7c87affa2fd3825df",
}


@pytest.mark.parametrize("function", list(REVIEWED), ids=lambda f: f.__name__)
def test_pretix_check_in_code_is_the_reviewed_one(function):
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
    assert digest == REVIEWED[function], (
        f"pretix changed {function.__name__}: compare it with admission.py, run tests/gate/test_list_feed.py, then "
        f"update the digest here")


@pytest.mark.parametrize("canceled, status, approval, blocked, expected", [
    (True, Order.STATUS_PAID, False, False, admission.INVALID),
    (False, Order.STATUS_CANCELED, False, True, admission.CANCELED),
    (False, Order.STATUS_EXPIRED, False, False, admission.CANCELED),
    (False, Order.STATUS_PAID, False, True, admission.BLOCKED),
    (False, Order.STATUS_PENDING, True, True, admission.BLOCKED),
    (False, Order.STATUS_PENDING, True, False, admission.UNAPPROVED),
    (False, Order.STATUS_PENDING, False, False, None),
    (False, Order.STATUS_PAID, False, False, None),
])
def test_ticket_refusal_in_pretix_order(canceled, status, approval, blocked, expected):
    assert admission.ticket_refusal(canceled, status, approval, blocked) == expected


def ticket(**kwargs):
    return {"refusal": None, "state": "valid", "item_id": 1, "subevent_id": None, "valid_if_pending": False,
            **kwargs}


def test_refusal_on_a_list():
    everything = Scope(1, True, frozenset(), None, False, False, False)
    one_product = everything._replace(all_products=False, products=frozenset({2}))
    one_date = everything._replace(subevent_id=7)
    pending_too = everything._replace(include_pending=True)
    assert admission.refusal(everything, ticket()) is None
    assert admission.refusal(one_product, ticket()) == admission.PRODUCT
    assert admission.refusal(one_product, ticket(refusal=admission.BLOCKED)) == admission.BLOCKED
    assert admission.refusal(one_date, ticket(subevent_id=8, refusal=admission.BLOCKED)) == admission.INVALID
    assert admission.refusal(everything, ticket(state="pending")) == admission.UNPAID
    assert admission.refusal(everything, ticket(state="pending", valid_if_pending=True)) is None
    assert admission.refusal(everything, ticket(state="pending"), ignore_unpaid=True) == admission.UNPAID
    assert admission.refusal(pending_too, ticket(state="pending"), ignore_unpaid=True) is None
    assert admission.refusal(pending_too, ticket(state="pending")) == admission.UNPAID


def test_the_fingerprint_follows_every_setting():
    base = Scope(1, True, frozenset(), None, False, False, False)
    prints = {base.fingerprint("[]"), base.fingerprint('{"and": []}'),
              base._replace(all_products=False).fingerprint("[]"),
              base._replace(products=frozenset({3})).fingerprint("[]"),
              base._replace(subevent_id=4).fingerprint("[]"),
              base._replace(include_pending=True).fingerprint("[]"),
              base._replace(addon_match=True).fingerprint("[]")}
    assert len(prints) == 7
