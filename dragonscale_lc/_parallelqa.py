"""ParallelQA country questions shipped with the package, their plans and scoring.

The questions come from the ParallelQA benchmark of LLMCompiler (Kim et al.,
ICML 2024; MIT licence, see ``data/parallelqa/LICENSE``). Each can be answered
offline with the built-in ``country_facts``, ``math`` and ``argmax``/``argmin``
tools. ``data/parallelqa/plans.txt`` holds one plan per question, written in
the plan format as a planner model would write it.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from importlib import resources

__all__ = ["Question", "is_correct", "load_plans", "load_questions", "normalize_answer"]

_DATA = "data/parallelqa"
_PLAN_HEADER = re.compile(r"^Question\s+(\S+):", re.MULTILINE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
NUMERIC_TOLERANCE = 0.10
"""A numeric answer is correct when strictly within this fraction of the label."""


@dataclass(frozen=True, slots=True)
class Question:
    """One benchmark question with its label and number of parallel lookups."""

    id: str
    question: str
    answer: str
    branch: int


def load_questions() -> list[Question]:
    """Return the shipped questions in file order."""
    text = resources.files("dragonscale_lc").joinpath(f"{_DATA}/country_questions.json").read_text()
    return [
        Question(
            id=str(item["id"]),
            question=item["question"],
            answer=str(item["answer"]),
            branch=int(item["branch"]),
        )
        for item in json.loads(text)
    ]


def load_plans() -> dict[str, str]:
    """Return the shipped plan text of every question, by question id."""
    text = resources.files("dragonscale_lc").joinpath(f"{_DATA}/plans.txt").read_text()
    headers = list(_PLAN_HEADER.finditer(text))
    plans = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        body_start = text.index("\n", header.end()) + 1
        body_end = following.start() if following else len(text)
        plans[header.group(1)] = text[body_start:body_end].strip() + "\n"
    return plans


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, and collapse white space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def is_correct(answer: str, label: str) -> bool:
    """Score ``answer`` against ``label`` with the ParallelQA rule.

    A numeric label needs a number strictly within ±10 % of it; any other
    label needs an exact match after :func:`normalize_answer`.
    """
    expected = _as_number(label)
    if expected is not None:
        got = _as_number(answer)
        return got is not None and abs(got - expected) < NUMERIC_TOLERANCE * abs(expected)
    return normalize_answer(answer) == normalize_answer(label)


def _as_number(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", ""))
    except ValueError:
        return None
