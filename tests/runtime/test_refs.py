"""Ref and Template resolution, and error observations."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Hashable
from typing import Any

import pytest

from dragonscale_lc.runtime import (
    DagExecutor,
    ErrorObservation,
    Ref,
    Task,
    Template,
    find_refs,
    resolve,
)

OUTPUTS: dict[Hashable, Any] = {
    1: [10, 20],
    2: 3.0,
    3: "text",
    4: 3.5,
    5: 7,
    6: 1e20,
    7: {"city": "Hanoi"},
}


def output_of(task_id: Hashable) -> Any:
    return OUTPUTS[task_id]


# -- Ref -------------------------------------------------------------------------


def test_whole_ref_keeps_type() -> None:
    assert resolve(Ref(1), output_of) is OUTPUTS[1]


def test_whole_ref_keeps_float() -> None:
    assert type(resolve(Ref(2), output_of)) is float


def test_ref_str() -> None:
    assert str(Ref(3)) == "${3}"


# -- Template ------------------------------------------------------------------------


def test_template_splices_integral_float_without_fraction() -> None:
    assert resolve(Template(("$", Ref(2), " * 2")), output_of) == "$3 * 2"


def test_template_splices_fractional_float() -> None:
    assert resolve(Template(("x=", Ref(4))), output_of) == "x=3.5"


def test_template_splices_huge_float_as_str() -> None:
    assert resolve(Template((Ref(6),)), output_of) == "1e+20"


def test_template_splices_non_strings() -> None:
    assert resolve(Template((Ref(5), "|", Ref(1), "|", Ref(7))), output_of) == (
        "7|[10, 20]|{'city': 'Hanoi'}"
    )


def test_template_str() -> None:
    assert str(Template(("sum of ", Ref(1), " and ", Ref(2)))) == "sum of ${1} and ${2}"


# -- containers ---------------------------------------------------------------------


def test_list_resolved() -> None:
    assert resolve([Ref(5), "a", Ref(3)], output_of) == [7, "a", "text"]


def test_tuple_stays_tuple() -> None:
    assert resolve((Ref(5), Ref(3)), output_of) == (7, "text")


def test_tuple_type_kept() -> None:
    assert type(resolve((Ref(5),), output_of)) is tuple


def test_list_type_kept() -> None:
    assert type(resolve([Ref(5)], output_of)) is list


def test_dict_values_and_keys_resolved() -> None:
    assert resolve({Ref(3): Ref(5), "k": 1}, output_of) == {"text": 7, "k": 1}


def test_nested_containers() -> None:
    value = {
        "query": Template(("population of ", Ref(3))),
        "items": [(Ref(5), {"deep": [Ref(2)]}), "plain"],
    }

    assert resolve(value, output_of) == {
        "query": "population of text",
        "items": [(7, {"deep": [3.0]}), "plain"],
    }


def test_set_resolved() -> None:
    assert resolve({Ref(5), "a"}, output_of) == {7, "a"}


def test_frozenset_resolved() -> None:
    assert resolve(frozenset({Ref(3)}), output_of) == frozenset({"text"})


def test_container_without_refs_not_copied() -> None:
    value = {"a": [1, 2], "b": ("x",)}

    assert resolve(value, output_of) is value


def test_plain_string_untouched() -> None:
    assert resolve("$1 is not a reference", output_of) == "$1 is not a reference"


def test_find_refs_depth_first() -> None:
    value = ([Ref(1), {"k": Template(("a", Ref(2)))}], Ref(3))

    assert list(find_refs(value)) == [Ref(1), Ref(2), Ref(3)]


# -- ErrorObservation ------------------------------------------------------------------


@pytest.fixture
def observation() -> ErrorObservation:
    return ErrorObservation(4, ConnectionError("connection refused"))


def test_error_observation_is_str(observation: ErrorObservation) -> None:
    assert isinstance(observation, str)


def test_error_observation_text(observation: ErrorObservation) -> None:
    assert observation == "ERROR in task 4: ConnectionError: connection refused"


def test_error_observation_task_id(observation: ErrorObservation) -> None:
    assert observation.task_id == 4


def test_error_observation_error(observation: ErrorObservation) -> None:
    assert isinstance(observation.error, ConnectionError)


def test_error_observation_spliced_into_template(observation: ErrorObservation) -> None:
    text = resolve(Template(("got: ", Ref(4))), lambda _: observation)

    assert text == "got: ERROR in task 4: ConnectionError: connection refused"


def test_error_observation_passes_through_whole_ref(observation: ErrorObservation) -> None:
    assert resolve(Ref(4), lambda _: observation) is observation


def test_error_observation_deepcopy(observation: ErrorObservation) -> None:
    copied = copy.deepcopy(observation)

    assert copied == observation
    assert copied.task_id == 4
    assert isinstance(copied.error, ConnectionError)


def test_error_observation_pickle(observation: ErrorObservation) -> None:
    restored = pickle.loads(pickle.dumps(observation))

    assert isinstance(restored, ErrorObservation)
    assert restored == observation
    assert restored.task_id == 4


def test_error_observation_names_the_tool() -> None:
    observation = ErrorObservation(2, ValueError("no such country: Atlantis"), name="country_facts")

    assert observation == "ERROR in task 2 (country_facts): ValueError: no such country: Atlantis"
    assert pickle.loads(pickle.dumps(observation)).name == "country_facts"


async def test_run_output_names_the_failed_tool() -> None:
    def lookup(country: str) -> str:
        raise ValueError(f"no such country: {country}")

    async with DagExecutor().open() as run:
        run.add(Task(id=1, fn=lookup, args=("Atlantis",), name="country_facts"))
        await run.wait()
        observation = run.output(1)

    assert isinstance(observation, ErrorObservation)
    assert observation.name == "country_facts"
    assert "task 1 (country_facts): ValueError: no such country: Atlantis" in observation


def test_error_observation_name_equal_to_id_not_repeated() -> None:
    observation = ErrorObservation("fetch", ValueError("boom"), name="fetch")

    assert observation == "ERROR in task fetch: ValueError: boom"
