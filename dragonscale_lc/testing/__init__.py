"""Test doubles for running the compiler without a network or an API key.

:class:`ScriptedChatModel` is a LangChain chat model whose replies come from a
script: fixed strings, or functions that write a reply from the prompt. It
streams each reply in small chunks, like a real model's tokens, so a plan's
tasks start while the rest of the plan is still arriving.
:class:`SimulatedChatModel` adds a real model's timing to the script: a delay
before the first token, a fixed number of tokens per second, and estimated
token usage.
"""

from ._scripted import Reply, ScriptedChatModel
from ._simulated import SimulatedChatModel

__all__ = ["Reply", "ScriptedChatModel", "SimulatedChatModel"]
