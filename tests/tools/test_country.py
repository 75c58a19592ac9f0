"""The country_facts tool: offline facts from countryinfo, and its errors."""

from __future__ import annotations

import pytest
from countryinfo import CountryInfo, CountryNotFoundError
from langchain_core.tools import ToolException

from dragonscale_lc.tools import builtin_tools, country_facts_tool

VALID_FIELDS = (
    "population, area, name, capital, region, subregion, demonym, native_name, currencies, "
    "languages, borders, calling_codes, timezones, tld, alt_spellings"
)


def facts(name: str, field: str | None = None) -> object:
    arguments = {"name": name} if field is None else {"name": name, "field": field}
    return country_facts_tool.invoke(arguments)


# -- values --------------------------------------------------------------------------


def test_population_default_field_is_int() -> None:
    population = facts("Japan")

    assert type(population) is int
    assert population == CountryInfo("Japan").population()


def test_area_is_a_number() -> None:
    area = facts("Vietnam", "area")

    assert isinstance(area, int | float)
    assert area == CountryInfo("Vietnam").area()


@pytest.mark.parametrize("name", ["  jAPan  ", "Japan", "JP", "JPN", "Nippon"])
def test_name_ignores_case_and_accepts_codes(name: str) -> None:
    assert facts(name, "name") == "Japan"


def test_name_inner_whitespace_collapsed() -> None:
    assert facts("South   Korea", "capital") == "Seoul"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("capital", "Tokyo"),
        ("region", "Asia"),
        ("subregion", "Eastern Asia"),
        ("demonym", "Japanese"),
        ("currencies", ["JPY"]),
        ("languages", ["ja"]),
        ("calling_codes", ["81"]),
        ("tld", [".jp"]),
        ("borders", []),
    ],
)
def test_text_and_list_fields(field: str, expected: object) -> None:
    assert facts("Japan", field) == expected


@pytest.mark.parametrize("field", [" Capital ", "CAPITAL", "capital"])
def test_field_ignores_case_and_whitespace(field: str) -> None:
    assert facts("Japan", field) == "Tokyo"


@pytest.mark.parametrize("field", ["calling codes", "calling-codes", "Calling_Codes"])
def test_field_spaces_and_hyphens(field: str) -> None:
    assert facts("Japan", field) == ["81"]


def test_list_capital_joined_as_text() -> None:
    assert facts("Vatican City State", "capital") == "Vatican City"


async def test_ainvoke() -> None:
    result = await country_facts_tool.ainvoke({"name": "Vietnam", "field": "capital"})

    assert result == "Hanoi"


# -- errors --------------------------------------------------------------------------


def test_unknown_country_message() -> None:
    with pytest.raises(ToolException) as caught:
        facts("Narnia")

    assert str(caught.value).startswith("Unknown country 'Narnia'.")
    assert str(caught.value).endswith(
        "Pass an English country name such as 'Japan' or an ISO code such as 'JP' or 'JPN'."
    )
    assert isinstance(caught.value.__cause__, CountryNotFoundError)


def test_unknown_country_suggests_a_close_spelling() -> None:
    with pytest.raises(ToolException, match=r"^Unknown country 'Japn'\. Did you mean 'Japan'"):
        facts("Japn")


def test_unknown_country_suggests_containing_names() -> None:
    with pytest.raises(ToolException) as caught:
        facts("Korea")

    assert "'South Korea'" in str(caught.value)
    assert "'North Korea'" in str(caught.value)


def test_unknown_country_without_suggestion() -> None:
    with pytest.raises(ToolException, match=r"^Unknown country 'Qqqqq'\. Pass an English"):
        facts("Qqqqq")


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_name(name: str) -> None:
    with pytest.raises(ToolException, match=r"^The country name is empty\. Pass an English"):
        facts(name)


def test_unknown_field_lists_fields() -> None:
    with pytest.raises(ToolException) as caught:
        facts("Japan", "gdp")

    assert str(caught.value) == f"Unknown field 'gdp'. Valid fields: {VALID_FIELDS}."


def test_unknown_field_checked_first() -> None:
    with pytest.raises(ToolException, match=r"^Unknown field 'gdp'"):
        facts("Narnia", "gdp")


@pytest.mark.parametrize("field", ["population", "capital"])
def test_missing_value_raises(field: str) -> None:
    with pytest.raises(
        ToolException,
        match=rf"^The countryinfo data has no {field} for 'Antarctica'\. Use a different field",
    ):
        facts("Antarctica", field)


async def test_ainvoke_raises_the_same_error() -> None:
    with pytest.raises(ToolException, match=r"^Unknown country 'Narnia'"):
        await country_facts_tool.ainvoke({"name": "Narnia"})


# -- name, arguments and description -----------------------------------------------


def test_registered_name_and_arguments() -> None:
    assert country_facts_tool in builtin_tools()
    assert country_facts_tool.name == "country_facts"
    assert list(country_facts_tool.args) == ["name", "field"]
    assert country_facts_tool.args["field"]["default"] == "population"


def test_description_shows_calls_in_plan_syntax() -> None:
    description = country_facts_tool.description

    assert 'country_facts("Japan") returns 127080000' in description
    assert 'country_facts("Japan", field="capital") returns "Tokyo"' in description
