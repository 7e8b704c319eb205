"""Money for people: integer minor units (cents) shown in major units with the currency code."""

from __future__ import annotations

# ISO 4217 minor units where they are not 2. The contracts allow JPY and KRW; the rest are here
# so that a currency added later is not silently shown a hundred times too large or too small.
_MINOR_UNITS = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


def minor_units(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (2 unless ISO 4217 says otherwise)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def format_money(amount: int, currency: str) -> str:
    """``1999, "USD"`` -> ``"USD 19.99"``; ``1500, "JPY"`` -> ``"JPY 1,500"``. Integers only."""
    digits = minor_units(currency)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**digits)
    number = f"{major:,}" if digits == 0 else f"{major:,}.{minor:0{digits}d}"
    return f"{currency.upper()} {sign}{number}"
