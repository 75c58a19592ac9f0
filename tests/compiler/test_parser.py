"""The streaming plan parser: tasks, references, numbering, errors and chunking."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dragonscale_lc.compiler import PlanTask, StreamingPlanParser, parse_plan
from dragonscale_lc.runtime import Ref, Template, resolve

TOOLS = ("lookup", "calc", "fetch_page", "rank")


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def parse(
    text: str, tools: Iterable[str] | None = None, known: Iterable[int] = ()
) -> StreamingPlanParser:
    parser = StreamingPlanParser(tools, known_ids=list(known))
    parser.feed(text)
    parser.close()
    return parser


def feed_chunks(parser: StreamingPlanParser, chunks: Iterable[str]) -> list[list[PlanTask]]:
    """Feed every chunk, then close the parser, and return the tasks that each call emitted."""
    emitted = [parser.feed(chunk) for chunk in chunks]
    emitted.append(parser.close())
    return emitted


def calls(tasks: Iterable[PlanTask]) -> list[str]:
    return [task.to_text() for task in tasks]


def messages(parser: StreamingPlanParser) -> list[str]:
    return [str(error) for error in parser.errors]


def only_error(parser: StreamingPlanParser) -> str:
    assert len(parser.errors) == 1, messages(parser)
    return str(parser.errors[0])


def outputs(values: dict[int, Any]) -> Any:
    return values.__getitem__


# -- references ------------------------------------------------------------------


def test_braced_references_in_one_string() -> None:
    parser = parse('1. calc("6*7")\n2. calc("10-4")\n3. calc("${1}-${2}")\n4. join()\n')

    third = parser.tasks[2]
    assert third.dependencies == {1, 2}
    assert resolve(third.args, outputs({1: 42, 2: 6})) == ("42-6",)


def test_whole_argument_reference_keeps_type() -> None:
    parser = parse('1. lookup("Oslo")\n2. rank($1, "${1}", "$1")\n')

    assert parser.tasks[1].args == (Ref(1), Ref(1), Ref(1))
    assert resolve(parser.tasks[1].args, outputs({1: [3, 4]})) == ([3, 4], [3, 4], [3, 4])


def test_references_inside_containers() -> None:
    text = '1. lookup("q")\n2. fetch_page({"query": "$1", "also": ["$1", ("x", "$1")]})\n'

    task = parse(text).tasks[1]

    assert task.args == ({"query": Ref(1), "also": [Ref(1), ("x", Ref(1))]},)
    assert task.dependencies == {1}


def test_references_nested_deeply_are_resolved() -> None:
    text = '1. lookup("q")\n2. lookup("r")\n3. rank([{"k": ("pre ${1}", [$2])}], key={"$2": 0})\n'

    task = parse(text).tasks[2]
    resolved = resolve((task.args, task.kwargs), outputs({1: "one", 2: "two"}))

    assert resolved == (([{"k": ("pre one", ["two"])}],), {"key": {"two": 0}})
    assert task.dependencies == {1, 2}


def test_plain_reference_inside_text_to_earlier_task() -> None:
    parser = parse('1. lookup("cheap flats")\n2. lookup("flats under $1 euros")\n')

    assert parser.tasks[1].args == (Template(("flats under ", Ref(1), " euros")),)


def test_plain_reference_to_later_is_literal() -> None:
    parser = parse('1. lookup("a")\n2. lookup("b")\n3. lookup("a $7 ticket and $3 more")\n')

    assert parser.tasks[2].args == ("a $7 ticket and $3 more",)
    assert parser.errors == []


def test_braced_reference_to_later_task_is_error() -> None:
    parser = parse('1. lookup("a")\n2. lookup("id-${5}x")\n')

    assert only_error(parser) == (
        "line 2: task 2: references task 5, which comes later; a task can only use "
        'outputs of earlier tasks: 2. lookup("id-${5}x")'
    )


def test_whole_string_reference_to_later_task_is_error() -> None:
    parser = parse('1. lookup("a")\n2. lookup("$4")\n')

    assert "references task 4, which comes later" in only_error(parser)


def test_digits_extend_plain_reference() -> None:
    parser = parse('1. calc("2")\n2. calc("3")\n3. calc("$10 and ${1}0")\n')

    assert parser.tasks[2].args == (Template(("$10 and ", Ref(1), "0")),)


def test_double_dollar_is_literal_dollar() -> None:
    parser = parse('1. lookup("a")\n2. lookup("$$1 off, $$$$ sign, $$")\n')

    assert parser.tasks[1].args == ("$1 off, $$ sign, $",)
    assert parser.tasks[1].dependencies == frozenset()


@pytest.mark.parametrize(
    "amount", ["$1.50", "$1,000", "$12.99", "$12,500", "$2.5", "a $1.75 coffee"]
)
def test_money_amount_stays_literal(amount: str) -> None:
    text = f'1. lookup("a")\n2. lookup("b")\n3. lookup("c")\n4. lookup("{amount}")\n'

    task = parse(text).tasks[3]

    assert task.args == (amount,)
    assert task.dependencies == frozenset()


def test_money_next_to_reference() -> None:
    parser = parse('1. calc("9")\n2. lookup("$1 items at $1.25 each")\n')

    assert parser.tasks[1].args == (Template((Ref(1), " items at $1.25 each")),)


def test_bare_braced_reference_argument() -> None:
    parser = parse('1. lookup("a")\n2. rank(${1}, [${1}])\n')

    assert parser.tasks[1].args == (Ref(1), [Ref(1)])


# -- reference errors -------------------------------------------------------------


def test_missing_reference_names_task() -> None:
    parser = parse('1. lookup("moons")\n3. calc("$2 * 5")\n4. join()\n')

    assert only_error(parser) == (
        'line 2: task 3: references task 2, which the plan does not define: 3. calc("$2 * 5")'
    )
    assert calls(parser.tasks) == ['1. lookup("moons")']


def test_forward_reference_rejected() -> None:
    parser = parse('1. lookup("a")\n2. calc("$3")\n3. lookup("b")\n')

    assert only_error(parser) == (
        "line 2: task 2: references task 3, which comes later; a task can only use "
        'outputs of earlier tasks: 2. calc("$3")'
    )
    assert [task.id for task in parser.tasks] == [1, 3]


def test_self_reference_rejected() -> None:
    parser = parse("1. lookup({'q': $1})\n")

    assert only_error(parser) == (
        "line 1: task 1: references itself; a task can only use outputs of earlier "
        "tasks: 1. lookup({'q': $1})"
    )


def test_reference_to_invalid_task_names_its_line() -> None:
    parser = parse('1. lookup(city)\n2. calc("$1 + 1")\n')

    assert messages(parser)[1] == (
        'line 2: task 2: references task 1, which is invalid (line 1): 2. calc("$1 + 1")'
    )


def test_skipped_numbers_are_allowed() -> None:
    parser = parse('2. lookup("a")\n5. lookup("b")\n9. rank($2, $5)\n')

    assert [task.id for task in parser.tasks] == [2, 5, 9]
    assert parser.tasks[2].dependencies == {2, 5}


# -- tools and malformed lines ----------------------------------------------------


def test_unknown_tool_lists_available_tools() -> None:
    parser = parse('1. web_search("x")\n', tools=["calc", "lookup"])

    assert only_error(parser) == (
        "line 1: task 1: unknown tool 'web_search'; available tools: calc, lookup: "
        '1. web_search("x")'
    )


def test_known_tool_accepted() -> None:
    parser = parse('1. lookup("x")\n', tools=["calc", "lookup"])

    assert calls(parser.tasks) == ['1. lookup("x")']


def test_unclosed_parenthesis_at_end() -> None:
    parser = parse('1. lookup("a")\n2. calc("y", ["$1"]')

    assert only_error(parser) == (
        'line 2: task 2: the closing parenthesis is missing: 2. calc("y", ["$1"]'
    )


def test_unclosed_parenthesis_before_next_task() -> None:
    parser = parse('2. calc("y", ["$1"]\n3. lookup("z")\n4. join()\n')

    assert only_error(parser) == (
        'line 1: task 2: the closing parenthesis is missing: 2. calc("y", ["$1"]'
    )
    assert calls(parser.tasks) == ['3. lookup("z")']


def test_unclosed_string() -> None:
    parser = parse('1. lookup("a)\n2. lookup("b")\n')

    assert only_error(parser) == (
        'line 1: task 1: a string literal is not closed before the end of the line: 1. lookup("a)'
    )
    assert calls(parser.tasks) == ['2. lookup("b")']


def test_mismatched_bracket() -> None:
    parser = parse('1. lookup("a")\n2. rank([1, 2)\n3. lookup("c")\n')

    assert only_error(parser) == (
        "line 2: task 2: unexpected ')'; brackets do not match: 2. rank([1, 2)"
    )
    assert [task.id for task in parser.tasks] == [1, 3]


def test_bare_name_is_not_literal() -> None:
    parser = parse("1. lookup(paris)\n")

    assert only_error(parser) == (
        "line 1: task 1: `paris` is not a literal; quote text, and write references as $N: "
        "1. lookup(paris)"
    )


def test_expression_is_not_literal() -> None:
    parser = parse("1. calc(len([1]))\n")

    assert "`len([1])` is not a literal" in only_error(parser)


def test_numbered_line_without_call() -> None:
    parser = parse("1. Look up the capital\n")

    assert only_error(parser) == (
        "line 1: task 1: expected a tool call such as `tool(arguments)`: 1. Look up the capital"
    )


def test_double_star_arguments_rejected() -> None:
    parser = parse('1. lookup(**{"q": 1})\n')

    assert "`**` arguments are not allowed in a plan" in only_error(parser)


def test_repeated_keyword_rejected() -> None:
    parser = parse("1. fetch_page(url='a', url='b')\n")

    assert only_error(parser) == (
        "line 1: task 1: keyword argument 'url' is given twice: 1. fetch_page(url='a', url='b')"
    )


def test_infinite_number_rejected() -> None:
    parser = parse("1. calc(1e999)\n")

    assert "a number argument is inf; write finite numbers only" in only_error(parser)


def test_error_line_numbers_count_multiline_calls() -> None:
    text = '1. lookup(\n    "a"\n)\nThought: next\n2. lookup(b)\n'

    assert only_error(parse(text)).startswith("line 5: task 2:")


def test_errors_do_not_stop_later_tasks() -> None:
    text = '1. lookup(x)\n2. nope("y")\n3. lookup("z"]\n4. lookup("ok")\n'

    parser = parse(text, tools=TOOLS)

    assert [error.line_no for error in parser.errors] == [1, 2, 3]
    assert calls(parser.tasks) == ['4. lookup("ok")']


def test_duplicate_task_number() -> None:
    parser = parse('1. lookup("a")\n1. lookup("b")\n2. calc("$1")\n')

    assert only_error(parser) == ('line 2: task 1: task number 1 is used twice: 1. lookup("b")')
    assert parser.tasks[1].args == (Ref(1),)
    assert parser.tasks[0].args == ("a",)


# -- layout ------------------------------------------------------------------------


def test_argument_spanning_lines() -> None:
    parser = parse('2. lookup(\n    "the tallest tower"\n)\n3. calc("$2")\n')

    assert calls(parser.tasks) == ['2. lookup("the tallest tower")', "3. calc($2)"]
    assert [task.line_no for task in parser.tasks] == [1, 4]


def test_triple_quoted_argument_spanning_lines() -> None:
    parser = parse('1. lookup("""first\nsecond""")\n2. calc("1")\n')

    assert parser.tasks[0].args == ("first\nsecond",)
    assert parser.tasks[1].line_no == 3


def test_prose_and_fences_around_plan_are_ignored() -> None:
    text = 'Here is my plan:\n```\n1. lookup("a")\n```\n'

    parser = parse(text)

    assert calls(parser.tasks) == ['1. lookup("a")']
    assert parser.errors == []


def test_list_markers_and_parenthesis_numbers() -> None:
    parser = parse('- 1. lookup("a")\n2) lookup("b")\n')

    assert [task.id for task in parser.tasks] == [1, 2]


def test_keyword_arguments() -> None:
    text = '1. lookup("a")\n2. fetch_page("https://example.org", retries=3, headers={"q": "$1"})\n'

    task = parse(text).tasks[1]

    assert task.args == ("https://example.org",)
    assert task.kwargs == {"retries": 3, "headers": {"q": Ref(1)}}
    assert task.dependencies == {1}


def test_literal_types() -> None:
    text = "1. rank(-4, 2.5, True, None, (1,), {'a': [1, 2]}, b'raw', 3j)\n"

    task = parse(text).tasks[0]

    assert task.args == (-4, 2.5, True, None, (1,), {"a": [1, 2]}, b"raw", 3j)


def test_thought_attached_to_next_task() -> None:
    text = (
        'Thought: start broad\n1. lookup("a")\n2. lookup("b")\nThought: join both\n3. rank($1, $2)'
    )

    parser = parse(text)

    assert [task.thought for task in parser.tasks] == ["start broad", None, "join both"]


def test_last_thought_is_final_thought() -> None:
    parser = parse('1. lookup("a")\nThought: that is enough\n2. join()\n')

    assert parser.final_thought == "that is enough"
    assert parser.tasks[0].thought is None


def test_text_after_join_is_trailing_text() -> None:
    parser = StreamingPlanParser()

    parser.feed('1. lookup("date")\n2. join()\n3. calc($1, "m")\n')
    parser.feed("4. join()\n")
    parser.close()

    assert calls(parser.tasks) == ['1. lookup("date")']
    assert parser.trailing_text == '3. calc($1, "m")\n4. join()'
    assert parser.errors == []


def test_join_ends_plan_when_fed() -> None:
    parser = StreamingPlanParser()

    parser.feed('1. lookup("a")\njoin()')

    assert parser.joined


def test_plan_without_join_completes_at_close() -> None:
    parser = StreamingPlanParser()
    emitted = parser.feed('1. lookup("a")\n2. calc("$1")')

    assert parser.trailing_text == ""
    assert parser.close() == []
    assert parser.joined
    assert [task.id for task in emitted] == [1, 2]


def test_unfinished_line_reported_at_close() -> None:
    parser = StreamingPlanParser()
    parser.feed('1. lookup("a")\n2. loo')

    parser.close()

    assert only_error(parser) == (
        "line 2: task 2: expected a tool call such as `tool(arguments)`: 2. loo"
    )


def test_close_twice_is_harmless() -> None:
    parser = StreamingPlanParser()
    parser.feed('1. lookup("a")')
    parser.close()

    assert parser.close() == []
    assert len(parser.tasks) == 1


def test_many_tasks_with_two_digit_numbers() -> None:
    lines = [f'{n}. lookup("item {n}")' for n in range(1, 13)]
    lines.append('13. rank([$1, $2, $10, $11, $12], "top ${12} of $12 and $1")')
    lines.append("14. join()")

    parser = parse("\n".join(lines))

    assert [task.id for task in parser.tasks] == list(range(1, 14))
    last = parser.tasks[-1]
    assert last.dependencies == {1, 2, 10, 11, 12}
    assert last.args[1] == Template(("top ", Ref(12), " of ", Ref(12), " and ", Ref(1)))


# -- streaming -----------------------------------------------------------------------


def test_several_lines_in_one_chunk() -> None:
    parser = StreamingPlanParser()

    emitted = parser.feed('1. lookup("a")\n2. lookup("b")\nThought: t\n3. rank($1, $2)\n4. join()')

    assert [task.id for task in emitted] == [1, 2, 3]
    assert parser.joined


def test_chunks_split_inside_string_and_join() -> None:
    parser = StreamingPlanParser()

    emitted = feed_chunks(parser, ['1. lookup("a', '")\n2. lookup("b")\n3. jo', "in()"])

    assert [[task.id for task in batch] for batch in emitted] == [[], [1, 2], [], []]
    assert parser.joined


def test_one_character_at_a_time() -> None:
    text = (
        'Thought: go\n1. lookup("a(b)")\n2. fetch_page(\n  "x",\n  k=[1, {"z": "$1"}]\n)\n'
        "3. rank($1, $2)\n4. join()\n"
    )
    parser = StreamingPlanParser()

    emitted = feed_chunks(parser, text)

    assert calls(task for batch in emitted for task in batch) == calls(parse(text).tasks)
    assert parser.errors == []


def test_task_emitted_at_closing_parenthesis() -> None:
    text = '1. lookup("x)y")\n2. rank([1, (2)], {"k": ")"})\n3. calc("$1")'
    closers = [text.index('y")') + 2, text.index('"})') + 2, len(text) - 1]
    parser = StreamingPlanParser()

    emitted_at = {}
    for position, char in enumerate(text):
        for task in parser.feed(char):
            emitted_at[task.id] = position
    parser.close()

    assert emitted_at == {1: closers[0], 2: closers[1], 3: closers[2]}


def test_each_task_emitted_once() -> None:
    text = '1. lookup("a")\n2. lookup("b")\n3. rank($1, $2)\n'
    parser = StreamingPlanParser()

    emitted = [task.id for chunk in text for task in parser.feed(chunk)]
    emitted += [task.id for task in parser.close()]

    assert emitted == [1, 2, 3]


def test_unfinished_call_waits_for_more_text() -> None:
    parser = StreamingPlanParser()

    assert parser.feed('1. lookup("a",\n') == []
    assert parser.feed('    "b")\n') != []
    assert parser.errors == []


def test_malformed_line_reported_once_streamed() -> None:
    text = '1. lookup("a"\n2. lookup("b")\n'
    parser = StreamingPlanParser()

    feed_chunks(parser, text)

    assert len(parser.errors) == 1
    assert calls(parser.tasks) == ['2. lookup("b")']


# -- numbering across rounds ---------------------------------------------------------


def test_replan_continuing_numbers_keeps_ids() -> None:
    parser = parse('5. lookup("a")\n6. rank($2, $5)\n7. join()\n', known=[1, 2, 3, 4])

    assert [task.id for task in parser.tasks] == [5, 6]
    assert parser.tasks[1].dependencies == {2, 5}


def test_replan_restarting_numbers_shifts_ids() -> None:
    parser = parse('1. lookup("a")\n2. lookup("b")\n3. rank($1, $2)\n', known=[1, 2, 3, 4])

    assert [task.id for task in parser.tasks] == [5, 6, 7]
    assert [task.number for task in parser.tasks] == [1, 2, 3]
    assert parser.tasks[2].args == (Ref(5), Ref(6))
    assert parser.tasks[2].to_text() == "7. rank($5, $6)"


def test_restart_reference_above_number_rejected() -> None:
    parser = parse('1. lookup("a")\n2. rank("$1", "$4")\n', known=[1, 2, 3, 4])

    assert only_error(parser).startswith("line 2: task 2: references task 4, which comes later")


def test_restart_references_earlier_round() -> None:
    parser = parse('1. lookup("a")\n2. lookup("b")\n4. rank($3, $1)\n', known=[1, 2, 3])

    assert parser.tasks[2].args == (Ref(3), Ref(4))


def test_replan_number_collides_with_earlier() -> None:
    parser = parse('5. lookup("a")\n2. lookup("b")\n6. calc("$2")\n', known=[1, 2, 3, 4])

    assert only_error(parser) == (
        "line 2: task 2: its id would be 2, which an earlier round already uses; "
        'number new tasks from 5 on: 2. lookup("b")'
    )
    assert parser.tasks[1].args == (Ref(2),)


def test_restart_invalid_task_shadows_earlier() -> None:
    parser = parse('1. nope("a")\n2. calc("$1")\n', tools=["calc"], known=[1, 2, 3, 4])

    assert messages(parser)[1].startswith(
        "line 2: task 2: references task 1, which is invalid (line 1)"
    )


# -- robustness of odd arguments -------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ("-" * 800 + "1", "nested too deeply to show"),
        ("1+" * 800 + "1", "nested too deeply to show"),
        ("-" * 100_000 + "1", "nested too deeply to parse"),
        ("[" * 300 + "]" * 300, "too many nested parentheses"),
        ('"\ud800"', "surrogates not allowed"),
        ('"a\x00b"', "null bytes"),
        ("0x" + "f" * 4000, "an integer argument is too large to write in decimal"),
    ],
    ids=["minus-chain", "sum-chain", "long-chain", "brackets", "surrogate", "nul", "huge-int"],
)
def test_unreadable_arguments_become_errors(arguments: str, reason: str) -> None:
    parser = parse(f"1. calc({arguments})\n")

    assert reason in only_error(parser)


# -- canonical text ---------------------------------------------------------------------


ROUND_TRIP_PLAN = """\
1. lookup("a \\"quoted\\" word", 'single', "$$5 bill")
2. calc("${1}.50 and ${1},000 and ${1}7 and $1 x")
3. fetch_page(url="https://example.org/?q=$$", headers={"k": [$1, ("t", "$2")]})
4. rank([1, -2.5, None, True], (3,), {"$1", 7}, set(), key=b"x")
5. lookup("tab\\tnewline\\nunicode \u00e9\u4e2d")
"""


def test_to_text_round_trip() -> None:
    first = parse(ROUND_TRIP_PLAN)
    again = parse("\n".join(calls(first.tasks)))

    assert first.errors == []
    assert summary(again.tasks) == summary(first.tasks)


def test_to_text_round_trip_of_shifted_ids() -> None:
    first = parse('1. lookup("a")\n2. calc("$1 + ${1}0 + $$3")\n', known=[1, 2, 3])
    again = parse("\n".join(calls(first.tasks)), known=[1, 2, 3])

    assert summary(again.tasks) == summary(first.tasks)


def summary(tasks: Sequence[PlanTask]) -> list[tuple[Any, ...]]:
    return [
        (task.id, task.tool, task.args, dict(task.kwargs), task.dependencies, task.to_text())
        for task in tasks
    ]


def test_parse_plan_accepts_tool_names() -> None:
    parser = parse_plan('1. lookup("a")\n2. other("b")\n', tools=["lookup"])

    assert calls(parser.tasks) == ['1. lookup("a")']
    assert "unknown tool 'other'" in only_error(parser)


# -- properties -------------------------------------------------------------------------

SAFE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="$\ue000\ue001"),
    max_size=12,
)
KEYWORDS = ("url", "limit", "key", "mode")


@st.composite
def string_literal(draw: st.DrawFn, earlier: Sequence[int]) -> str:
    """Source of a string literal mixing text, ``$$`` and references to earlier tasks."""
    pieces = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "dollar", "ref"] if earlier else ["text", "dollar"]))
        if kind == "text":
            pieces.append(draw(SAFE_TEXT))
        elif kind == "dollar":
            pieces.append("$$")
        else:
            task = draw(st.sampled_from(earlier))
            # A plain reference needs a separator, or a following digit would extend it.
            pieces.append(draw(st.sampled_from([f"${{{task}}}", f"${task} "])))
    return json.dumps("".join(pieces), ensure_ascii=False)


def literal(earlier: Sequence[int]) -> st.SearchStrategy[str]:
    scalars = st.one_of(
        st.integers(-(10**12), 10**12).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["True", "False", "None"]),
        string_literal(earlier),
        *([st.sampled_from(earlier).map(lambda n: f"${n}")] if earlier else []),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
            st.lists(inner, min_size=1, max_size=3).map(lambda items: f"({', '.join(items)},)"),
            st.lists(st.tuples(string_literal(earlier), inner), max_size=3).map(
                lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
            ),
        ),
        max_leaves=6,
    )


@st.composite
def valid_plans(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A plan text without errors, and its task numbers in order."""
    lines: list[str] = []
    numbers: list[int] = []
    number = 0
    for _ in range(draw(st.integers(1, 7))):
        number += draw(st.integers(1, 2))
        if draw(st.booleans()):
            lines.append("Thought: " + draw(SAFE_TEXT).replace("\n", " ").replace("\r", " "))
        args = draw(st.lists(literal(tuple(numbers)), max_size=3))
        names = draw(st.lists(st.sampled_from(KEYWORDS), unique=True, max_size=2))
        args += [f"{name}={draw(literal(tuple(numbers)))}" for name in names]
        separator = draw(st.sampled_from([", ", ",\n    "]))
        lines.append(f"{number}. {draw(st.sampled_from(TOOLS))}({separator.join(args)})")
        numbers.append(number)
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from([f"{number + 1}. join()", "join()"])))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"])), numbers


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


