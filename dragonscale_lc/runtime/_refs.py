"""References from a task's arguments to other tasks' outputs.

A task's arguments may contain :class:`Ref` values (the whole argument is
another task's output, which keeps its type) and :class:`Template` values (text
with outputs spliced in, always a string). Both may sit anywhere inside lists,
tuples and dicts. :func:`resolve` replaces them at dispatch time, when every
referenced task has finished.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ErrorObservation", "Ref", "Template", "find_refs", "resolve"]


@dataclass(frozen=True, slots=True)
class Ref:
    """The output of the task with id ``task_id``."""

    task_id: Hashable

    def __str__(self) -> str:
        return f"${{{self.task_id}}}"


@dataclass(frozen=True, slots=True)
class Template:
    """Text made of literal strings and references, joined at dispatch time."""

    parts: tuple[str | Ref, ...]

    def __str__(self) -> str:
        return "".join(str(part) for part in self.parts)


class ErrorObservation(str):
    """The text a dependent task sees in place of a failed task's output.

    It is a ``str`` so it can flow into any tool argument unchanged; tools and
    the joiner see a readable error, and code can still tell it apart from a
    real output with ``isinstance``.
    """

    task_id: Hashable
    error: BaseException
    cause: str | None
    name: str | None

    def __new__(
        cls,
        task_id: Hashable,
        error: BaseException,
        cause: str | None = None,
        name: str | None = None,
    ) -> ErrorObservation:
        # Graphs whose ids are names (a DagRunnable's nodes) would repeat them.
        named = name and name != str(task_id)
        where = f"task {task_id} ({name})" if named else f"task {task_id}"
        text = f"ERROR in {where}: {type(error).__name__}: {error}"
        if cause is not None and cause not in text:
            text += f" (its input came from a failed task: {cause})"
        self = super().__new__(cls, text)
        self.task_id = task_id
        self.error = error
        self.cause = cause
        self.name = name
        return self

    def __reduce__(
        self,
    ) -> tuple[type[ErrorObservation], tuple[Hashable, BaseException, str | None, str | None]]:
        # str's own reduce passes only the text to __new__, so copy and pickle
        # (checkpointers among them) would fail without this.
        return (type(self), (self.task_id, self.error, self.cause, self.name))


def find_refs(value: Any) -> Iterator[Ref]:
    """Yield every reference inside ``value``, depth first."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Template):
        yield from (part for part in value.parts if isinstance(part, Ref))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from find_refs(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from find_refs(key)
            yield from find_refs(item)


def resolve(value: Any, output_of: Callable[[Hashable], Any]) -> Any:
    """Return ``value`` with every reference replaced by the task output it names.

    A whole-value :class:`Ref` keeps the output's type; a :class:`Template`
    becomes a string. Lists, tuples, sets, frozensets and mappings are searched;
    a mapping is rebuilt as a ``dict``. Containers are rebuilt only when they
    hold a reference, so plain arguments are passed through without copying.
    """
    if isinstance(value, Ref):
        return output_of(value.task_id)
    if isinstance(value, Template):
        return "".join(
            _as_text(output_of(part.task_id)) if isinstance(part, Ref) else part
            for part in value.parts
        )
    if isinstance(value, list | tuple):
        if not any(True for _ in find_refs(value)):
            return value
        items = [resolve(item, output_of) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, set | frozenset):
        # find_refs looks inside sets, so their references are dependencies
        # and must be replaced here too.
        if not any(True for _ in find_refs(value)):
            return value
        resolved = (resolve(item, output_of) for item in value)
        return set(resolved) if isinstance(value, set) else frozenset(resolved)
    if isinstance(value, Mapping):
        if not any(True for _ in find_refs(value)):
            return value
        return {resolve(k, output_of): resolve(v, output_of) for k, v in value.items()}
    return value


def _as_text(output: Any) -> str:
    # Spliced floats read better without a trailing ".0" (so "$1 * 2" with an
    # output of 3.0 becomes "3 * 2"); other values use their str().
    if isinstance(output, float) and output.is_integer() and abs(output) < 1e16:
        return str(int(output))
    return str(output)
