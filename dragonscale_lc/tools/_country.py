"""The ``country_facts`` tool: offline country data from the countryinfo package."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from typing import TypeVar

from countryinfo import CountryInfo, CountryNotFoundError
from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from .._tool_metadata import CACHEABLE_KEY
from ._base import BuiltinTool

__all__ = ["country_facts_tool"]

CountryFact = int | float | str | list[str]

_T = TypeVar("_T")

_NUMBER_FIELDS: dict[str, Callable[[CountryInfo], int | float | None]] = {
    "population": CountryInfo.population,
    "area": CountryInfo.area,
}

_TEXT_FIELDS: dict[str, Callable[[CountryInfo], object]] = {
    "name": CountryInfo.name,
    "capital": CountryInfo.capital,
    "region": CountryInfo.region,
    "subregion": CountryInfo.subregion,
    "demonym": CountryInfo.demonym,
    "native_name": CountryInfo.native_name,
}

_LIST_FIELDS: dict[str, Callable[[CountryInfo], list[str] | None]] = {
    "currencies": CountryInfo.currencies,
    "languages": CountryInfo.languages,
    "borders": CountryInfo.borders,
    "calling_codes": CountryInfo.calling_codes,
    "timezones": CountryInfo.timezones,
    "tld": CountryInfo.tld,
    "alt_spellings": CountryInfo.alt_spellings,
}

FIELDS = (*_NUMBER_FIELDS, *_TEXT_FIELDS, *_LIST_FIELDS)

_NAME_HINT = "Pass an English country name such as 'Japan' or an ISO code such as 'JP' or 'JPN'."


class _CountryArgs(BaseModel):
    name: str = Field(description="English country name or ISO code, such as 'Japan' or 'JP'.")
    field: str = Field(
        default="population",
        description=f"Which fact to return, one of: {', '.join(FIELDS)}.",
    )


def country_facts(name: str, field: str = "population") -> CountryFact:
    """Look up one fact about one country.

    Args:
        name: English country name, alternative spelling, native name or ISO
            code; case and surrounding whitespace do not matter.
        field: One of :data:`FIELDS`.

    Returns:
        A number for ``population`` (people) and ``area`` (km²), a string for
        the text fields, a list of strings for the list fields.

    Raises:
        ToolException: The country or the field is unknown, or the data set
            has no value for this field of this country.

    Example:
        >>> country_facts(" japan ", "capital")
        'Tokyo'
    """
    key = _field_key(field)
    country = _find_country(name)

    if key in _NUMBER_FIELDS:
        return _present(_NUMBER_FIELDS[key](country), country, key)
    if key in _TEXT_FIELDS:
        return _text(_present(_TEXT_FIELDS[key](country), country, key))
    return list(_present(_LIST_FIELDS[key](country), country, key))


def _field_key(field: str) -> str:
    key = "_".join(field.lower().replace("-", " ").split())
    if key not in FIELDS:
        raise ToolException(f"Unknown field {field!r}. Valid fields: {', '.join(FIELDS)}.")
    return key


def _find_country(name: str) -> CountryInfo:
    text = " ".join(name.split())
    if not text:
        raise ToolException(f"The country name is empty. {_NAME_HINT}")

    try:
        return CountryInfo(text)
    except CountryNotFoundError as error:
        raise ToolException(
            f"Unknown country {text!r}.{_suggestions(text)} {_NAME_HINT}"
        ) from error


def _suggestions(text: str) -> str:
    by_lower = {known.lower(): known for known in _country_names()}
    close = difflib.get_close_matches(text.lower(), by_lower, n=3, cutoff=0.6)
    # Typos are caught by closeness, partial names such as "Korea" by containment.
    containing = [known for lower, known in by_lower.items() if text.lower() in lower]
    picks = list(dict.fromkeys([by_lower[lower] for lower in close] + containing))[:3]

    if not picks:
        return ""
    quoted = [repr(pick) for pick in picks]
    if len(quoted) == 1:
        return f" Did you mean {quoted[0]}?"
    return f" Did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"


@functools.cache
def _country_names() -> tuple[str, ...]:
    return tuple(sorted(entry["name"] for entry in CountryInfo.all().values()))


def _present(value: _T | None, country: CountryInfo, key: str) -> _T:
    # The data set leaves some fields empty for territories such as Antarctica.
    # An explicit error keeps a None from reaching a later math step.
    if value is None or value == "":
        raise ToolException(
            f"The countryinfo data has no {key} for {country.name()!r}. "
            f"Use a different field or country; valid fields: {', '.join(FIELDS)}."
        )
    return value


def _text(value: object) -> str:
    # A few entries store a list where a single string is expected.
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


country_facts_tool = BuiltinTool.from_function(
    func=country_facts,
    name="country_facts",
    metadata={CACHEABLE_KEY: True},
    description=(
        "Look up one fact about a country in offline data (the countryinfo package; figures "
        "may be a few years old). `name` is an English country name or ISO code, such as "
        "'Japan', 'JP' or 'JPN'. `field` defaults to population. Returns a number for "
        "population (people) and area (km²); text for name, capital, region, subregion, "
        "demonym and native_name; a list of text for currencies, languages, borders "
        "(ISO alpha-3 codes), calling_codes, timezones, tld and alt_spellings. "
        'Example: country_facts("Japan") returns 127080000; '
        'country_facts("Japan", field="capital") returns "Tokyo".'
    ),
    args_schema=_CountryArgs,
)
