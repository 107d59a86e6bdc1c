"""The rule for numbers from spreadsheets as codes (importing/numbers.py); files.py's tests read them from files."""
import pytest

from pretix_secrets_import.importing.numbers import (
    cell_text, refusal, refusals,
)


@pytest.mark.parametrize("number,text", [
    (2 ** 53 + 1, "9007199254740993"), (10 ** 40, "1" + "0" * 40), (1234567890123, "1234567890123"),
    (1234567890123.0, "1234567890123"), (9.007199254740992e15, "9007199254740992"), (-0.0, "0"),
    (1.234567890123457e19, "12345678901234570000"),  # as stored, not the float's 12345678901234569216
    (1.5, "1.5"), (1e-3, "0.001"), (1e-7, "1E-7"), (float("inf"), "Infinity"),
])
def test_a_number_cell_is_its_exact_number(number, text):
    assert cell_text(number) == text


@pytest.mark.parametrize("number,message", [
    (2 ** 53 + 1, "The cell holds the number 9007199254740993, which has more than 15 digits."),
    (10 ** 15, "The cell holds the number 1000000000000000, which has more than 15 digits."),
    (0.1234567890123456, "The cell holds the number 0.1234567890123456, which has more than 15 digits."),
    (1.5, "The cell holds the number 1.5, which is not a whole number."),
    (1e-3, "The cell holds the number 0.001, which is not a whole number."),
    (float("nan"), "The cell holds the number NaN, which is not a whole number."),
])
def test_a_number_that_may_not_be_the_code_is_refused(number, message):
    assert refusal(cell_text(number)).startswith(message)
    assert "the column as text (in Excel: Format Cells → Number → Text)" in refusal(cell_text(number))


@pytest.mark.parametrize("number", [0, 7, -42, 999999999999999, -999999999999999, 123456789012345.0])
def test_a_whole_number_of_up_to_15_digits_is_taken(number):
    assert refusal(cell_text(number)) is None


@pytest.mark.parametrize("text", [
    "9.00719925474099E+15", "9,00719925474099E+15", "1.23457E+11", "1E+15", " 9.007199254740992e+15 ", "-1.5E+20",
])
def test_text_in_scientific_notation_is_refused(text):
    assert refusal(text) == (
        f'The code "{text.strip()}" is a long number as a spreadsheet program shows it, in scientific notation with '
        "only its first digits: the others are lost. Format the column as text (in Excel: Format Cells → Number → "
        "Text), then enter or paste the codes again and save the file."
    )


@pytest.mark.parametrize("text", [
    "9007199254740993", "0012345678901234567", "1.5", "ABC-1", "E+15", "1E5", "1E-05", "X1.5E+15", "1.5E+1234",
    "4E+12AB", "",
])
def test_other_text_is_taken(text):
    assert refusal(text) is None


def test_refusals_name_the_cells_of_a_column_that_are_refused():
    assert refusals(["A-1", "", "B-2"]) == {}
    found = refusals(["A-1", cell_text(2 ** 60), "1.2E+17", "C-3", cell_text(12)])
    assert sorted(found) == [1, 2]
    assert "1152921504606846976" in found[1] and '"1.2E+17"' in found[2]
