"""String types for input at every edge (HTTP bodies and Kafka contracts alike): what
PostgreSQL can store and a terminal or log can show. One definition: the HTTP models and the
message contracts (``PlaceOrder``) use the same types.

- ``identifier(n)``: ids, names used as keys, payment methods: no control character at all
  (C0, DEL, C1), no lone surrogate, not blank.
- ``Email``: an address, the same refusals, no spaces. ``SendableEmail`` (HTTP input): also
  one an email can be sent to, what the notification's ``email.headerregistry.Address`` reads
  exactly (no non-ASCII name part, no stray punctuation); its pattern says nearly all of it.
- ``line(n)``: one line of free text (a product name): no control character, no lone surrogate.
- ``text(n)``: free text (an operator's reason): tab and newlines allowed, no other control
  character (NUL, which PostgreSQL cannot store, above all), no lone surrogate.

Each type puts its rule in the JSON schema (``pattern``) so the OpenAPI and the fuzzer know it,
and refuses with a message naming the character and where it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.errors import MessageError
from email.headerregistry import Address
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema

from sagakit.contracts.types import CURRENCIES, Currency

# JSON-schema (ECMA), Python and Rust (pydantic) regex alike. Lone surrogates cannot be in a
# Rust pattern; pydantic refuses them in any ``str`` anyway (and ``_refusing`` checks again).
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_TEXT_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # all but \t \n \r

IDENTIFIER_PATTERN = rf"^[^{_CONTROLS}]*[^\s{_CONTROLS}][^{_CONTROLS}]*$"
LINE_PATTERN = rf"^[^{_CONTROLS}]*$"
TEXT_PATTERN = rf"^[^{_TEXT_CONTROLS}]*$"
EMAIL_PATTERN = rf"^[^@\s{_CONTROLS}]+@[^@\s{_CONTROLS}]+\.[^@\s{_CONTROLS}]+$"


def _is_control(ch: str, allowed: str) -> bool:
    code = ord(ch)
    return (code < 0x20 or 0x7F <= code <= 0x9F) and ch not in allowed


def _refusing(allowed: str = "", *, blank: bool = True) -> Callable[[str], str]:
    def check(value: str) -> str:
        for i, ch in enumerate(value):
            if _is_control(ch, allowed):
                raise ValueError(
                    f"must not contain control characters (U+{ord(ch):04X} at position {i})"
                )
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise ValueError(f"is not valid Unicode (lone surrogate at position {i})")
        if not blank and value and not value.strip():
            raise ValueError("must not be blank")
        return value

    return check


def _schema(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern}


def identifier(max_length: int) -> Any:
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length, json_schema_extra=_schema(IDENTIFIER_PATTERN)),
        AfterValidator(_refusing(blank=False)),
    ]


def line(max_length: int, *, min_length: int = 1) -> Any:
    return Annotated[
        str,
        Field(
            min_length=min_length, max_length=max_length, json_schema_extra=_schema(LINE_PATTERN)
        ),
        AfterValidator(_refusing()),
    ]


def text(max_length: int, *, min_length: int = 1) -> Any:
    return Annotated[
        str,
        Field(
            min_length=min_length, max_length=max_length, json_schema_extra=_schema(TEXT_PATTERN)
        ),
        AfterValidator(_refusing("\t\n\r")),
    ]


def _email(value: str) -> str:
    _refusing()(value)
    if re.fullmatch(EMAIL_PATTERN.strip("^$"), value) is None:
        raise ValueError("is not an email address (name@domain.tld)")
    return value


# What an address must look like to be sent to, as a pattern (the OpenAPI says it): an ASCII
# dot-atom name, a domain of dot-separated labels without spaces or RFC 5322 specials.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DTEXT = r'[^\s@.,;:<>()\[\]\\"' + _CONTROLS + "]+"
SENDABLE_EMAIL_PATTERN = rf"^{_ATEXT}(?:\.{_ATEXT})*@{_DTEXT}(?:\.{_DTEXT})+$"
_SENDABLE = re.compile(SENDABLE_EMAIL_PATTERN)
# The common case, ASCII all through, is an address without parsing it (a parse costs ~60 us;
# this match ~1 us).
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})+")


def _sendable(value: str) -> str:
    if _SENDABLE.fullmatch(value) is None:
        raise ValueError("is not an email address that can be sent to (name@domain.tld)")
    if _PLAIN_ADDRESS.fullmatch(value) is None:
        try:
            parsed = Address(addr_spec=value).addr_spec
        except (ValueError, MessageError) as exc:
            raise ValueError(f"is not an email address that can be sent to ({exc})") from None
        if parsed != value:
            raise ValueError(f"is not an email address that can be sent to (reads as {parsed!r})")
    return value


Email = Annotated[
    str,
    Field(min_length=3, max_length=254, json_schema_extra=_schema(EMAIL_PATTERN)),
    AfterValidator(_email),
]

# Where an address comes in (``POST /orders``): also one the notification will send to. Not in
# the message contracts: a message another producer wrote with such an address still reaches the
# notification, which refuses it itself (INVALID_RECIPIENT) instead of it becoming poison.
SendableEmail = Annotated[
    str,
    Field(min_length=3, max_length=254, json_schema_extra=_schema(SENDABLE_EMAIL_PATTERN)),
    AfterValidator(_email),
    AfterValidator(_sendable),
]


# The currency allow-list, spelled out in the JSON schema (the contract type checks it in code).
CurrencyCode = Annotated[Currency, WithJsonSchema({"type": "string", "enum": sorted(CURRENCIES)})]
