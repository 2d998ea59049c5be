"""Brazilian number formats, read and written."""

import pytest

from melancia.calculator.numbers import format_brl, format_number, format_percent, parse_number


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("1.234,56", 1234.56),
    ("1234.56", 1234.56),
    ("1234,56", 1234.56),
    ("1.000", 1000.0),
    ("1.234.567", 1234567.0),
    ("1,234,567.89", 1234567.89),
    ("0.500", 0.5),
    ("R$ 1.000", 1000.0),
    ("R$1.234,56", 1234.56),
    ("r$ 350,50", 350.5),
    ("12,5%", 12.5),
    ("12,5 %", 12.5),
    ("30 por cento", 30.0),
    ("2 mil", 2000.0),
    ("1,5 mil", 1500.0),
    ("1 milhão", 1_000_000.0),
    ("1,2 milhões", 1_200_000.0),
    ("R$ 2 mi", 2_000_000.0),
    ("R$1k", 1000.0),
    ("2,5k", 2500.0),
    ("50 mil reais", 50000.0),
    ("5x", 5.0),
    ("-R$ 10,00", -10.0),
    ("  42  ", 42.0),
])
def test_parse_number_reads_brazilian_and_plain_forms(text, expected):
    assert parse_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "R$", "1.2.3,4,5", "12,34.56,7", "1.23.456", "dez reais", "1 2"])
def test_parse_number_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize(("value", "expected"), [
    (1234.56, "R$ 1.234,56"),
    (0.5, "R$ 0,50"),
    (1_000_000, "R$ 1.000.000,00"),
    (-10, "-R$ 10,00"),
    (2.675, "R$ 2,68"),  # half up on the decimal value, not on the binary float
    (-0.001, "R$ 0,00"),
])
def test_format_brl(value, expected):
    assert format_brl(value) == expected


def test_format_number_and_percent():
    assert format_number(1234.5) == "1.234,50"
    assert format_number(1234.5, 0) == "1.235"
    assert format_number(0.125, 2) == "0,13"
    assert format_number(-1234567.891, 1) == "-1.234.567,9"
    assert format_percent(12.5) == "12,50%"
    assert format_percent(100 / 3) == "33,33%"
    assert format_percent(7.14285, 1) == "7,1%"
    with pytest.raises(ValueError):
        format_number(float("nan"))


@pytest.mark.parametrize("value", [0.0, 0.01, 1.25, 1234.56, 1_000_000.99, 999.999])
def test_brl_round_trip(value):
    assert parse_number(format_brl(value)) == round(value + 1e-9, 2)


@pytest.mark.parametrize(("text", "value"), [
    ("R$ 1.234,56", 1234.56), ("1.000,00", 1000.0), ("12,50%", 12.5), ("0,75", 0.75)])
def test_text_round_trip(text, value):
    assert parse_number(text) == value
    formatted = format_percent(value) if text.endswith("%") else format_number(value)
    assert parse_number(formatted) == value
    if text.startswith("R$"):
        assert format_brl(parse_number(text)) == text
