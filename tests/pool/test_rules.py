"""The rules for a pool secret (rules.py)."""
import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, strategies as st

from pretix_secrets_import.pool.rules import (
    SECRET_MAX_LENGTH, all_valid_and_distinct, check_secrets, validate_secret,
)


@pytest.mark.parametrize("value", ["foobar", "A" * 255, "abc-123_:/+=", "Ünïcödé€"])
def test_validate_secret_accepts(value):
    validate_secret(value)


@pytest.mark.parametrize("value,code", [
    ("", "blank"),
    (None, "blank"),
    (123, "blank"),
    ("A" * 256, "max_length"),
    ("foo bar", "whitespace"),
    (" foo", "whitespace"),
    ("foo\n", "whitespace"),
    ("foo\tbar", "whitespace"),
    ("foo\u00a0bar", "whitespace"),
    ("foo\x00bar", "unprintable"),
    ("foo\x07", "unprintable"),
    ("foo\u200bbar", "unprintable"),
])
def test_validate_secret_rejects(value, code):
    with pytest.raises(ValidationError) as e:
        validate_secret(value)
    assert e.value.code == code


def one_by_one(secrets) -> bool:
    """The slow way: every secret passes ``validate_secret`` and none repeats."""
    for secret in secrets:
        try:
            validate_secret(secret)
        except ValidationError:
            return False
    return bool(secrets) and len(set(secrets)) == len(secrets)


# Strings of any code point (surrogates, controls, separators, wide characters), lengths around the limit, and a few
# non-strings, as JSON and a spreadsheet can deliver them.
characters = st.characters(codec=None)
texts = st.text(characters, max_size=8) | st.text(st.sampled_from("aZ09-_ \t\n\x00\u00a0\u200b\u2028é€😀"),
                                                  max_size=8)
long_texts = st.integers(SECRET_MAX_LENGTH - 2, SECRET_MAX_LENGTH + 2).map(lambda n: "A" * n)
values = texts | long_texts | st.none() | st.integers() | st.just(b"bytes")


@given(st.lists(values, max_size=6))
def test_set_based_check_agrees_with_validate_secret(secrets):
    assert all_valid_and_distinct(secrets) == one_by_one(secrets)


@given(texts | long_texts)
def test_set_based_check_agrees_for_single_strings(secret):
    assert all_valid_and_distinct([secret]) == one_by_one([secret])


def odd_length(secret):
    return "odd" if len(secret) % 2 else None


@given(st.lists(texts | long_texts, max_size=6))
def test_a_code_format_reports_the_same_on_both_paths_of_check_secrets(secrets):
    """check_secrets takes a set-based path for valid distinct input and a per-secret one otherwise."""
    errors = [{} for _ in secrets]
    valid = check_secrets(secrets, errors, None, odd_length)
    for secret, error in zip(secrets, errors):
        if error.get("secret") == ["odd"]:
            assert len(secret) % 2 and secret not in valid
        elif not error:
            assert secret in valid and not len(secret) % 2
    assert len(valid) == len(set(valid))
