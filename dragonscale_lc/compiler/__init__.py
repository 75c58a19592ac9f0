"""The LLMCompiler: planner, streaming plan parser, joiner and replan loop."""

from ._joiner import Finish, JoinDecision, Joiner, Replan, parse_join_text
from ._parser import StreamingPlanParser, parse_plan
from ._plan import PlanTask, format_call
from ._plan_cache import PlanCache, normalize_question
from ._planner import Planner
from ._pricing import DEFAULT_PRICES, TokenPrice
from ._progress import CUSTOM_EVENT_PREFIX
from ._prompts import PROMPT_VERSION, planner_messages
from ._result import CompilerResult, Round, format_output, report_tasks
from ._runnable import DEFAULT_TASK_TIMEOUT, CompilerInput, LLMCompiler, question_of
from ._toolbox import ToolBox

__all__ = [
    "CUSTOM_EVENT_PREFIX",
    "DEFAULT_PRICES",
    "DEFAULT_TASK_TIMEOUT",
    "PROMPT_VERSION",
    "CompilerInput",
    "CompilerResult",
    "Finish",
    "JoinDecision",
    "Joiner",
    "LLMCompiler",
    "PlanCache",
    "PlanTask",
    "Planner",
    "Replan",
    "Round",
    "StreamingPlanParser",
    "TokenPrice",
    "ToolBox",
    "format_call",
    "format_output",
    "normalize_question",
    "parse_join_text",
    "parse_plan",
    "planner_messages",
    "question_of",
    "report_tasks",
]
