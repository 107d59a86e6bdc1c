"""``clean_rows`` passing over the secrets that the event's pool holds with the same restriction."""
import pytest
from django_scopes import scopes_disabled

from pretix_secrets_import.pool import codeformat
from pretix_secrets_import.pool.validation import all_clean, clean_rows
from tests.helpers import add_secret, add_ticket

pytestmark = pytest.mark.django_db


def test_known_secrets_are_marked_and_the_others_checked_as_ever(event, event2, item, item2, variation):
    same = add_secret(event, "SAME", item=item2, variation=variation, used=True)
    add_ticket(event, "SAME")
    add_secret(event, "OTHER", item=item)
    add_secret(event2, "ELSEWHERE")
    event.settings.set(codeformat.FORMAT, codeformat.DIGITS)
    rows = [{"secret": "SAME", "variation": variation.pk}, {"secret": "OTHER"}, {"secret": "ELSEWHERE"},
            {"secret": "NEW"}, {"secret": "123"}, {"secret": "SAME", "variation": variation.pk}]
    with scopes_disabled():
        cleaned, errors = clean_rows(event, rows, pass_over=True)
    assert cleaned[0]["known"] == same.pk and cleaned[0]["item"] == item2 and errors[0] == {}
    taken = "This secret has already been imported for this organizer."
    misfit = "{} contains characters other than digits, the only ones this event's codes have."
    # this event's pool took OTHER when it fitted; another event's secret is checked as without passing over
    assert [error.get("secret") for error in errors[1:4]] == [
        [taken], [misfit.format("ELSEWHERE")], [misfit.format("NEW")]]
    assert cleaned[4] == {"secret": "123", "used": False, "item": None, "variation": None, "subevent": None}
    assert errors[5]["secret"][0] == "This secret appears more than once in your input (first in entry 1)."
    with scopes_disabled():
        _cleaned, errors = clean_rows(event, rows[:1])
    assert errors[0]["secret"] == [misfit.format("SAME")]  # without passing over, as ever


SECRETS = ["A-1", "A-2", "1234", "a b", "", "x" * 256, "A-1", "Ü", "\u200b", "99"]


@pytest.mark.parametrize("format_kind", [None, codeformat.DIGITS])
@pytest.mark.parametrize("picks", [(0, 1), (2, 9), (0, 6), (3,), (4,), (5,), (7, 8), (2,), (0, 1, 2, 7, 9)])
def test_all_clean_agrees_with_clean_rows(event, event2, item, item2, variation, format_kind, picks):
    """The file import's COPY takes a chunk exactly when ``clean_rows`` finds nothing wrong with any of its rows."""
    if format_kind:
        event.settings.set(codeformat.FORMAT, format_kind)
    with scopes_disabled():
        other_item = event2.items.create(name="Elsewhere", default_price=0)
    secrets = [SECRETS[i] for i in picks]
    restrictions = [{}, {"item": item.pk}, {"variation": variation.pk}, {"item": item.pk, "variation": variation.pk},
                    {"item": item2.pk, "variation": variation.pk}, {"item": other_item.pk}, {"subevent": 1}]
    for restriction in restrictions:
        restriction = {"item": None, "variation": None, "subevent": None, **restriction}
        with scopes_disabled():
            cleaned, errors = clean_rows(event, [{"secret": s, **restriction} for s in secrets], check_pool=False,
                                         check_tickets=False)
            clean = all_clean(event, secrets, restriction)
        if any(errors):
            assert clean is None, (secrets, restriction)
        else:
            assert clean == {key: value for key, value in cleaned[0].items() if key != "secret"}, restriction
