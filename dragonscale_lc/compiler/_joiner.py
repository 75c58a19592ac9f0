"""The joiner: after a plan's tasks have run, answer the question or plan again.

:class:`Joiner` shows a chat model the user's question and the scratchpad (the
plan, each task's observation, the planner's thoughts and earlier rounds) and
reads back one of two decisions: :class:`Finish` with the answer, or
:class:`Replan` with the reason another plan is needed.

Models that support tool calling give the decision as structured output. Other
models, and structured replies that cannot be read, go through
:func:`parse_join_text`, which reads the text format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .._errors import ConfigurationError, RunError
from ._join_text import (
    Finish,
    JoinDecision,
    Replan,
    decision_from_mapping,
    is_usable,
    parse_explicit_decision,
    parse_join_text,
)

__all__ = ["Finish", "JoinDecision", "Joiner", "Replan", "parse_join_text"]

_log = logging.getLogger(__name__)


def _lowercase(value: object) -> object:
    """Normalize the action, because models often send "Finish" or "REPLAN"."""
    return value.strip().lower() if isinstance(value, str) else value


class _DecisionSchema(BaseModel):
    """Record the decision: answer the question now, or plan again."""

    model_config = ConfigDict(title="join_decision")

    thought: str = Field(default="", description="Your reasoning, in one or two sentences.")
    action: Annotated[Literal["finish", "replan"], BeforeValidator(_lowercase)] = Field(
        description="'finish' to answer now, 'replan' to run another plan."
    )
    answer: str | None = Field(
        default=None, description="The short, direct answer. Required when action is 'finish'."
    )
    replan_reason: str | None = Field(
        default=None,
        description="What is missing or what went wrong. Required when action is 'replan'.",
    )


_ROLE_PROMPT = """\
You are the last step of a question-answering system. A planner split the \
user's question into tasks and tools ran them. You see the question and a \
scratchpad with the plan, each task's observation (the tool's output, or an \
error), the planner's thoughts and any earlier rounds.

Choose one of two actions:
- Finish: the observations are enough to answer the question. Give the answer.
- Replan: information the answer needs is missing, or a task failed in a way \
that a different plan could fix (a wrong argument, a tool error, a search that \
found nothing). Say what the next plan must find out or do differently.

Do not replan for information the scratchpad already contains, and do not ask \
for a plan that would fail the same way again.

Keep the answer short and direct: a name, a number or a short phrase, with \
units when the question asks for them. Do not explain the answer."""

_LAST_ROUND_PROMPT = """\
Replanning is not possible: this is the last round. You must Finish and answer \
with the information you have. If it is incomplete, give the best answer it \
supports."""

_TEXT_FORMAT_PROMPT = """\
Reply in exactly this format:
Thought: <your reasoning, in one or two sentences>
Action: Finish(<answer>)
or, to plan again:
Thought: <your reasoning>
Action: Replan(<what is missing or what went wrong>)"""

_TEXT_FORMAT_LAST_ROUND_PROMPT = """\
Reply in exactly this format:
Thought: <your reasoning, in one or two sentences>
Action: Finish(<answer>)"""

_STRUCTURED_FORMAT_PROMPT = """\
Give your decision by calling the join_decision function: a thought, then \
action "finish" with the answer, or action "replan" with the replan_reason."""

_STRUCTURED_FORMAT_LAST_ROUND_PROMPT = """\
Give your decision by calling the join_decision function with a thought, \
action "finish" and the answer."""

# Keyed by (structured, allow_replan).
_FORMAT_PROMPTS = {
    (False, True): _TEXT_FORMAT_PROMPT,
    (False, False): _TEXT_FORMAT_LAST_ROUND_PROMPT,
    (True, True): _STRUCTURED_FORMAT_PROMPT,
    (True, False): _STRUCTURED_FORMAT_LAST_ROUND_PROMPT,
}

_RETRY_NOTE = """\
Your previous reply could not be read as a decision. Reply again, following \
the format exactly."""

# The answer used when the model asks to replan on the last round and gives
# neither a reason nor a thought to answer with.
_NO_INFORMATION_ANSWER = "The question could not be answered with the information gathered."


class Joiner:
    """Decide from a run's observations whether to answer or to plan again.

    Example:
        >>> joiner = Joiner(ChatOpenAI(model="gpt-4o-mini"))  # doctest: +SKIP
        >>> decision, messages = await joiner.adecide(  # doctest: +SKIP
        ...     "What is the capital of France?",
        ...     '1. search("capital of France")\\nObservation: Paris',
        ...     allow_replan=True,
        ... )
        >>> decision  # doctest: +SKIP
        Finish(answer='Paris', thought='Task 1 found it.')

    Args:
        model: The chat model that makes the decision.
        structured: True to require structured output through tool calling,
            False to use the text format only, None to use structured output
            when the model supports tool calling and the text format otherwise.

    Raises:
        ConfigurationError: ``structured`` is True but the model does not
            support tool calling.
    """

    def __init__(self, model: BaseChatModel, *, structured: bool | None = None) -> None:
        self._model = model
        self._structured_model: Runnable[LanguageModelInput, Any] | None = None
        if structured is not False:
            self._structured_model = _bind_structured_output(model, required=bool(structured))

    @property
    def model(self) -> BaseChatModel:
        """The chat model that makes the decision."""
        return self._model

    @property
    def structured(self) -> bool:
        """Whether the joiner requests structured output before the text format."""
        return self._structured_model is not None

    async def adecide(
        self,
        question: str,
        scratchpad: str,
        *,
        allow_replan: bool,
        config: RunnableConfig | None = None,
    ) -> tuple[JoinDecision, list[AIMessage]]:
        """Ask the model whether to answer the question or to plan again.

        A reply that cannot be read as a decision is retried once with the text
        format. When ``allow_replan`` is False the result is always a
        :class:`Finish`. A Replan that the model returns anyway becomes a Finish
        whose answer is the replan reason, or the thought if the reason is empty.

        Args:
            question: The user's question.
            scratchpad: The plan, observations, thoughts and earlier rounds.
            allow_replan: False on the last allowed round.
            config: The LangChain config for the model calls (callbacks, tags).

        Returns:
            The decision and every message the model produced, in order, so the
            caller can read their ``usage_metadata``.

        Raises:
            RunError: Neither the first reply nor the retry contained a decision.
        """
        replies: list[AIMessage] = []
        decision: JoinDecision | None
        if self._structured_model is not None:
            prompt = _build_prompt(question, scratchpad, allow_replan, structured=True)
            decision = await _ask_structured(self._structured_model, prompt, config, replies)
        else:
            prompt = _build_prompt(question, scratchpad, allow_replan, structured=False)
            decision = await self._ask_text(prompt, config, replies)

        if decision is None:
            _log.warning("no decision in the joiner's reply, retrying once with the text format")
            prompt = _build_prompt(question, scratchpad, allow_replan, structured=False, retry=True)
            decision = await self._ask_text(prompt, config, replies)

        if decision is None:
            raise RunError(
                f"the joiner returned no usable decision in {len(replies)} replies "
                f"(last reply: {replies[-1].text!r}). Check that the model follows the "
                "'Action: Finish(<answer>)' format or supports tool calling."
            )
        return _finish_if_last_round(decision, allow_replan), replies

    async def _ask_text(
        self, prompt: list[BaseMessage], config: RunnableConfig | None, replies: list[AIMessage]
    ) -> JoinDecision | None:
        """Ask for the text format and parse the reply, or return None if it is unusable."""
        reply = await self._model.ainvoke(prompt, config)
        replies.append(reply)
        try:
            return parse_join_text(reply.text)
        except RunError as err:
            _log.debug("text reply unusable: %s", err)
            return None


async def _ask_structured(
    structured_model: Runnable[LanguageModelInput, Any],
    prompt: list[BaseMessage],
    config: RunnableConfig | None,
    replies: list[AIMessage],
) -> JoinDecision | None:
    """Ask for structured output and fall back to reading the raw reply.

    Returns None when neither the parsed output nor the raw reply is usable.
    """
    result = await structured_model.ainvoke(prompt, config)
    if not isinstance(result, Mapping):
        _log.debug("structured output was %r, not a mapping; no raw reply to read", result)
        return None

    raw = result.get("raw")
    if isinstance(raw, AIMessage):
        replies.append(raw)
    parsed, error = result.get("parsed"), result.get("parsing_error")
    if isinstance(parsed, _DecisionSchema) and error is None:
        decision = decision_from_mapping(parsed.model_dump())
        if decision is not None and is_usable(decision):
            return decision

    _log.debug(
        "structured output unusable (parsed=%r, error=%r); reading the raw reply", parsed, error
    )
    return _read_raw_reply(raw) if isinstance(raw, AIMessage) else None


def _bind_structured_output(
    model: BaseChatModel, *, required: bool
) -> Runnable[LanguageModelInput, Any] | None:
    """Wrap ``model`` for structured output, or return None if it cannot call tools."""
    try:
        return model.with_structured_output(
            _DecisionSchema, method="function_calling", include_raw=True
        )
    except NotImplementedError as err:
        if required:
            raise ConfigurationError(
                f"structured=True needs a chat model with tool calling, but "
                f"{type(model).__name__} does not support it. Pass structured=None "
                "to fall back to the text format."
            ) from err
        _log.debug(
            "%s does not support tool calling; the joiner uses the text format",
            type(model).__name__,
        )
        return None


def _build_prompt(
    question: str, scratchpad: str, allow_replan: bool, *, structured: bool, retry: bool = False
) -> list[BaseMessage]:
    """Build the system and human messages for one joiner call."""
    parts = [_ROLE_PROMPT]
    if not allow_replan:
        parts.append(_LAST_ROUND_PROMPT)
    if retry:
        parts.append(_RETRY_NOTE)
    parts.append(_FORMAT_PROMPTS[structured, allow_replan])

    human = f"Question: {question}\n\nScratchpad:\n{scratchpad.strip() or '(empty)'}"
    return [SystemMessage(content="\n\n".join(parts)), HumanMessage(content=human)]


def _read_raw_reply(message: AIMessage) -> JoinDecision | None:
    """Read a decision from a reply's tool-call arguments, then from its text."""
    for call in message.tool_calls:
        decision = decision_from_mapping(call["args"])
        if decision is not None and is_usable(decision):
            return decision

    if message.tool_calls:
        # Text next to a tool call is usually a preamble ("Let me decide."), so it
        # counts only when it states an action. Otherwise the caller retries.
        decision = parse_explicit_decision(message.text.strip())
        return decision if decision is not None and is_usable(decision) else None
    try:
        return parse_join_text(message.text)
    except RunError as err:
        _log.debug("raw reply text unusable: %s", err)
        return None


def _finish_if_last_round(decision: JoinDecision, allow_replan: bool) -> JoinDecision:
    """Turn a Replan into a Finish when no more rounds are allowed."""
    if allow_replan or isinstance(decision, Finish):
        return decision

    answer = decision.reason or decision.thought or _NO_INFORMATION_ANSWER
    _log.warning(
        "the joiner chose Replan although this is the last round; answering with %r instead",
        answer,
    )
    return Finish(answer=answer, thought=decision.thought)
