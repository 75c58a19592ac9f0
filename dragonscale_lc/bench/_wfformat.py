"""Loading of workflow instances in WfFormat 1.5, the JSON format of WfCommons.

Only the fields the workflow benchmark needs are read:
``workflow.specification.tasks[*].id`` and ``.parents`` (the DAG),
``workflow.execution.tasks[*].id`` and ``.runtimeInSeconds`` (measured task
run times), and ``workflow.execution.makespanInSeconds`` when present.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ._common import topological_order

__all__ = ["Workflow", "load_workflow"]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow instance: its task DAG and measured task run times.

    Attributes:
        name: The file name without ``.json``, because the instances' own
            ``name`` fields can be as vague as ``"montage"``.
        parents: Parent ids of every task, in the file's task order.
        runtimes: Measured run time of every task, in seconds.
        order: Every task id after its parents.
        recorded_makespan: The instance's ``makespanInSeconds``, if it states one.
    """

    name: str
    parents: Mapping[str, tuple[str, ...]]
    runtimes: Mapping[str, float]
    order: tuple[str, ...]
    recorded_makespan: float | None


def load_workflow(path: str | Path) -> Workflow:
    """Read a WfFormat 1.5 JSON file.

    Raises:
        ConfigurationError: The file cannot be read, is not JSON, or lacks a
            field the benchmark needs; the message names the file and the field.
    """
    path = Path(path)
    document = _read_json(path)
    reader = _Reader(path)

    workflow = reader.get_object(document, "workflow")
    specification = reader.get_object(workflow, "specification", at="workflow")
    execution = reader.get_object(workflow, "execution", at="workflow")
    parents = _read_parents(reader, specification)
    runtimes = _read_runtimes(reader, execution, parents)
    makespan = execution.get("makespanInSeconds")
    if makespan is not None:
        makespan = reader.as_seconds(makespan, "workflow.execution.makespanInSeconds")

    try:
        order = topological_order(parents)
    except ValueError as error:
        raise reader.error(f"workflow.specification.tasks: {error}") from None
    return Workflow(
        name=path.stem,
        parents=parents,
        runtimes=runtimes,
        order=tuple(order),
        recorded_makespan=makespan,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            f"cannot read workflow file {str(path)!r}: {error.strerror or error}"
        ) from error
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"workflow file {str(path)!r} is not UTF-8 text (invalid byte at offset {error.start})"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"workflow file {str(path)!r} is not valid JSON: {error.msg} "
            f"at line {error.lineno}, column {error.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"invalid workflow file {str(path)!r}: the top level must be a JSON object, "
            f"got {_json_type(document)}"
        )
    return document


def _read_parents(reader: _Reader, specification: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    tasks = reader.get_array(specification, "tasks", at="workflow.specification")
    parents: dict[str, tuple[str, ...]] = {}
    for index, item in enumerate(tasks):
        where = f"workflow.specification.tasks[{index}]"
        task = reader.as_object(item, where)
        task_id = reader.get_string(task, "id", at=where)
        if task_id in parents:
            raise reader.error(f"{where}.id: duplicate task id {task_id!r}")
        parent_ids = reader.get_array(task, "parents", at=where)
        for position, parent in enumerate(parent_ids):
            if not isinstance(parent, str):
                raise reader.error(
                    f"{where}.parents[{position}] must be a task id string, "
                    f"got {_json_type(parent)}"
                )
        parents[task_id] = tuple(parent_ids)

    for index, (task_id, task_parents) in enumerate(parents.items()):
        unknown = [parent for parent in task_parents if parent not in parents]
        if unknown:
            raise reader.error(
                f"workflow.specification.tasks[{index}].parents: task {task_id!r} names "
                f"unknown parent {unknown[0]!r}"
            )
    return parents


def _read_runtimes(
    reader: _Reader, execution: dict[str, Any], parents: Mapping[str, tuple[str, ...]]
) -> dict[str, float]:
    runtimes: dict[str, float] = {}
    for index, item in enumerate(reader.get_array(execution, "tasks", at="workflow.execution")):
        where = f"workflow.execution.tasks[{index}]"
        task = reader.as_object(item, where)
        task_id = reader.get_string(task, "id", at=where)
        if "runtimeInSeconds" not in task:
            raise reader.error(f"{where}.runtimeInSeconds is missing (task {task_id!r})")
        runtimes[task_id] = reader.as_seconds(task["runtimeInSeconds"], f"{where}.runtimeInSeconds")

    missing = [task_id for task_id in parents if task_id not in runtimes]
    if missing:
        raise reader.error(
            f"workflow.execution.tasks has no runtimeInSeconds for task {missing[0]!r}"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    return {task_id: runtimes[task_id] for task_id in parents}


class _Reader:
    """Typed access to fields, raising errors that name the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, detail: str) -> ConfigurationError:
        return ConfigurationError(f"invalid workflow file {str(self.path)!r}: {detail}")

    def get_field(self, parent: dict[str, Any], key: str, at: str) -> Any:
        if key not in parent:
            raise self.error(f"{_join(at, key)} is missing")
        return parent[key]

    def get_object(self, parent: dict[str, Any], key: str, at: str = "") -> dict[str, Any]:
        return self.as_object(self.get_field(parent, key, at), _join(at, key))

    def as_object(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{where} must be a JSON object, got {_json_type(value)}")
        return value

    def get_array(self, parent: dict[str, Any], key: str, at: str) -> list[Any]:
        value = self.get_field(parent, key, at)
        if not isinstance(value, list):
            raise self.error(f"{_join(at, key)} must be a JSON array, got {_json_type(value)}")
        return value

    def get_string(self, parent: dict[str, Any], key: str, at: str) -> str:
        value = self.get_field(parent, key, at)
        if not isinstance(value, str) or not value:
            raise self.error(f"{_join(at, key)} must be a non-empty string, got {value!r}")
        return value

    def as_seconds(self, value: Any, where: str) -> float:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value) or value < 0:
            raise self.error(f"{where} must be a number of seconds, 0 or more, got {value!r}")
        return float(value)


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
