"""AnalysisCache: ranks of a graph run again come from the cache until estimates change."""

from __future__ import annotations

import pytest

from dragonscale_lc import UsageError
from dragonscale_lc.runtime import (
    AnalysisCache,
    CostModel,
    DagExecutor,
    Task,
    TaskGraph,
    upward_ranks,
)


async def noop() -> None:
    return None


def chain(cost: float | None = None) -> TaskGraph:
    return TaskGraph(
        [
            Task(id="fetch", fn=noop, name="fetch", cost=cost),
            Task(id="parse", fn=noop, name="parse", cost=2.0, dependencies={"fetch"}),
        ]
    )


def test_same_graph_hits() -> None:
    cache, costs, graph = AnalysisCache(), CostModel(), chain(cost=1.0)

    first = cache.upward_ranks(graph, costs)
    second = cache.upward_ranks(graph, costs)

    assert second is first
    assert dict(first) == upward_ranks(graph, costs=costs)
    assert (cache.hits, cache.misses) == (1, 1)


def test_equal_structure_shares_entry() -> None:
    cache, costs = AnalysisCache(), CostModel()

    cache.upward_ranks(chain(cost=1.0), costs)
    cache.upward_ranks(chain(cost=1.0), costs)

    assert cache.hits == 1


def test_stated_cost_change_misses() -> None:
    cache, costs = AnalysisCache(), CostModel()

    cache.upward_ranks(chain(cost=1.0), costs)
    ranks = cache.upward_ranks(chain(cost=5.0), costs)

    assert ranks["fetch"] == 7.0
    assert cache.misses == 2


def test_learned_estimate_change_misses() -> None:
    cache, costs, graph = AnalysisCache(), CostModel(), chain()
    before = cache.upward_ranks(graph, costs)["fetch"]

    costs.observe("fetch", 4.0)
    after = cache.upward_ranks(graph, costs)["fetch"]

    assert (before, after) == (3.0, 6.0)
    assert cache.misses == 2


def test_least_recently_used_evicted() -> None:
    cache, costs = AnalysisCache(maxsize=1), CostModel()
    cache.upward_ranks(chain(cost=1.0), costs)
    cache.upward_ranks(chain(cost=2.0), costs)

    cache.upward_ranks(chain(cost=1.0), costs)

    assert (cache.hits, cache.misses) == (0, 3)


async def test_executor_ranks_reused_graph_once() -> None:
    executor = DagExecutor()
    graph = chain(cost=1.0)

    for _ in range(3):
        report = await executor.run(graph)
        assert report.ok

    assert (executor.analysis_cache.hits, executor.analysis_cache.misses) == (2, 1)


def test_invalid_maxsize_rejected() -> None:
    with pytest.raises(UsageError, match="maxsize must be at least 1, got 0"):
        AnalysisCache(maxsize=0)
