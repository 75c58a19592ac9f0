"""Estimated cost of a run's model calls, from token usage and a price list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from langchain_core.messages.ai import UsageMetadata

__all__ = ["DEFAULT_PRICES", "TokenPrice", "estimate_cost", "price_for"]


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """US dollars per million tokens of one model.

    ``cached_input`` applies to prompt tokens served from the provider's
    cache (``input_token_details["cache_read"]``); without it they cost as
    much as other input tokens.
    """

    input: float
    output: float
    cached_input: float | None = None


DEFAULT_PRICES: Mapping[str, TokenPrice] = {
    # OpenAI's published list prices for standard processing, in 2025. Prices
    # change, so pass LLMCompiler(prices=...) to use your own.
    "gpt-4o": TokenPrice(2.50, 10.00, 1.25),
    "gpt-4o-mini": TokenPrice(0.15, 0.60, 0.075),
    "gpt-4.1": TokenPrice(2.00, 8.00, 0.50),
    "gpt-4.1-mini": TokenPrice(0.40, 1.60, 0.10),
    "gpt-4.1-nano": TokenPrice(0.10, 0.40, 0.025),
    "o3-mini": TokenPrice(1.10, 4.40, 0.55),
    "gpt-3.5-turbo": TokenPrice(0.50, 1.50),
}


def price_for(model_name: str, prices: Mapping[str, TokenPrice]) -> TokenPrice | None:
    """Return the price of ``model_name``: an exact entry, else the longest prefix.

    A dated snapshot such as ``gpt-4o-mini-2024-07-18`` takes the price of
    ``gpt-4o-mini``, not of ``gpt-4o``.
    """
    if model_name in prices:
        return prices[model_name]
    matches = [name for name in prices if model_name.startswith(name + "-")]
    return prices[max(matches, key=len)] if matches else None


def estimate_cost(usage: UsageMetadata, price: TokenPrice) -> float:
    """Return the dollars ``usage`` costs at ``price``."""
    cached = (usage.get("input_token_details") or {}).get("cache_read", 0) or 0
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    fresh_input = usage.get("input_tokens", 0) - cached
    dollars = (
        fresh_input * price.input
        + cached * cached_rate
        + usage.get("output_tokens", 0) * price.output
    )
    return dollars / 1_000_000
