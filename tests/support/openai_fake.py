"""A scripted fake of OpenAI's chat-completions API for tests that use the real ChatOpenAI.

respx intercepts the openai client's HTTP requests, so nothing leaves the
process: the base URL points at a loopback port no test server listens on,
and an unmocked request fails instead of reaching a network. Streamed
requests (``stream: true``) without tools are the planner's and get
server-sent events. Requests that carry tools are the joiner's and get a
``join_decision`` tool call. Other requests are plain chat calls.

Every request's messages are checked as OpenAI checks them: an assistant
message with ``tool_calls`` must be followed by one tool message per call id,
and a tool message must answer such a call. A request that breaks the rule
gets OpenAI's 400 reply.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import httpx
import respx
from langchain_openai import ChatOpenAI

from dragonscale_lc.compiler import LLMCompiler
from dragonscale_lc.tools import builtin_tools

__all__ = [
    "BASE_URL",
    "COMPLETIONS_URL",
    "JAPAN",
    "JOIN_USAGE",
    "PLAN_USAGE",
    "POPULATION_PLAN",
    "QUESTION",
    "VIETNAM",
    "FakeOpenAI",
    "chat_model",
    "chat_reply",
    "chunk_json",
    "decision_reply",
    "error_reply",
    "finish_reply",
    "plan_reply",
    "replan_reply",
    "serve",
    "split_at",
    "sse_event",
    "sse_events",
    "streamed",
    "tool_message_problem",
]

BASE_URL = "http://127.0.0.1:9/v1"
COMPLETIONS_URL = f"{BASE_URL}/chat/completions"

PLAN_USAGE = {"prompt_tokens": 310, "completion_tokens": 42, "total_tokens": 352}
JOIN_USAGE = {"prompt_tokens": 420, "completion_tokens": 18, "total_tokens": 438}

QUESTION = "Which has more people, Japan or Vietnam, and by what factor?"
JAPAN, VIETNAM = 127080000, 89708900  # the countryinfo figures the tool returns

POPULATION_PLAN = """\
1. country_facts("Japan")
2. country_facts("Vietnam")
Thought: Both populations are needed; compare them and take the ratio.
3. argmax(["Japan", "Vietnam"], [$1, $2])
4. math("${1} / ${2}")
5. join()
"""


# Helpers that build the OpenAI wire format.


def split_at(text: str, offsets: Sequence[int]) -> list[str]:
    """Cut ``text`` at each offset, in increasing order, into consecutive pieces."""
    assert list(offsets) == sorted(offsets), f"offsets must increase: {offsets}"
    bounds = [0, *offsets, len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def chunk_json(content: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return one ``chat.completion.chunk``, with ``usage`` or ``finish_reason`` from ``extra``."""
    delta = {} if content is None else {"content": content}
    finish = extra.pop("finish_reason", None)
    choices = [] if "usage" in extra else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-plan",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": choices,
        **extra,
    }


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def sse_events(pieces: Sequence[str], usage: dict[str, int] = PLAN_USAGE) -> list[bytes]:
    """Return a streamed reply: a role chunk, one content chunk per piece, then usage."""
    first = chunk_json()
    first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
    events = [sse_event(first), *(sse_event(chunk_json(piece)) for piece in pieces)]
    events.append(sse_event(chunk_json(finish_reason="stop")))
    events.append(sse_event(chunk_json(usage=usage)))
    events.append(sse_event("[DONE]"))
    return events


def plan_reply(plan: str, offsets: Sequence[int] = ()) -> httpx.Response:
    """Return the planner's streamed reply, its content cut at ``offsets``."""
    body = b"".join(sse_events(split_at(plan, offsets)))
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def decision_reply(usage: dict[str, int] = JOIN_USAGE, **decision: str) -> httpx.Response:
    """Return the joiner's non-streamed reply: one ``join_decision`` tool call."""
    call = {
        "id": "call_join",
        "type": "function",
        "function": {"name": "join_decision", "arguments": json.dumps(decision)},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    body = {
        "id": "chatcmpl-join",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": usage,
    }
    return httpx.Response(200, json=body)


def finish_reply(answer: str) -> httpx.Response:
    return decision_reply(thought="The observations answer it.", action="finish", answer=answer)


def replan_reply(reason: str) -> httpx.Response:
    return decision_reply(thought="Something is missing.", action="replan", replan_reason=reason)


def streamed(reply: httpx.Response) -> httpx.Response:
    """Return a non-streamed tool-call reply as the SSE stream a streamed request gets."""
    completion = reply.json()
    message = completion["choices"][0]["message"]
    calls = [{"index": index, **call} for index, call in enumerate(message["tool_calls"])]
    first = chunk_json()
    first["choices"][0]["delta"] = {"role": "assistant", "content": None, "tool_calls": calls}
    events = [
        sse_event(first),
        sse_event(chunk_json(finish_reason="tool_calls")),
        sse_event(chunk_json(usage=completion["usage"])),
        sse_event("[DONE]"),
    ]
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=b"".join(events)
    )


