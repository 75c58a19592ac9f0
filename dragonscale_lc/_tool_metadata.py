"""Keys in a LangChain tool's ``metadata`` that tell the compiler how to run the tool."""

from __future__ import annotations

__all__ = ["CACHEABLE_KEY"]

CACHEABLE_KEY = "dragonscale_cacheable"
"""Key marking a tool whose output depends only on its arguments, so calls can be cached."""
