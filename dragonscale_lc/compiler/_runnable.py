"""LLMCompiler as a LangChain Runnable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    convert_to_messages,
)
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .._errors import ConfigurationError, UsageError
from .._sync import iterate_sync, run_sync, single
from ..runtime import Cache, DagExecutor, FailurePolicy, WorkerPool
from ._joiner import Joiner
from ._plan_cache import PlanCache
from ._planner import Planner
from ._pricing import DEFAULT_PRICES, TokenPrice
from ._progress import Emit, Progress, event_payload
from ._result import CompilerResult
from ._session import Session
from ._toolbox import ToolBox

if TYPE_CHECKING:
    from ..tools._config import ToolsConfig

__all__ = ["DEFAULT_TASK_TIMEOUT", "CompilerInput", "LLMCompiler"]

CompilerInput = str | BaseMessage | Sequence[BaseMessage] | dict[str, Any]
T = TypeVar("T")
_DONE = object()

DEFAULT_TASK_TIMEOUT = 300.0
"""Default seconds before a tool call times out; ``task_timeout`` overrides it."""

# Settings a config may also set under "configurable", for one call.
_CONFIGURABLE = ("max_replans", "max_concurrency", "task_timeout", "failure_policy", "direct_join")


class LLMCompiler(RunnableSerializable[CompilerInput, AIMessage]):
    """Answer questions by planning tool calls as a graph and running them concurrently.

    The planner model streams a plan; each task starts as soon as its line is
    parsed and its dependencies are done. The joiner model then answers or
    asks for a new plan, up to ``max_replans`` times. Without any joiner model
    (``direct_join=True``, or no model at all with a fixed ``plan``), the
    answer is the output of the plan's last task.

    Input: a question string, a message or list of messages (the last human
    message is the question), or a dict with ``messages``, ``input`` or
    ``question``. Output: an ``AIMessage`` whose content is the answer; its
    ``response_metadata["dragonscale"]`` holds the tasks and replans, and its
    ``usage_metadata`` the planner's and joiner's tokens.

    ``RunnableConfig`` applies as usual: callbacks, tags, metadata and
    ``run_name`` reach the models and tools, and ``max_concurrency`` caps the
    tool calls running at once. The settings ``max_replans``,
    ``max_concurrency``, ``task_timeout``, ``failure_policy`` and
    ``direct_join`` may also be given for one call under ``configurable``
    (``{"configurable": {"max_replans": 0}}``); they are checked like
    constructor arguments. Progress reaches callback handlers as custom
    events named ``dragonscale.<topic>`` (``dragonscale.task.ready``,
    ``dragonscale.join.decided``), which ``astream_events`` shows.

    Example:
        >>> from langchain_openai import ChatOpenAI
        >>> from dragonscale_lc import LLMCompiler, builtin_tools
        >>> compiler = LLMCompiler(model=ChatOpenAI(model="gpt-4o"), tools=builtin_tools())
        >>> compiler.invoke("Which has more people, Japan or Vietnam?").content  # doctest: +SKIP
        'Japan'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tools: Sequence[BaseTool | Callable[..., Any]] = ()
    """Tools the plans may call: LangChain tools or plain functions."""
    # Typed Any so that pydantic does not build a schema of ToolsConfig, whose
    # MCP settings would import the MCP client. _check checks the type.
    tools_config: Any = None
    """A TOML tool configuration file (a path, or a loaded ``ToolsConfig``) declaring more tools.

    Its Python and WASM tools load when the compiler is built. Its MCP servers
    start at the beginning of each run, with one session each for the run."""
    model: BaseChatModel | None = None
    """Chat model that writes plans, and joins unless ``joiner_model`` is set."""
    joiner_model: BaseChatModel | None = None
    """Chat model that decides between answering and replanning."""
    direct_join: bool = False
    """Answer with the last task's output instead of asking a joiner model."""
    plan: str | None = None
    """A fixed first plan in plan syntax; the planner is then used only for replans."""
    max_replans: int = Field(default=2, ge=0)
    """How many times the compiler may plan again after the first plan."""
    max_concurrency: int = Field(default=16, ge=1)
    """Most tool calls running at once; ``RunnableConfig["max_concurrency"]`` overrides it."""
    task_timeout: float | None = Field(default=DEFAULT_TASK_TIMEOUT, gt=0)
    """Seconds before a tool call is cancelled and becomes an error observation.

    The default keeps a tool that never returns from holding the run forever;
    ``None`` lets calls run as long as they take."""
    failure_policy: FailurePolicy = FailurePolicy.CONTINUE
    """Policy for the tasks downstream of a failed tool call."""
    prices: dict[str, TokenPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    """US dollars per million tokens by model name, for the estimated cost."""
    plan_cache: PlanCache | None = None
    """Cache of first plans that led to an answer; a hit skips the planner call."""
    result_cache: Cache | None = None
    """Outputs of cacheable tool calls kept across runs (within a run they are always shared)."""
    resource_limits: dict[str, int] = Field(default_factory=dict)
    """Maximum number of tool calls running at once per worker-pool key. A key is
    a tool name, or a key from a tool's ``metadata["dragonscale_resources"]``
    such as ``"mcp:search"``. Caps that tools declare in
    ``metadata["dragonscale_resource_limits"]`` apply too, and these override
    them. The total limit stays ``max_concurrency``."""

    _toolbox: ToolBox = PrivateAttr()
    _config: ToolsConfig | None = PrivateAttr(default=None)
    _local_tools: list[BaseTool | Callable[..., Any]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> LLMCompiler:
        self._config = _load_tools_config(self.tools_config)
        self._local_tools = [*self.tools, *(self._config.local_tools() if self._config else ())]
        self._toolbox = ToolBox(self._local_tools)
        # Built once here so that an invalid cap fails at construction, not in a run.
        WorkerPool(limits=self._limits(self._toolbox))
        if self.model is None and self.plan is None:
            raise ConfigurationError(
                "LLMCompiler needs a chat model (model=...) to write plans, "
                "or a fixed plan (plan=...) to run"
            )
        return self

    @property
    def toolbox(self) -> ToolBox:
        """The compiler's tools by name."""
        return self._toolbox

    async def arun(
        self,
        question: str,
        *,
        plan: str | None = None,
        config: RunnableConfig | None = None,
        emit: Emit | None = None,
    ) -> CompilerResult:
        """Answer ``question`` and return the full result, run report included.

        Args:
            question: The user's question.
            plan: A first plan to run instead of asking the planner.
            config: LangChain config passed to the models and tools.
            emit: Called with every progress event (topic, data).
        """
        if not question.strip():
            raise UsageError("the question is empty; pass the text to answer")
        config = ensure_config(config)
        if self._config is not None and self._config.mcp:
            async with self._config.open() as tools:
                toolbox = ToolBox([*self.tools, *tools])
                return await self._arun(question, plan, config, emit, toolbox)
        return await self._arun(question, plan, config, emit, self._toolbox)

    async def _arun(
        self,
        question: str,
        plan: str | None,
        config: RunnableConfig,
        emit: Emit | None,
        toolbox: ToolBox,
    ) -> CompilerResult:
        settings = self._for_call(config)
        workers = config.get("max_concurrency") or settings.max_concurrency
        limits = self._limits(toolbox)
        # A fixed total (min_workers == max_workers), so that caps per key
        # change nothing else about how many calls run.
        pool = (
            WorkerPool(min_workers=workers, max_workers=workers, limits=limits) if limits else None
        )
        executor = DagExecutor(
            max_workers=workers, pool=pool, failure_policy=settings.failure_policy
        )
        joiner_model = self.joiner_model or self.model
        session = Session(
            question=question,
            toolbox=toolbox,
            executor=executor,
            planner=Planner(self.model) if self.model is not None else None,
            joiner=None if settings.direct_join or joiner_model is None else Joiner(joiner_model),
            max_replans=settings.max_replans,
            task_timeout=settings.task_timeout,
            config=config,
            progress=Progress(config, emit),
            prices=self.prices,
            plan_cache=self.plan_cache,
            result_store=self.result_cache,
        )
        return await session.run(plan if plan is not None else self.plan)

    def _limits(self, toolbox: ToolBox) -> dict[str, int]:
        return {**toolbox.resource_limits, **self.resource_limits}

    def _for_call(self, config: RunnableConfig) -> LLMCompiler:
        """Return this compiler with the settings ``config["configurable"]`` overrides."""
        configurable = config.get("configurable") or {}
        overrides = {key: configurable[key] for key in _CONFIGURABLE if key in configurable}
        if not overrides:
            return self
        validated = {}
        for key, value in overrides.items():
            try:
                validated[key] = _SETTING_CHECKS[key].validate_python(value)
            except ValidationError as error:
                problem = error.errors()[0]["msg"]
                raise UsageError(
                    f"invalid configurable[{key!r}] = {value!r}: {problem}. "
                    f"Pass a value that LLMCompiler({key}=...) accepts, or leave it out"
                ) from None
        # Checked field by field above, so the copy need not build the toolbox again.
        return self.model_copy(update=validated)

    def run(
        self, question: str, *, plan: str | None = None, config: RunnableConfig | None = None
    ) -> CompilerResult:
        """Synchronous twin of :meth:`arun`."""
        return run_sync(lambda: self.arun(question, plan=plan, config=config))

    async def ainvoke(
        self, input: CompilerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        return await self._acall_with_config(self._ainvoke, input, config, run_type="chain")

    def invoke(
        self, input: CompilerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        return run_sync(lambda: self.ainvoke(input, config, **kwargs))

    async def astream(
        self, input: CompilerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        """Stream progress chunks while the plan runs, then the answer.

        Progress chunks have empty content and one event in
        ``additional_kwargs["dragonscale_events"]`` (a list, so adding up the
        chunks collects every event); the last chunk carries the answer.
        """
        async for chunk in self._atransform_stream_with_config(
            single(input), self._astream, config, run_type="chain"
        ):
            yield chunk  # type: ignore[misc]  # the transformer yields AIMessageChunks

    def stream(
        self, input: CompilerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        """Synchronous twin of :meth:`astream`, driven from a helper thread."""
        yield from iterate_sync(lambda: self.astream(input, config, **kwargs))

    async def _ainvoke(
        self,
        input: CompilerInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AIMessage:
        result = await self.arun(question_of(input), config=config)
        return _answer_message(result, AIMessage)

    async def _astream(
        self,
        inputs: AsyncIterator[CompilerInput],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AsyncIterator[AIMessageChunk]:
        question = question_of([item async for item in inputs][-1])
        events: asyncio.Queue[Any] = asyncio.Queue()
        work = asyncio.create_task(
            self.arun(
                question, config=config, emit=lambda topic, data: events.put_nowait((topic, data))
            )
        )
        work.add_done_callback(lambda _: events.put_nowait(_DONE))
        try:
            while (item := await events.get()) is not _DONE:
                topic, data = item
                yield AIMessageChunk(
                    content="",
                    additional_kwargs={
                        "dragonscale_events": [{"topic": topic, **event_payload(data)}]
                    },
                )
            yield _answer_message(work.result(), AIMessageChunk)
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)


# One check per setting, with the field's type and constraints (max_replans >= 0 and so on).
_SETTING_CHECKS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(
        Annotated[(field.annotation, *field.metadata)]  # type: ignore[arg-type]
        if field.metadata
        else field.annotation
    )
    for name, field in LLMCompiler.model_fields.items()
    if name in _CONFIGURABLE
}


def _load_tools_config(source: object) -> ToolsConfig | None:
    # Imported here: the tools package loads the built-in tools and numexpr,
    # which a compiler without a configuration file does not need.
    from ..tools._config import as_tools_config  # noqa: PLC0415

    return as_tools_config(source)


def question_of(input: CompilerInput) -> str:
    """Return the question in a compiler input.

    Raises:
        UsageError: The input contains no question.
    """
    question = _find_question(input)
    if not question.strip():
        raise UsageError("the question is empty; pass the text to answer")
    return question


def _find_question(input: Any) -> str:
    if isinstance(input, str):
        return input
    if isinstance(input, BaseMessage):
        return input.text
    if isinstance(input, dict):
        for key in ("messages", "input", "question"):
            if key in input:
                return _find_question(input[key])
        raise UsageError(
            f"LLMCompiler got a dict with keys {sorted(input)}; expected a 'messages', "
            "'input' or 'question' key"
        )
    if isinstance(input, Sequence) and not isinstance(input, bytes | bytearray):
        if not input:
            raise UsageError("the input has no messages; pass at least one human message")
        try:
            messages = convert_to_messages(input)
        except (ValueError, NotImplementedError) as error:
            raise UsageError(f"LLMCompiler cannot read the input messages: {error}") from error
        humans = [message for message in messages if isinstance(message, HumanMessage)]
        if not humans:
            kinds = ", ".join(sorted({message.type for message in messages}))
            raise UsageError(
                f"the input messages ({kinds}) contain no human message to answer; "
                "add the user's question as a human message"
            )
        return humans[-1].text
    raise UsageError(
        f"LLMCompiler cannot take {type(input).__name__} input; pass a question string, "
        "a list of messages, or a dict with 'messages'"
    )


def _answer_message(result: CompilerResult, cls: type[T]) -> T:
    return cls(  # type: ignore[call-arg]
        content=result.answer,
        response_metadata={"dragonscale": result.to_dict()},
        usage_metadata=result.usage,
    )
