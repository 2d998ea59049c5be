"""Numbers as Brazilians write them: reading "R$ 1.234,56", "1,5 mil" or "12,5%", and writing them back.

:func:`parse_number` reads Brazilian and plain formats; :func:`format_brl`, :func:`format_number` and
:func:`format_percent` write Brazilian ones. All arithmetic goes through :class:`~decimal.Decimal`
(:func:`to_decimal`), so a result never carries a float rounding error into an answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

MULTIPLIERS = {
    "mil": Decimal(1000), "k": Decimal(1000),
    "mi": Decimal(10) ** 6, "mm": Decimal(10) ** 6, "milhao": Decimal(10) ** 6, "milhoes": Decimal(10) ** 6,
    "bi": Decimal(10) ** 9, "bilhao": Decimal(10) ** 9, "bilhoes": Decimal(10) ** 9,
}
MULTIPLIER_PATTERN = r"milhoes|milhao|mil|mi|mm|k|bilhoes|bilhao|bi"
_PARSE_RE = re.compile(
    rf"(?P<neg>-)?\s*(?:r\$|\$)?\s*(?P<neg2>-)?\s*(?P<digits>\d+(?:[.,]\d+)*)"
    rf"\s*(?P<mult>{MULTIPLIER_PATTERN})?\s*(?:%|por\s*cento|reais|real|x)?"
)


def strip_accents(text: str) -> str:
    """``text`` without diacritics ("impressões" -> "impressoes")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def digits_to_decimal(digits: str) -> Decimal:
    """Read "1.234,56", "1234.56", "1.000" or "12,5" (Brazilian first) as a Decimal.

    With both separators the last one is the decimal mark. With one comma it is the decimal
    mark; with one dot followed by exactly three digits it separates thousands ("1.000"),
    otherwise it is the decimal mark ("1234.56"). A repeated separator groups thousands.
    """
    dots, commas = digits.count("."), digits.count(",")
    if dots and commas:
        decimal_mark = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        integer, _, fraction = digits.rpartition(decimal_mark)
        if decimal_mark in integer:
            raise ValueError(f"número inválido: {digits!r}")
        return Decimal(_ungroup(integer, thousands) + "." + fraction)
    separator = "," if commas else "." if dots else ""
    if not separator:
        return Decimal(digits)
    if digits.count(separator) > 1:
        return Decimal(_ungroup(digits, separator))
    integer, fraction = digits.split(separator)
    if separator == "." and len(fraction) == 3 and integer.lstrip("0"):
        return Decimal(integer + fraction)
    return Decimal(integer + "." + fraction)


def _ungroup(integer: str, thousands: str) -> str:
    """"1.234.567" -> "1234567", checking the groups of three digits."""
    if not re.fullmatch(rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})*", integer):
        raise ValueError(f"separador de milhar inválido: {integer!r}")
    return integer.replace(thousands, "")


def _parse_decimal(text: str) -> Decimal:
    """:func:`parse_number` as an exact Decimal."""
    if not isinstance(text, str):
        raise TypeError(f"esperava um texto com um número, recebi {type(text).__name__}")
    cleaned = strip_accents(text).lower().replace("\u00a0", " ").strip()
    match = _PARSE_RE.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"não reconheço um número em {text!r}")
    if match["neg"] and match["neg2"]:
        raise ValueError(f"sinal repetido em {text!r}")
    value = digits_to_decimal(match["digits"])
    if match["mult"]:
        value *= MULTIPLIERS[match["mult"]]
    return -value if (match["neg"] or match["neg2"]) else value


def parse_number(text: str) -> float:
    """Read a number written the Brazilian or the plain way.

    Accepts "1.234,56", "1234.56", "1.000" (one thousand), "R$ 1.000", "12,5%" (12.5),
    "2 mil", "1,5 mil", "1 milhão", "R$ 2 mi", "R$1k", "5x" and "-R$ 10,00".
    Raises ValueError when the text is not one number.
    """
    return float(_parse_decimal(text))


def to_decimal(value: float | Decimal) -> Decimal:
    """An exact Decimal for ``value``; floats go through their shortest repr (0.1 -> 0.1)."""
    if isinstance(value, bool):
        raise TypeError("um booleano não é um número")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    else:
        raise TypeError(f"esperava um número, recebi {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("o número precisa ser finito")
    return result


def format_number(value: float, decimals: int = 2) -> str:
    """Brazilian number: "1.234,50" (thousands with ".", decimals with ",", rounded half up)."""
    if decimals < 0:
        raise ValueError("decimals não pode ser negativo")
    quantum = Decimal(1).scaleb(-decimals)
    rounded = to_decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.{decimals}f}".translate(str.maketrans(",.", ".,"))
    return f"-{text}" if rounded < 0 else text


def format_brl(value: float) -> str:
    """Money in reais: "R$ 1.234,56"; negative as "-R$ 10,00"."""
    text = format_number(value, 2)
    return f"-R$ {text[1:]}" if text.startswith("-") else f"R$ {text}"


def format_percent(value: float, decimals: int = 2) -> str:
    """A percentage already in percent units: 12.5 -> "12,50%"."""
    return f"{format_number(value, decimals)}%"


def format_plain(value: float | Decimal, decimals: int = 2) -> str:
    """A number without needless decimals: 1200 -> "1.200", 2.5 -> "2,5", 1/3 -> "0,33"."""
    text = format_number(value, decimals)
    if "," in text:
        text = text.rstrip("0").rstrip(",")
    return "0" if text == "-0" else text


def format_ratio(value: float | Decimal) -> str:
    """A ROAS value: 5 -> "5,00x"."""
    return f"{format_number(value, 2)}x"