def error_reply(status: int, message: str, kind: str = "server_error") -> httpx.Response:
    # retry-after-ms keeps the openai client's backoff at one millisecond.
    body = {"error": {"message": message, "type": kind, "code": None}}
    return httpx.Response(status, headers={"retry-after-ms": "1"}, json=body)


class FakeOpenAI:
    """Fake chat-completions endpoint that replies from a planner, a joiner and a chat script.

    A request with tools comes from the joiner. Any other streamed request
    comes from the planner, and the rest are chat calls.
    """

    def __init__(
        self,
        planner: Sequence[httpx.Response],
        joiner: Sequence[httpx.Response],
        chat: Sequence[httpx.Response] = (),
    ):
        self.scripts = {"planner": list(planner), "joiner": list(joiner), "chat": list(chat)}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "tools" in body:
            role = "joiner"
        elif body.get("stream"):
            role = "planner"
        else:
            role = "chat"
        self.requests.append((role, body))
        problem = tool_message_problem(body["messages"])
        if problem is not None:
            return error_reply(400, problem, "invalid_request_error")
        script = self.scripts.get(role)
        if not script:
            # A 400 is not retried, so an unexpected request fails the run at once.
            return error_reply(400, f"the test scripted no further {role} reply")
        reply = script.pop(0)
        # Under astream_events, and LangGraph's "messages" stream mode, LangChain
        # streams the joiner's call too, so it gets SSE.
        if role == "joiner" and body.get("stream") and reply.is_success:
            return streamed(reply)
        return reply

    def bodies(self, role: str) -> list[dict[str, Any]]:
        return [body for kind, body in self.requests if kind == role]

    def prompt(self, role: str, index: int) -> str:
        """Return the text of every message of one request, joined."""
        return "\n".join(message["content"] for message in self.bodies(role)[index]["messages"])


def serve(
    router: respx.MockRouter,
    planner: Sequence[Any],
    joiner: Sequence[Any],
    chat: Sequence[Any] = (),
) -> FakeOpenAI:
    """Route every chat-completions request of ``router`` to a new :class:`FakeOpenAI`."""
    server = FakeOpenAI(planner, joiner, chat)
    router.post(COMPLETIONS_URL).mock(side_effect=server)
    return server


def chat_model(*, max_retries: int = 0) -> ChatOpenAI:
    # ChatOpenAI turns stream_usage on by default only for OpenAI's own base
    # URL, and the planner's token usage arrives only when it is on.
    return ChatOpenAI(
        model="gpt-test",
        base_url=BASE_URL,
        api_key="test-key",
        stream_usage=True,
        max_retries=max_retries,
    )


def chat_reply(content: str) -> httpx.Response:
    """Return a plain, non-streamed assistant reply."""
    body = {
        "id": "chatcmpl-chat",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55},
    }
    return httpx.Response(200, json=body)


def tool_message_problem(messages: Sequence[dict[str, Any]]) -> str | None:
    """Return OpenAI's complaint about the tool messages of a request, or None if they are valid."""
    open_calls: list[str] = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                return (
                    f"Invalid parameter: messages[{index}] with role 'tool' must be a response "
                    "to a preceding message with 'tool_calls'."
                )
            open_calls.remove(message["tool_call_id"])
            continue
        if open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_calls)}"
            )
        if role == "assistant":
            open_calls = [call["id"] for call in message.get("tool_calls") or []]
    if open_calls:
        return f"tool_call_ids without response messages: {', '.join(open_calls)}"
    return None


def population_compiler(**options: Any) -> LLMCompiler:
    """Return a compiler with the built-in tools whose model is the fake endpoint's."""
    return LLMCompiler(model=chat_model(**options), tools=builtin_tools())
