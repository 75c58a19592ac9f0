"""DaskBackend: run the calls of remote tasks on a Dask distributed cluster.

The run keeps the dispatcher. It orders ready tasks, resolves their
arguments locally and submits only calls that are ready to run, so every
task Dask receives has no dependencies. Each call becomes one
``client.submit(..., priority=..., pure=False, key=...)``; its output comes
back as the task's output and its exception as the task's error.

Cancelling the task (a timeout, a cancelled run, ``fail_fast``) cancels the
Dask future with ``client.cancel``. That removes a call still queued on the
cluster, but Dask does not interrupt a call that a worker has started: the
worker runs it to completion and the result is dropped.

Requires the ``dask`` extra: ``pip install 'dragonscale_lc[dask]'``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from typing import Any

try:
    from distributed import Client
    from distributed.client import FutureCancelledError
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ModuleNotFoundError(
        f"DaskBackend needs the {error.name!r} package: pip install 'dragonscale_lc[dask]'",
        name=error.name,
    ) from error

from .._errors import TaskError, UsageError
from ..runtime import Call

__all__ = ["DaskBackend", "dask_priority"]

logger = logging.getLogger(__name__)


def dask_priority(priority: int, rank: float) -> float:
    """Map a task's effective priority and upward rank to one Dask priority.

    Higher runs first in both systems. The integer part is the priority and
    the fraction ``rank / (1 + rank)`` grows with the rank while staying
    below 1, so sorting by the result sorts by priority, then rank, as the
    run's ready queue does. Negative ranks count as 0.

    NOTE: the fraction has float precision, so two ranks that differ by less
    than about ``1e-12 * (1 + rank) ** 2`` may map to the same Dask priority.
    """
    rank = max(rank, 0.0)
    return priority + rank / (1.0 + rank)


class DaskBackend:
    """Run calls on a Dask distributed cluster through an asynchronous client.

    Args:
        cluster: An asynchronous :class:`distributed.Client` created in the
            event loop that runs the executor (``await Client(...,
            asynchronous=True)``), or a scheduler address such as
            ``"tcp://127.0.0.1:8786"``. For an address the backend connects
            on first use and closes its client in :meth:`aclose`; a client
            passed in stays open.
        name: What the run report's ``worker`` field shows for these tasks.

    Raises:
        UsageError: ``cluster`` is a synchronous client.

    Example:
        >>> import asyncio
        >>> from distributed import Client, LocalCluster
        >>> from dragonscale_lc.backends import DaskBackend
        >>> from dragonscale_lc.runtime import DagExecutor, Task
        >>> async def main():
        ...     async with LocalCluster(
        ...         processes=False, n_workers=1, dashboard_address="127.0.0.1:0", asynchronous=True
        ...     ) as cluster, Client(cluster, asynchronous=True) as client:
        ...         executor = DagExecutor(backend=DaskBackend(client))
        ...         report = await executor.run([Task(id=1, fn=sum, args=([1, 2],), remote=True)])
        ...         return report[1].output, report[1].worker
        >>> asyncio.run(main())  # doctest: +SKIP
        (3, 'dask')
    """

    def __init__(self, cluster: Client | str, *, name: str = "dask") -> None:
        self._client: Client | None = None
        self._address: str | None = None
        if isinstance(cluster, str):
            self._address = cluster
        elif not cluster.asynchronous:
            raise UsageError(
                "DaskBackend needs a client created with asynchronous=True in the event loop "
                "that runs the executor, or the scheduler address to connect to"
            )
        else:
            self._client = cluster
        self._name = name
        self._connecting = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def client(self) -> Client | None:
        """The client calls are submitted through; ``None`` before an address is connected."""
        return self._client

    async def __aenter__(self) -> DaskBackend:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def connect(self) -> Client:
        """Connect to the scheduler address if not connected yet, and return the client."""
        async with self._connecting:
            if self._client is None:
                assert self._address is not None  # set when no client was passed in
                self._client = await Client(self._address, asynchronous=True)
            return self._client

    async def aclose(self) -> None:
        """Close the client this backend opened for an address; a client passed in stays open."""
        if self._address is not None and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def execute(self, call: Call) -> Any:
        """Submit ``call`` to the cluster, wait for it and return its output."""
        client = self._client if self._client is not None else await self.connect()
        fn = call.fn
        if call.kwargs:
            # Keyword arguments go inside the function, because Client.submit
            # reads some names (key, priority, workers, ...) as its own options.
            fn = functools.partial(fn, **call.kwargs)
        key = f"{call.name}-{uuid.uuid4().hex}"
        future = client.submit(
            fn, *call.args, key=key, priority=dask_priority(call.priority, call.rank), pure=False
        )
        try:
            return await future
        except FutureCancelledError as error:
            # Cancelled on the cluster's side (another client, or the
            # scheduler), not by this run.
            message = f"task {call.task_id!r} ({call.name}): Dask cancelled its future {key}"
            raise TaskError(message, task_id=call.task_id, tool=call.name) from error
        except asyncio.CancelledError:
            await client.cancel([future], reason="the dragonscale task was cancelled")
            logger.info(
                "cancelled Dask future %s of task %r (%s); a call already running on a "
                "worker runs to completion",
                key,
                call.task_id,
                call.name,
            )
            raise
