"""Tests for the joiner: the text parser and the Joiner driven by fake chat models."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import Field

from dragonscale_lc._errors import ConfigurationError, RunError
from dragonscale_lc.compiler._joiner import Finish, Joiner, Replan, parse_join_text

QUESTION = "Which river is longer, the Danube or the Rhine?"
SCRATCHPAD = (
    '1. river_facts("Danube")\n'
    "Observation: length 2850 km\n"
    '2. river_facts("Rhine")\n'
    "Observation: length 1233 km\n"
    "Thought: both lengths are known"
)
USAGE = {"input_tokens": 120, "output_tokens": 14, "total_tokens": 134}


class RecordingChatModel(GenericFakeChatModel):
    """A fake chat model that records the messages of every call."""

    calls: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class ToolCallingChatModel(RecordingChatModel):
    """A recording fake that accepts tools, so structured output goes through tool calls."""

    tool_choices: list[str | None] = Field(default_factory=list)

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        # The replies are scripted, so the tool schema itself is not needed.
        self.tool_choices.append(tool_choice)
        return self


class NoneStructuredOutputModel(RecordingChatModel):
    """A fake whose structured-output runnable returns None instead of a result."""

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
        return RunnableLambda(lambda _: None)


def text_model(*replies: str | AIMessage) -> RecordingChatModel:
    return RecordingChatModel(messages=iter(replies))


def tool_model(*replies: str | AIMessage) -> ToolCallingChatModel:
    return ToolCallingChatModel(messages=iter(replies))


def decision_call(content: str = "", **args: Any) -> AIMessage:
    """Return a reply that calls the decision tool with ``args``."""
    return AIMessage(
        content=content,
        tool_calls=[{"name": "join_decision", "args": args, "id": "call_1"}],
        usage_metadata=USAGE,
    )


def prompt_text(messages: list[BaseMessage]) -> str:
    return "\n".join(str(message.content) for message in messages)


# parse_join_text


def test_finish_keeps_nested_parentheses() -> None:
    decision = parse_join_text("Thought: found it\nAction: Finish(Lima (Peru))")

    assert decision == Finish(answer="Lima (Peru)", thought="found it")


def test_finish_answer_containing_replan() -> None:
    decision = parse_join_text("Action: Finish(the plan worked, Replan(x) is not needed)")

    assert decision == Finish(answer="the plan worked, Replan(x) is not needed")


def test_reply_without_action_is_answer() -> None:
    decision = parse_join_text("  The Danube is longer.\n")

    assert decision == Finish(answer="The Danube is longer.")


def test_replan_reason() -> None:
    decision = parse_join_text(
        "Thought: the 2021 figure is missing\nAction: Replan(find the 2021 GDP)"
    )

    assert decision == Replan(reason="find the 2021 GDP", thought="the 2021 figure is missing")


def test_replan_without_reason_uses_thought() -> None:
    decision = parse_join_text("Thought: task 2 failed with a timeout\nAction: Replan()")

    assert decision == Replan(
        reason="task 2 failed with a timeout", thought="task 2 failed with a timeout"
    )


def test_last_action_line_decides() -> None:
    text = "Action: Replan(check again)\nThought: no, it is there\nAction: Finish(7 km)"

    assert parse_join_text(text) == Finish(answer="7 km", thought="no, it is there")


def test_thought_spans_lines() -> None:
    text = "Thought: task 1 gave 3.\nTask 2 gave 4.\nAction: Finish(7)"

    assert parse_join_text(text) == Finish(answer="7", thought="task 1 gave 3.\nTask 2 gave 4.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("action: finish(Oslo)", Finish(answer="Oslo")),
        ("ACTION: FINISH(Oslo)", Finish(answer="Oslo")),
        ("Action: Finish(Oslo).", Finish(answer="Oslo")),
        ("Action: `Finish(Oslo)`", Finish(answer="Oslo")),
        ('Action: "Finish(Oslo)".', Finish(answer="Oslo")),
        ('Action: Finish("Oslo")', Finish(answer="Oslo")),
        ("Action: Finish( Oslo )", Finish(answer="Oslo")),
        ("**Action:** Finish(Oslo)", Finish(answer="Oslo")),
        ("Action: Finish: Oslo", Finish(answer="Oslo")),
        ("Action: replan(need the 2020 census)", Replan(reason="need the 2020 census")),
    ],
)
def test_action_spelling_variants(text: str, expected: Finish | Replan) -> None:
    assert parse_join_text(text) == expected


def test_finish_without_action_label() -> None:
    decision = parse_join_text("Thought: easy\nFinish(12 apples)")

    assert decision == Finish(answer="12 apples", thought="easy")


def test_action_without_keyword_is_answer() -> None:
    assert parse_join_text("Thought: known\nAction: 2850 km") == Finish(
        answer="2850 km", thought="known"
    )


def test_multiline_answer() -> None:
    text = "Action: Finish(Two rivers:\n- Danube (2850 km)\n- Rhine)\nThat is all."

    assert parse_join_text(text) == Finish(answer="Two rivers:\n- Danube (2850 km)\n- Rhine")


def test_unclosed_finish_takes_rest_of_line() -> None:
    assert parse_join_text("Action: Finish(Bern") == Finish(answer="Bern")


def test_fenced_json_finish() -> None:
    text = (
        "Here is my decision:\n"
        "```json\n"
        '{"thought": "done", "action": "finish", "answer": "Bern"}\n'
        "```"
    )

    assert parse_join_text(text) == Finish(answer="Bern", thought="done")


def test_fenced_json_replan() -> None:
    text = '```\n{"action": "Replan", "replan_reason": "population is missing"}\n```'

    assert parse_join_text(text) == Replan(reason="population is missing")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"action": "finish", "answer": "Bern"}', Finish(answer="Bern")),
        ('{"action": "replan", "reason": "no data"}', Replan(reason="no data")),
        ('{"action": "Finish(Bern (BE))"}', Finish(answer="Bern (BE)")),
        ('{"action": "finish", "answer": 42}', Finish(answer="42")),
    ],
)
def test_bare_json_decision(text: str, expected: Finish | Replan) -> None:
    assert parse_join_text(text) == expected


def test_json_without_action_is_answer() -> None:
    text = '{"capital": "Bern"}'

    assert parse_join_text(text) == Finish(answer=text)


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_reply_raises(text: str) -> None:
    message = r"^the joiner returned an empty reply, but the reply must contain 'Action: Finish"
    with pytest.raises(RunError, match=message):
        parse_join_text(text)


@pytest.mark.parametrize(
    "text", ["Action: Finish()", "Action: Finish(  )", '{"action": "finish", "answer": null}']
)
def test_finish_without_answer_raises(text: str) -> None:
    with pytest.raises(RunError, match=r"^the joiner chose Finish but gave no answer"):
        parse_join_text(text)


def is_quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] and text[0] in "`\"'"


# Answers are single-line printable text (no control characters, so no line
# breaks) with any mix of balanced or unbalanced parentheses and the word
# Replan. The parser removes one pair of quotes around an answer on purpose,
# so answers wrapped in matching quotes are left out.
answers = (
    st.lists(
        st.one_of(
            st.characters(blacklist_categories=("Cc", "Cs")),
            st.sampled_from(["(", ")", "Replan", "Finish", "Action: "]),
        ),
        min_size=1,
        max_size=30,
    )
    .map("".join)
    .filter(lambda text: text.strip() != "")
    .filter(lambda text: not is_quoted(text.strip()))
)


@given(answers)
def test_finish_answer_round_trips(answer: str) -> None:
    decision = parse_join_text(f"Thought: x\nAction: Finish({answer})")

    assert decision == Finish(answer=answer.strip(), thought="x")


@given(answers)
def test_replan_reason_round_trips(reason: str) -> None:
    decision = parse_join_text(f"Thought: x\nAction: Replan({reason})")

    assert decision == Replan(reason=reason.strip(), thought="x")


# Joiner with the text format


async def test_text_joiner_finishes() -> None:
    reply = AIMessage(
        content="Thought: compared\nAction: Finish(Danube (2850 km))", usage_metadata=USAGE
    )
    model = text_model(reply)
    joiner = Joiner(model)

    decision, messages = await joiner.adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert joiner.structured is False
    assert decision == Finish(answer="Danube (2850 km)", thought="compared")
    assert len(messages) == 1
    assert messages[0].usage_metadata == USAGE


async def test_prompt_contains_question_and_scratchpad() -> None:
    model = text_model("Action: Finish(Danube)")

    await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    [messages] = model.calls
    assert messages[0].type == "system"
    assert messages[1].type == "human"
    assert QUESTION in str(messages[1].content)
    assert SCRATCHPAD in str(messages[1].content)
    assert "Action: Replan(" in str(messages[0].content)


async def test_last_round_prompt_forbids_replan() -> None:
    model = text_model("Action: Finish(Danube)")

    await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=False)

    system = str(model.calls[0][0].content)
    assert "Replanning is not possible" in system
    assert "Action: Replan(" not in system


async def test_last_round_turns_replan_into_finish() -> None:
    model = text_model("Thought: unsure\nAction: Replan(the Rhine length is uncertain)")

    decision, _ = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=False)

    assert decision == Finish(answer="the Rhine length is uncertain", thought="unsure")


async def test_last_round_replan_without_reason_answers_thought() -> None:
    model = text_model('{"action": "replan", "thought": "Danube, probably"}')

    decision, _ = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=False)

    assert decision == Finish(answer="Danube, probably", thought="Danube, probably")


async def test_replan_allowed_stays_replan() -> None:
    model = text_model("Action: Replan(look up the 2023 length survey)")

    decision, _ = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Replan(reason="look up the 2023 length survey")


async def test_reply_without_action_needs_no_retry() -> None:
    model = text_model("The Danube is longer.")

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="The Danube is longer.")
    assert len(messages) == 1


async def test_empty_text_reply_retried_once(caplog: pytest.LogCaptureFixture) -> None:
    model = text_model("", "Action: Finish(Danube)")

    with caplog.at_level(logging.WARNING, logger="dragonscale_lc.compiler._joiner"):
        decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube")
    assert len(messages) == 2
    assert "could not be read as a decision" in prompt_text(model.calls[1])
    assert "retrying once with the text format" in caplog.text


async def test_two_empty_replies_raise() -> None:
    model = text_model("", "Action: Finish()")

    with pytest.raises(RunError, match=r"^the joiner returned no usable decision in 2 replies"):
        await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert len(model.calls) == 2


async def test_config_reaches_model() -> None:
    seen_tags: list[list[str]] = []

    class TagRecorder(AsyncCallbackHandler):
        async def on_chat_model_start(
            self, serialized: Any, messages: Any, *, tags: list[str] | None = None, **kwargs: Any
        ) -> None:
            seen_tags.append(tags or [])

    model = text_model("Action: Finish(Danube)")
    config: RunnableConfig = {"tags": ["joiner-round-1"], "callbacks": [TagRecorder()]}

    await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True, config=config)

    assert seen_tags == [["joiner-round-1"]]


# Joiner with structured output


async def test_structured_finish() -> None:
    model = tool_model(decision_call(thought="compared", action="finish", answer="Danube"))
    joiner = Joiner(model)

    decision, messages = await joiner.adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert joiner.structured is True
    assert model.tool_choices == ["any"]
    assert decision == Finish(answer="Danube", thought="compared")
    assert [message.usage_metadata for message in messages] == [USAGE]
    assert "join_decision" in str(model.calls[0][0].content)


async def test_structured_replan() -> None:
    model = tool_model(
        decision_call(thought="gap", action="Replan", replan_reason="get the Rhine basin")
    )

    decision, _ = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Replan(reason="get the Rhine basin", thought="gap")


async def test_structured_replan_on_last_round_finishes() -> None:
    model = tool_model(decision_call(thought="Danube", action="replan", replan_reason="unsure"))

    decision, _ = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=False)

    assert decision == Finish(answer="unsure", thought="Danube")
    assert 'action "finish"' in str(model.calls[0][0].content)


async def test_structured_without_tool_call_reads_text() -> None:
    model = tool_model("Thought: plain text\nAction: Finish(Danube)")

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube", thought="plain text")
    assert len(messages) == 1


async def test_structured_finish_without_answer_retries_text() -> None:
    model = tool_model(
        decision_call(thought="done", action="finish", answer=None),
        AIMessage(content="Action: Finish(Danube)", usage_metadata=USAGE),
    )

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube")
    assert len(messages) == 2
    assert [message.usage_metadata for message in messages] == [USAGE, USAGE]
    assert "Action: Finish(<answer>)" in prompt_text(model.calls[1])


async def test_structured_invalid_arguments_read_leniently() -> None:
    # A number where the schema expects text fails validation, but the
    # arguments still carry a usable decision.
    model = tool_model(decision_call(action="finish", answer=2850))

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="2850")
    assert len(messages) == 1


async def test_structured_unknown_action_retries_text() -> None:
    model = tool_model(decision_call(action="answer", answer="Danube"), "Action: Finish(Danube)")

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube")
    assert len(messages) == 2


async def test_structured_preamble_text_is_not_answer() -> None:
    model = tool_model(
        decision_call(content="Let me decide.", action="answer", answer="Danube"),
        "Action: Finish(Danube)",
    )

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube")
    assert len(messages) == 2


async def test_structured_unusable_call_with_action_text() -> None:
    model = tool_model(decision_call(content="Action: Finish(Danube)", action="finish"))

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube")
    assert len(messages) == 1


async def test_structured_output_none_falls_back_to_text() -> None:
    model = NoneStructuredOutputModel(messages=iter(["Action: Finish(Danube)"]))

    decision, messages = await Joiner(model).adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert decision == Finish(answer="Danube")
    assert len(messages) == 1
    assert len(model.calls) == 1


async def test_structured_false_uses_text() -> None:
    model = tool_model("Action: Finish(Danube)")
    joiner = Joiner(model, structured=False)

    decision, _ = await joiner.adecide(QUESTION, SCRATCHPAD, allow_replan=True)

    assert joiner.structured is False
    assert model.tool_choices == []
    assert decision == Finish(answer="Danube")


def test_structured_true_needs_tool_calling() -> None:
    model = text_model()

    with pytest.raises(
        ConfigurationError,
        match=r"^structured=True needs a chat model with tool calling, but RecordingChatModel",
    ):
        Joiner(model, structured=True)


def test_auto_mode_without_tool_calling_uses_text() -> None:
    assert Joiner(text_model(), structured=None).structured is False
