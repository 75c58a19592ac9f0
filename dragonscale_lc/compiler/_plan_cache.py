"""Plan cache: reuse a plan that answered the same question with the same tools and model.

A plan depends on the question, on the tools the planner was shown, on the
model that wrote it and on the prompt that asked for it. The cache key covers
all four, so a changed tool schema, another model or a new prompt version
never replays a stale plan. A hit skips the planner call: its tasks start at
once and no planner tokens are spent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable
from os import PathLike
from typing import Any

from langchain_core.language_models import BaseChatModel

from ..runtime import MISSING, Cache, CacheStats
from ._prompts import PROMPT_VERSION
from ._toolbox import ToolBox

__all__ = ["PlanCache", "normalize_question"]


class PlanCache:
    """First-round plans that led to an answer, by question, tools, model and prompt version.

    Entries live in memory (least recently used first out) and, given a
    ``path``, in a SQLite file that survives restarts.

    Args:
        path: SQLite database file, or ``None`` to keep plans in memory only.
        maxsize: Plans kept in memory.
        ttl: Seconds a plan stays valid, or ``None`` for no limit.
        clock: Wall-clock seconds for the time to live; injectable for tests.

    Example:
        >>> from dragonscale_lc.compiler import LLMCompiler, PlanCache
        >>> cache = PlanCache("plans.sqlite", ttl=7 * 24 * 3600)  # doctest: +SKIP
        >>> compiler = LLMCompiler(model=model, tools=tools, plan_cache=cache)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        maxsize: int = 256,
        ttl: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._entries = Cache(maxsize=maxsize, ttl=ttl, path=path, table="plans", clock=clock)

    @property
    def stats(self) -> CacheStats:
        """Lookups that found a plan and lookups that did not."""
        return self._entries.stats

    def key(self, question: str, toolbox: ToolBox, model: BaseChatModel) -> str:
        """Return the cache key of a question for these tools and this model."""
        parts = {
            "question": normalize_question(question),
            "tools": [
                {"name": name, "description": toolbox[name].description, "args": toolbox[name].args}
                for name in sorted(toolbox.names)
            ],
            "model": _model_identity(model),
            "prompt_version": PROMPT_VERSION,
        }
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def get(self, key: str) -> str | None:
        """Return the plan text stored under ``key``, or ``None``."""
        plan = self._entries.get(key)
        return None if plan is MISSING else str(plan)

    def put(self, key: str, plan: str) -> None:
        """Store the plan text under ``key``."""
        self._entries.put(key, plan)

    def clear(self) -> None:
        """Remove every plan, from memory and from the database."""
        self._entries.clear()

    def close(self) -> None:
        """Close the database file."""
        self._entries.close()


def normalize_question(question: str) -> str:
    """Return the question with Unicode forms, case and runs of whitespace made uniform.

    Example:
        >>> normalize_question("  Which has more people,\\n Japan or VIETNAM? ")
        'which has more people, japan or vietnam?'
    """
    text = unicodedata.normalize("NFKC", question).casefold()
    return re.sub(r"\s+", " ", text).strip()


def _model_identity(model: BaseChatModel) -> dict[str, Any]:
    """Return what identifies the model's behaviour: its class and identifying settings."""
    identity: dict[str, Any] = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    # A model that cannot report its settings is still identified by its class.
    with contextlib.suppress(AttributeError, NotImplementedError):
        identity.update(model._identifying_params)
    return identity