@settings(max_examples=100, deadline=None)
@given(valid_plans(), st.lists(st.integers(min_value=0), max_size=40))
def test_random_chunks_give_same_tasks(plan: tuple[str, list[int]], cuts: list[int]) -> None:
    text, numbers = plan
    whole = parse(text, tools=TOOLS)
    parser = StreamingPlanParser(TOOLS)

    emitted = [task for batch in feed_chunks(parser, split(text, cuts)) for task in batch]

    assert messages(whole) == []
    assert messages(parser) == []
    assert [task.id for task in emitted] == numbers
    assert summary(emitted) == summary(whole.tasks)
    assert [(task.thought, task.line_no) for task in emitted] == [
        (task.thought, task.line_no) for task in whole.tasks
    ]


@settings(max_examples=100, deadline=None)
@given(valid_plans())
def test_random_plans_round_trip_to_text(plan: tuple[str, list[int]]) -> None:
    first = parse(plan[0], tools=TOOLS)

    again = parse("\n".join(calls(first.tasks)), tools=TOOLS)

    assert messages(again) == []
    assert summary(again.tasks) == summary(first.tasks)


NOISE = st.lists(
    st.one_of(
        st.sampled_from(list("0123456789.()[]{}\"'$,=:\\#\n\t -*")),
        st.sampled_from(["join()", "Thought:", "1. ", "\n2. ", "lookup(", "$1", "${2}", '"""']),
        st.characters(),
    ),
    max_size=120,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(NOISE, st.lists(st.integers(min_value=0), max_size=30), st.sampled_from([(), (1, 2, 3)]))
def test_any_text_never_raises(text: str, cuts: list[int], known: tuple[int, ...]) -> None:
    parser = StreamingPlanParser(TOOLS, known_ids=known)

    feed_chunks(parser, split(text, cuts))

    assert all(error.line_no is not None for error in parser.errors)
    assert all(isinstance(task.to_text(), str) for task in parser.tasks)
    defined = set(known)
    for task in parser.tasks:
        # What the executor needs to add the task: a fresh id, known dependencies.
        assert task.id not in defined
        assert task.dependencies <= defined
        defined.add(task.id)


@settings(max_examples=300, deadline=None)
@given(NOISE, st.lists(st.integers(min_value=0), max_size=30))
def test_any_text_chunked_matches_whole(text: str, cuts: list[int]) -> None:
    whole = parse(text, tools=TOOLS)
    parser = StreamingPlanParser(TOOLS)

    feed_chunks(parser, split(text, cuts))

    assert summary(parser.tasks) == summary(whole.tasks)
    assert messages(parser) == messages(whole)
    assert parser.warnings == whole.warnings
    assert parser.trailing_text == whole.trailing_text


# -- step headers, join and ignored text --------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '**4.** rank("z")',
        '4: rank("z")',
        'Step 4: rank("z")',
        'task 4) rank("z")',
        '- 4. `rank`("z")',
        '> 4. **rank**("z")',
    ],
)
def test_step_header_variants(line: str) -> None:
    parser = parse(line)

    assert calls(parser.tasks) == ['4. rank("z")']
    assert messages(parser) == []


