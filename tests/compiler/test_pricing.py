"""Estimated cost from token usage and a price list."""

from __future__ import annotations

import pytest
from langchain_core.messages.ai import UsageMetadata

from dragonscale_lc.compiler import DEFAULT_PRICES, TokenPrice
from dragonscale_lc.compiler._pricing import estimate_cost, price_for


def test_dated_snapshot_takes_longest_prefix() -> None:
    assert price_for("gpt-4o-mini-2024-07-18", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o"]


def test_unknown_model_has_no_price() -> None:
    assert price_for("llama-3-70b", DEFAULT_PRICES) is None
    assert price_for("gpt-4oo", DEFAULT_PRICES) is None


def test_cached_input_tokens_cost_their_own_rate() -> None:
    usage = UsageMetadata(
        input_tokens=1000,
        output_tokens=100,
        total_tokens=1100,
        input_token_details={"cache_read": 400},
    )

    cost = estimate_cost(usage, TokenPrice(input=2.0, output=10.0, cached_input=0.5))

    assert cost == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 10.0) / 1e6)


def test_cached_input_without_own_rate_costs_as_input() -> None:
    usage = UsageMetadata(
        input_tokens=1000,
        output_tokens=0,
        total_tokens=1000,
        input_token_details={"cache_read": 400},
    )

    assert estimate_cost(usage, TokenPrice(input=2.0, output=10.0)) == pytest.approx(2000 / 1e6)
