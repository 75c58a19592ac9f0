"""DagRunnable: a dict of Runnables with dependencies, run as one task graph."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import ensure_config
from langchain_core.runnables.utils import AddableDict
from langchain_core.utils.pydantic import create_model_v2
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from .._sync import iterate_sync, run_sync, single
from ..runtime import FailurePolicy
from ._call import DagCall, RunManager, custom_event, node_result
from ._node import DagNode, RunnableLike, build_nodes, check_outputs

__all__ = ["DagRunnable"]

_NO_INPUT = object()


class DagRunnable(RunnableSerializable[Any, dict[str, Any]]):
    """Run a dict of Runnables with declared dependencies as one task graph.

    Each node starts the moment its own dependencies have finished and a
    worker slot is free, so a fast chain never waits for a slow branch, unlike
    nested ``RunnableParallel`` steps, where every level waits for its slowest
    branch. Among ready nodes, higher ``priority`` starts first, then the node
    with the longest chain of ``cost`` after it (the critical path).

    Inputs: a node without dependencies receives the DAG's input. A node with
    dependencies receives a dict of its dependencies' outputs by node name,
    plus the DAG's input under ``input_key`` (``"input"`` by default).

    Output: a dict of every node's output by node name, in the order of
    ``nodes``, or of the nodes listed in ``outputs``, in that order. Every
    node runs either way.

    Failures (``failure_policy``): with ``"fail_fast"`` (the default, as in
    ``RunnableParallel``) the first node that raises stops the run, the other
    running nodes are cancelled, and :class:`~dragonscale_lc.DagRunError`
    is raised with the failed node's name, the outputs of the nodes that
    finished, and the run report. With ``"continue"`` the failed node's
    dependents run with an :class:`~dragonscale_lc.ErrorObservation` (a
    ``str`` describing the error) in place of its output. With
    ``"skip_dependents"`` they are skipped. Under both, nothing is raised, and
    the output holds the ``ErrorObservation`` of each failed or skipped node.

    Config: every node is a child run named after the node (``run_name``)
    and tagged ``dag:node:<name>``, and it inherits the callbacks, tags and
    metadata. ``max_concurrency`` in the config caps the nodes running at
    once, in place of the ``max_concurrency`` field. ``invoke``, ``batch``
    and ``stream`` call each node's ``invoke`` in a worker thread, while
    ``ainvoke``, ``abatch`` and ``astream`` await its ``ainvoke``.

    Streaming: ``stream`` and ``astream`` yield ``{name: output}`` for each
    output node as soon as it settles, so the chunks add up to the output.

    Events: the runtime's task events are dispatched as custom events named
    ``dragonscale.task.ready``, ``dragonscale.task.started``,
    ``dragonscale.task.completed``, ``dragonscale.task.failed``,
    ``dragonscale.task.skipped`` and ``dragonscale.task.cancelled``. Their
    data has ``node`` and ``time`` (seconds since the run started). Settled
    nodes add ``status``, ``error`` (text or ``None``), ``start`` and ``end``.

    Example:
        >>> from dragonscale_lc import DagNode, DagRunnable
        >>> dag = DagRunnable(nodes={
        ...     "double": lambda x: 2 * x,
        ...     "square": lambda x: x * x,
        ...     "total": DagNode(lambda d: d["double"] + d["square"] + d["input"],
        ...                      depends_on=["double", "square"]),
        ... })
        >>> dag.invoke(3)
        {'double': 6, 'square': 9, 'total': 18}
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # Typed Any for pydantic, which would otherwise validate DagNode as a
    # dataclass and reject values with pydantic's messages instead of ours.
    nodes: Mapping[str, Any]
    """The nodes by name: a :class:`DagNode`, or a Runnable or callable without dependencies."""
    outputs: Sequence[str] | None = None
    """Names of the nodes the output holds, in this order; ``None`` for every node."""
    input_key: str = "input"
    """Key of the DAG's input in the dict that a node with dependencies receives."""
    max_concurrency: int = Field(default=16, ge=1)
    """Most nodes running at once; ``RunnableConfig["max_concurrency"]`` overrides it."""
    failure_policy: FailurePolicy = FailurePolicy.FAIL_FAST
    """Policy for the run and the dependents when a node raises."""

    _nodes: dict[str, DagNode] = PrivateAttr()
    _outputs: tuple[str, ...] = PrivateAttr()

    def __init__(self, nodes: Mapping[str, DagNode | RunnableLike], **kwargs: Any) -> None:
        super().__init__(nodes=nodes, **kwargs)  # type: ignore[call-arg]

    @model_validator(mode="after")
    def _check(self) -> DagRunnable:
        self._nodes = build_nodes(self.nodes, input_key=self.input_key)
        if self.outputs is not None:
            check_outputs(self.outputs, self._nodes)
        self._outputs = tuple(self._nodes if self.outputs is None else self.outputs)
        return self

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        fields = {name: (self._nodes[name].runnable.OutputType, ...) for name in self._outputs}
        return create_model_v2(self.get_name("Output"), field_definitions=fields)

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return await self._acall_with_config(self._ainvoke, input, config, run_type="chain")

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        yield from self._transform_stream_with_config(
            iter([input]), self._transform, config, run_type="chain"
        )

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        async for chunk in self._atransform_stream_with_config(
            single(input), self._atransform, config, run_type="chain"
        ):
            yield chunk

    def _invoke(
        self, input: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> dict[str, Any]:
        return run_sync(lambda: self._collect(input, run_manager, config, sync=True))

    async def _ainvoke(
        self, input: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> dict[str, Any]:
        return await self._collect(input, run_manager, config, sync=False)

    def _transform(
        self,
        inputs: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> Iterator[AddableDict]:
        input = _combine(inputs)
        if input is _NO_INPUT:
            return
        yield from iterate_sync(lambda: self._chunks(input, run_manager, config, sync=True))

    async def _atransform(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AsyncIterator[AddableDict]:
        input = _combine([item async for item in inputs])
        if input is _NO_INPUT:
            return
        async for chunk in self._chunks(input, run_manager, config, sync=False):
            yield chunk

    async def _collect(
        self, input: Any, run_manager: RunManager, config: RunnableConfig, *, sync: bool
    ) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        async for chunk in self._chunks(input, run_manager, config, sync=sync):
            outputs.update(chunk)
        return {name: outputs[name] for name in self._outputs}

    async def _chunks(
        self, input: Any, run_manager: RunManager, config: RunnableConfig, *, sync: bool
    ) -> AsyncIterator[AddableDict]:
        """Run the nodes, dispatch their events, and yield each output node's result."""
        config = ensure_config(config)
        call = DagCall(
            self._nodes,
            input=input,
            input_key=self.input_key,
            config=config,
            run_manager=run_manager,
            policy=self.failure_policy,
            max_workers=config.get("max_concurrency") or self.max_concurrency,
            sync=sync,
        )
        # Custom events need a parent run: this DAG's run.
        events_config: RunnableConfig = {"callbacks": run_manager.get_child()}
        wanted = set(self._outputs)
        async for event in call.events():
            name, data = custom_event(event)
            if sync:
                dispatch_custom_event(name, data, config=events_config)
            else:
                await adispatch_custom_event(name, data, config=events_config)
            result = node_result(event, self.failure_policy)
            if result is not None and result[0] in wanted:
                yield AddableDict([result])


def _combine(chunks: Iterable[Any]) -> Any:
    """Add up input chunks the way LangChain's default ``transform`` does."""
    combined: Any = _NO_INPUT
    for chunk in chunks:
        if combined is _NO_INPUT:
            combined = chunk
            continue
        try:
            combined = combined + chunk
        except TypeError:
            combined = chunk
    return combined