def test_join_without_parenthesis_ends_at_its_line() -> None:
    parser = parse('1. calc("1")\n2. join(\n3. calc("2")\n')

    assert calls(parser.tasks) == ['1. calc("1")']
    assert parser.trailing_text == '3. calc("2")'
    assert parser.warnings == ["line 2: join( has no closing parenthesis"]


def test_text_after_call_is_a_warning() -> None:
    parser = parse('1. calc("4") and then some\n2. join()\n')

    assert calls(parser.tasks) == ['1. calc("4")']
    assert parser.warnings == ["line 1: ignored text after the call: and then some"]


def test_text_after_call_warned_when_streamed() -> None:
    parser = StreamingPlanParser()

    emitted = feed_chunks(parser, ['1. calc("4")', " 2. rank(", '"x")\n', "3. join()"])

    assert calls(emitted[0]) == ['1. calc("4")']
    assert parser.tasks == emitted[0]
    assert parser.warnings == ['line 1: ignored text after the call: 2. rank("x")']


def test_text_after_rejected_call_when_streamed() -> None:
    # The chunk ends right after the rejected call, so the rest of its line
    # arrives later and must still be read as text after that call.
    parser = StreamingPlanParser(TOOLS)

    feed_chunks(parser, ["1. search()", " join()\n"])

    assert messages(parser) == [
        "line 1: task 1: unknown tool 'search'; available tools: "
        "calc, fetch_page, lookup, rank: 1. search()"
    ]
    assert parser.warnings == ["line 1: ignored text after the call: join()"]
    assert parser.trailing_text == ""


def test_long_argument_in_small_chunks() -> None:
    text = '1. fetch_page("' + 'ab\\"c' * 4000 + '")\n2. join()\n'
    parser = StreamingPlanParser()

    feed_chunks(parser, [text[i : i + 7] for i in range(0, len(text), 7)])

    assert len(parser.tasks) == 1
    assert parser.tasks[0].args == ('ab"c' * 4000,)


def test_triple_quote_split_across_chunks() -> None:
    parser = StreamingPlanParser()

    feed_chunks(parser, ['1. calc("', '""x)', "y", '"', '"', '")\n'])

    assert parser.tasks[0].args == ("x)y",)


@pytest.mark.parametrize(
    "line", ['(4) rank("z")', '4 rank("z")', '#4 rank("z")', '### 4. rank("z")']
)
def test_more_step_number_forms(line: str) -> None:
    parser = parse(line)

    assert calls(parser.tasks) == ['4. rank("z")']


def test_call_without_step_number_is_error() -> None:
    parser = parse('1. calc("1")\nrank("z")\n2. join()', tools=TOOLS)

    assert only_error(parser) == (
        'line 2: a call without a step number: rank("z"). Write it as `N. rank(...)`'
    )


def test_prose_mentioning_a_tool_is_ignored() -> None:
    parser = parse(
        'I will call calc("1") next.\nThought: calc(2) is enough\n1. calc("1")', tools=TOOLS
    )

    assert messages(parser) == []
    assert calls(parser.tasks) == ['1. calc("1")']
